package serve

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// Assemble builds the trace an id names from archive rows of the windows it covers: one object
// span per object (its windows' object spans stitched; the first window's span id is kept), its
// observations under it, objects nested under their owners, display times derived (display.go).
// Focus is the object id.Object names. Event objects and nameless collection objects are left
// out (listedObject). Pure; rows may come in any order and may repeat (unmerged parts).
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
		if r.Kind != archive.KindObject || !listedObject(r.APIGroup, r.Resource, r.Name) {
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
	for _, o := range t.Spans {
		o.ObjectKind = kindOf(o.ObjectKind, o.Object.Group, o.Object.Resource)
	}
	// Parents: the first window that names one wins; a parent that would make a cycle is dropped.
	relation := map[*Span]string{}
	for i := range rows {
		r := rows[i]
		if r.Kind != archive.KindObject || r.ParentSpanID == "" {
			continue
		}
		o, p := spanOf[r.SpanID], spanOf[r.ParentSpanID]
		if o == nil || o.Parent != "" || p == nil || p == o || isAncestor(o, p, objects, spanOf) {
			continue
		}
		o.Parent = p.ID
		relation[o] = r.ParentRelation
	}
	names := objectNames(t.Spans)
	for _, o := range t.Spans {
		o.Name = names[o]
		o.Tags = []Tag{
			{"cluster", o.Object.Cluster}, {"group", o.Object.Group}, {"resource", o.Object.Resource},
			{"namespace", o.Object.Namespace}, {"name", o.Object.Name}, {"uid", o.Object.UID},
			{"kind", o.ObjectKind}, {"kairn.kind", "object"},
		}
		if rel := relation[o]; rel != "" {
			o.Tags = append(o.Tags, Tag{"parent_relation", rel})
		}
	}
	links := map[*Span]map[SpanLink]bool{}
	for i := range rows {
		r := rows[i]
		o := spanOf[r.SpanID]
		if r.Kind != archive.KindObject || o == nil {
			continue
		}
		for _, l := range r.Links {
			sl := linkTo(l, spanOf[l.SpanID], objects, names)
			if sl.SpanID == o.ID || links[o][sl] {
				continue
			}
			if links[o] == nil {
				links[o] = map[SpanLink]bool{}
			}
			links[o][sl] = true
			o.Links = append(o.Links, sl)
		}
	}
	t.Spans = append(t.Spans, observations(id, rows, spanOf, objects, t)...)
	return t
}

// linkTo is the link to l's target: its span in this trace, found by its window's span id or by
// its key, else the target as the archive names it (another trace's object).
func linkTo(l archive.Link, target *Span, objects map[ObjectKey]*Span, names map[*Span]string) SpanLink {
	key := ObjectKey{Cluster: l.Cluster, Group: l.APIGroup, Resource: l.Resource, Namespace: l.Namespace, Name: l.Name, UID: l.UID}
	if target == nil {
		target = objects[key]
	}
	if target != nil {
		return SpanLink{Relation: l.Relation, SpanID: target.ID, Target: target.Object, TargetName: names[target]}
	}
	kind := kindOf("", l.APIGroup, l.Resource)
	return SpanLink{Relation: l.Relation, SpanID: l.SpanID, Target: key, TargetName: strings.TrimSpace(kind + " " + qualifiedName(key))}
}

// objectNames names every object span by one rule, in every display: "Kind namespace/name", and
// where two objects of the trace share kind, namespace and name (a re-created pod) each gets
// the first six characters of its uid as well ("Pod blog/db-0 ·3f2a1b").
func objectNames(spans []*Span) map[*Span]string {
	type same struct{ kind, namespace, name string }
	count := map[same]int{}
	for _, o := range spans {
		count[same{o.ObjectKind, o.Object.Namespace, o.Object.Name}]++
	}
	names := make(map[*Span]string, len(spans))
	for _, o := range spans {
		n := strings.TrimSpace(o.ObjectKind + " " + qualifiedName(o.Object))
		if count[same{o.ObjectKind, o.Object.Namespace, o.Object.Name}] > 1 && o.Object.UID != "" {
			n += " ·" + o.Object.UID[:min(6, len(o.Object.UID))]
		}
		names[o] = n
	}
	return names
}

// observations makes the observation spans of the trace's objects: an audited write and the
// change it produced (same audit_id, audit_link set) become one span, with the audit's name and
// tags and the change's diffs; rows outside the id's time range are left out (the trace's
// warnings count them); then display times are derived (displayTimes).
func observations(id TraceID, rows []*archive.Span, spanOf map[string]*Span, objects map[ObjectKey]*Span, t *Trace) []*Span {
	objectOf := func(r *archive.Span) *Span {
		if o := spanOf[r.ParentSpanID]; o != nil {
			return o
		}
		return objects[spanKey(r)]
	}
	inRange := func(r *archive.Span) bool {
		return (id.Start.IsZero() || !r.StartTime.Before(id.Start)) && (id.End.IsZero() || r.StartTime.Before(id.End))
	}
	linkedAudits := map[string]*archive.Span{}
	for _, r := range rows {
		if r.Kind == archive.KindAudit && r.AuditLink != "" && r.AuditID != "" && linkedAudits[r.AuditID] == nil {
			linkedAudits[r.AuditID] = r
		}
	}
	joined := map[string]bool{} // audit ids shown with their change
	for _, r := range rows {
		if r.Kind == archive.KindChange && r.AuditLink != "" && linkedAudits[r.AuditID] != nil && objectOf(r) != nil && inRange(r) {
			joined[r.AuditID] = true
		}
	}
	seen := make(map[string]struct{}, len(rows))
	block := make([]Span, 0, len(rows)-len(objects)) // the observation spans, allocated at once
	var timed []timedSpan
	outside := 0
	for _, r := range rows {
		if r.Kind == archive.KindObject {
			continue
		}
		if _, dup := seen[r.SpanID]; dup {
			continue
		}
		seen[r.SpanID] = struct{}{}
		if r.Kind == archive.KindAudit && joined[r.AuditID] {
			continue // shown with its change
		}
		o := objectOf(r)
		if o == nil {
			continue // its object is not in this trace, or is not shown (listedObject)
		}
		if !inRange(r) {
			outside++
			continue
		}
		block = append(block, Span{})
		s := &block[len(block)-1]
		if a := linkedAudits[r.AuditID]; r.Kind == archive.KindChange && joined[r.AuditID] {
			observation(a, s)
			s.ID = r.SpanID
			joinChange(r, s)
		} else {
			observation(r, s)
		}
		s.Parent = o.ID
		s.Object, s.ObjectKind = o.Object, o.ObjectKind
		timed = append(timed, newTimedSpan(s, r, o))
	}
	if outside > 0 {
		t.Warnings = append(t.Warnings, fmt.Sprintf("%d observations outside %s – %s (the search's time range, to the minute) are not shown",
			outside, id.Start.Format(time.RFC3339), id.End.Format(time.RFC3339)))
	}
	displayTimes(timed)
	out := make([]*Span, len(block))
	for i := range block {
		out[i] = &block[i]
	}
	objectExtents(objects, out)
	return out
}

// joinChange adds to an audit's span s what its linked change row c adds: the change's own
// columns and its field diffs.
func joinChange(c *archive.Span, s *Span) {
	s.Tags = append(s.Tags, Tag{"change", c.Verb})
	for _, kv := range [...]Tag{{"prev_resource_version", c.PrevResourceVersion}, {"field_manager", c.FieldManager}, {"change_observation_id", c.ObservationID}} {
		if kv.Value == "" {
			continue
		}
		// The audit may say the same (the revision a write was based on is mostly the one
		// before it): a key once per span; where the two differ, the change's is prefixed.
		if i := slices.IndexFunc(s.Tags, func(t Tag) bool { return t.Key == kv.Key }); i >= 0 {
			if s.Tags[i].Value == kv.Value {
				continue
			}
			kv.Key = "change_" + kv.Key
		}
		s.Tags = append(s.Tags, kv)
	}
	if c.NoOp && !slices.Contains(s.Tags, Tag{"no_op", true}) {
		s.Tags = append(s.Tags, Tag{"no_op", true})
	}
	s.Diffs = make([]string, 0, len(c.Changes))
	for _, fc := range c.Changes {
		s.Diffs = append(s.Diffs, fc.Path+": "+orNone(fc.Old)+" → "+orNone(fc.New))
	}
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
