package link

import (
	"reflect"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// wellKnownResources maps group/Kind to the resource name for the kinds a cluster always has,
// where simple pluralisation would be wrong or ambiguous.
var wellKnownResources = map[string]string{
	"/Endpoints":                          "endpoints",
	"/Node":                               "nodes",
	"/Pod":                                "pods",
	"/Service":                            "services",
	"/Event":                              "events",
	"events.k8s.io/Event":                 "events",
	"/ConfigMap":                          "configmaps",
	"/Secret":                             "secrets",
	"/Namespace":                          "namespaces",
	"/ServiceAccount":                     "serviceaccounts",
	"/PersistentVolumeClaim":              "persistentvolumeclaims",
	"/PersistentVolume":                   "persistentvolumes",
	"apps/Deployment":                     "deployments",
	"apps/ReplicaSet":                     "replicasets",
	"apps/StatefulSet":                    "statefulsets",
	"apps/DaemonSet":                      "daemonsets",
	"apps/ControllerRevision":             "controllerrevisions",
	"batch/Job":                           "jobs",
	"batch/CronJob":                       "cronjobs",
	"discovery.k8s.io/EndpointSlice":      "endpointslices",
	"networking.k8s.io/Ingress":           "ingresses",
	"policy/PodDisruptionBudget":          "poddisruptionbudgets",
	"autoscaling/HorizontalPodAutoscaler": "horizontalpodautoscalers",
	// Served by every apiserver but registered in kube-aggregator's and apiextensions-apiserver's
	// schemes, not client-go's: named here so audit-only objects of theirs have a kind too.
	"apiregistration.k8s.io/APIService":             "apiservices",
	"apiextensions.k8s.io/CustomResourceDefinition": "customresourcedefinitions",
}

// ResourceFor returns the resource name of a kind in an API group ("" for core). Unknown kinds
// fall back to the lower-case plural the apiserver's RESTMapper would guess.
func ResourceFor(group, kind string) string {
	if r, ok := wellKnownResources[group+"/"+kind]; ok {
		return r
	}
	k := strings.ToLower(kind)
	switch {
	case k == "":
		return ""
	case strings.HasSuffix(k, "s"), strings.HasSuffix(k, "x"), strings.HasSuffix(k, "ch"), strings.HasSuffix(k, "sh"):
		return k + "es"
	case strings.HasSuffix(k, "y") && len(k) > 1 && !strings.ContainsRune("aeiou", rune(k[len(k)-2])):
		return k[:len(k)-1] + "ies"
	default:
		return k + "s"
	}
}

// GroupOf returns the API group of an apiVersion ("apps/v1" → "apps", "v1" → "").
func GroupOf(apiVersion string) string {
	if i := strings.IndexByte(apiVersion, '/'); i >= 0 {
		return apiVersion[:i]
	}
	return ""
}

// builtinKinds maps group/resource to kind for the resources client-go's scheme knows (every
// built-in API group), so an object seen only through audit records, which name its resource
// and not its kind (RBAC objects, ServiceAccounts, Namespaces…), still has its kind. Built once,
// on first use.
var builtinKinds = sync.OnceValue(func() map[string]string {
	kinds := map[string]string{}
	metaTypes := reflect.TypeFor[metav1.Status]().PkgPath()
	for gvk, t := range scheme.Scheme.AllKnownTypes() {
		// Every group version also registers the list, option and watch types of the API
		// machinery (ListOptions, WatchEvent, Status): they are no resources.
		if gvk.Version == runtime.APIVersionInternal || t.PkgPath() == metaTypes || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		plural, _ := meta.UnsafeGuessKindToResource(gvk)
		k := plural.Group + "/" + plural.Resource
		if cur, ok := kinds[k]; !ok || gvk.Kind < cur { // versions agree; the smaller on a clash
			kinds[k] = gvk.Kind
		}
	}
	for groupKind, resource := range wellKnownResources {
		group, kind, _ := strings.Cut(groupKind, "/")
		if _, ok := kinds[group+"/"+resource]; !ok {
			kinds[group+"/"+resource] = kind
		}
	}
	return kinds
})

// builtinKind returns the kind of a built-in resource ("" for others).
func builtinKind(group, resource string) string { return builtinKinds()[group+"/"+resource] }
