package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"testing"
	"time"
)

// failingStore fails Puts of keys with a given base name: a merge "killed" at that step.
type failingStore struct {
	Store
	failBase string
}

func (f failingStore) Put(ctx context.Context, key string, r io.Reader, n int64) error {
	if path.Base(key) == f.failBase {
		return errors.New("injected crash")
	}
	return f.Store.Put(ctx, key, r, n)
}

func partRows(ids ...string) []Span {
	w := time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)
	var rows []Span
	for _, id := range ids {
		rows = append(rows, Span{Kind: KindAudit, SpanID: id, ObservationID: id, Cluster: "c", Resource: "pods", Name: "p", WindowStart: w, StartTime: w})
	}
	return rows
}

// dedupe is a stand-in for the linker's stitching: one row per observation id.
func dedupe(rows []Span) []Span {
	seen := map[string]bool{}
	var out []Span
	for _, r := range rows {
		if !seen[r.ObservationID] {
			seen[r.ObservationID] = true
			out = append(out, r)
		}
	}
	SortSpans(out)
	return out
}

func liveIDs(t *testing.T, store Store) []string {
	t.Helper()
	pps, err := ListPartitions(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, pp := range pps {
		for _, o := range pp.Live {
			rows, err := ReadPart(context.Background(), store, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				ids = append(ids, r.ObservationID)
			}
		}
	}
	sort.Strings(ids)
	return ids
}

func TestMergeIsAtomicForReaders(t *testing.T) {
	ctx := context.Background()
	local, _ := OpenLocal(t.TempDir())
	WriteParts(ctx, local, "a", partRows("1", "2"))
	WriteParts(ctx, local, "b", partRows("2", "3"))
	before := strings.Join(liveIDs(t, local), ",")
	if before != "1,2,2,3" {
		t.Fatalf("live before merge: %s", before)
	}
	pps, _ := ListPartitions(ctx, local)

	// Killed after the merged part is written, before the manifest: the old parts stay in force.
	if _, err := MergePartition(ctx, failingStore{local, manifestName}, pps[0], dedupe); err == nil {
		t.Fatal("injected crash not reported")
	}
	if got := strings.Join(liveIDs(t, local), ","); got != before {
		t.Errorf("after a crashed merge readers see %s, want the old parts %s", got, before)
	}
	// Done again, it completes; readers see the merged part only.
	pps, _ = ListPartitions(ctx, local)
	res, err := MergePartition(ctx, local, pps[0], dedupe)
	if err != nil || res.RowsIn != 4 || res.RowsOut != 3 {
		t.Fatalf("merge: %+v %v", res, err)
	}
	if got := strings.Join(liveIDs(t, local), ","); got != "1,2,3" {
		t.Errorf("after merge readers see %s", got)
	}
	objs, _ := local.List(ctx, SpansPrefix)
	if len(objs) != 2 { // merged part + manifest; the replaced parts are gone
		t.Errorf("left in the partition: %+v", objs)
	}
	if idx, err := local.List(ctx, IndexPrefix); err != nil || len(idx) != 1 {
		t.Errorf("object index: %+v %v", idx, err)
	}
	// Idempotent: nothing new, nothing done.
	pps, _ = ListPartitions(ctx, local)
	if res, err := MergePartition(ctx, local, pps[0], dedupe); err != nil || !res.Skipped {
		t.Errorf("second merge: %+v %v", res, err)
	}
	// A late part is merged in with the merged part.
	WriteParts(ctx, local, "late", partRows("3", "4"))
	pps, _ = ListPartitions(ctx, local)
	if _, err := MergePartition(ctx, local, pps[0], dedupe); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(liveIDs(t, local), ","); got != "1,2,3,4" {
		t.Errorf("after merging a late part readers see %s", got)
	}
}

func TestDeletePartitionIsRetention(t *testing.T) {
	ctx := context.Background()
	local, _ := OpenLocal(t.TempDir())
	old, keep := partRows("1"), partRows("2")
	for i := range keep {
		keep[i].WindowStart = keep[i].WindowStart.Add(30 * time.Minute)
	}
	WriteParts(ctx, local, "a", append(old, keep...))
	pps, _ := ListPartitions(ctx, local)
	for _, pp := range pps {
		if _, err := MergePartition(ctx, local, pp, dedupe); err != nil {
			t.Fatal(err)
		}
	}
	if err := DeletePartition(ctx, local, pps[0].Partition); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(liveIDs(t, local), ","); got != "2" {
		t.Errorf("after deleting the old partition: %s", got)
	}
	idx, _ := local.List(ctx, IndexPrefix)
	if len(idx) != 1 || !strings.Contains(idx[0].Key, WindowKey(keep[0].WindowStart)) {
		t.Errorf("index left: %+v", idx)
	}
}

// TestMergedPartsCompressedToStay: fresh parts are written at zstd's fastest level, and the
// merger rewrites the same rows at the default level (zstdCodecFresh).
func TestMergedPartsCompressedToStay(t *testing.T) {
	ctx := context.Background()
	local, _ := OpenLocal(t.TempDir())
	w := time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)
	var rows []Span
	for i := range 20000 {
		id := fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		rows = append(rows, Span{Kind: KindAudit, SpanID: id, ObservationID: "audit/" + id, TraceID: fmt.Sprintf("t%d", i/50),
			Cluster: "c", Resource: "pods", Namespace: fmt.Sprintf("ns-%d", i%7), Name: fmt.Sprintf("web-%d", i/50),
			WindowStart: w, StartTime: w.Add(time.Duration(i) * time.Millisecond), Verb: "patch",
			Message: fmt.Sprintf("pod web-%d in ns-%d: container %d restarted", i/50, i%7, i%3)})
	}
	fresh, err := WriteParts(ctx, local, "a", rows)
	if err != nil || len(fresh) != 1 {
		t.Fatalf("WriteParts: %+v %v", fresh, err)
	}
	pps, _ := ListPartitions(ctx, local)
	res, err := MergePartition(ctx, local, pps[0], func(r []Span) []Span { return r })
	if err != nil {
		t.Fatal(err)
	}
	merged, err := ReadPart(ctx, local, res.Key)
	if err != nil || len(merged) != len(rows) {
		t.Fatalf("merged part: %d rows, %v", len(merged), err)
	}
	// The merged part also has small pages for the columns traces read (tracePageColumns),
	// which cost bytes: compared with the same layout at the fastest level, it is smaller.
	SortSpans(rows)
	fastest, err := encodeParquet(rows, zstdCodecFresh, tracePageRows)
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := local.List(ctx, res.Key)
	if len(objs) != 1 || objs[0].Size >= int64(len(fastest)) {
		t.Errorf("merged part %+v, %d bytes at the fastest level: want the merged one smaller", objs, len(fastest))
	}
	t.Logf("fresh %d B, the merged layout at the fastest level %d B, merged %d B for %d rows", fresh[0].Bytes, len(fastest), objs[0].Size, len(rows))
}
