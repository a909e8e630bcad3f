package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

func TestLocalStore(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "archive")
	s, err := OpenStore(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, ""); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("List of a missing archive: %v", err)
	}
	for _, k := range []string{"spans/a/1.parquet", "spans/b/2.parquet", "quarantine/x.jsonl"} {
		if err := s.Put(ctx, k, strings.NewReader(k), -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "spans/a/1.parquet", strings.NewReader("again"), -1); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "spans/")
	if err != nil || len(list) != 2 || list[0].Key != "spans/a/1.parquet" || list[0].Size != 5 || list[1].Key != "spans/b/2.parquet" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	rc, err := s.Get(ctx, "spans/a/1.parquet")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "again" {
		t.Errorf("Get = %q", b)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Get missing: %v", err)
	}
	for _, bad := range []string{"", "../escape", "/abs"} {
		if err := s.Put(ctx, bad, strings.NewReader("x"), 1); err == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
	}
	if err := s.Delete(ctx, "spans/b/2.parquet"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(ctx, ""); len(list) != 2 {
		t.Errorf("after delete: %+v", list)
	}
	leftovers, _ := filepath.Glob(filepath.Join(root, "spans", "a", ".tmp-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	if _, err := OpenStore(ctx, "gs://bucket/x"); err == nil {
		t.Error("unsupported scheme accepted")
	}
}

func TestParquetPartIsVersionedAndSorted(t *testing.T) {
	w := time.Date(2026, 11, 24, 5, 30, 0, 0, time.UTC)
	rows := []Span{
		{Kind: KindEvent, SpanID: "2", Cluster: "c", Resource: "pods", Namespace: "b", Name: "p", WindowStart: w, StartTime: w.Add(time.Minute), Reason: "Pulling"},
		{Kind: KindChange, SpanID: "3", Cluster: "c", Resource: "pods", Namespace: "a", Name: "p", WindowStart: w, StartTime: w.Add(2 * time.Minute),
			Changes: []FieldChange{{Path: "spec.x", Old: `"1"`, New: `"2"`}}},
		{Kind: KindObject, SpanID: "1", Cluster: "c", Resource: "pods", Namespace: "b", Name: "p", WindowStart: w, StartTime: w.Add(3 * time.Minute)},
	}
	SortSpans(rows)
	if rows[0].Namespace != "a" || rows[1].Kind != KindObject || rows[2].Kind != KindEvent {
		t.Fatalf("order: %+v", rows)
	}
	data, f := encodeAndOpen(t, rows)
	if v, ok := f.Lookup("kairn.schema.version"); !ok || v != SchemaVersion {
		t.Errorf("schema version metadata = %q, %v", v, ok)
	}
	got, err := parquet.Read[Span](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Changes[0].Path != "spec.x" || got[2].Reason != "Pulling" || !got[1].StartTime.Equal(rows[1].StartTime) {
		t.Errorf("round trip: %+v", got)
	}
	if k := PartKey("dev", w, "ingest-ab"); k != "spans/cluster=dev/window=20261124T0530/ingest-ab.parquet" {
		t.Errorf("PartKey = %s", k)
	}
}

// A listing racing with deletes (a merge replacing parts next door) leaves the deleted files out
// instead of failing; a prefix whose folder does not exist lists nothing.
func TestLocalListWhileDeleting(t *testing.T) {
	ctx := context.Background()
	s, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if objs, err := s.List(ctx, "spans/cluster=none/"); err != nil || len(objs) != 0 {
		t.Fatalf("missing folder: %v %v", objs, err)
	}
	for round := range 20 {
		var keys []string
		for i := range 200 {
			key := fmt.Sprintf("spans/cluster=c/window=%02d/p-%03d.parquet", round, i)
			keys = append(keys, key)
			if err := s.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, k := range keys {
				s.Delete(ctx, k)
			}
		}()
		for {
			if _, err := s.List(ctx, "spans/"); err != nil {
				t.Fatalf("list while deleting: %v", err)
			}
			select {
			case <-done:
			default:
				continue
			}
			break
		}
	}
}
