package serve

import (
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// builtinKinds maps the built-in API's resources to their kinds, from client-go's scheme. It is
// built on first use, not at start: archives written before link filled kinds at ingest hold
// objects known only through audit (RBAC, ServiceAccounts, APIServices…) with no kind, and only
// a server meeting one pays for the table.
var builtinKinds = sync.OnceValue(func() map[schema.GroupResource]string {
	m := map[schema.GroupResource]string{}
	add := func(gr schema.GroupResource, kind string) {
		// Several kinds of a group may guess the same resource (options types): the smallest
		// name wins, so the table does not depend on map order.
		if k, ok := m[gr]; !ok || kind < k {
			m[gr] = kind
		}
	}
	for gvk := range scheme.Scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		plural, singular := meta.UnsafeGuessKindToResource(gvk)
		add(plural.GroupResource(), gvk.Kind)
		// Kinds already plural (Endpoints) are their own resource; the guess says "endpointses".
		add(singular.GroupResource(), gvk.Kind)
	}
	return m
})

// kindOf is the kind of an object: the archive's, else the built-in kind of its resource, else "".
func kindOf(archived, group, resource string) string {
	if archived != "" {
		return archived
	}
	return builtinKinds()[schema.GroupResource{Group: group, Resource: resource}]
}

// listedObject says whether an object is one search and traces show. Event objects are not:
// an Event is an observation of its involvedObject (and is shown there); the Event object's
// own audited writes stay in the archive for the reports. Nor is a nameless "object": list,
// watch and deletecollection records of a whole collection.
func listedObject(group, resource, name string) bool {
	return name != "" && !(resource == "events" && (group == "" || group == "events.k8s.io"))
}
