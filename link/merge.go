package link

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// MergeRows stitches the rows of one partition (cluster × window) written by any number of
// writers, in any arrival order, into one consistent set: observations de-duplicated by their
// stable id (keeping the most precise copy), copies of an object span combined, links whose
// halves landed in different parts resolved again (audit ↔ change by resourceVersion, Events
// timed by their audited creation), parent keys and trace ids recomputed. The result does not
// depend on the order of rows.
//
// neighbours are the observations of the adjacent windows near the boundaries: they take part
// in the joins, so a link whose halves landed in different windows is made too, and a fact two
// writers placed in different windows is kept once, in the window of its most precise copy
// (the earlier window on a tie). Both partitions' merges decide the same way, whichever runs first.
func MergeRows(rows, neighbours []archive.Span) []archive.Span {
	objects := map[string]*archive.Span{}
	obs := map[string]*archive.Span{}
	home := map[string]homeCopy{} // observation id → where its best copy lives
	add := func(r *archive.Span, neighbour bool) {
		id := r.ObservationID
		if id == "" {
			id = r.SpanID
		}
		h := homeCopy{rank(r.TimeSource), r.WindowStart, neighbour}
		if cur, ok := obs[id]; ok {
			mergeObservation(cur, r)
			if h.better(home[id]) {
				home[id] = h
			}
			return
		}
		c := *r
		obs[id] = &c
		home[id] = h
	}
	for i := range rows {
		r := &rows[i]
		if r.Kind == archive.KindObject {
			if cur, ok := objects[r.SpanID]; ok {
				mergeObjectSpan(cur, r)
			} else {
				c := *r
				objects[r.SpanID] = &c
			}
			continue
		}
		add(r, false)
	}
	for i := range neighbours {
		if neighbours[i].Kind != archive.KindObject {
			add(&neighbours[i], true)
		}
	}

	resolveUIDs(objects, obs)
	relinkAudits(obs)
	rehome(objects, obs)

	// Events by the audited creation of the Event object, for pairs written by different writers.
	eventCreates := map[string]*archive.Span{}
	for _, o := range obs {
		if o.Kind == archive.KindAudit && o.StatusCode >= 200 && o.StatusCode < 300 && o.UID != "" && o.Resource == "events" && o.Verb == "create" {
			eventCreates[o.UID] = o
		}
	}
	for _, o := range obs {
		switch o.Kind {
		case archive.KindEvent:
			if o.TimeSource == "audit" || o.EventCount > 1 {
				continue
			}
			if a, ok := eventCreates[eventUID(o.ObservationID)]; ok {
				o.StartTime, o.TimeSource = a.StartTime, "audit"
				if o.EndTime.Before(o.StartTime) {
					o.EndTime = o.StartTime
				}
			}
		}
	}

	// An Event object's span another writer left without its involved object goes under it.
	involved := map[string]string{} // Event uid → the span of the object it is about
	for _, o := range obs {
		if uid := eventUID(o.ObservationID); o.Kind == archive.KindEvent && uid != "" && objects[o.ParentSpanID] != nil {
			if cur, ok := involved[uid]; !ok || o.ParentSpanID < cur {
				involved[uid] = o.ParentSpanID
			}
		}
	}
	for _, s := range objects {
		if p, ok := involved[s.UID]; ok && s.Resource == "events" && s.ParentSpanID == "" && p != s.SpanID {
			setParent(s, objects[p])
			s.ParentRelation = RelInvolved
		}
	}

	// Object span times cover their observations; trace ids name the root of the merged tree.
	parentOf := map[string]string{}
	for id, s := range objects {
		parentOf[id] = s.ParentSpanID
	}
	rootTrace := map[string]string{}
	traceOf := func(spanID string) string {
		if t, ok := rootTrace[spanID]; ok {
			return t
		}
		id := spanID
		for range 16 {
			p := parentOf[id]
			if p == "" || objects[p] == nil {
				break
			}
			id = p
		}
		t := ""
		if root := objects[id]; root != nil {
			t = TraceID(ObjectKey{Cluster: root.Cluster, Group: root.APIGroup, Resource: root.Resource, Namespace: root.Namespace, Name: root.Name, UID: root.UID})
		}
		rootTrace[spanID] = t
		return t
	}
	out := make([]archive.Span, 0, len(objects)+len(obs))
	for id, o := range obs {
		if home[id].neighbour {
			continue // the neighbour's fact, or ours kept there
		}
		if parent := objects[o.ParentSpanID]; parent != nil {
			copyParentKeys(o, parent)
			if o.StartTime.Before(parent.StartTime) {
				parent.StartTime = o.StartTime
			}
			if o.EndTime.After(parent.EndTime) {
				parent.EndTime = o.EndTime
			}
			if t := traceOf(parent.SpanID); t != "" {
				o.TraceID = t
			}
		}
		out = append(out, *o)
	}
	for id, s := range objects {
		if t := traceOf(id); t != "" {
			s.TraceID = t
		}
		if s.ObjectKind == "" {
			s.ObjectKind = builtinKind(s.APIGroup, s.Resource)
		}
		out = append(out, *s)
	}
	archive.SortSpans(out)
	return out
}

// homeCopy is where one copy of a fact is stored; the best copy's partition keeps the fact.
type homeCopy struct {
	rank      int
	window    time.Time
	neighbour bool
}

func (h homeCopy) better(o homeCopy) bool {
	if h.rank != o.rank {
		return h.rank < o.rank
	}
	return h.window.Before(o.window)
}

// eventUID reads the Event's uid out of an event observation id: event/<uid>/<resourceVersion>.
func eventUID(id string) string {
	parts := strings.Split(id, "/")
	if len(parts) == 3 && parts[0] == "event" {
		return parts[1]
	}
	return ""
}

// mergeObjectSpan combines two copies of one object span (same span id).
func mergeObjectSpan(dst, src *archive.Span) {
	if src.StartTime.Before(dst.StartTime) {
		dst.StartTime = src.StartTime
	}
	if src.EndTime.After(dst.EndTime) {
		dst.EndTime = src.EndTime
	}
	if dst.ObjectKind == "" {
		dst.ObjectKind = src.ObjectKind
	}
	// A copy that knows the parent beats one that does not; between two that know, the smaller
	// span id wins, so the answer does not depend on arrival order.
	if src.ParentSpanID != "" && (dst.ParentSpanID == "" || src.ParentSpanID < dst.ParentSpanID) {
		dst.ParentSpanID, dst.ParentRelation, dst.ParentCluster = src.ParentSpanID, src.ParentRelation, src.ParentCluster
		dst.ParentAPIGroup, dst.ParentResource, dst.ParentNamespace = src.ParentAPIGroup, src.ParentResource, src.ParentNamespace
		dst.ParentKind, dst.ParentName, dst.ParentUID = src.ParentKind, src.ParentName, src.ParentUID
	}
	dst.Links = uniqueLinks(append(dst.Links, src.Links...))
}

// uniqueLinks sorts links and drops repeats of one relation to one span.
func uniqueLinks(ls []archive.Link) []archive.Link {
	if len(ls) < 2 {
		return ls
	}
	slices.SortFunc(ls, func(a, b archive.Link) int {
		return cmp.Or(cmp.Compare(a.Relation, b.Relation), cmp.Compare(a.SpanID, b.SpanID), cmp.Compare(a.UID, b.UID))
	})
	return slices.CompactFunc(ls, func(a, b archive.Link) bool { return a.Relation == b.Relation && a.SpanID == b.SpanID })
}

// timePrecision ranks time sources, most precise first.
var timePrecision = map[string]int{"audit": 0, "observed": 1, "eventTime": 2, "managedFields": 3, "creationTimestamp": 3, "deletionTimestamp": 3, "firstTimestamp": 4, "lastTimestamp": 5}

func rank(src string) int {
	if r, ok := timePrecision[src]; ok {
		return r
	}
	return 9
}

// mergeObservation combines two copies of one fact: the most precise time with the write that
// goes with it, and the diff against the nearest previous revision.
func mergeObservation(dst, src *archive.Span) {
	if dst.Kind == archive.KindChange {
		// A writer that saw this revision first, without the one before, guessed "create" or
		// "observe" and timed it by the object's metadata; a copy whose writer knew the revision
		// before knows it was an update: the guess yields, and the audit join is redone over the
		// partition (relinkAudits).
		switch {
		case firstSightingGuess(dst) && knewPrevious(src):
			yieldGuess(dst, src)
		case firstSightingGuess(src) && knewPrevious(dst):
			yieldGuess(src, dst)
		}
	}
	deleted := dst.Kind == archive.KindChange && (dst.Verb == "delete" || src.Verb == "delete")
	if r, d := rank(src.TimeSource), rank(dst.TimeSource); r < d || (r == d && src.StartTime.Before(dst.StartTime)) {
		dst.StartTime, dst.EndTime, dst.TimeSource = src.StartTime, src.EndTime, src.TimeSource
		if src.AuditID != "" {
			dst.AuditID, dst.User, dst.UserAgent, dst.StatusCode, dst.Subresource, dst.Verb = src.AuditID, src.User, src.UserAgent, src.StatusCode, src.Subresource, src.Verb
		}
	}
	if dst.AuditID == "" {
		dst.AuditID = src.AuditID
	}
	if deleted {
		dst.Verb = "delete" // a watch saw the object go: that is a fact, not a guess
	}
	if dst.Kind == archive.KindChange && src.PrevResourceVersion != "" &&
		(dst.PrevResourceVersion == "" || RVLess(dst.PrevResourceVersion, src.PrevResourceVersion) ||
			(dst.PrevResourceVersion == src.PrevResourceVersion && len(src.Changes) > len(dst.Changes))) {
		dst.PrevResourceVersion, dst.Changes = src.PrevResourceVersion, src.Changes
	}
	if dst.UID == "" {
		dst.UID = src.UID
	}
	if dst.ResourceVersion == "" {
		dst.ResourceVersion = src.ResourceVersion
	}
	dst.NoOp = dst.NoOp || src.NoOp
}

func firstSightingGuess(s *archive.Span) bool {
	return (s.Verb == "create" || s.Verb == "observe") && s.PrevResourceVersion == "" && s.AuditLink == ""
}

func knewPrevious(s *archive.Span) bool { return s.PrevResourceVersion != "" }

// yieldGuess makes a first-sighting guess take the knowing copy's verb and times.
func yieldGuess(guess, knowing *archive.Span) {
	guess.StartTime, guess.EndTime, guess.TimeSource = knowing.StartTime, knowing.EndTime, knowing.TimeSource
	guess.RevisionTime, guess.RevisionTimeSource = knowing.RevisionTime, knowing.RevisionTimeSource
	if knowing.AuditLink == "" {
		// The guess's audit id came with its body; the join is made again by resourceVersion.
		guess.Verb = changeClass(knowing.Verb)
		guess.AuditID, guess.User, guess.UserAgent, guess.StatusCode, guess.Subresource = "", "", "", 0, ""
		return
	}
	// The knowing copy is joined to its write (its times are the write's): the guess takes the
	// join whole. Taking the times alone left a change timed by an audit record without its user,
	// which the partition's join then took as joined already.
	guess.Verb, guess.AuditLink = knowing.Verb, knowing.AuditLink
	guess.AuditID, guess.User, guess.UserAgent, guess.StatusCode, guess.Subresource = knowing.AuditID, knowing.User, knowing.UserAgent, knowing.StatusCode, knowing.Subresource
}

// resolveUIDs gives rows that name an object without its uid (a Metadata-level audit record, a
// link by name) the uid another writer knew, by lifetime as the linker does (each row by its own
// time: the records of a name re-created within the part go to their own objects), and moves
// uid-less object spans to the object's own, so the tree is the same whoever wrote which half.
// Rows whose uid differs from their span's are moved by rehome.
func resolveUIDs(objects map[string]*archive.Span, obs map[string]*archive.Span) {
	l := lifetimes{}
	for _, s := range objects {
		if s.UID != "" {
			l.add(spanObject(s), s.StartTime, "")
		}
	}
	l.sort()
	ids := make([]string, 0, len(obs))
	for id, o := range obs {
		if o.UID != "" && o.Kind == archive.KindAudit && o.Verb == "create" && o.Subresource == "" && o.StatusCode >= 200 && o.StatusCode < 300 {
			l.bornBy(spanObject(o), o.StartTime)
		}
		if o.UID == "" && o.Name != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	l.resolve(len(ids), func(i int) (ObjectKey, string, time.Time, time.Time, string) {
		o := obs[ids[i]]
		verb := o.Verb
		if o.Kind != archive.KindAudit || o.Subresource != "" || o.StatusCode < 200 || o.StatusCode >= 300 {
			verb = ""
		}
		return spanObject(o), verb, o.StartTime, o.EndTime, ids[i]
	}, func(i int, uid string) { obs[ids[i]].UID = uid })

	// A uid-less span goes to the object its earliest row went to (by its own start without rows).
	first := map[string]*archive.Span{}
	for _, o := range obs {
		if f := first[o.ParentSpanID]; o.UID != "" && (f == nil || o.StartTime.Before(f.StartTime) || (o.StartTime.Equal(f.StartTime) && o.SpanID < f.SpanID)) {
			first[o.ParentSpanID] = o
		}
	}
	remap := map[string]string{}
	for id, s := range objects {
		if s.UID != "" || s.Name == "" {
			continue
		}
		k := spanObject(s)
		if f := first[id]; f != nil && f.Name == s.Name && f.Resource == s.Resource {
			k.UID = f.UID
		} else {
			k.UID = l.alive(k, s.StartTime)
		}
		if k.UID == "" {
			continue
		}
		newID := ObjectSpanID(k, s.WindowStart)
		remap[id] = newID
		moved := *s
		moved.UID, moved.SpanID = k.UID, newID
		if cur, ok := objects[newID]; ok {
			mergeObjectSpan(cur, &moved)
		} else {
			objects[newID] = &moved
		}
		delete(objects, id)
	}
	if len(remap) == 0 {
		return
	}
	for _, o := range obs {
		if to, ok := remap[o.ParentSpanID]; ok {
			o.ParentSpanID = to
			if o.UID == "" {
				o.UID = objects[to].UID
			}
		}
	}
	for _, s := range objects {
		if to, ok := remap[s.ParentSpanID]; ok {
			s.ParentSpanID, s.ParentUID = to, objects[to].UID
		}
		for i := range s.Links {
			if to, ok := remap[s.Links[i].SpanID]; ok {
				s.Links[i].SpanID, s.Links[i].UID = to, objects[to].UID
			}
		}
		s.Links = uniqueLinks(s.Links)
	}
}

// spanObject is the object a row is about.
func spanObject(s *archive.Span) ObjectKey {
	return ObjectKey{Cluster: s.Cluster, Group: s.APIGroup, Resource: s.Resource, Namespace: s.Namespace, Name: s.Name, UID: s.UID}
}

// relinkAudits runs the linker's audit ↔ change join over merged rows, so halves that different
// writers saw are joined exactly as one writer would have joined them.
func relinkAudits(rows map[string]*archive.Span) {
	ids := make([]string, 0, len(rows))
	for id, r := range rows {
		if r.Kind == archive.KindAudit || r.Kind == archive.KindChange {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	// Joins by fit depend on which records were in the batch; undo them and join again over the
	// whole partition. Joins by resourceVersion are exact and stay.
	for _, id := range ids {
		r := rows[id]
		if r.AuditLink != LinkByFit && r.AuditLink != LinkByGeneratedName {
			continue
		}
		switch r.Kind {
		case archive.KindAudit:
			r.ResourceVersion = ""
			if r.AuditLink == LinkByGeneratedName {
				r.Name, r.UID = "", "" // the record named no object; the join is made again
			}
		case archive.KindChange:
			r.StartTime, r.EndTime, r.TimeSource = r.RevisionTime, r.RevisionTime, r.RevisionTimeSource
			r.AuditID, r.User, r.UserAgent, r.StatusCode, r.Subresource = "", "", "", 0, ""
			r.Verb = changeClass(r.Verb) // a linked update or patch was an update
		}
		r.AuditLink = ""
	}
	obs := make([]Observation, len(ids))
	for i, id := range ids {
		r := rows[id]
		if r.Kind == archive.KindAudit {
			// Whether a write changed nothing depends on which revisions a writer saw: derived
			// again over the partition.
			r.NoOp = false
		}
		o := Observation{
			Source: Source(r.Kind), Object: ObjectKey{Cluster: r.Cluster, Group: r.APIGroup, Resource: r.Resource, Namespace: r.Namespace, Name: r.Name, UID: r.UID},
			Time: r.StartTime, EndTime: r.EndTime, TimeSource: r.TimeSource, ID: r.ObservationID,
			AuditID: r.AuditID, Verb: r.Verb, Subresource: r.Subresource, User: r.User, UserAgent: r.UserAgent, StatusCode: r.StatusCode,
			ResourceVersion: r.ResourceVersion, PrevResourceVersion: r.PrevResourceVersion, Manager: r.FieldManager, NoOp: r.NoOp,
			AuditLink: r.AuditLink, RevisionTime: r.RevisionTime, RevisionTimeSource: r.RevisionTimeSource,
		}
		for _, c := range r.Changes {
			if c.Path == "spec.nodeName" { // what a binding's join looks for (verbFits)
				o.Changes = append(o.Changes, FieldChange{Path: c.Path, Old: c.Old, New: c.New})
			}
		}
		if r.Kind == archive.KindChange && (r.RevisionTimeSource == "managedFields" || r.RevisionTimeSource == "creationTimestamp") {
			o.ManagerTime = r.RevisionTime // the change's own write time (managedFields, seconds)
		}
		obs[i] = o
	}
	var st Stats
	linkAudits(obs, &st)
	for i, id := range ids {
		r, o := rows[id], &obs[i]
		r.StartTime, r.EndTime, r.TimeSource = o.Time, o.EndTime, o.TimeSource
		r.AuditID, r.User, r.UserAgent, r.StatusCode, r.Subresource, r.Verb = o.AuditID, o.User, o.UserAgent, o.StatusCode, o.Subresource, o.Verb
		r.ResourceVersion, r.Name, r.UID, r.NoOp, r.AuditLink = o.ResourceVersion, o.Object.Name, o.Object.UID, o.NoOp, o.AuditLink
	}
}

// rehome moves observation rows whose object the joins changed (a generateName create that now
// names the object it created, or no longer does) under their object's span in their window,
// making that span from the row where the partition has none, and drops the nameless and
// uid-less spans left with nothing: what one writer that saw every row would have written.
func rehome(objects, obs map[string]*archive.Span) {
	vacated := map[string]bool{}
	for _, o := range obs {
		parent := objects[o.ParentSpanID]
		if parent == nil || (parent.Name == o.Name && parent.UID == o.UID && parent.Resource == o.Resource) {
			continue
		}
		k := ObjectKey{Cluster: o.Cluster, Group: o.APIGroup, Resource: o.Resource, Namespace: o.Namespace, Name: o.Name, UID: o.UID}
		id := ObjectSpanID(k, o.WindowStart)
		if objects[id] == nil {
			objects[id] = &archive.Span{
				Kind: archive.KindObject, SpanID: id,
				Cluster: k.Cluster, APIGroup: k.Group, Resource: k.Resource, Namespace: k.Namespace,
				Name: k.Name, UID: k.UID, ObjectKind: o.ObjectKind,
				WindowStart: o.WindowStart, StartTime: o.StartTime, EndTime: o.EndTime,
			}
		}
		vacated[o.ParentSpanID] = true
		o.ParentSpanID = id
	}
	if len(vacated) == 0 {
		return
	}
	for _, o := range obs {
		delete(vacated, o.ParentSpanID)
	}
	for _, s := range objects {
		delete(vacated, s.ParentSpanID)
	}
	for id := range vacated {
		if s := objects[id]; s.Name == "" || s.UID == "" {
			delete(objects, id)
		}
	}
}
