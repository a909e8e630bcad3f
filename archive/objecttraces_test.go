package archive

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// TestDecodeObjectTraces: each row's object_hash and trace id as written, in the layouts an
// index may have: several pages and row groups, trace_id dictionary-encoded (as EncodeIndex
// writes it since 2026-12-03) or plain, and an index of schema version 1 (ErrNoColumn).
func TestDecodeObjectTraces(t *testing.T) {
	rows := randomIndexRows(30_000, 7)
	for i := range rows {
		rows[i].TraceID = fmt.Sprintf("trace-%d", i%997) // a tree's objects share their trace
	}
	type plainTrace struct {
		TraceID    string `parquet:"trace_id"`
		ObjectHash int64  `parquet:"object_hash"`
	}
	var plainRows []plainTrace
	for _, r := range rows {
		plainRows = append(plainRows, plainTrace{r.TraceID, r.ObjectHash})
	}
	plain := encodeWith(t, plainRows, parquet.PageBufferSize(4096), parquet.MaxRowsPerRowGroup(7000))
	written, err := EncodeIndex(rows)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"EncodeIndex": written,
		"row groups":  encodeWith(t, rows, parquet.PageBufferSize(8192), parquet.MaxRowsPerRowGroup(7000)),
		"plain":       plain,
	} {
		got, err := DecodeObjectTraces(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.Hashes) != len(rows) || len(got.Traces) != len(rows) || len(got.TraceIDs) != 997 {
			t.Fatalf("%s: %d hashes, %d traces, %d trace ids; wrote %d rows of 997 traces", name, len(got.Hashes), len(got.Traces), len(got.TraceIDs), len(rows))
		}
		for i, r := range rows {
			if got.Hashes[i] != r.ObjectHash || got.TraceIDs[got.Traces[i]] != r.TraceID {
				t.Fatalf("%s: row %d: %x %q, wrote %x %q", name, i, got.Hashes[i], got.TraceIDs[got.Traces[i]], r.ObjectHash, r.TraceID)
			}
		}
		if ts := got.TracesOf(rows[5].ObjectHash, -1); len(ts) != 1 || !ts[rows[5].TraceID] {
			t.Errorf("%s: TracesOf(row 5) = %v, want %s", name, ts, rows[5].TraceID)
		}
		if ts := got.TracesOf(rows[5].ObjectHash&^0xff|0x5a, ^int64(0xff)); len(ts) != 1 || !ts[rows[5].TraceID] {
			t.Errorf("%s: TracesOf(row 5's first 48 bits) = %v, want %s", name, ts, rows[5].TraceID)
		}
	}
	v1 := encodeWith(t, []struct {
		TraceID string `parquet:"trace_id"`
	}{})
	if _, err := DecodeObjectTraces(v1); !errors.Is(err, ErrNoColumn) {
		t.Errorf("version 1 index: %v, want ErrNoColumn", err)
	}
}

func FuzzDecodeObjectTraces(f *testing.F) {
	addIndexSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeObjectTraces(data)
		if err == nil && (len(got.Hashes) != len(got.Traces) || len(got.Hashes) > len(data)) {
			t.Fatalf("%d hashes, %d traces from %d bytes", len(got.Hashes), len(got.Traces), len(data))
		}
		if err == nil {
			for _, n := range got.Traces {
				if n < 0 || int(n) >= len(got.TraceIDs) {
					t.Fatalf("trace number %d of %d", n, len(got.TraceIDs))
				}
			}
		}
	})
}

// TestIndexRowRanges: a merged partition's index says where each trace's rows lie in the merged
// part, exactly the rows with that trace_id (found here by reading the part whole), except for a
// trace one of whose rows is outside its objects' rows (an Event on an object with no object
// span in the window): RowsOf says it does not know.
func TestIndexRowRanges(t *testing.T) {
	ctx := context.Background()
	local, _ := OpenLocal(t.TempDir())
	w := time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)
	var rows []Span
	for d := range 40 {
		trace := fmt.Sprintf("trace-%02d", d)
		for o := range 1 + d%4 { // the Deployment, then pods
			name, resource := fmt.Sprintf("web-%02d", d), "deployments"
			if o > 0 {
				name, resource = fmt.Sprintf("web-%02d-%d", d, o), "pods"
			}
			uid := name + "-uid"
			rows = append(rows, Span{Kind: KindObject, TraceID: trace, SpanID: "o-" + uid, Cluster: "c", Resource: resource, Namespace: "ns", Name: name, UID: uid, WindowStart: w, StartTime: w})
			for k := range (d*7+o)%9 + 1 {
				rows = append(rows, Span{Kind: KindChange, TraceID: trace, SpanID: fmt.Sprintf("c-%s-%d", uid, k), Cluster: "c", Resource: resource, Namespace: "ns", Name: name, UID: uid,
					WindowStart: w, StartTime: w.Add(time.Duration(k) * time.Second), ObservationID: fmt.Sprintf("obs-%s-%d", uid, k)})
			}
		}
	}
	orphanTrace := "trace-07"
	rows = append(rows, Span{Kind: KindEvent, TraceID: orphanTrace, SpanID: "e-orphan", Cluster: "c", Resource: "pods", Namespace: "ns", Name: "web-07-gone", UID: "gone",
		WindowStart: w, StartTime: w, ObservationID: "event/gone"})
	if _, err := WriteParts(ctx, local, "a", slices.Clone(rows)); err != nil {
		t.Fatal(err)
	}
	pps, _ := ListPartitions(ctx, local)
	res, err := MergePartition(ctx, local, pps[0], func(r []Span) []Span { return r })
	if err != nil {
		t.Fatal(err)
	}
	part, err := ReadPart(ctx, local, res.Key)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ReadAll(ctx, local, IndexKey(pps[0].Partition))
	if err != nil {
		t.Fatal(err)
	}
	ot, err := DecodeObjectTraces(data)
	if err != nil {
		t.Fatal(err)
	}
	if ot.Part != path.Base(res.Key) {
		t.Fatalf("index names part %q, merged %q", ot.Part, path.Base(res.Key))
	}
	for d := range 40 {
		trace := fmt.Sprintf("trace-%02d", d)
		got, ok := ot.RowsOf(map[string]bool{trace: true})
		if trace == orphanTrace {
			if ok {
				t.Errorf("%s: ranges %v, though a row of it is outside its objects", trace, got)
			}
			continue
		}
		// One range an object: its run of rows in the part.
		var want []RowRange
		for i := range part {
			r := &part[i]
			if r.TraceID != trace {
				continue
			}
			if k := len(want) - 1; k >= 0 && want[k].End == int64(i) && part[i-1].UID == r.UID && part[i-1].Name == r.Name && part[i-1].Resource == r.Resource {
				want[k].End++
			} else {
				want = append(want, RowRange{Start: int64(i), End: int64(i) + 1, Trace: trace,
					Object: ObjectHash(r.Cluster, r.APIGroup, r.Resource, r.Namespace, r.Name, r.UID)})
			}
		}
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%s: RowsOf = %v %v, the part's rows of it are %v", trace, got, ok, want)
		}
	}
	// Ranges that overlap describe no part.
	bad := &ObjectTraces{Hashes: []int64{1, 2}, Traces: []int32{0, 0}, TraceIDs: []string{"t"}, Part: "p", PartRow: []int64{0, 3}, PartRows: []int32{4, 2}}
	if rs, ok := bad.RowsOf(map[string]bool{"t": true}); ok {
		t.Errorf("overlapping ranges: %v", rs)
	}
	// An unmerged index (EncodeIndex) names no part.
	plain, err := EncodeIndex(BuildIndex(part))
	if err != nil {
		t.Fatal(err)
	}
	if ot, err := DecodeObjectTraces(plain); err != nil || ot.Part != "" {
		t.Errorf("an index with no part: %q, %v", ot.Part, err)
	}
	if _, ok := ot.RowsOf(map[string]bool{"trace-01": true}); !ok {
		t.Errorf("RowsOf(trace-01) not known")
	}
}
