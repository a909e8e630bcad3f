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
	for k, v := range tags {
		c := tagColumns[k]
		eq := func(s []byte) bool { return string(s) == v }
		if c == archive.IndexKind {
			eq = func(s []byte) bool { return strings.EqualFold(string(s), v) }
		}
		accept, any := t.accepted(eq)
		if !any {
			return nil // in none of the partition's objects
		}
		wants = append(wants, want{column: c, accept: accept})
	}
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
		if t.Times[archive.IndexLastSeen][i] < start || t.Times[archive.IndexFirstSeen][i] >= end || (roots && !t.Root[i]) {
			continue
		}
		for _, w := range wants {
			if !w.accept[t.Strings[w.column][i]] {
				continue rows
			}
		}
		out = append(out, i)
	}
	return out
}
