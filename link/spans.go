package link

import (
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// WindowStart returns the start of the epoch-aligned window holding t.
func WindowStart(t time.Time, window time.Duration) time.Time {
	ns := t.UnixNano()
	w := int64(window)
	start := ns - ns%w
	if ns < 0 && ns%w != 0 {
		start -= w
	}
	return time.Unix(0, start).UTC()
}

// ObjectSpanID is the span id of an object's span in a window: the same for every writer.
func ObjectSpanID(k ObjectKey, window time.Time) string {
	return hash64("object", k.Cluster, k.Group, k.Resource, k.Namespace, k.Name, k.UID, window.UTC().Format(time.RFC3339))
}

// TraceID is the trace of an object tree, named by its root object (window-independent, so a
// trace continues across windows).
func TraceID(root ObjectKey) string {
	return hash128("trace", root.Cluster, root.Group, root.Resource, root.Namespace, root.Name, root.UID)
}

type spanKey struct {
	key    ObjectKey
	window time.Time
}

// clusterScoped are owner kinds that have no namespace.
var clusterScoped = map[string]bool{"Node": true, "Namespace": true, "PersistentVolume": true, "ClusterRole": true, "CustomResourceDefinition": true}

// owner returns the primary parent of an object: its controller owner, else its first owner.
func owner(k ObjectKey, owners []OwnerRef) (ObjectKey, string, bool) {
	if len(owners) == 0 {
		return ObjectKey{}, "", false
	}
	ref := owners[0]
	for _, o := range owners {
		if o.Controller {
			ref = o
			break
		}
	}
	ns := k.Namespace
	if clusterScoped[ref.Kind] {
		ns = ""
	}
	return ObjectKey{Cluster: k.Cluster, Group: ref.Group, Resource: ref.Resource, Namespace: ns, Name: ref.Name, UID: ref.UID}, ref.Kind, true
}

func (b *Batch) rows(objs map[ObjectKey]*object, obs []Observation, st *Stats) []archive.Span {
	ownersOf := func(k ObjectKey) []OwnerRef {
		if o := objs[k]; o != nil {
			for i := len(o.revs) - 1; i >= 0; i-- {
				if len(o.revs[i].Owners) > 0 {
					return o.revs[i].Owners
				}
			}
		}
		return nil
	}
	kindOf := map[ObjectKey]string{}
	for k, o := range objs {
		kindOf[k] = o.kind
	}

	spans := map[spanKey]*archive.Span{}
	var order []spanKey
	objectSpan := func(k ObjectKey, kind string, w time.Time, start, end time.Time) *archive.Span {
		sk := spanKey{k, w}
		s := spans[sk]
		if s == nil {
			s = &archive.Span{
				Kind: archive.KindObject, SpanID: ObjectSpanID(k, w),
				Cluster: k.Cluster, APIGroup: k.Group, Resource: k.Resource, Namespace: k.Namespace,
				Name: k.Name, UID: k.UID, ObjectKind: kind,
				WindowStart: w, StartTime: start, EndTime: end,
			}
			spans[sk] = s
			order = append(order, sk)
			return s
		}
		if start.Before(s.StartTime) {
			s.StartTime = start
		}
		if end.After(s.EndTime) {
			s.EndTime = end
		}
		if s.ObjectKind == "" {
			s.ObjectKind = kind
		}
		return s
	}

	rows := make([]archive.Span, 0, len(obs)+len(obs)/4)
	for i := range obs {
		o := &obs[i]
		if o.Object.Name == "" {
			continue // a collection request (list of a namespace) is not about one object
		}
		end := o.EndTime
		if end.Before(o.Time) {
			end = o.Time
		}
		w := WindowStart(o.Time, b.cfg.Window)
		kind := o.Kind
		if kind == "" {
			kind = kindOf[o.Object]
		}
		parent := objectSpan(o.Object, kind, w, o.Time, end)
		rows = append(rows, observationRow(o, kind, parent, w, end))
	}

	// Nest object spans under their owners' spans in the same window, making owner spans from
	// the reference alone where the owner itself was not seen, so the tree is whole.
	for i := 0; i < len(order); i++ {
		sk := order[i]
		s := spans[sk]
		pk, pkind, ok := owner(sk.key, ownersOf(sk.key))
		if !ok {
			continue
		}
		if _, seen := spans[spanKey{pk, sk.window}]; !seen {
			st.OwnerOnlySpans++
		}
		p := objectSpan(pk, pkind, sk.window, s.StartTime, s.EndTime)
		setParent(s, p)
	}

	// The trace is the root of the ownership tree.
	rootOf := func(k ObjectKey) ObjectKey {
		for range 16 { // ownership chains are short; this bounds a cycle in bad data
			pk, _, ok := owner(k, ownersOf(k))
			if !ok {
				break
			}
			k = pk
		}
		return k
	}
	traces := map[ObjectKey]string{}
	traceOf := func(k ObjectKey) string {
		t, ok := traces[k]
		if !ok {
			t = TraceID(rootOf(k))
			traces[k] = t
		}
		return t
	}
	for i := range rows {
		rows[i].TraceID = traceOf(ObjectKey{Cluster: rows[i].Cluster, Group: rows[i].APIGroup, Resource: rows[i].Resource, Namespace: rows[i].Namespace, Name: rows[i].Name, UID: rows[i].UID})
		if s := spans[spanKey{rowKey(&rows[i]), rows[i].WindowStart}]; s != nil {
			copyParentKeys(&rows[i], s)
		}
	}
	for _, sk := range order {
		s := spans[sk]
		s.TraceID = traceOf(sk.key)
		rows = append(rows, *s)
	}
	st.ObjectSpans = len(order)
	return rows
}

func rowKey(r *archive.Span) ObjectKey {
	return ObjectKey{Cluster: r.Cluster, Group: r.APIGroup, Resource: r.Resource, Namespace: r.Namespace, Name: r.Name, UID: r.UID}
}

func setParent(s, p *archive.Span) {
	s.ParentSpanID = p.SpanID
	s.ParentAPIGroup, s.ParentResource, s.ParentNamespace = p.APIGroup, p.Resource, p.Namespace
	s.ParentKind, s.ParentName, s.ParentUID = p.ObjectKind, p.Name, p.UID
}

// copyParentKeys gives an observation row its object's owner keys, so SQL can join observations
// to owners without going through the object span.
func copyParentKeys(r, objectSpan *archive.Span) {
	r.ParentAPIGroup, r.ParentResource, r.ParentNamespace = objectSpan.ParentAPIGroup, objectSpan.ParentResource, objectSpan.ParentNamespace
	r.ParentKind, r.ParentName, r.ParentUID = objectSpan.ParentKind, objectSpan.ParentName, objectSpan.ParentUID
}

func observationRow(o *Observation, kind string, parent *archive.Span, w, end time.Time) archive.Span {
	r := archive.Span{
		Kind:         string(o.Source),
		SpanID:       hash64("obs", o.ID),
		ParentSpanID: parent.SpanID,
		Cluster:      o.Object.Cluster, APIGroup: o.Object.Group, Resource: o.Object.Resource,
		Namespace: o.Object.Namespace, Name: o.Object.Name, UID: o.Object.UID, ObjectKind: kind,
		WindowStart: w, StartTime: o.Time, EndTime: end, TimeSource: o.TimeSource,
		ObservationID: o.ID, AuditID: o.AuditID, Stage: o.Stage, Verb: o.Verb, Subresource: o.Subresource,
		User: o.User, UserAgent: o.UserAgent, StatusCode: o.StatusCode,
		Reason: o.Reason, Message: o.Message, EventType: o.EventType, Reporter: o.Reporter, EventCount: o.Count,
		ResourceVersion: o.ResourceVersion, PrevResourceVersion: o.PrevResourceVersion, FieldManager: o.Manager,
	}
	if len(o.Changes) > 0 {
		r.Changes = make([]archive.FieldChange, len(o.Changes))
		for i, c := range o.Changes {
			r.Changes[i] = archive.FieldChange{Path: c.Path, Old: c.Old, New: c.New}
		}
	}
	return r
}
