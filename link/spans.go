package link

import (
	"cmp"
	"slices"
	"strings"
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

func (b *Batch) rows(objs map[ObjectKey]*object, obs []Observation, st *Stats) []archive.Span {
	kindOf := map[ObjectKey]string{}
	byName := map[ObjectKey]ObjectKey{} // newest uid of each name
	for k, o := range objs {
		kindOf[k] = o.kind
		if cur, ok := byName[k.NameKey()]; !ok || objs[cur].created.Before(o.created) {
			byName[k.NameKey()] = k
		}
	}
	resolve := func(k ObjectKey) ObjectKey {
		if k.UID == "" {
			if full, ok := byName[k]; ok {
				return full
			}
			if b.cfg.History != nil {
				k.UID, _ = b.cfg.History.UIDByName(k)
			}
		}
		return k
	}
	// The object each Event is about, by the Event object's name (its audited writes name it).
	involved := map[ObjectKey]Parent{}
	for i := range obs {
		if e := &obs[i]; e.Source == SourceEvent && e.Carrier.Name != "" {
			involved[eventObject(e.Carrier)] = Parent{Relation: RelInvolved, Key: e.Object, Kind: e.Kind}
		}
	}
	type parents struct {
		primary   *Parent
		secondary []Parent
	}
	parentCache := map[ObjectKey]parents{}
	parentsFor := func(k ObjectKey) parents {
		p, ok := parentCache[k]
		if !ok {
			var newest *Revision
			if o := objs[k]; o != nil {
				newest = &o.revs[len(o.revs)-1]
			} else if b.cfg.History != nil && k.UID != "" {
				if r, ok := b.cfg.History.Latest(k.UID); ok {
					newest = &r
				}
			}
			p.primary, p.secondary = parentsOf(k, newest, resolve)
			if in, ok := involved[eventObject(k)]; ok && p.primary == nil && k.Resource == "events" {
				p.primary = &in
			}
			parentCache[k] = p
		}
		return p
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

	// Each observation's object span first; the rows once the number of object spans is known,
	// so the ~1 KB rows are never copied to grow.
	type placed struct {
		parent *archive.Span
		kind   string
		w, end time.Time
		rank   int32 // the parent's place among the sorted object spans
		spanID string
	}
	place := make([]placed, len(obs))
	for i := range obs {
		o := &obs[i]
		end := o.EndTime
		if end.Before(o.Time) {
			end = o.Time
		}
		w := WindowStart(o.Time, b.cfg.Window)
		kind := o.Kind
		if kind == "" {
			kind = kindOf[o.Object]
		}
		place[i] = placed{parent: objectSpan(o.Object, kind, w, o.Time, end), kind: kind, w: w, end: end}
	}

	// Nest object spans under their primary parents' spans in the same window, and record the
	// other links. A parent or linked object not seen in this window gets its span from the
	// reference alone, so the tree is whole.
	for i := 0; i < len(order); i++ {
		sk := order[i]
		s := spans[sk]
		ps := parentsFor(sk.key)
		target := func(p Parent) *archive.Span {
			if _, seen := spans[spanKey{p.Key, sk.window}]; !seen {
				st.OwnerOnlySpans++
			}
			return objectSpan(p.Key, p.Kind, sk.window, s.StartTime, s.EndTime)
		}
		if ps.primary != nil {
			setParent(s, target(*ps.primary))
			s.ParentRelation = ps.primary.Relation
		}
		for _, p := range ps.secondary {
			t := target(p)
			s.Links = append(s.Links, archive.Link{Relation: p.Relation, Cluster: t.Cluster, APIGroup: t.APIGroup, Resource: t.Resource,
				Namespace: t.Namespace, Name: t.Name, UID: t.UID, SpanID: t.SpanID})
		}
	}

	// The trace is the root of the tree of primary parents.
	rootOf := func(k ObjectKey) ObjectKey {
		for range 16 { // chains are short; this bounds a cycle in bad data
			p := parentsFor(k).primary
			if p == nil {
				break
			}
			k = p.Key
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

	// Rows come out in the archive's order (archive.SortSpans), so writing them sorts nothing:
	// object spans by object (and window), each followed by its observations in time order.
	objects := make([]*archive.Span, len(order))
	for i, sk := range order {
		s := spans[sk]
		s.TraceID = traceOf(sk.key)
		objects[i] = s
	}
	slices.SortFunc(objects, func(a, b *archive.Span) int {
		return cmp.Or(archive.CompareSpans(a, b), a.WindowStart.Compare(b.WindowStart))
	})
	rank := make(map[*archive.Span]int32, len(objects))
	for i, s := range objects {
		rank[s] = int32(i)
	}
	for i := range place {
		place[i].rank = rank[place[i].parent]
		place[i].spanID = hash64("obs", obs[i].ID)
	}
	// Observations by their object span's rank (counted into place), then by time in each.
	starts := make([]int32, len(objects)+1)
	for i := range place {
		starts[place[i].rank+1]++
	}
	for k := range objects {
		starts[k+1] += starts[k]
	}
	byRank := make([]int32, len(obs))
	fill := slices.Clone(starts[:len(objects)])
	for i := range place {
		r := place[i].rank
		byRank[fill[r]] = int32(i)
		fill[r]++
	}
	for k := range objects {
		slices.SortFunc(byRank[starts[k]:starts[k+1]], func(i, j int32) int {
			if c := obs[i].Time.Compare(obs[j].Time); c != 0 {
				return c
			}
			return strings.Compare(place[i].spanID, place[j].spanID)
		})
	}

	rows := make([]archive.Span, 0, len(obs)+len(objects))
	for k, s := range objects {
		rows = append(rows, *s)
		for _, i := range byRank[starts[k]:starts[k+1]] {
			p := &place[i]
			rows = append(rows, observationRow(&obs[i], p.kind, p.spanID, s, p.w, p.end))
		}
	}
	st.ObjectSpans = len(order)
	return rows
}

func setParent(s, p *archive.Span) {
	s.ParentSpanID = p.SpanID
	s.ParentCluster = p.Cluster
	s.ParentAPIGroup, s.ParentResource, s.ParentNamespace = p.APIGroup, p.Resource, p.Namespace
	s.ParentKind, s.ParentName, s.ParentUID = p.ObjectKind, p.Name, p.UID
}

// copyParentKeys gives an observation row its object's owner keys, so SQL can join observations
// to owners without going through the object span.
func copyParentKeys(r, objectSpan *archive.Span) {
	r.ParentCluster, r.ParentRelation = objectSpan.ParentCluster, objectSpan.ParentRelation
	r.ParentAPIGroup, r.ParentResource, r.ParentNamespace = objectSpan.ParentAPIGroup, objectSpan.ParentResource, objectSpan.ParentNamespace
	r.ParentKind, r.ParentName, r.ParentUID = objectSpan.ParentKind, objectSpan.ParentName, objectSpan.ParentUID
}

// observationRow is an observation's row under its object's span, which has its trace and owner.
func observationRow(o *Observation, kind, spanID string, parent *archive.Span, w, end time.Time) archive.Span {
	r := archive.Span{
		Kind:         string(o.Source),
		TraceID:      parent.TraceID,
		SpanID:       spanID,
		ParentSpanID: parent.SpanID,
		Cluster:      o.Object.Cluster, APIGroup: o.Object.Group, Resource: o.Object.Resource,
		Namespace: o.Object.Namespace, Name: o.Object.Name, UID: o.Object.UID, ObjectKind: kind,
		WindowStart: w, StartTime: o.Time, EndTime: end, TimeSource: o.TimeSource,
		ObservationID: o.ID, AuditID: o.AuditID, Stage: o.Stage, Verb: o.Verb, Subresource: o.Subresource,
		User: o.User, UserAgent: o.UserAgent, StatusCode: o.StatusCode,
		Reason: o.Reason, Message: o.Message, EventType: o.EventType, Reporter: o.Reporter, EventCount: o.Count,
		ResourceVersion: o.ResourceVersion, PrevResourceVersion: o.PrevResourceVersion, FieldManager: o.Manager,
		NoOp: o.NoOp, AuditLink: o.AuditLink, RevisionTime: o.RevisionTime, RevisionTimeSource: o.RevisionTimeSource,
	}
	if len(o.Changes) > 0 {
		r.Changes = make([]archive.FieldChange, len(o.Changes))
		for i, c := range o.Changes {
			r.Changes[i] = archive.FieldChange{Path: c.Path, Old: c.Old, New: c.New}
		}
	}
	copyParentKeys(&r, parent)
	return r
}

// eventObject is the key an Event object is looked up by: the core and events.k8s.io views of
// one Event are one object, and its audited writes may not know its uid.
func eventObject(k ObjectKey) ObjectKey {
	return ObjectKey{Cluster: k.Cluster, Resource: "events", Namespace: k.Namespace, Name: k.Name}
}
