package analyze

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/internal/benchrow"
)

// TestBenchRolloutFirstPull times rollout-first-pull over the synthetic archive (synth_test.go),
// with a full scan over the same files in the same run as the baseline, on 2 threads; then reads
// the same archive from MinIO through the sparse cache and reports the bytes fetched.
//
// Scale: $KAIRN_BENCH_SPANS spans (`make bench` sets 10000000); small by default, so `make test`
// runs it as a test. The generated archive is cached outside the repository (synth_test.go).
func TestBenchRolloutFirstPull(t *testing.T) {
	spans := 30_000
	if v := os.Getenv("KAIRN_BENCH_SPANS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("KAIRN_BENCH_SPANS=%q: %v", v, err)
		}
		spans = n
	}
	reps := 1
	if spans >= 1_000_000 {
		reps = 3
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	ctx := context.Background()
	dir, n := synthArchive(t, spans)
	local, err := archive.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	var archiveBytes int64
	parts := 0
	objs, _ := local.List(ctx, archive.SpansPrefix)
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") { // not the manifests
			archiveBytes += o.Size
			parts++
		}
	}
	e, err := Open(ctx, local, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.DB().ExecContext(ctx, "SET threads = 2"); err != nil {
		t.Fatal(err)
	}
	rfp := trimStatement(mustGet(t, "rollout-first-pull").SQL)
	// count(*) alone is answered from the footers; the baseline reads and hashes every column.
	const fullScan = "SELECT count(*), max(hash(COLUMNS(*))) FROM spans"
	timeIt := func(e *Engine, q string) (time.Duration, int) {
		start := time.Now()
		res, err := e.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start), len(res.Rows)
	}
	var tb, tq []time.Duration
	var rollouts int
	for i := 0; i < reps; i++ {
		d, _ := timeIt(e, fullScan)
		tb = append(tb, d)
		d, rollouts = timeIt(e, rfp)
		tq = append(tq, d)
	}
	tc, _ := timeIt(e, "SELECT count(*) FROM spans")
	med := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	base, query := med(tb), med(tq)
	rate := func(d time.Duration) string { return fmt.Sprintf("%.2f M spans/s", float64(n)/d.Seconds()/1e6) }
	extra := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * 1e8 / float64(n)).Round(10 * time.Millisecond)
	}
	t.Logf("archive: %d spans, %d parts, %.1f MiB (%s)", n, parts, float64(archiveBytes)/(1<<20), dir)
	t.Logf("local, 2 threads, median of %d:", reps)
	t.Logf("  count(*) (footers only):           %s", tc.Round(time.Millisecond))
	t.Logf("  full scan (baseline):              %s  %s  -> 100 M: %s", base.Round(time.Millisecond), rate(base), extra(base))
	t.Logf("  rollout-first-pull (%d rollouts): %s  %s  -> 100 M: %s", rollouts, query.Round(time.Millisecond), rate(query), extra(query))
	t.Logf("  ratio rollout-first-pull / full scan: %.2f (runs: %v / %v)", query.Seconds()/base.Seconds(), tq, tb)
	if spans < 1_000_000 && rollouts == 0 {
		t.Error("no rollouts in the synthetic archive")
	}
	want := render(t, e, rfp)
	benchrow.Record(benchrow.Row{Name: "rollout-first-pull, 100 M spans (extrapolated)", Value: extra(query).Seconds(), Unit: "s",
		Baseline: extra(base).Seconds(), BaselineName: "full scan", Target: 10, Max: true,
		Note: fmt.Sprintf("measured %d spans in %s on 2 threads, linear extrapolation", n, query.Round(time.Millisecond))})

	// From MinIO, through the sparse cache, cold.
	start := time.Now()
	s3 := minioCopy(t, dir)
	t.Logf("MinIO: uploaded in %s", time.Since(start).Round(time.Millisecond))
	var last int
	start = time.Now()
	re, err := Open(ctx, s3, Options{CacheDir: t.TempDir(), wholeBelow: -1, Progress: func(done, total int) {
		if q := done * 4 / total; q != last && total >= 100 {
			last = q
			t.Logf("  fetching: %d/%d parts", done, total)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if _, err := re.DB().ExecContext(ctx, "SET threads = 2"); err != nil {
		t.Fatal(err)
	}
	open, footers := time.Since(start), re.Fetched()
	cold, _ := timeIt(re, rfp)
	fetched := re.Fetched()
	warm, _ := timeIt(re, rfp)
	if got := render(t, re, rfp); got != want {
		t.Errorf("rollout-first-pull from MinIO differs from the local result")
	}
	pct := func(b int64) string { return fmt.Sprintf("%.1f%%", 100*float64(b)/float64(fetched.FileBytes)) }
	t.Logf("MinIO, sparse cache (footers at open, then the column chunks a statement reads):")
	t.Logf("  open: %s, fetched %.1f MiB = %s of %.1f MiB (span parts and object index), %d requests",
		open.Round(time.Millisecond), float64(footers.Bytes)/(1<<20), pct(footers.Bytes), float64(fetched.FileBytes)/(1<<20), footers.Requests)
	t.Logf("  rollout-first-pull cold: %s, fetched in all %.1f MiB = %s, %d requests; warm: %s",
		cold.Round(time.Millisecond), float64(fetched.Bytes)/(1<<20), pct(fetched.Bytes), fetched.Requests, warm.Round(time.Millisecond))
	coldScan, _ := timeIt(re, fullScan)
	all := re.Fetched()
	t.Logf("  then the full scan: %s, fetched in all %.1f MiB = %s", coldScan.Round(time.Millisecond), float64(all.Bytes)/(1<<20), pct(all.Bytes))
	benchrow.Record(benchrow.Row{Name: "rollout-first-pull from MinIO: bytes fetched", Value: 100 * float64(fetched.Bytes) / float64(fetched.FileBytes),
		Unit: "% of archive", Baseline: 100 * float64(all.Bytes) / float64(fetched.FileBytes), BaselineName: "after a full scan", Target: 30, Max: true})
	if spans >= 1_000_000 && fetched.Bytes*10 > fetched.FileBytes*3 {
		t.Errorf("rollout-first-pull fetched %s of the archive, more than the 30%% target", pct(fetched.Bytes))
	}
}
