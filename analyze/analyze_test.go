package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/queries"
)

func TestEmptyArchiveHasTheSchema(t *testing.T) {
	ctx := context.Background()
	store, _ := archive.OpenStore(ctx, t.TempDir())
	e, err := Open(ctx, store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, name := range queries.Names() {
		q, _ := queries.Get(name)
		if q.Description == "" {
			t.Errorf("%s: no description comment", name)
		}
		if _, err := e.Query(ctx, q.SQL); err != nil {
			t.Errorf("%s on an empty archive: %v", name, err)
		}
	}
	res, err := e.Query(ctx, mustGet(t, "rollout-first-pull").SQL)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Columns, ","); got != "cluster,namespace,kind,name,upgrade_at,first_pull_at,latency_seconds" {
		t.Errorf("columns %s", got)
	}
}

func mustGet(t *testing.T, name string) queries.Query {
	q, err := queries.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestNullsAndRender(t *testing.T) {
	ctx := context.Background()
	store, _ := archive.OpenStore(ctx, t.TempDir())
	w := time.Date(2026, 11, 24, 5, 30, 0, 0, time.UTC)
	rows := []archive.Span{{Kind: archive.KindObject, SpanID: "1", Cluster: "c", Resource: "nodes", Name: "n1", WindowStart: w, StartTime: w, EndTime: w}}
	if _, err := archive.WriteParts(ctx, store, "t", rows); err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Query(ctx, `SELECT name, namespace IS NULL AS no_ns, status_code IS NULL AS no_code, start_time, 1.5::DOUBLE AS x FROM spans`)
	if err != nil {
		t.Fatal(err)
	}
	var csv, js, table bytes.Buffer
	res.Render(&csv, "csv")
	res.Render(&js, "json")
	res.Render(&table, "table")
	if csv.String() != "name,no_ns,no_code,start_time,x\nn1,true,true,2026-11-24T05:30:00Z,1.5\n" {
		t.Errorf("csv:\n%s", csv.String())
	}
	var parsed []map[string]any
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil || parsed[0]["x"] != 1.5 || parsed[0]["no_ns"] != true {
		t.Errorf("json: %s %v", js.String(), err)
	}
	if !strings.HasPrefix(table.String(), "name  no_ns") {
		t.Errorf("table:\n%s", table.String())
	}
	if err := res.Render(&table, "xml"); err == nil {
		t.Error("unknown format accepted")
	}
}
