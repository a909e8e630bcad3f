package serve

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// timedSpan is an observation span with what its display time is derived from.
type timedSpan struct {
	s       *Span
	object  *Span
	cluster string
	rv      uint64 // etcd's revision: global and monotonic in a cluster
	hasRV   bool
	source  string // the row's time_source
	raw     time.Time
}

func newTimedSpan(s *Span, r *archive.Span, object *Span) timedSpan {
	rv, err := strconv.ParseUint(r.ResourceVersion, 10, 64)
	return timedSpan{s: s, object: object, cluster: r.Cluster, rv: rv, hasRV: err == nil && rv > 0, source: r.TimeSource, raw: s.Start}
}

// anchor says whether the time is the apiserver's (or the reporter's) own, to the µs: such a
// time is shown as it is and orders what follows it. "observed" (when a collector saw the
// change) is µs too but only bounds the fact from above, so it is shown as it is and orders
// nothing; the rest (managedFields, creation/deletion/first/lastTimestamp) are whole seconds.
func (x *timedSpan) anchor() bool {
	switch x.source {
	case "audit", "eventTime", "":
		return true
	}
	return false
}

func (x *timedSpan) whole() bool { return !x.anchor() && x.source != "observed" }

// displayTimes derives the display time of every observation (docs/query-server.md, Display
// rules). A linked change already has its audit's time. In each cluster, observations are taken
// in resourceVersion order: an anchor keeps its time; a whole-second one is shown at its raw
// second or, where something of a lower resourceVersion is shown later, 1 µs after that, so
// an effect never precedes its cause and resourceVersion order holds (within [raw, raw+1 s) as
// long as the causes lie in that second). A whole-second observation without a resourceVersion
// is put no earlier than its object's first observation. Ends move with their starts.
func displayTimes(ts []timedSpan) {
	order := make([]int, 0, len(ts))
	for i := range ts {
		if ts[i].hasRV {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := &ts[a], &ts[b]
		return cmp.Or(cmp.Compare(x.cluster, y.cluster), cmp.Compare(x.rv, y.rv), cmpBool(!x.anchor(), !y.anchor()),
			x.raw.Compare(y.raw), cmp.Compare(x.s.ID, y.s.ID))
	})
	first := map[*Span]time.Time{} // an object's first observation in resourceVersion order, shown
	var floor time.Time
	for n, i := range order {
		x := &ts[i]
		if n == 0 || x.cluster != ts[order[n-1]].cluster {
			floor = time.Time{}
		}
		d := x.raw
		if x.whole() && !floor.IsZero() && !d.After(floor) {
			d = floor.Add(time.Microsecond)
		}
		x.place(d)
		if x.source != "observed" {
			floor = maxTime(floor, d)
		}
		if _, ok := first[x.object]; !ok {
			first[x.object] = d
		}
	}
	for i := range ts {
		x := &ts[i]
		if c, ok := first[x.object]; !x.hasRV && x.whole() && ok && !x.raw.After(c) {
			x.place(c.Add(time.Microsecond))
		}
	}
}

// place shows x at d; a moved span says where it was (tag raw_start_time).
func (x *timedSpan) place(d time.Time) {
	if d.Equal(x.raw) {
		return
	}
	shift := d.Sub(x.raw)
	x.s.Start, x.s.End = d, maxTime(x.s.End.Add(shift), d)
	x.s.Tags = append(x.s.Tags, Tag{"raw_start_time", x.raw.UTC().Format(time.RFC3339Nano)})
}

// objectExtents sets each object span's start and end from its own observations' display times,
// then widens every owner to cover its descendants, so no child starts before or ends after its
// parent (Jaeger's clock-skew warning). An object with no observation in range takes its
// children's extent; one with neither keeps the archive's times.
func objectExtents(objects map[ObjectKey]*Span, obs []*Span) {
	byID := make(map[string]*Span, len(objects))
	archived := make(map[*Span][2]time.Time, len(objects))
	for _, o := range objects {
		byID[o.ID] = o
		archived[o] = [2]time.Time{o.Start, o.End}
		o.Start, o.End = time.Time{}, time.Time{}
	}
	for _, s := range obs {
		if o := byID[s.Parent]; o != nil {
			o.Start, o.End = minTime(o.Start, s.Start), maxTime(o.End, maxTime(s.End, s.Start))
		}
	}
	depth := make(map[*Span]int, len(objects))
	var depthOf func(o *Span) int
	depthOf = func(o *Span) int {
		if d, ok := depth[o]; ok {
			return d
		}
		depth[o] = 0 // parents are acyclic (assemble); this only guards the recursion
		if p := byID[o.Parent]; p != nil {
			depth[o] = depthOf(p) + 1
		}
		return depth[o]
	}
	deepestFirst := make([]*Span, 0, len(objects))
	for _, o := range objects {
		depthOf(o)
		deepestFirst = append(deepestFirst, o)
	}
	slices.SortFunc(deepestFirst, func(a, b *Span) int { return cmp.Or(depth[b]-depth[a], cmp.Compare(a.ID, b.ID)) })
	for _, o := range deepestFirst {
		if o.Start.IsZero() {
			o.Start, o.End = archived[o][0], archived[o][1]
		}
		if p := byID[o.Parent]; p != nil {
			p.Start, p.End = minTime(p.Start, o.Start), maxTime(p.End, maxTime(o.End, o.Start))
		}
	}
}
