package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/kairn-dev/kairn/analyze"
	"github.com/kairn-dev/kairn/archive"
)

func runAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("analyze", "[--archive DIR|s3://...] [--jobs FILE] [--once [--since T] [--until T]]", stderr)
	archiveLoc := fs.String("archive", defaultArchive, "archive: a directory or s3://bucket/prefix")
	jobsFile := fs.String("jobs", "", "jobs file (YAML, see deploy/analyze-jobs.yaml); default: every library query daily over the previous UTC day")
	once := fs.Bool("once", false, "run every job now and exit (over the whole archive unless --since/--until)")
	sinceFlag := fs.String("since", "", "with --once: read from this time (RFC 3339, 2006-01-02[T15:04], or an offset from now: -24h, -7d)")
	untilFlag := fs.String("until", "", "with --once: read up to this time (same forms; 0s is now)")
	var only multiFlag
	fs.Var(&only, "job", "run only this job (repeatable)")
	csv := fs.Bool("csv", false, "also write every result as CSV (jobs can ask with formats: [csv])")
	force := fs.Bool("force", false, "rerun runs whose result already exists (default: keep them)")
	attempts := fs.Int("attempts", 3, "attempts per run before it is reported failed")
	backoff := fs.Duration("retry-backoff", 10*time.Second, "wait before the first retry (doubles each time)")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9465", "/metrics, /healthz, /readyz while scheduling; empty: off")
	logs := addLogFlags(fs)
	cacheDir := fs.String("cache-dir", "", "local cache of parts fetched from S3 (default $XDG_CACHE_HOME/kairn/parts)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	since, err := parseTimeFlag("since", *sinceFlag)
	if err != nil {
		return err
	}
	until, err := parseTimeFlag("until", *untilFlag)
	if err != nil {
		return err
	}
	if !*once && (!since.IsZero() || !until.IsZero()) {
		return usageErr("--since and --until go with --once; scheduled jobs take their range from the jobs file")
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return usageErr("--since %s is not before --until %s", *sinceFlag, *untilFlag)
	}

	jobs := analyze.DefaultJobs()
	if *jobsFile != "" {
		if jobs, err = analyze.ReadJobsFile(*jobsFile); err != nil {
			return usageErr("--jobs: %v", err)
		}
	}
	if jobs, err = selectJobs(jobs, only); err != nil {
		return err
	}
	if *csv {
		for i := range jobs {
			jobs[i].Formats = append(jobs[i].Formats, analyze.FormatCSV)
		}
	}
	store, err := archive.OpenStore(ctx, *archiveLoc)
	if err != nil {
		return err
	}
	outputs := map[string]archive.Store{}
	for _, j := range jobs {
		if j.Output != "" && outputs[j.Output] == nil {
			if outputs[j.Output], err = archive.OpenStore(ctx, j.Output); err != nil {
				return fmt.Errorf("job %s: output: %w", j.Name, err)
			}
		}
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	runner := analyze.NewRunner(store, analyze.RunnerOptions{
		Engine:   analyze.Options{CacheDir: *cacheDir},
		Outputs:  outputs,
		Attempts: *attempts,
		Backoff:  *backoff,
		Force:    *force,
		Log:      log,
		Metrics:  analyze.NewRunMetrics(reg),
	})
	if *once {
		return runJobsOnce(ctx, runner, jobs, since, until, store, stdout)
	}
	return scheduleJobs(ctx, runner, jobs, *metricsAddr, reg, log)
}

// runJobsOnce runs every job now, one after the other, and prints what each wrote. A failed job
// does not stop the others; the command fails if any did.
func runJobsOnce(ctx context.Context, runner *analyze.Runner, jobs []analyze.Job, since, until time.Time, store archive.Store, stdout io.Writer) error {
	at := time.Now().UTC().Truncate(time.Second)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tROWS\tSECONDS\tRESULT")
	var failed []string
	for _, j := range jobs {
		m, err := runner.Run(ctx, j, at, since, until)
		if err != nil {
			failed = append(failed, j.Name)
			fmt.Fprintf(tw, "%s\t-\t-\tFAILED: %v\n", j.Name, firstLine(err))
			continue
		}
		loc := store.String()
		if j.Output != "" {
			loc = j.Output
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s/%s\n", j.Name, m.Rows, m.DurationSeconds, strings.TrimSuffix(loc, "/"), analyze.RunPrefix(j.Name, m.Run))
		if ctx.Err() != nil {
			break
		}
	}
	tw.Flush()
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d jobs failed: %s", len(failed), len(jobs), strings.Join(failed, ", "))
	}
	return ctx.Err()
}

// scheduleJobs runs each job on its cron schedule (UTC) until ctx ends. A run is named by its
// scheduled time: cron fires on whole seconds, so the start time truncated to the second is it.
// A job still running when its next time comes skips that time.
func scheduleJobs(ctx context.Context, runner *analyze.Runner, jobs []analyze.Job, metricsAddr string, reg *prometheus.Registry, log *slog.Logger) error {
	cronLog := cron.VerbosePrintfLogger(slog.NewLogLogger(log.Handler(), slog.LevelDebug))
	sched := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.Recover(cronLog), cron.SkipIfStillRunning(cronLog)))
	names := map[cron.EntryID]string{}
	for _, j := range jobs {
		id, err := sched.AddFunc(j.Schedule, func() {
			at := time.Now().UTC().Truncate(time.Second)
			var since, until time.Time
			if j.Range != nil {
				since, until = j.Range.Resolve(at)
			}
			// Failures are logged and counted by the runner; the schedule goes on.
			runner.Run(ctx, j, at, since, until)
		})
		if err != nil {
			return fmt.Errorf("job %s: schedule %q: %w", j.Name, j.Schedule, err)
		}
		names[id] = j.Name
	}
	var ready atomic.Bool
	if metricsAddr != "" {
		stop, err := serveMetrics(metricsAddr, reg, &ready)
		if err != nil {
			return err
		}
		defer stop()
	}
	sched.Start()
	ready.Store(true)
	for _, e := range sched.Entries() {
		log.Info("scheduled", "job", names[e.ID], "next", e.Next.Format(time.RFC3339))
	}
	<-ctx.Done()
	log.Info("stopping: waiting for running jobs")
	<-sched.Stop().Done()
	return nil
}

func selectJobs(jobs []analyze.Job, only []string) ([]analyze.Job, error) {
	if len(only) == 0 {
		return jobs, nil
	}
	byName := map[string]analyze.Job{}
	var names []string
	for _, j := range jobs {
		byName[j.Name] = j
		names = append(names, j.Name)
	}
	var out []analyze.Job
	for _, n := range only {
		j, ok := byName[n]
		if !ok {
			return nil, usageErr("--job %s: no such job (have: %s)", n, strings.Join(names, ", "))
		}
		out = append(out, j)
	}
	return out, nil
}

// parseTimeFlag reads a time given as RFC 3339, a UTC date with an optional hh:mm, or a duration
// relative to now ("-24h", "-7d", "0s"), which a CronJob can pass without a shell.
func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	if strings.HasPrefix(v, "-") || v == "0s" || v == "0" {
		var d analyze.Duration
		if err := d.UnmarshalJSON([]byte(strconv.Quote(v))); err == nil {
			return time.Now().UTC().Add(time.Duration(d)), nil
		}
	}
	return time.Time{}, usageErr("--%s %q: want RFC 3339 (2026-11-24T05:00:00Z), a UTC date (2026-11-24, 2026-11-24T05:00) or an offset from now (-24h, -7d)", name, v)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
