// Package benchrow lets benchmarks report the figures of `make bench`'s table: each row is a
// measured value, its baseline measured in the same run, and the target. Rows are
// appended as JSON lines to the file named by $KAIRN_BENCH_RESULTS; without it, Record does
// nothing, so plain `go test -bench` runs are unaffected.
package benchrow

import (
	"encoding/json"
	"os"
	"sync"
)

// EnvResults names the JSON-lines file rows are appended to.
const EnvResults = "KAIRN_BENCH_RESULTS"

// Row is one figure of the table.
type Row struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Baseline is the same-run reference (0: none); Ratio = Value / Baseline.
	Baseline     float64 `json:"baseline,omitempty"`
	BaselineName string  `json:"baseline_name,omitempty"`
	Ratio        float64 `json:"ratio,omitempty"`
	// Target is the goal; Max says whether it is an upper bound (latency, bytes) or a
	// lower bound (throughput). Met is filled in from them.
	Target float64 `json:"target,omitempty"`
	Max    bool    `json:"target_is_max,omitempty"`
	Met    *bool   `json:"met,omitempty"`
	Note   string  `json:"note,omitempty"`
}

var mu sync.Mutex

// Record appends r to $KAIRN_BENCH_RESULTS, computing the ratio and whether the target is met.
func Record(r Row) error {
	path := os.Getenv(EnvResults)
	if path == "" {
		return nil
	}
	if r.Baseline != 0 {
		r.Ratio = r.Value / r.Baseline
	}
	if r.Target != 0 {
		met := r.Value >= r.Target
		if r.Max {
			met = r.Value <= r.Target
		}
		r.Met = &met
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
