package serve

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// TestFindRangesAndOrder: a found trace starts at its object's creation and ends at its deletion
// (or the archive's newest window); the newest objects come first, ties in key order. Expected
// values are spelled out from the rows written, before and after the partitions are merged.
func TestFindRangesAndOrder(t *testing.T) {
	ctx := context.Background()
	store, err := archive.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := func(i int) time.Time { return t0.Add(time.Duration(i) * 30 * time.Minute) }
	cm := func(name string) ObjectKey {
		return ObjectKey{Cluster: "c", Resource: "configmaps", Namespace: "ns", Name: name, UID: "u-" + name}
	}
	change := func(k ObjectKey, verb string, at time.Time, window int) archive.Span {
		return archive.Span{Kind: archive.KindChange, TraceID: "t-" + k.Name, SpanID: fmt.Sprintf("%s-%s", k.Name, verb), Cluster: k.Cluster,
			Resource: k.Resource, Namespace: k.Namespace, Name: k.Name, UID: k.UID, WindowStart: w(window), StartTime: at, EndTime: at, Verb: verb}
	}
	object := func(k ObjectKey, window int) archive.Span {
		return objectRow(k, "ConfigMap", "", w(window), "t-"+k.Name)
	}
	parts := map[int][]archive.Span{
		// created in window 0, but first seen (and indexed) in window 2
		2: {object(cm("created"), 2), change(cm("created"), "create", w(0).Add(10*time.Minute), 2)},
		// deleted in window 1: its trace ends with that window, not at the newest (3)
		1: {object(cm("deleted"), 1), change(cm("deleted"), "delete", w(1).Add(20*time.Minute), 1)},
		// six objects seen at the same time, in window 3
		3: {object(cm("tie-f"), 3), object(cm("tie-b"), 3), object(cm("tie-e"), 3), object(cm("tie-a"), 3), object(cm("tie-d"), 3), object(cm("tie-c"), 3)},
	}
	for i, rows := range parts {
		data, err := archive.EncodeParquet(rows)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, archive.Partition{Cluster: "c", Window: w(i)}.Prefix()+"ingest-test.parquet", bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	check := func(how string) {
		for range 5 { // a new reader each time: ties must not depend on map order
			r := NewReader(store, ReaderConfig{})
			for name, want := range map[string][2]time.Time{"created": {w(0), w(4)}, "deleted": {w(1), w(2)}} {
				found, err := r.Find(ctx, Query{Tags: map[string]string{"name": name}})
				if err != nil || len(found) != 1 {
					t.Fatalf("%s: find %s: %v, %v", how, name, found, err)
				}
				if id := found[0].ID; !id.Start.Equal(want[0]) || !id.End.Equal(want[1]) {
					t.Errorf("%s: %s: trace %s..%s, want %s..%s", how, name, id.Start, id.End, want[0], want[1])
				}
			}
			found, err := r.Find(ctx, Query{Limit: 2})
			if err != nil || len(found) != 2 {
				t.Fatalf("%s: roots: %v, %v", how, found, err)
			}
			if found[0].Object != cm("tie-a") || found[1].Object != cm("tie-b") {
				t.Errorf("%s: newest two: %s, %s; want tie-a, tie-b", how, found[0].Object, found[1].Object)
			}
		}
	}
	check("unmerged")
	mergeAll(t, store)
	check("merged")
}

// mergeAll merges every partition of store, keeping every row.
func mergeAll(t *testing.T, store archive.Store) {
	t.Helper()
	ctx := context.Background()
	pps, err := archive.ListPartitions(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, pp := range pps {
		if _, err := archive.MergePartition(ctx, store, pp, keepRows); err != nil {
			t.Fatal(err)
		}
	}
}

func keepRows(s []archive.Span) []archive.Span { return s }
