package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BackoffOptions shape the retries of a failed flush: exponential from Initial, capped at Max,
// with jitter.
type BackoffOptions struct {
	Initial time.Duration // default 1s
	Max     time.Duration // default 1m
}

// delay is the wait before retry number attempt (1, 2, …): a random point in the upper half of
// the exponential step, so collectors that lost the same store do not all come back at once.
func (b BackoffOptions) delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// FlusherOptions configure a Flusher.
type FlusherOptions struct {
	Store Store
	Spool *Spool
	// Window is the window size: windows are [start, start+Window), aligned to the Unix epoch.
	// A whole number of minutes, at least one.
	Window time.Duration
	// Grace is how long after its end a window stays open for stragglers: it closes at
	// start+Window+Grace. Records for a closed window go to a late part.
	Grace time.Duration
	// Writer prefixes part names, e.g. "collect-a"; late parts use Writer+"-late".
	Writer string
	// Build turns the records of one segment of a window into span rows. It must be
	// deterministic: the same records must give the same rows (span ids above all), because the
	// part name is a hash of the span ids, and that is what makes a retried upload replace its
	// part instead of adding a second one. It should drop duplicate records (same observation
	// id) within the segment. replay calls fn with each record; rec is fn's to keep.
	Build func(window time.Time, replay func(fn func(rec []byte) error) error) ([]Span, error)
	// Now is the clock that decides when windows close; default time.Now.
	Now func() time.Time
	// Tick is how often Run looks for windows to close and late segments to flush; default 1s.
	Tick       time.Duration
	Backoff    BackoffOptions
	Registerer prometheus.Registerer // may be nil
	Logger     *slog.Logger          // may be nil
}

// Flusher cuts records into windows, spools them, and writes each window's records to the store
// as Parquet parts once the window closes.
//
// Every record lands in exactly one spool segment, and each segment is uploaded as parts whose
// names depend only on its records, so parts never hold an acknowledged record twice, however
// often an upload is retried or interrupted. Records that a source sent twice (because it was not
// acknowledged the first time, e.g. after ErrSpoolFull or a crash between the fsync and the
// acknowledgement) can land in two segments, hence in two parts: the merger removes those by
// observation id, as it does across collectors.
type Flusher struct {
	o       FlusherOptions
	log     *slog.Logger
	flushMu sync.Mutex // one flush at a time: Run and FlushAll must not upload and drop the same segment

	appended, rejected, parts, rowsOut, failures prometheus.Counter
	lastSuccess                                  prometheus.Gauge
	duration                                     prometheus.Histogram
}

// NewFlusher checks the options, fills in defaults and registers the metrics:
//
//	kairn_spool_backlog_bytes                  bytes in the spool
//	kairn_spool_backlog_windows                windows with records in the spool
//	kairn_spool_records_appended_total         records acknowledged by the spool
//	kairn_spool_records_rejected_total         records refused because the spool was full
//	kairn_spool_oldest_window_age_seconds      how long ago the oldest spooled window started
//	kairn_open_windows                         spooled windows not closed yet
//	kairn_flush_parts_uploaded_total           parts written to the store
//	kairn_flush_rows_written_total             span rows written to the store
//	kairn_flush_duration_seconds               time to build and upload one spool segment
//	kairn_flush_upload_failures_total          failed attempts to flush a segment (build or upload)
//	kairn_flush_last_success_timestamp_seconds when a segment was last flushed and dropped
func NewFlusher(o FlusherOptions) (*Flusher, error) {
	switch {
	case o.Store == nil || o.Spool == nil || o.Build == nil:
		return nil, errors.New("flusher: Store, Spool and Build are required")
	case o.Window < time.Minute || o.Window%time.Minute != 0:
		return nil, fmt.Errorf("flusher: window %s is not a whole number of minutes (at least 1m)", o.Window)
	case o.Grace < 0:
		return nil, fmt.Errorf("flusher: negative grace %s", o.Grace)
	case o.Writer == "" || strings.ContainsAny(o.Writer, "/\\"):
		return nil, fmt.Errorf("flusher: writer %q must be non-empty and free of slashes", o.Writer)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Backoff.Initial <= 0 {
		o.Backoff.Initial = time.Second
	}
	if o.Backoff.Max <= 0 {
		o.Backoff.Max = time.Minute
	}
	o.Backoff.Max = max(o.Backoff.Max, o.Backoff.Initial)
	f := &Flusher{o: o, log: o.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}

	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	f.appended = counter("kairn_spool_records_appended_total", "Records written and fsync'd to the spool (acknowledged).")
	f.rejected = counter("kairn_spool_records_rejected_total", "Records refused because the spool was at its disk bound.")
	f.parts = counter("kairn_flush_parts_uploaded_total", "Parquet parts written to the object store.")
	f.rowsOut = counter("kairn_flush_rows_written_total", "Span rows written to the object store.")
	f.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairn_flush_duration_seconds",
		Help: "Time to build and upload one spool segment.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	f.failures = counter("kairn_flush_upload_failures_total", "Failed attempts to flush a spool segment (build or upload); retried.")
	f.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kairn_flush_last_success_timestamp_seconds",
		Help: "Unix time of the last segment flushed to the store and dropped from the spool.",
	})
	backlogBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kairn_spool_backlog_bytes",
		Help: "Bytes of records in the spool, waiting for their window to be flushed.",
	}, func() float64 { return float64(o.Spool.Bytes()) })
	backlogWindows := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kairn_spool_backlog_windows",
		Help: "Windows with records in the spool.",
	}, func() float64 { return float64(len(spooledStarts(o.Spool.Windows()))) })
	oldestAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kairn_spool_oldest_window_age_seconds",
		Help: "How long ago the oldest window with records in the spool started (0: spool empty).",
	}, func() float64 {
		if starts := spooledStarts(o.Spool.Windows()); len(starts) > 0 {
			return o.Now().Sub(starts[0]).Seconds()
		}
		return 0
	})
	openWindows := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kairn_open_windows",
		Help: "Windows with records in the spool that are not closed yet (end + grace in the future).",
	}, func() float64 {
		now, n := o.Now(), 0
		for _, start := range spooledStarts(o.Spool.Windows()) {
			if now.Before(start.Add(o.Window + o.Grace)) {
				n++
			}
		}
		return float64(n)
	})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{f.appended, f.rejected, f.parts, f.rowsOut, f.failures, f.lastSuccess, f.duration, backlogBytes, backlogWindows, oldestAge, openWindows} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("flusher: registering metrics: %w", err)
			}
		}
	}
	return f, nil
}

// WindowOf is the start of the window holding t. It uses Unix nanoseconds rather than
// time.Truncate, which aligns to the zero time, not to the epoch.
func (f *Flusher) WindowOf(t time.Time) time.Time {
	w := int64(f.o.Window)
	ns := t.UnixNano()
	r := ns % w
	if r < 0 {
		r += w
	}
	return time.Unix(0, ns-r).UTC()
}

// Add spools records that happened at t into t's window, or into its late segment when the window
// is already closed. It returns nil once the records are durable: only then may their source be
// acknowledged. On ErrSpoolFull (wrapped) the source must not be acknowledged and should retry
// later; nothing already spooled is affected.
func (f *Flusher) Add(t time.Time, recs ...[]byte) error {
	err := f.o.Spool.AppendBatch(f.WindowOf(t), false, recs)
	switch {
	case err == nil:
		f.appended.Add(float64(len(recs)))
	case errors.Is(err, ErrSpoolFull):
		f.rejected.Add(float64(len(recs)))
	}
	return err
}

// Run closes windows as they come due (start+Window+Grace, by Now) and flushes them, and flushes
// late segments within a tick of their appearing. A failure (the store is down, Build fails) keeps
// everything spooled and is retried with exponential backoff; each failed attempt is logged
// once. Run returns nil when ctx is done; what is still spooled is flushed by FlushAll or by the
// next Run, after a restart too.
func (f *Flusher) Run(ctx context.Context) error {
	attempt := 0
	for {
		wait := f.o.Tick
		if err := f.flush(ctx, false); err != nil && ctx.Err() == nil {
			attempt++
			wait = f.o.Backoff.delay(attempt)
			f.log.Warn("archive flush failed; records stay spooled, retrying",
				"attempt", attempt, "retry_in", wait, "backlog_bytes", f.o.Spool.Bytes(), "err", err)
		} else {
			attempt = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// FlushAll closes and flushes every window in the spool now, open ones too (on shutdown, and at
// the end of an offline ingest): records that arrive for them afterwards are late. It retries
// with backoff until one attempt succeeds or ctx is done.
func (f *Flusher) FlushAll(ctx context.Context) error {
	var cause error // the last failure that was not the deadline itself: what to report
	for attempt := 1; ; attempt++ {
		err := f.flush(ctx, true)
		if err == nil {
			return nil
		}
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			cause = err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("archive flush: %w (%d bytes stay spooled)", errors.Join(cause, err), f.o.Spool.Bytes())
		}
		wait := f.o.Backoff.delay(attempt)
		f.log.Warn("archive flush failed; records stay spooled, retrying",
			"attempt", attempt, "retry_in", wait, "backlog_bytes", f.o.Spool.Bytes(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("archive flush: %w (%d bytes stay spooled)", errors.Join(cause, ctx.Err()), f.o.Spool.Bytes())
		case <-t.C:
		}
	}
}

// flush closes and flushes the windows that are due (all of them with all set), in window
// order. A window that fails does not hold up the others.
func (f *Flusher) flush(ctx context.Context, all bool) error {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	now := f.o.Now()
	var due []SpoolWindow
	for _, w := range f.o.Spool.Windows() {
		if all || w.Late || w.Sealed || !now.Before(w.Start.Add(f.o.Window+f.o.Grace)) {
			due = append(due, w)
		}
	}
	if len(due) == 0 {
		return nil
	}
	// One call closes them all: one durable rewrite of the closed-windows list, not one per
	// window.
	segs, err := f.o.Spool.CloseWindows(spooledStarts(due)...)
	errs := []error{err}
	for _, seg := range segs {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := f.flushSegment(ctx, seg); err != nil {
			f.failures.Inc()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flushSegment uploads one sealed segment and drops it. Interrupted anywhere, it is simply done
// again: the same records give the same part names.
func (f *Flusher) flushSegment(ctx context.Context, seg SpoolWindow) error {
	defer prometheus.NewTimer(f.duration).ObserveDuration()
	what := "window " + WindowKey(seg.Start)
	writer := f.o.Writer
	if seg.Late {
		what += fmt.Sprintf(" (late, generation %d)", seg.Gen)
		writer += "-late"
	}
	rows, err := f.o.Build(seg.Start, func(fn func(rec []byte) error) error { return f.o.Spool.Replay(seg, fn) })
	if err != nil {
		return fmt.Errorf("%s: build: %w", what, err)
	}
	parts, err := WriteParts(ctx, f.o.Store, writer, rows)
	f.parts.Add(float64(len(parts)))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := f.o.Spool.Drop(seg); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	f.rowsOut.Add(float64(len(rows)))
	f.lastSuccess.SetToCurrentTime()
	f.log.Info("flushed window", "window", WindowKey(seg.Start), "late", seg.Late,
		"records", seg.Records, "rows", len(rows), "parts", len(parts))
	return nil
}

// spooledStarts lists the distinct window starts of ws (sorted by start).
func spooledStarts(ws []SpoolWindow) []time.Time {
	var out []time.Time
	for _, w := range ws {
		if len(out) == 0 || !out[len(out)-1].Equal(w.Start) {
			out = append(out, w.Start)
		}
	}
	return out
}
