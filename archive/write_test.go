package archive

import (
	"bytes"
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
