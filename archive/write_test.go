package archive

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// TestBoundsOnlyWherePruned: a part carries min/max statistics for the columns readers prune
// by, and none for ids, versions, free text and the facts' own attributes (skipBounds).
func TestBoundsOnlyWherePruned(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rows := []Span{{
		Kind: KindChange, TraceID: "t1", SpanID: "s1", ParentSpanID: "p1", Cluster: "c", Resource: "pods", Namespace: "ns", Name: "n", UID: "u",
		WindowStart: at, StartTime: at, EndTime: at, ObservationID: "o1", AuditID: "a1", Verb: "update", Message: "m",
		User: "u", UserAgent: "ua", FieldManager: "fm", AuditLink: "resourceVersion",
		ResourceVersion: "2", PrevResourceVersion: "1", ParentUID: "pu", TimeSource: "audit", Stage: "ResponseComplete",
		Subresource: "status", Reason: "Pulled", EventType: "Normal", Reporter: "kubelet", RevisionTimeSource: "audit",
		Links:   []Link{{Relation: "node", Cluster: "c", Resource: "nodes", Name: "n1", UID: "nu", SpanID: "ls"}},
		Changes: []FieldChange{{Path: "spec.x", Old: `"a"`, New: `"b"`}},
	}}
	_, f := encodeAndOpen(t, rows)
	skipped := map[string]bool{}
	for _, p := range []string{"span_id", "parent_span_id", "observation_id", "audit_id", "message", "resource_version",
		"prev_resource_version", "user", "user_agent", "field_manager", "audit_link", "changes.list.element.path", "changes.list.element.old",
		"changes.list.element.new", "links.list.element.name", "links.list.element.uid", "links.list.element.span_id",
		"kind", "time_source", "stage", "verb", "subresource", "reason", "event_type", "reporter", "revision_time_source",
		"parent_uid", "links.list.element.relation"} {
		skipped[p] = true
	}
	seen := 0
	for _, c := range f.Metadata().RowGroups[0].Columns {
		path := strings.Join(c.MetaData.PathInSchema, ".")
		has := c.MetaData.Statistics.MinValue != nil
		if skipped[path] {
			seen++
		}
		if c.MetaData.Statistics.NullCount == c.MetaData.NumValues {
			continue // all NULL in this row: nothing to bound
		}
		if has == skipped[path] {
			t.Errorf("column %s: bounds written %v, want %v", path, has, !skipped[path])
		}
	}
	if seen != len(skipped) {
		t.Errorf("found %d of the %d columns without bounds in the schema", seen, len(skipped))
	}
}

// encodeAndOpen writes rows as a part and opens it again.
func encodeAndOpen(t *testing.T, rows []Span) ([]byte, *parquet.File) {
	t.Helper()
	data, err := EncodeParquet(rows)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return data, f
}

// TestTracePages: in a part that stays, the columns only traces read end a page every 1,024
// rows of a row group, and the others keep pages of up to 256 KiB; the rows read back whole.
func TestTracePages(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var rows []Span
	for i := range 5000 {
		id := fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		rows = append(rows, Span{Kind: KindChange, TraceID: "t", SpanID: id, Cluster: "c", Resource: "pods", Name: fmt.Sprintf("p%05d", i/10),
			WindowStart: at, StartTime: at.Add(time.Duration(i) * time.Millisecond), EndTime: at.Add(time.Duration(i) * time.Millisecond),
			ObservationID: "change/" + id, AuditID: id + id, ResourceVersion: fmt.Sprint(1000 + i)})
	}
	data, f := encodeAndOpen(t, rows)
	small := map[string]bool{"span_id": true, "end_time": true, "observation_id": true, "audit_id": true, "resource_version": true}
	rg := f.RowGroups()[0]
	if rg.NumRows() != int64(len(rows)) {
		t.Fatalf("row group of %d rows, want %d", rg.NumRows(), len(rows))
	}
	for j, cc := range rg.ColumnChunks() {
		path := strings.Join(f.Metadata().RowGroups[0].Columns[j].MetaData.PathInSchema, ".")
		oi, err := cc.OffsetIndex()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case small[path]:
			if oi.NumPages() != 5 {
				t.Errorf("%s: %d pages, want 5", path, oi.NumPages())
			}
			for q := range oi.NumPages() {
				if oi.FirstRowIndex(q) != int64(q)*1024 {
					t.Errorf("%s: page %d starts at row %d, want %d", path, q, oi.FirstRowIndex(q), q*1024)
				}
			}
		case path == "start_time" || path == "window_start" || path == "name":
			if oi.NumPages() != 1 {
				t.Errorf("%s: %d pages, want 1 (40 KB at most)", path, oi.NumPages())
			}
		}
	}
	got, err := parquet.Read[Span](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, wrote %d", len(got), len(rows))
	}
	for i := range rows {
		if got[i].SpanID != rows[i].SpanID || got[i].ObservationID != rows[i].ObservationID || !got[i].EndTime.Equal(rows[i].EndTime) {
			t.Fatalf("row %d: read %+v, wrote %+v", i, got[i], rows[i])
		}
	}
}
