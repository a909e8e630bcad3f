package serve

import (
	"math"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// objectTable is what a search reads of a partition's objects, kept between searches, and
// (embedded) what finding a trace in the partition needs: the partition's object index by
// column. A day of 3 clusters (144 partitions, 2 M objects) fits the default cache, where whole
// index rows did not and every search decoded every index again (2.3–2.5 s a search by name).
type objectTable struct{ archive.IndexTable }

func newObjectTable(rows []archive.IndexRow) *objectTable {
	return &objectTable{*archive.NewIndexTable(rows)}
}

// accepted says, by string number, which strings match accepts, and whether any does.
func (t *objectTable) accepted(match func(s []byte) bool) (accept []bool, any bool) {
	accept = make([]bool, len(t.Ends))
	for n := range t.Ends {
		accept[n] = match(t.Str(uint32(n)))
		any = any || accept[n]
	}
	return accept, any
}

// nanoTime is the time a time column holds as v.
func nanoTime(v int64) time.Time {
	if v == archive.NoTime {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (t *objectTable) key(i int) ObjectKey {
	s := func(c int) string { return string(t.Str(t.Strings[c][i])) }
	return ObjectKey{Cluster: s(archive.IndexCluster), Group: s(archive.IndexGroup), Resource: s(archive.IndexResource),
		Namespace: s(archive.IndexNamespace), Name: s(archive.IndexName), UID: s(archive.IndexUID)}
}

// tagColumns are the string columns the search tags name.
var tagColumns = map[string]int{
	"cluster": archive.IndexCluster, "group": archive.IndexGroup, "resource": archive.IndexResource,
	"namespace": archive.IndexNamespace, "name": archive.IndexName, "uid": archive.IndexUID, "kind": archive.IndexKind,
}

// match returns the rows of the objects q finds: seen in its time range, of its cluster, with
// its tags (the kind in any case), or roots when it has none.
func (t *objectTable) match(q Query) []int {
	type want struct {
		column int
		accept []bool // by string number
	}
	var wants []want
	tags := q.Tags
	if q.Cluster != "" {
		tags = map[string]string{"cluster": q.Cluster}
		for k, v := range q.Tags {
			if k == "cluster" && v != q.Cluster {
				return nil
			}
			tags[k] = v
		}
	}
	kindWanted := ""
	for k, v := range tags {
		c := tagColumns[k]
		eq := func(s []byte) bool { return string(s) == v }
		if c == archive.IndexKind {
			// Rows of archives older than kinds at ingest have none: their resource's built-in
			// kind is matched below.
			kindWanted = v
			eq = func(s []byte) bool { return len(s) == 0 || strings.EqualFold(string(s), v) }
		}
		accept, any := t.accepted(eq)
		if !any {
			return nil // in none of the partition's objects
		}
		wants = append(wants, want{column: c, accept: accept})
	}
	listed := t.listed()
	kindMatches := t.kindMatches(kindWanted)
	start, end := int64(archive.NoTime), int64(math.MaxInt64)
	if !q.Start.IsZero() {
		start = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		end = q.End.UnixNano()
	}
	roots := len(q.Tags) == 0
	var out []int
rows:
	for i := range t.Len() {
		if t.Times[archive.IndexLastSeen][i] < start || t.Times[archive.IndexFirstSeen][i] >= end || (roots && !t.Root[i]) || !listed(i) {
			continue
		}
		for _, w := range wants {
			if !w.accept[t.Strings[w.column][i]] {
				continue rows
			}
		}
		if kindWanted != "" && !kindMatches(i) {
			continue
		}
		out = append(out, i)
	}
	return out
}

// listed says, by row, whether the object is one search shows (listedObject), comparing string
// numbers: the strings are looked at once a partition.
func (t *objectTable) listed() func(i int) bool {
	events, _ := t.accepted(func(s []byte) bool { return string(s) == "events" })
	eventGroups, _ := t.accepted(func(s []byte) bool { return len(s) == 0 || string(s) == "events.k8s.io" })
	return func(i int) bool {
		name := t.Strings[archive.IndexName][i]
		return len(t.Str(name)) > 0 && !(events[t.Strings[archive.IndexResource][i]] && eventGroups[t.Strings[archive.IndexGroup][i]])
	}
}

// kindMatches says whether row i, whose kind string was accepted, is of kind (any case): its
// own kind, or where it has none, its resource's built-in kind.
func (t *objectTable) kindMatches(kind string) func(i int) bool {
	type gr struct{ group, resource uint32 }
	builtin := map[gr]bool{}
	return func(i int) bool {
		if len(t.Str(t.Strings[archive.IndexKind][i])) > 0 {
			return true
		}
		k := gr{t.Strings[archive.IndexGroup][i], t.Strings[archive.IndexResource][i]}
		ok, known := builtin[k]
		if !known {
			ok = strings.EqualFold(kindOf("", string(t.Str(k.group)), string(t.Str(k.resource))), kind)
			builtin[k] = ok
		}
		return ok
	}
}
