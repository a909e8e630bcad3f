package serve

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// The string columns of an objectTable, in ObjectKey order, then the kind.
const (
	colCluster = iota
	colGroup
	colResource
	colNamespace
	colName
	colUID
	colKind
	stringColumns
)

// The time columns of an objectTable.
const (
	timeWindow = iota
	timeFirstSeen
	timeLastSeen
	timeCreated
	timeDeleted
	timeColumns
)

// noTime stands for a zero time.Time in a time column.
const noTime = math.MinInt64

// objectTable is what a search reads of a partition's objects, kept between searches, and
// (embedded) what finding a trace in the partition needs: columns of string numbers and times,
// the strings in one buffer. About 154 bytes an object where a decoded index row takes ~400
// (strings allocated one by one, times of 24 bytes): a day of 3 clusters (144 partitions, 2 M
// objects) fits the default cache, where whole index rows did not and every search decoded
// every index again (2.3–2.5 s a search by name).
type objectTable struct {
	archive.ObjectTraces
	text    []byte   // the strings, concatenated: once each, but names and uids once a row
	ends    []uint32 // string i is text[ends[i-1]:ends[i]]
	strings [stringColumns][]uint32
	times   [timeColumns][]int64 // Unix nanoseconds, or noTime
	root    []bool               // owned by nothing: what a search without tags finds
}

func newObjectTable(rows []archive.IndexRow) *objectTable {
	t := &objectTable{ObjectTraces: *archive.NewObjectTraces(rows), root: make([]bool, len(rows))}
	for c := range t.strings {
		t.strings[c] = make([]uint32, len(rows))
	}
	for c := range t.times {
		t.times[c] = make([]int64, len(rows))
	}
	add := func(s string) uint32 {
		t.text = append(t.text, s...)
		t.ends = append(t.ends, uint32(len(t.text)))
		return uint32(len(t.ends) - 1)
	}
	numbers := map[string]uint32{}
	number := func(s string) uint32 {
		n, ok := numbers[s]
		if !ok {
			n = add(s)
			numbers[s] = n
		}
		return n
	}
	nanos := func(v time.Time) int64 {
		if v.IsZero() {
			return noTime
		}
		return v.UnixNano()
	}
	for i := range rows {
		o := &rows[i]
		for c, s := range [stringColumns]string{o.Cluster, o.APIGroup, o.Resource, o.Namespace, o.Name, o.UID, o.ObjectKind} {
			if c == colName || c == colUID {
				t.strings[c][i] = add(s) // nearly one an object: not worth a lookup
			} else {
				t.strings[c][i] = number(s)
			}
		}
		for c, v := range [timeColumns]time.Time{o.WindowStart, o.FirstSeen, o.LastSeen, o.CreatedAt, o.DeletedAt} {
			t.times[c][i] = nanos(v)
		}
		t.root[i] = o.ParentUID == "" && o.TraceID != "" && o.SpanID != ""
		if o.ObjectHash == 0 {
			// Rows of a version 1 index have no object_hash; a true hash of 0 computes to 0 again.
			t.Hashes[i] = indexKey(o).Hash().value()
		}
	}
	t.text = slices.Clip(t.text)
	return t
}

func (t *objectTable) len() int { return len(t.root) }

// bytes is about the memory the table holds.
func (t *objectTable) bytes() int64 {
	n := len(t.text) + 4*len(t.ends) + (8+4+1+4*stringColumns+8*timeColumns)*t.len()
	for _, id := range t.TraceIDs {
		n += 16 + len(id)
	}
	return int64(n)
}

// str is string number n.
func (t *objectTable) str(n uint32) []byte {
	start := uint32(0)
	if n > 0 {
		start = t.ends[n-1]
	}
	return t.text[start:t.ends[n]]
}

// accepted says, by string number, which strings match accepts, and whether any does.
func (t *objectTable) accepted(match func(s []byte) bool) (accept []bool, any bool) {
	accept = make([]bool, len(t.ends))
	for n := range t.ends {
		accept[n] = match(t.str(uint32(n)))
		any = any || accept[n]
	}
	return accept, any
}

// nanoTime is the time a time column holds as v.
func nanoTime(v int64) time.Time {
	if v == noTime {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (t *objectTable) key(i int) ObjectKey {
	s := func(c int) string { return string(t.str(t.strings[c][i])) }
	return ObjectKey{Cluster: s(colCluster), Group: s(colGroup), Resource: s(colResource), Namespace: s(colNamespace), Name: s(colName), UID: s(colUID)}
}

// tagColumns are the string columns the search tags name.
var tagColumns = map[string]int{
	"cluster": colCluster, "group": colGroup, "resource": colResource, "namespace": colNamespace,
	"name": colName, "uid": colUID, "kind": colKind,
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
		if c == colKind {
			eq = func(s []byte) bool { return strings.EqualFold(string(s), v) }
		}
		accept, any := t.accepted(eq)
		if !any {
			return nil // in none of the partition's objects
		}
		wants = append(wants, want{column: c, accept: accept})
	}
	start, end := int64(noTime), int64(math.MaxInt64)
	if !q.Start.IsZero() {
		start = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		end = q.End.UnixNano()
	}
	roots := len(q.Tags) == 0
	var out []int
rows:
	for i := range t.len() {
		if t.times[timeLastSeen][i] < start || t.times[timeFirstSeen][i] >= end || (roots && !t.root[i]) {
			continue
		}
		for _, w := range wants {
			if !w.accept[t.strings[w.column][i]] {
				continue rows
			}
		}
		out = append(out, i)
	}
	return out
}
