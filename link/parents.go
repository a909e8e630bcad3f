package link

import (
	"encoding/json"
	"strings"
)

// Relations between objects, as recorded in a span's links.
const (
	RelOwner      = "owner"      // an ownerReference (the controller owner is the primary parent)
	RelNode       = "node"       // the node a pod is bound to
	RelService    = "service"    // the Service an EndpointSlice belongs to (kubernetes.io/service-name)
	RelAnnotation = "annotation" // ParentAnnotation: any object, in any cluster
	// An Event object's span (what holds the audited writes of the Event) under the object the
	// Event is about: an Event is an observation of its involvedObject, not an object of its own.
	RelInvolved = "involvedObject"
)

// ParentAnnotation places an object under any other object, in any cluster:
//
//	kairn.dev/parent: '{"cluster":"prod-eu","group":"apps","resource":"deployments","namespace":"shop","name":"web"}'
//
// cluster defaults to the object's own; uid is optional. It is the primary parent of an object
// no controller owns (someone asked for it explicitly), and a secondary link otherwise.
const ParentAnnotation = "kairn.dev/parent"

// Parent is one link from an object to another.
type Parent struct {
	Relation string
	Key      ObjectKey
	Kind     string
}

// clusterScoped are kinds that have no namespace.
var clusterScoped = map[string]bool{"Node": true, "Namespace": true, "PersistentVolume": true, "ClusterRole": true, "CustomResourceDefinition": true}

// parentsOf returns an object's primary parent (nil for a root) and its other links, from its
// newest revision. resolve fills in the uid of a target named without one.
func parentsOf(k ObjectKey, r *Revision, resolve func(ObjectKey) ObjectKey) (*Parent, []Parent) {
	if r == nil {
		return nil, nil
	}
	var all []Parent
	// Owners, the controller first.
	for pass := 0; pass < 2; pass++ {
		for _, o := range r.Owners {
			if o.Controller != (pass == 0) {
				continue
			}
			ns := k.Namespace
			if clusterScoped[o.Kind] {
				ns = ""
			}
			all = append(all, Parent{RelOwner, ObjectKey{Cluster: k.Cluster, Group: o.Group, Resource: o.Resource, Namespace: ns, Name: o.Name, UID: o.UID}, o.Kind})
		}
	}
	// The annotation places an object that no controller owns; on an owned object (controllers
	// copy annotations: a Deployment's reach its ReplicaSets) it is a secondary link, so it
	// never tears a workload's tree apart.
	if p, ok := annotationParent(k, bodyString(r, "metadata", "annotations", ParentAnnotation)); ok {
		if p.Key.UID == "" {
			p.Key = resolve(p.Key)
		}
		if len(all) > 0 && controlled(r.Owners) {
			all = append(all, p)
		} else {
			all = append([]Parent{p}, all...)
		}
	}
	if k.Group == "discovery.k8s.io" && k.Resource == "endpointslices" {
		if svc := bodyString(r, "metadata", "labels", "kubernetes.io/service-name"); svc != "" {
			key := resolve(ObjectKey{Cluster: k.Cluster, Resource: "services", Namespace: k.Namespace, Name: svc})
			if !hasTarget(all, key) {
				all = append(all, Parent{RelService, key, "Service"})
			}
		}
	}
	if k.Group == "" && k.Resource == "pods" {
		if node := bodyString(r, "spec", "nodeName"); node != "" {
			all = append(all, Parent{RelNode, resolve(ObjectKey{Cluster: k.Cluster, Resource: "nodes", Name: node}), "Node"})
		}
	}
	if len(all) == 0 || all[0].Relation == RelNode {
		return nil, all // a pod's node is a secondary link: a pod without owner is a root
	}
	return &all[0], all[1:]
}

func controlled(owners []OwnerRef) bool {
	for _, o := range owners {
		if o.Controller {
			return true
		}
	}
	return false
}

func hasTarget(ps []Parent, k ObjectKey) bool {
	for _, p := range ps {
		if p.Key.NameKey() == k.NameKey() {
			return true
		}
	}
	return false
}

// annotationParent reads the kairn.dev/parent annotation's value.
func annotationParent(k ObjectKey, raw string) (Parent, bool) {
	if raw == "" {
		return Parent{}, false
	}
	var ref struct {
		Cluster   string `json:"cluster"`
		Group     string `json:"group"`
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Kind      string `json:"kind"`
	}
	if json.Unmarshal([]byte(raw), &ref) != nil || ref.Resource == "" || ref.Name == "" {
		return Parent{}, false // a malformed annotation links nothing; the owner still does
	}
	if ref.Cluster == "" {
		ref.Cluster = k.Cluster
	}
	return Parent{RelAnnotation, ObjectKey{Cluster: ref.Cluster, Group: ref.Group, Resource: strings.ToLower(ref.Resource),
		Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID}, ref.Kind}, true
}
