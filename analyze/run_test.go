package analyze

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kairn-dev/kairn/archive"
)

// reportArchive writes object spans for two clusters over four windows, n(cluster, window)
// spans each, and returns the counts by cluster for windows in [since, until).
func reportArchive(t *testing.T) (archive.Store, string, func(since, until time.Time) map[string]int) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := archive.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)
	var rows []archive.Span
	for ci, cluster := range []string{"east", "west"} {
		for w := 0; w < 4; w++ {
			ws := start.Add(time.Duration(w) * 30 * time.Minute)
			for i := 0; i < 3+w+ci; i++ {
				rows = append(rows, archive.Span{Kind: archive.KindObject, SpanID: fmt.Sprintf("%s-%d-%d", cluster, w, i),
					Cluster: cluster, Resource: "pods", Namespace: "ns", Name: fmt.Sprintf("p%d", i),
					WindowStart: ws, StartTime: ws.Add(time.Minute), EndTime: ws.Add(time.Minute)})
			}
		}
	}
	if _, err := archive.WriteParts(ctx, store, "t", rows); err != nil {
		t.Fatal(err)
	}
	counts := func(since, until time.Time) map[string]int {
		out := map[string]int{}
		for _, r := range rows {
			if (since.IsZero() || !r.WindowStart.Before(since)) && (until.IsZero() || r.WindowStart.Before(until)) {
				out[r.Cluster]++
			}
		}
		return out
	}
	return store, dir, counts
}

const countSQL = "SELECT cluster, count(*) AS spans FROM spans GROUP BY ALL ORDER BY cluster;"

func readCSVCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "cluster,spans" {
		t.Fatalf("csv header %v", recs)
	}
	out := map[string]int{}
	for _, r := range recs[1:] {
		var n int
		fmt.Sscan(r[1], &n)
		out[r[0]] = n
	}
	return out
}

func runKeys(t *testing.T, store archive.Store, prefix string) []string {
	t.Helper()
	objs, err := store.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, strings.TrimPrefix(o.Key, prefix))
	}
	sort.Strings(keys)
	return keys
}

func TestRunnerWritesResultsThenManifest(t *testing.T) {
	ctx := context.Background()
	store, dir, counts := reportArchive(t)
	reg := prometheus.NewRegistry()
	metrics := NewRunMetrics(reg)
	r := NewRunner(store, RunnerOptions{Metrics: metrics, Backoff: time.Millisecond})
	job := Job{Name: "counts", Schedule: "@daily", SQL: countSQL, Formats: []string{FormatCSV}}
	at := time.Date(2026, 11, 25, 0, 30, 0, 0, time.UTC)

	// The whole archive, then one hour of it: the range prunes windows.
	for _, tc := range []struct{ since, until time.Time }{
		{},
		{time.Date(2026, 11, 24, 5, 30, 0, 0, time.UTC), time.Date(2026, 11, 24, 6, 30, 0, 0, time.UTC)},
	} {
		job.Name = fmt.Sprintf("counts-%d", tc.since.Hour())
		m, err := r.Run(ctx, job, at, tc.since, tc.until)
		if err != nil {
			t.Fatal(err)
		}
		want := counts(tc.since, tc.until)
		prefix := RunPrefix(job.Name, at)
		if got := runKeys(t, store, prefix); strings.Join(got, " ") != "_manifest.json result.csv result.parquet" {
			t.Errorf("run folder holds %v", got)
		}
		got := readCSVCounts(t, filepath.Join(dir, prefix, "result.csv"))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("range %s..%s: result %v, want %v", tc.since, tc.until, got, want)
		}
		// The Parquet result says the same.
		eng, err := Open(ctx, store, Options{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := eng.Query(ctx, "SELECT sum(spans) FROM read_parquet('"+filepath.Join(dir, prefix, "result.parquet")+"')")
		eng.Close()
		if err != nil {
			t.Fatal(err)
		}
		if total := want["east"] + want["west"]; FormatValue(res.Rows[0][0]) != fmt.Sprint(total) {
			t.Errorf("parquet total %v, want %d", res.Rows[0][0], total)
		}
		back, err := ReadManifest(ctx, store, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if back.Rows != int64(len(want)) || m.Rows != back.Rows || back.Attempts != 1 || len(back.Files) != 2 || !back.Run.Equal(at) {
			t.Errorf("manifest %+v", back)
		}
		if (back.Since == nil) != tc.since.IsZero() {
			t.Errorf("manifest range %v..%v for %s..%s", back.Since, back.Until, tc.since, tc.until)
		}
	}
	if got := testutil.ToFloat64(metrics.runs.WithLabelValues("counts-5", "success")); got != 1 {
		t.Errorf("success runs %v", got)
	}
	if got := testutil.ToFloat64(metrics.rows.WithLabelValues("counts-5")); got != 2 {
		t.Errorf("rows gauge %v", got)
	}
}

func TestRunnerIsIdempotent(t *testing.T) {
	ctx := context.Background()
	store, dir, _ := reportArchive(t)
	metrics := NewRunMetrics(prometheus.NewRegistry())
	job := Job{Name: "counts", Schedule: "@daily", SQL: countSQL}
	at := time.Date(2026, 11, 25, 0, 30, 0, 0, time.UTC)
	first, err := NewRunner(store, RunnerOptions{Metrics: metrics}).Run(ctx, job, at, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	result := filepath.Join(dir, RunPrefix(job.Name, at), "result.parquet")
	before, _ := os.Stat(result)
	again, err := NewRunner(store, RunnerOptions{Metrics: metrics}).Run(ctx, job, at, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(result)
	if !again.FinishedAt.Equal(first.FinishedAt) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("a finished run was run again")
	}
	if got := testutil.ToFloat64(metrics.runs.WithLabelValues("counts", "skipped")); got != 1 {
		t.Errorf("skipped runs %v", got)
	}
	forced, err := NewRunner(store, RunnerOptions{Force: true}).Run(ctx, job, at, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if forced.FinishedAt.Equal(first.FinishedAt) || forced.Rows != first.Rows {
		t.Errorf("forced rerun %+v vs %+v", forced, first)
	}
	if got := runKeys(t, store, ReportsPrefix+"counts/"); len(got) != 2 {
		t.Errorf("after a forced rerun the job holds %v", got)
	}
}

// flakyStore fails Puts of keys with the given suffix, the first `failures` times.
type flakyStore struct {
	archive.Store
	suffix   string
	mu       sync.Mutex
	failures int
}

func (s *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.mu.Lock()
	fail := strings.HasSuffix(key, s.suffix) && s.failures != 0
	if fail && s.failures > 0 {
		s.failures--
	}
	s.mu.Unlock()
	if fail {
		return errors.New("injected: store unavailable")
	}
	return s.Store.Put(ctx, key, r, size)
}

func TestRunnerRetriesAndNeverLeavesHalfAResult(t *testing.T) {
	ctx := context.Background()
	store, _, counts := reportArchive(t)
	at := time.Date(2026, 11, 25, 0, 30, 0, 0, time.UTC)
	job := Job{Name: "counts", Schedule: "@daily", SQL: countSQL, Formats: []string{FormatCSV}}

	// The manifest upload fails once: the second attempt succeeds.
	flaky := &flakyStore{Store: store, suffix: ManifestName, failures: 1}
	metrics := NewRunMetrics(prometheus.NewRegistry())
	m, err := NewRunner(flaky, RunnerOptions{Backoff: time.Millisecond, Metrics: metrics}).Run(ctx, job, at, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Attempts != 2 || m.Rows != int64(len(counts(time.Time{}, time.Time{}))) {
		t.Errorf("manifest %+v", m)
	}
	if got := testutil.ToFloat64(metrics.retries.WithLabelValues("counts")); got != 1 {
		t.Errorf("retries %v", got)
	}

	// The CSV upload always fails: after every attempt the Parquet already written is removed.
	job.Name = "broken"
	always := &flakyStore{Store: store, suffix: "result.csv", failures: -1}
	_, err = NewRunner(always, RunnerOptions{Backoff: time.Millisecond, Attempts: 3, Metrics: metrics}).Run(ctx, job, at, time.Time{}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("error %v", err)
	}
	if got := runKeys(t, store, ReportsPrefix+"broken/"); len(got) != 0 {
		t.Errorf("a failed run left %v", got)
	}
	if f, r := testutil.ToFloat64(metrics.runs.WithLabelValues("broken", "failure")), testutil.ToFloat64(metrics.retries.WithLabelValues("broken")); f != 1 || r != 2 {
		t.Errorf("failures %v retries %v", f, r)
	}

	// Bad SQL fails with DuckDB's message, named by job.
	job = Job{Name: "bad-sql", Schedule: "@daily", SQL: "SELECT nope FROM spans"}
	_, err = NewRunner(store, RunnerOptions{Backoff: time.Millisecond, Attempts: 1}).Run(ctx, job, at, time.Time{}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "job bad-sql") || !strings.Contains(err.Error(), "nope") {
		t.Errorf("error %v", err)
	}
}

func TestParamsReachTheQuery(t *testing.T) {
	ctx := context.Background()
	store, _, _ := reportArchive(t)
	e, err := Open(ctx, store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.SetParams(ctx, map[string]string{"limit_n": "3", "who": "it's me"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.Query(ctx, "SELECT getvariable('limit_n') + 1 AS n, getvariable('who') AS who")
	if err != nil {
		t.Fatal(err)
	}
	if FormatValue(res.Rows[0][0]) != "4" || res.Rows[0][1] != "it's me" {
		t.Errorf("params %v", res.Rows)
	}
	if err := e.SetParams(ctx, map[string]string{"x; DROP": "1"}); err == nil {
		t.Error("bad parameter name accepted")
	}
}
