package serve

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kairn-dev/kairn/archive"
)

// rangeStore is an in-memory Store with ranged reads (like S3) that counts the bytes read.
type rangeStore struct {
	archive.Store
	mu     sync.Mutex
	data   map[string][]byte
	bytes  int64
	ranges int
}

func (s *rangeStore) GetRange(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.data[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, archive.ErrNotExist)
	}
	if n < 0 {
		n = int64(len(d)) - off
	}
	if off+n > int64(len(d)) {
		return nil, fmt.Errorf("range [%d, %d) past %d", off, off+n, len(d))
	}
	s.bytes += n
	s.ranges++
	return io.NopCloser(bytes.NewReader(d[off : off+n])), nil
}

func (s *rangeStore) Size(_ context.Context, key string) (int64, error) {
	return int64(len(s.data[key])), nil
}

// randomRows makes rows of many objects in several traces, with lists, NULLs and every column
// type, sorted the way parts are.
func randomRows(n, block int) []archive.Span {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []archive.Span
	w := t0
	for i := 0; len(rows) < n; i++ {
		k := ObjectKey{Cluster: "c", Resource: "pods", Namespace: "ns", Name: fmt.Sprintf("o-%04d", i), UID: fmt.Sprintf("u-%d", i)}
		if i%3 == 0 {
			k.Group, k.Namespace = "apps", ""
		}
		trace := fmt.Sprintf("trace-%d", (i/block)%7) // trees are runs of objects
		o := objectRow(k, "Pod", "", w, trace)
		if rng.IntN(2) == 0 {
			o.ParentSpanID, o.ParentRelation, o.ParentName, o.ParentUID = "p"+o.SpanID, "owner", "owner", "u-owner"
		}
		for j := range rng.IntN(3) {
			o.Links = append(o.Links, archive.Link{Relation: "node", Cluster: "c", Resource: "nodes", Name: fmt.Sprintf("n%d", j), SpanID: fmt.Sprintf("s%d", j), APIGroup: []string{"", "x"}[j%2]})
		}
		rows = append(rows, o)
		for j := range rng.IntN(40) {
			at := w.Add(time.Duration(j) * time.Second)
			s := archive.Span{Kind: []string{"audit", "event", "change"}[j%3], TraceID: trace, SpanID: fmt.Sprintf("%x-%d", i, j), ParentSpanID: o.SpanID,
				Cluster: k.Cluster, APIGroup: k.Group, Resource: k.Resource, Namespace: k.Namespace, Name: k.Name, UID: k.UID,
				WindowStart: w, StartTime: at, EndTime: at.Add(time.Millisecond), ObservationID: fmt.Sprintf("obs/%d/%d", i, j),
				Verb: []string{"update", "patch", ""}[j%3], StatusCode: int32([]int{0, 200, 409}[rng.IntN(3)]), NoOp: rng.IntN(4) == 0,
				Message: []string{"", "a message"}[rng.IntN(2)], EventCount: int32(rng.IntN(3))}
			if rng.IntN(3) == 0 {
				s.RevisionTime, s.RevisionTimeSource = at.Add(-time.Second), "managedFields"
			}
			for c := range rng.IntN(4) {
				s.Changes = append(s.Changes, archive.FieldChange{Path: fmt.Sprintf("spec.f%d", c), Old: []string{"", `"x"`}[rng.IntN(2)], New: []string{"", `"y"`}[rng.IntN(2)]})
			}
			rows = append(rows, s)
		}
	}
	archive.SortSpans(rows)
	return rows
}

func encodeWith(t *testing.T, rows []archive.Span, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[archive.Span](&buf, append([]parquet.WriterOption{parquet.Compression(&zstd.Codec{})}, opts...)...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTraceRowsMatchesFullRead: the column decoder gives exactly the rows parquet-go's row
// reader gives, for one page per column, many small pages, many row groups, and big parts read
// by ranges; from a local directory, a ranged store and a store that can only Get.
func TestTraceRowsMatchesFullRead(t *testing.T) {
	ctx := context.Background()
	defer func(g int64) { mergeGap = g }(mergeGap)
	mergeGap = 0 // so the bytes read show what was skipped
	rows := randomRows(6000, 40)
	encoded, err := archive.EncodeParquet(rows)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]byte{
		"one-page":   encoded,
		"small-page": encodeWith(t, rows, parquet.PageBufferSize(2048)),
		"row-groups": encodeWith(t, rows, parquet.PageBufferSize(4096), parquet.MaxRowsPerRowGroup(700)),
		"big":        encodeWith(t, randomRows(100_000, 400), parquet.PageBufferSize(32<<10)),
	}
	dir := t.TempDir()
	local, err := archive.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	rs := &rangeStore{Store: local, data: map[string][]byte{}}
	for name, data := range parts {
		key := archive.PartKey("c", t0, "merged-"+name)
		if err := local.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		rs.data[key] = data
	}
	stores := map[string]archive.Store{"local": local, "ranged": rs, "get-only": &countingStore{Store: local}}
	for _, traces := range []map[string]bool{{"trace-1": true}, {"trace-0": true, "trace-3": true}, {"nope": true}} {
		for name, data := range parts {
			all, err := parquet.Read[archive.Span](bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			var want []archive.Span
			for _, r := range all {
				if traces[r.TraceID] {
					want = append(want, r)
				}
			}
			key := archive.PartKey("c", t0, "merged-"+name)
			for sname, store := range stores {
				r := NewReader(store, ReaderConfig{})
				for pass := range 2 { // the second with the footer cached
					rs.bytes, rs.ranges = 0, 0
					r.stats.misses.Store(0)
					got, err := r.decodeTraceRows(ctx, archive.ObjectInfo{Key: key, Size: int64(len(data)), Modified: t0}, traces, true)
					if err != nil {
						t.Fatalf("%s %s: %v", name, sname, err)
					}
					if len(got) != len(want) {
						t.Fatalf("%s %s %v: %d rows, want %d", name, sname, traces, len(got), len(want))
					}
					for i := range want {
						if !reflect.DeepEqual(normalize(got[i]), normalize(want[i])) {
							t.Fatalf("%s %s %v: row %d:\n got %+v\nwant %+v", name, sname, traces, i, got[i], want[i])
						}
					}
					if sname == "ranged" && name == "big" && pass == 1 {
						// Dictionary pages are read whole (here they are most of the bytes
						// left); data pages only where the trace's runs are.
						t.Logf("%s %v: %d of %d bytes in %d ranges, %d reads outside them", name, traces, rs.bytes, len(data), rs.ranges, r.stats.misses.Load())
						limit := int64(len(data)) * 3 / 4
						if len(want) == 0 {
							limit = int64(len(data)) / 50 // the trace_id column only
						}
						if (len(traces) == 1 && rs.bytes > limit) || r.stats.misses.Load() > 0 {
							t.Errorf("%s %v: read %d of %d bytes, %d reads outside the prefetched ranges", name, traces, rs.bytes, len(data), r.stats.misses.Load())
						}
					}
				}
			}
		}
	}
}

// normalize makes empty lists nil: parquet-go reads an empty list as an empty slice or nil
// depending on the page layout; both render alike.
func normalize(s archive.Span) archive.Span {
	if len(s.Links) == 0 {
		s.Links = nil
	}
	if len(s.Changes) == 0 {
		s.Changes = nil
	}
	return s
}
