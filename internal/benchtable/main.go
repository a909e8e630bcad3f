// Command benchtable turns the rows benchmarks recorded (internal/benchrow) into `make bench`'s
// table on stdout and bench/results.json.
//
//	go run ./internal/benchtable ROWS.jsonl OUT.json
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/kairn-dev/kairn/internal/benchrow"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: benchtable ROWS.jsonl OUT.json")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var rows []benchrow.Row
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var r benchrow.Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s:%d: %w", in, n, err)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	rows = lastOfEach(rows)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tvalue\tunit\tbaseline\tratio\ttarget\tmet\t")
	for _, r := range rows {
		target, met, base, ratio := "-", "-", "-", "-"
		if r.Target != 0 {
			op := "≥ "
			if r.Max {
				op = "≤ "
			}
			target = op + num(r.Target)
			met = "no"
			if r.Met != nil && *r.Met {
				met = "yes"
			}
		}
		if r.Baseline != 0 {
			base, ratio = num(r.Baseline)+" ("+r.BaselineName+")", fmt.Sprintf("%.2f×", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, num(r.Value), r.Unit, base, ratio, target, met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(results(rows), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(data, '\n'), 0o644)
}

// lastOfEach keeps one row per name, the last recorded: `go test -bench` runs a benchmark
// function again with a larger b.N until it is long enough, and the last run is the measurement.
func lastOfEach(rows []benchrow.Row) []benchrow.Row {
	last := map[string]int{}
	var order []string
	for i, r := range rows {
		if _, seen := last[r.Name]; !seen {
			order = append(order, r.Name)
		}
		last[r.Name] = i
	}
	out := make([]benchrow.Row, len(order))
	for i, name := range order {
		out[i] = rows[last[name]]
	}
	return out
}

// result is one entry of bench/results.json: every key is present, null where a row has no
// baseline or target.
type result struct {
	Name         string   `json:"name"`
	Value        float64  `json:"value"`
	Unit         string   `json:"unit"`
	Baseline     *float64 `json:"baseline"`
	BaselineName string   `json:"baseline_name,omitempty"`
	Ratio        *float64 `json:"ratio"`
	Target       *float64 `json:"target"`
	TargetIsMax  bool     `json:"target_is_max,omitempty"`
	Met          *bool    `json:"met"`
	Note         string   `json:"note,omitempty"`
}

func results(rows []benchrow.Row) []result {
	out := make([]result, len(rows))
	for i, r := range rows {
		out[i] = result{Name: r.Name, Value: r.Value, Unit: r.Unit, BaselineName: r.BaselineName,
			TargetIsMax: r.Max, Met: r.Met, Note: r.Note}
		if r.Baseline != 0 {
			out[i].Baseline, out[i].Ratio = &r.Baseline, &r.Ratio
		}
		if r.Target != 0 {
			out[i].Target = &r.Target
		}
	}
	return out
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
