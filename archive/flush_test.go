package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairn-dev/kairn/internal/testminio"
)

// fakeClock is a settable Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}
func (c *fakeClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runFlusher runs f.Run until the test ends.
func runFlusher(t *testing.T, f *Flusher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestFlusherWindowOf(t *testing.T) {
	f, err := NewFlusher(FlusherOptions{Store: &Local{}, Spool: &Spool{}, Build: testBuild, Writer: "w", Window: 7 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{
		time.Date(2026, 11, 24, 5, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 24, 5, 33, 59, 999, time.FixedZone("x", 3600)),
		time.Unix(-1, 0),
		time.Unix(0, 0),
	} {
		w := f.WindowOf(at)
		// Epoch-aligned (time.Truncate would align 7-minute windows to year 1 instead).
		if w.Unix()%420 != 0 || w.Nanosecond() != 0 || at.Before(w) || !at.Before(w.Add(7*time.Minute)) || w.Location() != time.UTC {
			t.Errorf("WindowOf(%s) = %s", at, w)
		}
	}
}

func TestNewFlusherOptions(t *testing.T) {
	ok := FlusherOptions{Store: &Local{}, Spool: &Spool{}, Build: testBuild, Writer: "w", Window: time.Minute}
	for name, change := range map[string]func(o *FlusherOptions){
		"window under a minute":   func(o *FlusherOptions) { o.Window = 30 * time.Second },
		"window not whole minute": func(o *FlusherOptions) { o.Window = 90 * time.Second },
		"negative grace":          func(o *FlusherOptions) { o.Grace = -time.Second },
		"no writer":               func(o *FlusherOptions) { o.Writer = "" },
		"writer with slash":       func(o *FlusherOptions) { o.Writer = "a/b" },
		"no build":                func(o *FlusherOptions) { o.Build = nil },
		"no store":                func(o *FlusherOptions) { o.Store = nil },
	} {
		o := ok
		change(&o)
		if _, err := NewFlusher(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	reg := prometheus.NewRegistry()
	ok.Registerer = reg
	if _, err := NewFlusher(ok); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFlusher(ok); err == nil {
		t.Error("a second flusher registered the same metrics")
	}
}

func TestFlusherWindowsAndLateParts(t *testing.T) {
	ctx := context.Background()
	spool := openTestSpool(t, SpoolOptions{Dir: t.TempDir()})
	st, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(testWindow.Add(10 * time.Second))
	reg := prometheus.NewRegistry()
	f, err := NewFlusher(FlusherOptions{
		Store: st, Spool: spool, Window: time.Minute, Grace: 30 * time.Second, Writer: "w",
		Build: testBuild, Now: clock.now, Tick: 2 * time.Millisecond, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	var gotNames []string
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		gotNames = append(gotNames, mf.GetName())
	}
	wantNames := []string{
		"kairn_flush_duration_seconds", "kairn_flush_last_success_timestamp_seconds", "kairn_flush_parts_uploaded_total",
		"kairn_flush_rows_written_total", "kairn_flush_upload_failures_total", "kairn_open_windows",
		"kairn_spool_backlog_bytes", "kairn_spool_backlog_windows", "kairn_spool_oldest_window_age_seconds",
		"kairn_spool_records_appended_total", "kairn_spool_records_rejected_total",
	}
	if !slices.Equal(gotNames, wantNames) {
		t.Errorf("metrics %q, want %q", gotNames, wantNames)
	}
	runFlusher(t, f)

	a, b := testWindow, testWindow.Add(time.Minute)
	want := map[string]bool{}
	add := func(id string, at time.Time) {
		t.Helper()
		if err := f.Add(at, testRecord(id, at, 10)); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	add("a1", a.Add(10*time.Second))
	add("b1", b.Add(5*time.Second))

	// A closes at A+1m+30s; a tick before that nothing moves.
	clock.set(a.Add(time.Minute + 29*time.Second))
	time.Sleep(20 * time.Millisecond)
	if got := windowsSummary(spool.Windows()); !slices.Equal(got, []string{"20261124T0530 n=1", "20261124T0531 n=1"}) {
		t.Fatalf("before A closes: %q", got)
	}
	clock.set(a.Add(time.Minute + 30*time.Second))
	waitFor(t, 5*time.Second, "window A to flush", func() bool { return len(spool.Windows()) == 1 })
	if !spool.Closed(a) || spool.Closed(b) {
		t.Errorf("closed: A %v, B %v", spool.Closed(a), spool.Closed(b))
	}

	// Late data for A: its own segment, flushed within a tick as a late part.
	add("a2", a.Add(50*time.Second))
	waitFor(t, 5*time.Second, "the late part of A", func() bool { return len(spool.Windows()) == 1 })
	if got := metricValue(t, reg, "kairn_spool_backlog_bytes"); got != float64(frameSize(string(testRecord("b1", b.Add(5*time.Second), 10)))) {
		t.Errorf("backlog bytes = %v with only b1 spooled", got)
	}
	if got := metricValue(t, reg, "kairn_spool_backlog_windows"); got != 1 {
		t.Errorf("backlog windows = %v", got)
	}

	// FlushAll flushes B although it is open; later records for B are late.
	if err := f.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	add("b2", b.Add(40*time.Second))
	waitFor(t, 5*time.Second, "the late part of B", func() bool { return spool.Bytes() == 0 })

	rows, keys := readStoredSpans(t, st)
	checkExactlyOnce(t, rows, want, time.Minute)
	if len(rows) != len(want) {
		t.Errorf("%d rows stored for %d records", len(rows), len(want))
	}
	var shapes []string
	for _, k := range keys {
		shape := k[:strings.LastIndex(k, "-")] // drop the hash
		shapes = append(shapes, shape)
	}
	if want := []string{
		"spans/cluster=c/window=20261124T0530/w", "spans/cluster=c/window=20261124T0530/w-late",
		"spans/cluster=c/window=20261124T0531/w", "spans/cluster=c/window=20261124T0531/w-late",
	}; !slices.Equal(shapes, want) {
		t.Errorf("parts %q, want %q", keys, want)
	}
	for name, want := range map[string]float64{
		"kairn_spool_records_appended_total": 4,
		"kairn_flush_parts_uploaded_total":   4,
		"kairn_flush_upload_failures_total":  0,
		"kairn_spool_backlog_bytes":          0,
		"kairn_spool_backlog_windows":        0,
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if ts := metricValue(t, reg, "kairn_flush_last_success_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last success timestamp %v", ts)
	}
}

// ackLostStore stores objects but reports the first few Puts as failed, as when the connection
// drops after the store took the object.
type ackLostStore struct {
	Store
	lose atomic.Int32
}

func (s *ackLostStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.Store.Put(ctx, key, r, size); err != nil {
		return err
	}
	if s.lose.Add(-1) >= 0 {
		return errors.New("connection reset after upload")
	}
	return nil
}

// A retried upload replaces its part: the same records give the same part name.
func TestFlusherRetriedUploadReplacesPart(t *testing.T) {
	spool := openTestSpool(t, SpoolOptions{Dir: t.TempDir()})
	local, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := &ackLostStore{Store: local}
	st.lose.Store(3)
	reg := prometheus.NewRegistry()
	f, err := NewFlusher(FlusherOptions{
		Store: st, Spool: spool, Window: time.Minute, Writer: "w", Build: testBuild,
		Backoff: BackoffOptions{Initial: time.Millisecond, Max: 4 * time.Millisecond}, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, id := range []string{"x", "y", "z"} {
		if err := f.Add(testWindow, testRecord(id, testWindow, 0)); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	rows, keys := readStoredSpans(t, local)
	checkExactlyOnce(t, rows, want, time.Minute)
	if len(keys) != 1 {
		t.Errorf("parts %q, want one", keys)
	}
	if got := metricValue(t, reg, "kairn_flush_upload_failures_total"); got != 3 {
		t.Errorf("upload failures = %v, want 3", got)
	}
}

// A window whose Build fails stays spooled and does not hold up the others.
func TestFlusherBuildFailureKeepsRecords(t *testing.T) {
	spool := openTestSpool(t, SpoolOptions{Dir: t.TempDir()})
	st, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var broken atomic.Bool
	broken.Store(true)
	f, err := NewFlusher(FlusherOptions{
		Store: st, Spool: spool, Window: time.Minute, Writer: "w",
		Build: func(w time.Time, replay func(func([]byte) error) error) ([]Span, error) {
			if broken.Load() && w.Equal(testWindow) {
				return nil, errors.New("cannot build")
			}
			return testBuild(w, replay)
		},
		Backoff: BackoffOptions{Initial: time.Millisecond, Max: 4 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"bad": true, "good": true}
	if err := f.Add(testWindow, testRecord("bad", testWindow, 0)); err != nil {
		t.Fatal(err)
	}
	next := testWindow.Add(time.Minute)
	if err := f.Add(next, testRecord("good", next, 0)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.FlushAll(ctx); err == nil || !strings.Contains(err.Error(), "cannot build") {
		t.Fatalf("FlushAll with a failing Build: %v", err)
	}
	if got := windowsSummary(spool.Windows()); !slices.Equal(got, []string{"20261124T0530 n=1 sealed"}) {
		t.Fatalf("spooled after the failure: %q", got)
	}
	broken.Store(false)
	if err := f.FlushAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := readStoredSpans(t, st)
	checkExactlyOnce(t, rows, want, time.Minute)
}

// syncLog is a log destination for slog that tests read while the flusher writes.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// The object store goes away while windows close: everything stays spooled (the backlog grows),
// and once the store is back every record is uploaded exactly once.
func TestFlusherStoreOutage(t *testing.T) {
	isolateAWSEnv(t)
	srv := testminio.StartServer(t)
	const bucket = "kairn-outage"
	testminio.Bucket(t, srv.Endpoint, srv.AccessKey, srv.SecretKey, bucket)
	ctx := context.Background()
	st, err := OpenS3(ctx, "s3://"+bucket+"/archive", S3Options{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	spool := openTestSpool(t, SpoolOptions{Dir: t.TempDir()})
	clock := newFakeClock(testWindow)
	reg := prometheus.NewRegistry()
	logs := &syncLog{}
	f, err := NewFlusher(FlusherOptions{
		Store: st, Spool: spool, Window: time.Minute, Grace: 5 * time.Second, Writer: "collect-a",
		Build: testBuild, Now: clock.now, Tick: 10 * time.Millisecond,
		Backoff:    BackoffOptions{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	runFlusher(t, f)
	want := map[string]bool{}
	n := 0
	add := func(at time.Time) {
		t.Helper()
		id := "obs-" + string(rune('a'+n/26)) + string(rune('a'+n%26))
		n++
		if err := f.Add(at, testRecord(id, at, 100)); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	backlog := func() float64 { return metricValue(t, reg, "kairn_spool_backlog_bytes") }

	// Store up: window 0 flushes.
	for i := 0; i < 5; i++ {
		add(testWindow.Add(time.Duration(i) * time.Second))
	}
	clock.set(testWindow.Add(time.Minute + 5*time.Second))
	waitFor(t, 30*time.Second, "window 0 to flush", func() bool { return backlog() == 0 })

	// Store down: windows 1-4 fill and close, a straggler arrives for window 0.
	srv.Stop()
	prev := backlog()
	for w := 1; w <= 4; w++ {
		start := testWindow.Add(time.Duration(w) * time.Minute)
		for i := 0; i < 5; i++ {
			add(start.Add(time.Duration(i) * time.Second))
			if b := backlog(); b <= prev {
				t.Fatalf("backlog did not grow: %v after %v", b, prev)
			} else {
				prev = b
			}
		}
		clock.set(start.Add(time.Minute + 5*time.Second))
		time.Sleep(50 * time.Millisecond)
	}
	add(testWindow.Add(30 * time.Second))
	waitFor(t, 60*time.Second, "failed uploads", func() bool {
		return metricValue(t, reg, "kairn_flush_upload_failures_total") >= 3
	})
	records := 0
	for _, w := range spool.Windows() {
		records += w.Records
	}
	if records != 21 || backlog() < prev || metricValue(t, reg, "kairn_spool_backlog_windows") != 5 {
		t.Fatalf("during the outage: %d records spooled (want 21), backlog %v bytes in %v windows: %q",
			records, backlog(), metricValue(t, reg, "kairn_spool_backlog_windows"), windowsSummary(spool.Windows()))
	}

	// Store back: the backlog drains.
	srv.Restart()
	waitFor(t, 90*time.Second, "the backlog to drain", func() bool {
		return backlog() == 0 && metricValue(t, reg, "kairn_spool_backlog_windows") == 0
	})
	rows, keys := readStoredSpans(t, st)
	checkExactlyOnce(t, rows, want, time.Minute)
	if len(rows) != len(want) {
		t.Errorf("%d rows stored for %d records", len(rows), len(want))
	}
	if !strings.Contains(logs.String(), "archive flush failed") {
		t.Errorf("no failure logged:\n%s", logs.String())
	}
	t.Logf("%d records in %d parts; %v failed flush attempts during the outage", len(rows), len(keys),
		metricValue(t, reg, "kairn_flush_upload_failures_total"))
}
