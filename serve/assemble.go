package serve

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/kairn-dev/kairn/archive"
)

// Assemble builds the trace an id names from archive rows of the windows it covers: one object
// span per object (its windows' object spans stitched; the first window's span id is kept), its
// observations under it, objects nested under their owners. Focus is the object id.Object names.
// Pure; rows may come in any order and may repeat (unmerged parts).
func Assemble(id TraceID, rows []archive.Span) *Trace {
	ptrs := make([]*archive.Span, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	return assemble(id, ptrs)
}

// assemble is Assemble over pointers to the rows, which it only reads (they may be shared with
// a cache); it reorders rows.
func assemble(id TraceID, rows []*archive.Span) *Trace {
	slices.SortStableFunc(rows, func(a, b *archive.Span) int {
		ao, bo := a.Kind != archive.KindObject, b.Kind != archive.KindObject
		return cmp.Or(a.WindowStart.Compare(b.WindowStart), cmpBool(ao, bo), a.StartTime.Compare(b.StartTime), cmp.Compare(a.SpanID, b.SpanID))
	})
	t := &Trace{ID: id, Spans: make([]*Span, 0, len(rows))}
	objects := map[ObjectKey]*Span{}
	spanOf := map[string]*Span{} // a window's object span id → the stitched object span
	for i := range rows {
		r := rows[i]
		if r.Kind != archive.KindObject {
			continue
		}
		k := spanKey(r)
		o := objects[k]
		if o == nil {
			o = &Span{ID: r.SpanID, Kind: archive.KindObject, Object: k, ObjectKind: r.ObjectKind, Start: r.StartTime, End: r.EndTime}
			objects[k] = o
			t.Spans = append(t.Spans, o)
			if t.Focus == "" && id.names(k) {
				t.Focus = o.ID
			}
		}
		o.Start, o.End = minTime(o.Start, r.StartTime), maxTime(o.End, r.EndTime)
		if o.ObjectKind == "" {
			o.ObjectKind = r.ObjectKind
		}
		spanOf[r.SpanID] = o
	}
	// Parents: the first window that names one wins; a parent that would make a cycle is dropped.
	for i := range rows {
		r := rows[i]
		if r.Kind != archive.KindObject || r.ParentSpanID == "" {
			continue
		}
		o, p := spanOf[r.SpanID], spanOf[r.ParentSpanID]
		if o.Parent != "" || p == nil || p == o || isAncestor(o, p, objects, spanOf) {
			continue
		}
		o.Parent = p.ID
		if o.Tags == nil {
			o.Tags = append(o.Tags, Tag{"parent_relation", r.ParentRelation})
		}
	}
	links := map[*Span]map[SpanLink]bool{}
	for i := range rows {
		r := rows[i]
		if r.Kind != archive.KindObject {
			continue
		}
		o := spanOf[r.SpanID]
		for _, l := range r.Links {
			if target := spanOf[l.SpanID]; target != nil && target != o {
				sl := SpanLink{Relation: l.Relation, SpanID: target.ID}
				if links[o] == nil {
					links[o] = map[SpanLink]bool{}
				}
				if !links[o][sl] {
					links[o][sl] = true
					o.Links = append(o.Links, sl)
				}
			}
		}
	}
	for _, o := range t.Spans {
		rel := ""
		if len(o.Tags) > 0 {
			rel = o.Tags[0].Value.(string)
		}
		o.Name = o.ObjectKind + " " + qualifiedName(o.Object)
		o.Tags = []Tag{
			{"cluster", o.Object.Cluster}, {"group", o.Object.Group}, {"resource", o.Object.Resource},
			{"namespace", o.Object.Namespace}, {"name", o.Object.Name}, {"uid", o.Object.UID},
			{"kind", o.ObjectKind}, {"kairn.kind", "object"},
		}
		if rel != "" {
			o.Tags = append(o.Tags, Tag{"parent_relation", rel})
		}
	}
	seen := make(map[string]struct{}, len(rows))
	block := make([]Span, 0, len(rows)-len(t.Spans)) // the observation spans, allocated at once
	for i := range rows {
		r := rows[i]
		if r.Kind == archive.KindObject {
			continue
		}
		if _, dup := seen[r.SpanID]; dup {
			continue
		}
		seen[r.SpanID] = struct{}{}
		o := spanOf[r.ParentSpanID]
		if o == nil {
			o = objects[spanKey(r)]
		}
		if o == nil {
			continue // its object is not in this trace
		}
		block = append(block, Span{})
		s := &block[len(block)-1]
		observation(r, s)
		s.Parent = o.ID
		s.Object, s.ObjectKind = o.Object, o.ObjectKind
		t.Spans = append(t.Spans, s)
	}
	return t
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// isAncestor says whether o is p or an ancestor of p through the parents set so far.
func isAncestor(o, p *Span, objects map[ObjectKey]*Span, spanOf map[string]*Span) bool {
	for n := 0; p != nil && n < len(objects)+1; n++ {
		if p == o {
			return true
		}
		if p.Parent == "" {
			return false
		}
		p = spanOf[p.Parent]
	}
	return p != nil
}

func qualifiedName(k ObjectKey) string {
	if k.Namespace != "" {
		return k.Namespace + "/" + k.Name
	}
	return k.Name
}

// observation turns an audit, event or change row into a span (s, zero on entry).
func observation(r *archive.Span, s *Span) {
	*s = Span{ID: r.SpanID, Kind: r.Kind, Start: r.StartTime, End: r.EndTime}
	if s.End.Before(s.Start) {
		s.End = s.Start
	}
	res := r.Resource
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	switch r.Kind {
	case archive.KindAudit:
		s.Name = "audit " + r.Verb + " " + res
		if r.StatusCode >= 400 {
			s.Name += " " + strconv.Itoa(int(r.StatusCode))
		}
	case archive.KindEvent:
		s.Name = "event " + r.Reason
	case archive.KindChange:
		s.Name = "change " + r.Verb
	default:
		s.Name = r.Kind
	}
	s.Tags = make([]Tag, 0, observationTags(r))
	add := func(k, v string) {
		if v != "" {
			s.Tags = append(s.Tags, Tag{k, v})
		}
	}
	add("kairn.kind", r.Kind)
	add("verb", r.Verb)
	add("subresource", r.Subresource)
	add("user", r.User)
	add("user_agent", r.UserAgent)
	if r.StatusCode != 0 {
		s.Tags = append(s.Tags, Tag{"status_code", int64(r.StatusCode)})
	}
	add("reason", r.Reason)
	add("message", r.Message)
	add("event_type", r.EventType)
	add("reporter", r.Reporter)
	if r.EventCount != 0 {
		s.Tags = append(s.Tags, Tag{"event_count", int64(r.EventCount)})
	}
	add("resource_version", r.ResourceVersion)
	add("prev_resource_version", r.PrevResourceVersion)
	add("field_manager", r.FieldManager)
	if r.NoOp {
		s.Tags = append(s.Tags, Tag{"no_op", true})
	}
	add("audit_id", r.AuditID)
	add("audit_link", r.AuditLink)
	add("time_source", r.TimeSource)
	add("observation_id", r.ObservationID)
	if r.StatusCode >= 400 || r.EventType == "Warning" {
		s.Tags = append(s.Tags, Tag{"error", true})
	}
	if len(r.Changes) > 0 {
		s.Diffs = make([]string, 0, len(r.Changes))
	}
	for _, c := range r.Changes {
		s.Diffs = append(s.Diffs, c.Path+": "+orNone(c.Old)+" → "+orNone(c.New))
	}
}

// observationTags counts the tags observation gives r, to allocate them at once.
func observationTags(r *archive.Span) int {
	n := 0
	for _, v := range [...]string{r.Kind, r.Verb, r.Subresource, r.User, r.UserAgent, r.Reason, r.Message, r.EventType, r.Reporter,
		r.ResourceVersion, r.PrevResourceVersion, r.FieldManager, r.AuditID, r.AuditLink, r.TimeSource, r.ObservationID} {
		if v != "" {
			n++
		}
	}
	if r.StatusCode != 0 {
		n++
	}
	if r.EventCount != 0 {
		n++
	}
	if r.NoOp {
		n++
	}
	if r.StatusCode >= 400 || r.EventType == "Warning" {
		n++
	}
	return n
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return strings.TrimSpace(v)
}
