package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kairn-dev/kairn/internal/benchrow"
)

func TestRowsBecomeResults(t *testing.T) {
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.jsonl")
	t.Setenv(benchrow.EnvResults, rows)
	for _, r := range []benchrow.Row{
		{Name: "ingest", Value: 50_000, Unit: "events/s", Baseline: 40_000, BaselineName: "encoding/json", Target: 100_000},
		{Name: "bytes per span", Value: 100, Unit: "B", Target: 120, Max: true},
		{Name: "merge", Value: 1, Unit: "rows/s"},
		{Name: "merge", Value: 236_000, Unit: "rows/s"}, // b.N grew: the last run counts
	} {
		if err := benchrow.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "results.json")
	if err := run(rows, out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	var got []map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%s", data)
	}
	for _, k := range []string{"name", "value", "unit", "baseline", "ratio", "target", "met"} {
		if _, ok := got[2][k]; !ok {
			t.Errorf("key %s missing: %v", k, got[2])
		}
	}
	if got[0]["ratio"] != 1.25 || got[2]["value"] != 236000.0 || got[0]["met"] != false || got[1]["met"] != true || got[2]["met"] != nil {
		t.Errorf("%s", data)
	}
}
