package serve

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/kairn-dev/kairn/archive"
)

func countKind(t *testing.T, tr *Trace, kind string) int {
	t.Helper()
	n := 0
	for _, s := range tr.Spans {
		if s.Kind == kind {
			n++
		}
	}
	return n
}

func lateEvent(w time.Time, i int) archive.Span {
	return archive.Span{Kind: "event", TraceID: "trace-dep", SpanID: fmt.Sprintf("f%015d", i), ParentSpanID: objectRow(ObjectKey{Cluster: "c", Resource: "pods", Namespace: "ns", Name: "web-1", UID: "u-pod"}, "Pod", "", w, "").SpanID,
		Cluster: "c", Resource: "pods", Namespace: "ns", Name: "web-1", UID: "u-pod", WindowStart: w, StartTime: w.Add(100 * time.Second), EndTime: w.Add(100 * time.Second), Reason: "Pulled"}
}

// TestReaderCacheSeesNewPartsWithinTTL: a part flushed into an open (unmerged) window, or late
// into a merged one, shows once the listing is older than ListTTL; before, the cached listing
// answers (no List per request).
func TestReaderCacheSeesNewPartsWithinTTL(t *testing.T) {
	ctx := context.Background()
	store, dep := testArchive(t, 2)
	w0, w1 := t0, t0.Add(30*time.Minute)
	// Window 0 merged, window 1 open.
	pp, err := archive.ListPartition(ctx, store, archive.Partition{Cluster: "c", Window: w0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.MergePartition(ctx, store, pp, keepRows); err != nil {
		t.Fatal(err)
	}
	const ttl = 300 * time.Millisecond
	r := NewReader(store, ReaderConfig{ListTTL: ttl})
	id := TraceID{Pipeline: DefaultPipeline, Object: dep.Hash(), Start: t0, End: t0.Add(time.Hour)}
	tr, err := r.Trace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := countKind(t, tr, "event"); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	// A late part in the merged window and a new part in the open one.
	for i, w := range []time.Time{w0, w1} {
		writer := []string{"ingest-late", "ingest"}[i]
		if _, err := archive.WriteParts(ctx, store, writer, []archive.Span{lateEvent(w, i)}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	tr, err = r.Trace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := countKind(t, tr, "event"); n != 2 && time.Since(start) < ttl {
		t.Errorf("within the TTL: %d events, want the cached 2", n)
	}
	time.Sleep(ttl)
	tr, err = r.Trace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n := countKind(t, tr, "event"); n != 4 {
		t.Errorf("after the TTL: %d events, want 4 (the late and the new one)", n)
	}
	// Without a TTL every request lists.
	r0 := NewReader(store, ReaderConfig{ListTTL: -1})
	if _, err := archive.WriteParts(ctx, store, "ingest-2", []archive.Span{lateEvent(w1, 7)}); err != nil {
		t.Fatal(err)
	}
	if tr, err = r0.Trace(ctx, id); err != nil || countKind(t, tr, "event") != 5 {
		t.Errorf("no TTL: %v, want 5 events", err)
	}
}

// TestReaderCacheInvalidatedByMerge: a merge that replaces a partition's parts (here changing
// what they say) is read after the TTL, never a cached index or cached rows of the old parts.
func TestReaderCacheInvalidatedByMerge(t *testing.T) {
	ctx := context.Background()
	store, dep := testArchive(t, 1)
	p := archive.Partition{Cluster: "c", Window: t0}
	merge := func(f func([]archive.Span) []archive.Span) {
		t.Helper()
		pp, err := archive.ListPartition(ctx, store, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := archive.MergePartition(ctx, store, pp, f); err != nil {
			t.Fatal(err)
		}
	}
	merge(keepRows)
	r := NewReader(store, ReaderConfig{ListTTL: time.Millisecond})
	id := TraceID{Pipeline: DefaultPipeline, Object: dep.Hash(), Start: t0, End: t0.Add(30 * time.Minute)}
	reason := func() string {
		t.Helper()
		tr, err := r.Trace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tr.Spans {
			if s.Kind == "event" {
				return s.Name
			}
		}
		return ""
	}
	if got := reason(); got != "event Pulling" {
		t.Fatalf("before: %q", got)
	}
	if r.partitions.len() == 0 || r.rowCache.len() == 0 || r.files.len() == 0 {
		t.Fatalf("nothing cached: %d partitions, %d row sets, %d footers", r.partitions.len(), r.rowCache.len(), r.files.len())
	}
	// A late part, then a merge that rewrites the event: a new merged part replaces the old one.
	if _, err := archive.WriteParts(ctx, store, "ingest-late", []archive.Span{lateEvent(t0, 1)}); err != nil {
		t.Fatal(err)
	}
	merge(func(s []archive.Span) []archive.Span {
		for i := range s {
			if s[i].Reason == "Pulling" {
				s[i].Reason = "Rewritten"
			}
		}
		return s
	})
	time.Sleep(2 * time.Millisecond)
	if got := reason(); got != "event Rewritten" {
		t.Errorf("after the merge: %q, want the merged part's", got)
	}
}

// TestReaderCacheSurvivesMergeWithinTTL: a merge deletes the parts a cached listing names; the
// request lists again instead of failing.
func TestReaderCacheSurvivesMergeWithinTTL(t *testing.T) {
	ctx := context.Background()
	store, dep := testArchive(t, 1)
	r := NewReader(store, ReaderConfig{ListTTL: time.Hour})
	id := TraceID{Pipeline: DefaultPipeline, Object: dep.Hash(), Start: t0, End: t0.Add(30 * time.Minute)}
	if _, err := r.Trace(ctx, id); err != nil {
		t.Fatal(err)
	}
	pp, err := archive.ListPartition(ctx, store, archive.Partition{Cluster: "c", Window: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.MergePartition(ctx, store, pp, keepRows); err != nil {
		t.Fatal(err)
	}
	r.partitions = newLRU[*partitionData](1000) // as if evicted: the partition must be read again
	tr, err := r.Trace(ctx, id)
	if err != nil {
		t.Fatalf("after a merge within the TTL: %v", err)
	}
	if n := countKind(t, tr, "event"); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
	if _, err := r.Find(ctx, Query{Pipeline: DefaultPipeline}); err != nil {
		t.Errorf("find: %v", err)
	}
}

// TestTraceFromIndexesOfBothVersions: a merged partition's trace is found through the index's
// object_hash and trace_id columns, its rows where the index places them (schema version 3),
// and through a version 1 index (no object_hash: decoded whole and hashed); both give the
// trace as the parts hold it: every observation row of trace-dep, and one span per object (its
// windows stitched together).
func TestTraceFromIndexesOfBothVersions(t *testing.T) {
	ctx := context.Background()
	store, dep := testArchive(t, 3)
	// Read straight from the parts: the observations' span ids, and the objects, of trace-dep.
	want, objects := map[string]bool{}, map[string]bool{}
	pps, err := archive.ListPartitions(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, pp := range pps {
		for _, o := range pp.Live {
			rows, err := archive.ReadPart(ctx, store, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				switch {
				case r.TraceID != "trace-dep":
				case r.Kind == archive.KindObject:
					objects[r.UID] = true
				default:
					want[r.SpanID] = true
				}
			}
		}
		// Sorted by object, as link.MergeRows leaves them: each object's rows a run the index places.
		sorted := func(r []archive.Span) []archive.Span { archive.SortSpans(r); return r }
		if _, err := archive.MergePartition(ctx, store, pp, sorted); err != nil {
			t.Fatal(err)
		}
	}
	id := TraceID{Pipeline: Pipeline{Display: DisplayTree, Selector: SelectFullTree}, Object: dep.Hash(), Start: t0, End: t0.Add(90 * time.Minute)}
	check := func(version string, placed bool) {
		t.Helper()
		r := NewReader(store, ReaderConfig{})
		tr, err := r.Trace(ctx, id)
		if err != nil {
			t.Fatalf("index version %s: %v", version, err)
		}
		// A version 3 index places the rows (the part's trace_id column is not read).
		if s, m := r.stats.traceScans.Load(), r.stats.indexMismatches.Load(); (s == 0) != placed || m != 0 {
			t.Errorf("index version %s: %d parts scanned for the trace, %d index mismatches", version, s, m)
		}
		got, gotObjects := map[string]bool{}, map[string]bool{}
		for _, s := range tr.Spans {
			if s.Kind == archive.KindObject {
				gotObjects[s.Object.UID] = true
			} else {
				got[s.ID] = true
			}
		}
		if len(got) != len(want) || len(gotObjects) != len(objects) || len(tr.Spans) != len(want)+len(objects) {
			t.Errorf("index version %s: %d observations of %d objects in %d spans, want %d of %d", version, len(got), len(gotObjects), len(tr.Spans), len(want), len(objects))
		}
		for sid := range want {
			if !got[sid] {
				t.Errorf("index version %s: observation %s missing", version, sid)
			}
		}
	}
	check(archive.SchemaVersion, true)
	// The same partitions with version 1 indexes: the columns of IndexRow but object_hash.
	type v1 struct {
		Cluster     string    `parquet:"cluster,dict"`
		APIGroup    string    `parquet:"api_group,optional,dict"`
		Resource    string    `parquet:"resource,dict"`
		Namespace   string    `parquet:"namespace,optional,dict"`
		Name        string    `parquet:"name,dict"`
		UID         string    `parquet:"uid,optional"`
		WindowStart time.Time `parquet:"window_start,timestamp(microsecond)"`
		TraceID     string    `parquet:"trace_id"`
		SpanID      string    `parquet:"span_id"`
	}
	for _, pp := range pps {
		data, err := archive.ReadAll(ctx, store, archive.IndexKey(pp.Partition))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := archive.DecodeIndex(data)
		if err != nil {
			t.Fatal(err)
		}
		old := make([]v1, len(rows))
		for i, r := range rows {
			old[i] = v1{r.Cluster, r.APIGroup, r.Resource, r.Namespace, r.Name, r.UID, r.WindowStart, r.TraceID, r.SpanID}
		}
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[v1](&buf)
		if _, err := w.Write(old); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, archive.IndexKey(pp.Partition), bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			t.Fatal(err)
		}
	}
	check("1", false)
}

// TestSearchMergedMatchesUnmerged: a search finds the same traces in merged partitions (from
// their object indexes) as in the same partitions unmerged (read whole), with tags, without
// (the roots), and when nothing matches.
func TestSearchMergedMatchesUnmerged(t *testing.T) {
	ctx := context.Background()
	store, _ := testArchive(t, 3)
	queries := []Query{
		{Pipeline: DefaultPipeline, Tags: map[string]string{"name": "web", "resource": "deployments"}},
		{Pipeline: DefaultPipeline, Tags: map[string]string{"kind": "pod"}},
		{Pipeline: DefaultPipeline, Tags: map[string]string{"namespace": "ns", "uid": "u-cm"}},
		{Pipeline: DefaultPipeline},
		{Pipeline: DefaultPipeline, Tags: map[string]string{"name": "nothing"}},
	}
	wantFound := []int{1, 1, 1, 2, 0}
	search := func() []string {
		r := NewReader(store, ReaderConfig{})
		var out []string
		for i, q := range queries {
			found, err := r.Find(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != wantFound[i] {
				t.Errorf("query %v: %d found, want %d", q.Tags, len(found), wantFound[i])
			}
			for _, f := range found {
				out = append(out, fmt.Sprintf("%v %s %s", q.Tags, f.ID, f.Object))
			}
		}
		return out
	}
	unmerged := search()
	mergeAll(t, store)
	merged := search()
	if fmt.Sprint(merged) != fmt.Sprint(unmerged) {
		t.Errorf("merged:\n%v\nunmerged:\n%v", merged, unmerged)
	}
}
