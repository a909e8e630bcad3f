package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/link"
)

func runMerge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("merge", "[--archive DIR|s3://...] [--cluster NAME] [--window 30m] [--grace 5m] [--open] [--retain 30d] [--parallel 2]", stderr)
	archiveLoc := fs.String("archive", defaultArchive, "archive: a directory or s3://bucket/prefix")
	cluster := fs.String("cluster", "", "merge only this cluster's partitions (default: all)")
	window := fs.Duration("window", link.DefaultWindow, "window length the archive was written with")
	grace := fs.Duration("grace", 5*time.Minute, "a window is closed, and merged, once its end is this far in the past")
	retain := fs.String("retain", "", "delete partitions whose window ended longer ago than this (e.g. 30d, 12h); default: keep all")
	parallel := fs.Int("parallel", 2, "partitions merged at once")
	open := fs.Bool("open", false, "merge open windows too (parts that arrive later are merged again when the window closes)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	every := fs.Duration("every", 0, "stay up and merge again at this interval (e.g. 5m); default: merge once and exit")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9466", "with --every: /metrics, /healthz, /readyz; empty: off")
	logs := addLogFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("unexpected arguments %q", rest)
	}
	if *parallel < 1 {
		return usageErr("--parallel must be at least 1")
	}
	var retention time.Duration
	if *retain != "" {
		if retention, err = parseRetention(*retain); err != nil {
			return usageErr("--retain: %v", err)
		}
	}
	store, err := archive.OpenStore(ctx, *archiveLoc)
	if err != nil {
		return err
	}
	pass := mergePass{store: store, cluster: *cluster, window: *window, grace: *grace, retention: retention,
		parallel: *parallel, open: *open, quiet: *quiet, stderr: stderr}
	if *every <= 0 {
		_, err := pass.run(ctx)
		return err
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	return mergeEvery(ctx, pass, *every, *metricsAddr, log)
}

// mergePass is one merge over the archive's closed partitions, and retention.
type mergePass struct {
	store         archive.Store
	cluster       string
	window, grace time.Duration
	retention     time.Duration
	parallel      int
	open, quiet   bool
	stderr        io.Writer
}

// mergeStats is what a pass did.
type mergeStats struct {
	merged, closed, rows, expired int
}

func (m mergePass) run(ctx context.Context) (mergeStats, error) {
	store, stderr := m.store, m.stderr
	var stats mergeStats
	partitions, err := archive.ListPartitions(ctx, store)
	if err != nil {
		return stats, err
	}
	byPartition := map[archive.Partition]archive.PartitionParts{}
	for _, p := range partitions {
		byPartition[p.Partition] = p
	}
	now := time.Now()
	var todo []archive.PartitionParts
	var expired []archive.Partition
	for _, p := range partitions {
		if m.cluster != "" && p.Partition.Cluster != m.cluster {
			continue
		}
		end := p.Partition.Window.Add(m.window)
		switch {
		case m.retention > 0 && end.Before(now.Add(-m.retention)):
			expired = append(expired, p.Partition)
		case !m.open && end.Add(m.grace).After(now):
			// Still open: its writers may add parts. It is merged once closed.
		default:
			todo = append(todo, p)
		}
	}

	started := time.Now()
	var (
		mu                   sync.Mutex
		done, merged, rowsIn int
		firstErr             error
	)
	work := make(chan archive.PartitionParts)
	var wg sync.WaitGroup
	for range m.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pp := range work {
				neighbours, err := boundaryRows(ctx, store, byPartition, pp.Partition, m.window)
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					continue
				}
				res, err := archive.MergePartition(ctx, store, pp, func(rows []archive.Span) []archive.Span {
					return link.MergeRows(rows, neighbours)
				})
				mu.Lock()
				done++
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = fmt.Errorf("merge %s: %w", pp.Partition, err)
					}
					fmt.Fprintf(stderr, "[%d/%d] %s: %v\n", done, len(todo), pp.Partition, err)
				case !res.Skipped:
					merged++
					rowsIn += res.RowsIn
					if !m.quiet {
						fmt.Fprintf(stderr, "[%d/%d] %s: %d parts, %d rows → %d\n", done, len(todo), pp.Partition, res.PartsIn, res.RowsIn, res.RowsOut)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, pp := range todo {
		if ctx.Err() != nil {
			break
		}
		work <- pp
	}
	close(work)
	wg.Wait()
	stats = mergeStats{merged: merged, closed: len(todo), rows: rowsIn}
	if firstErr != nil {
		return stats, firstErr
	}
	for _, p := range expired {
		if err := archive.DeletePartition(ctx, store, p); err != nil {
			return stats, err
		}
		stats.expired++
	}
	if !m.quiet {
		secs := time.Since(started).Seconds()
		fmt.Fprintf(stderr, "merged %d of %d closed partitions (%d rows, %.0f rows/s), deleted %d expired, in %.2fs\n",
			merged, len(todo), rowsIn, float64(rowsIn)/max(secs, 1e-9), len(expired), secs)
	}
	return stats, nil
}

// mergeEvery runs a merge pass at every interval until ctx ends, with metrics. A failed pass is
// logged and counted, and the next one retries it (merges are idempotent).
func mergeEvery(ctx context.Context, pass mergePass, every time.Duration, metricsAddr string, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_merge_runs_total",
		Help: "Merge passes by result (success, failure)."}, []string{"result"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kairn_merge_duration_seconds",
		Help: "How long a merge pass took.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 14)})
	lastSuccess := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kairn_merge_last_success_timestamp_seconds",
		Help: "When the last successful merge pass finished (Unix seconds)."})
	partitions := prometheus.NewCounter(prometheus.CounterOpts{Name: "kairn_merge_partitions_total", Help: "Partitions merged."})
	rows := prometheus.NewCounter(prometheus.CounterOpts{Name: "kairn_merge_rows_total", Help: "Rows read by merges."})
	expired := prometheus.NewCounter(prometheus.CounterOpts{Name: "kairn_merge_expired_partitions_total", Help: "Partitions deleted by retention."})
	reg.MustRegister(runs, duration, lastSuccess, partitions, rows, expired)
	var ready atomic.Bool
	if metricsAddr != "" {
		stop, err := serveMetrics(metricsAddr, reg, &ready)
		if err != nil {
			return err
		}
		defer stop()
	}
	ready.Store(true)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		start := time.Now()
		stats, err := pass.run(ctx)
		duration.Observe(time.Since(start).Seconds())
		partitions.Add(float64(stats.merged))
		rows.Add(float64(stats.rows))
		expired.Add(float64(stats.expired))
		if err != nil && ctx.Err() == nil {
			runs.WithLabelValues("failure").Inc()
			log.Error("merge pass failed; retrying at the next interval", "err", err, "next", every)
		} else if err == nil {
			runs.WithLabelValues("success").Inc()
			lastSuccess.SetToCurrentTime()
			log.Info("merge pass done", "merged", stats.merged, "closed", stats.closed, "rows", stats.rows, "expired", stats.expired, "seconds", time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// boundaryMargin is how far from a window's edges facts of the adjacent windows are read, so that
// links whose halves landed on either side of a boundary are made: audit and watch times of one
// write differ by well under a second, Event timestamps by a second or two.
const boundaryMargin = 10 * time.Second

// boundaryRows reads the observations of the windows next to p that lie within boundaryMargin of
// p's edges.
func boundaryRows(ctx context.Context, store archive.Store, parts map[archive.Partition]archive.PartitionParts, p archive.Partition, window time.Duration) ([]archive.Span, error) {
	start, end := p.Window, p.Window.Add(window)
	var out []archive.Span
	for _, w := range []time.Time{start.Add(-window), end} {
		np := archive.Partition{Cluster: p.Cluster, Window: w}
		if _, ok := parts[np]; !ok {
			continue
		}
		rows, err := liveRows(ctx, store, np)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Kind != archive.KindObject && r.StartTime.After(start.Add(-boundaryMargin)) && r.StartTime.Before(end.Add(boundaryMargin)) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// liveRows reads the rows of a partition's parts in force. A merge of that partition running
// at the same time may replace its parts under us: then the listing is taken again.
func liveRows(ctx context.Context, store archive.Store, p archive.Partition) ([]archive.Span, error) {
	for attempt := 0; ; attempt++ {
		pp, err := archive.ListPartition(ctx, store, p)
		if err != nil {
			return nil, err
		}
		var rows []archive.Span
		for _, o := range pp.Live {
			part, err := archive.ReadPart(ctx, store, o.Key)
			if errors.Is(err, archive.ErrNotExist) && attempt < 5 {
				rows = nil
				break
			}
			if err != nil {
				return nil, err
			}
			rows = append(rows, part...)
		}
		if rows != nil || len(pp.Live) == 0 {
			return rows, nil
		}
	}
}

// parseRetention reads a duration that may be given in days: 30d, 36h, 90m.
func parseRetention(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration like 30d or 12h", s)
	}
	return d, nil
}
