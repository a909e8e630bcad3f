package analyze

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/internal/syntharchive"
	"github.com/kairn-dev/kairn/internal/testminio"
	"github.com/kairn-dev/kairn/queries"
)

// minioCopy starts a MinIO and copies the local archive at dir into a bucket.
func minioCopy(tb testing.TB, dir string) archive.Store {
	tb.Helper()
	ctx := context.Background()
	endpoint, ak, sk := testminio.Start(tb)
	testminio.Bucket(tb, endpoint, ak, sk, "kairn-bench")
	s3, err := archive.OpenS3(ctx, "s3://kairn-bench/archive", archive.S3Options{Endpoint: endpoint, AccessKey: ak, SecretKey: sk})
	if err != nil {
		tb.Fatal(err)
	}
	if err := syntharchive.CopyTo(ctx, dir, s3); err != nil {
		tb.Fatal(err)
	}
	return s3
}

func render(tb testing.TB, e *Engine, sql string) string {
	tb.Helper()
	res, err := e.Query(context.Background(), sql)
	if err != nil {
		tb.Fatalf("%v\n%s", err, sql)
	}
	var b bytes.Buffer
	res.Render(&b, "csv")
	return b.String()
}

// The same statements over the MinIO copy (through the sparse cache, with every byte not
// fetched reading as 0xFF, so a read of anything not fetched breaks the file) and over the local
// copy give the same results.
func TestRemoteMatchesLocal(t *testing.T) {
	ctx := context.Background()
	dir, _ := synthArchive(t, 100_000)
	s3 := minioCopy(t, dir)
	local, _ := archive.OpenLocal(dir)
	le, err := Open(ctx, local, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer le.Close()
	re, err := Open(ctx, s3, Options{CacheDir: t.TempDir(), fillHoles: 0xFF, wholeBelow: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	if le.Parts() != re.Parts() || le.Parts() == 0 {
		t.Fatalf("parts: local %d, remote %d", le.Parts(), re.Parts())
	}
	footers := re.Fetched()
	t.Logf("opening fetched %d of %d bytes", footers.Bytes, footers.FileBytes)
	rfp := mustGet(t, "rollout-first-pull").SQL
	if got, want := render(t, re, rfp), render(t, le, rfp); got != want {
		t.Errorf("rollout-first-pull differs:\nremote:\n%s\nlocal:\n%s", got, want)
	} else if strings.Count(want, "\n") < 5 {
		t.Errorf("rollout-first-pull has too few rows to compare:\n%s", want)
	}
	afterQuery := re.Fetched()
	t.Logf("rollout-first-pull fetched %d of %d bytes (%.1f%%) in %d requests", afterQuery.Bytes, afterQuery.FileBytes,
		100*float64(afterQuery.Bytes)/float64(afterQuery.FileBytes), afterQuery.Requests)
	// Footers and page indexes are a large share of parts this small (a third); at 10 M spans the
	// query fetches under a fifth of the archive (docs/performance.md).
	if afterQuery.Bytes*10 > afterQuery.FileBytes*8 {
		t.Errorf("rollout-first-pull fetched %d of %d bytes", afterQuery.Bytes, afterQuery.FileBytes)
	}
	// Again: nothing more to fetch.
	render(t, re, rfp)
	if again := re.Fetched(); again.Bytes != afterQuery.Bytes {
		t.Errorf("second run fetched %d more bytes", again.Bytes-afterQuery.Bytes)
	}
	stmts := []string{
		"SELECT * FROM spans ORDER BY span_id, observation_id LIMIT 50",
		"SELECT * FROM objects ORDER BY uid LIMIT 50",
		"SELECT kind, reason, count(*) FROM spans GROUP BY ALL ORDER BY ALL",
		"SET VARIABLE since_minutes = 5",
	}
	for _, name := range queries.Names() {
		stmts = append(stmts, trimStatement(mustGet(t, name).SQL))
	}
	stmts = append(stmts, "SELECT count(*), max(hash(COLUMNS(*))) FROM spans")
	for _, q := range stmts {
		start := time.Now()
		if got, want := render(t, re, q), render(t, le, q); got != want {
			t.Errorf("%s differs:\nremote:\n%.2000s\nlocal:\n%.2000s", q, got, want)
		}
		if d := time.Since(start); d > time.Second {
			t.Logf("%s %.40q", d.Round(time.Millisecond), q)
		}
	}
	if all := re.Fetched(); all.Bytes > all.FileBytes+all.FileBytes/20 {
		t.Errorf("fetched %d bytes of a %d-byte archive", all.Bytes, all.FileBytes)
	}
}

func TestPartitionPruning(t *testing.T) {
	ctx := context.Background()
	dir, _ := synthArchive(t, 20_000)
	local, _ := archive.OpenLocal(dir)
	all, err := Open(ctx, local, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	since := syntharchive.Start.Add(time.Hour + 10*time.Minute) // inside the window starting 01:00
	until := syntharchive.Start.Add(3 * time.Hour)              // the window starting 03:00 is out
	e, err := Open(ctx, local, Options{Since: since, Until: until, Clusters: []string{"prod-2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if want := 4; e.Parts() != want { // 01:00, 01:30, 02:00, 02:30
		t.Errorf("%d parts, want %d", e.Parts(), want)
	}
	q := "SELECT cluster, window_start, count(*) FROM %s GROUP BY ALL ORDER BY ALL"
	got := render(t, e, strings.Replace(q, "%s", "spans", 1))
	want := render(t, all, strings.Replace(q, "%s", "spans WHERE cluster = 'prod-2' AND window_start >= TIMESTAMP '2026-11-23 01:00:00' AND window_start < TIMESTAMP '2026-11-23 03:00:00'", 1))
	if got != want {
		t.Errorf("pruned:\n%s\nwant:\n%s", got, want)
	}
	gotObj := render(t, e, "SELECT DISTINCT window_start FROM object_windows ORDER BY 1")
	if n := strings.Count(gotObj, "\n"); n != 5 {
		t.Errorf("object index not pruned:\n%s", gotObj)
	}
	// Until only, and a cluster that is not there.
	if e2, err := Open(ctx, local, Options{Until: syntharchive.Start.Add(time.Minute)}); err != nil || e2.Parts() != syntharchive.Clusters {
		t.Errorf("until: %v parts, %v", e2.Parts(), err)
	} else {
		e2.Close()
	}
	if e3, err := Open(ctx, local, Options{Clusters: []string{"nope"}}); err != nil || e3.Parts() != 0 {
		t.Errorf("unknown cluster: %v", err)
	} else {
		e3.Close()
	}
}

func TestWindowLength(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 24, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		starts []time.Time
		want   time.Duration
	}{
		{[]time.Time{at(5, 30), at(6, 0), at(9, 0)}, 30 * time.Minute},
		{[]time.Time{at(5, 0), at(7, 0)}, time.Hour}, // windows could be 30m too: an upper bound
		{[]time.Time{at(5, 5), at(5, 10)}, 5 * time.Minute},
		{nil, time.Minute},
	} {
		if got := windowLength(tc.starts); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.starts, got, tc.want)
		}
	}
}

// The cache stays under its bound between Engines, and never drops files an open Engine uses.
func TestCacheEviction(t *testing.T) {
	ctx := context.Background()
	dir, _ := synthArchive(t, 20_000)
	s3 := minioCopy(t, dir)
	cache := t.TempDir()
	full := "SELECT count(*), max(hash(COLUMNS(*))) FROM spans"
	local, _ := archive.OpenLocal(dir)
	le, _ := Open(ctx, local, Options{Clusters: []string{"prod-1"}})
	want := render(t, le, full)
	le.Close()

	a, err := Open(ctx, s3, Options{CacheDir: cache, CacheBytes: 1, Clusters: []string{"prod-1"}, wholeBelow: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := render(t, a, full); got != want {
		t.Errorf("got %s want %s", got, want)
	}
	// A second Engine with the same tiny bound evicts what it can: not a's files.
	b, err := Open(ctx, s3, Options{CacheDir: cache, CacheBytes: 1, Clusters: []string{"prod-2"}})
	if err != nil {
		t.Fatal(err)
	}
	render(t, b, full)
	if got := render(t, a, full); got != want {
		t.Errorf("after another engine's eviction: got %s want %s", got, want)
	}
	for _, sf := range a.remote.files {
		if _, err := os.Stat(sf.path); err != nil {
			t.Errorf("a file in use was evicted: %v", err)
		}
	}
	a.Close()
	b.Close()
	// Nobody holds anything: the next eviction empties the cache down to the bound.
	c, err := Open(ctx, s3, Options{CacheDir: cache, CacheBytes: 200 << 10, Clusters: []string{"prod-3"}, Until: syntharchive.Start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	render(t, c, full)
	c.Close()
	c.remote.evict()
	var total int64
	filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".parquet") {
			total += allocated(fi)
		}
		return nil
	})
	if total > 200<<10 {
		t.Errorf("cache holds %d bytes, bound %d", total, 200<<10)
	}
}
