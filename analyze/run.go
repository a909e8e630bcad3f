package analyze

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairn-dev/kairn/archive"
)

// ReportsPrefix is where job results live in a store: reports/<job>/run=<time>/.
const ReportsPrefix = "reports/"

// ManifestName is written last in a run's folder: a run without it is not a result.
const ManifestName = "_manifest.json"

// Manifest describes one finished run.
type Manifest struct {
	Job     string            `json:"job"`
	Query   string            `json:"query,omitempty"`
	SQLHash string            `json:"sql_sha256"`
	Params  map[string]string `json:"params,omitempty"`
	// Run is the scheduled time: it names the run, so a rerun replaces it.
	Run             time.Time      `json:"run"`
	Since           *time.Time     `json:"since,omitempty"`
	Until           *time.Time     `json:"until,omitempty"`
	Clusters        []string       `json:"clusters,omitempty"`
	Parts           int            `json:"parts_read"`
	Rows            int64          `json:"rows"`
	DurationSeconds float64        `json:"duration_seconds"`
	Attempts        int            `json:"attempts"`
	Files           []ManifestFile `json:"files"`
	FinishedAt      time.Time      `json:"finished_at"`
}

// ManifestFile is one result file of a run.
type ManifestFile struct {
	Key    string `json:"key"`
	Format string `json:"format"`
	Bytes  int64  `json:"bytes"`
}

// RunTimeLayout names runs: run=20261124T003000Z.
const RunTimeLayout = "20060102T150405Z"

// RunPrefix is the folder of one run of a job.
func RunPrefix(job string, at time.Time) string {
	return ReportsPrefix + job + "/run=" + at.UTC().Format(RunTimeLayout) + "/"
}

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	// Engine options for every run (cache, progress); Since, Until and Clusters are set per run.
	Engine Options
	// Outputs are the stores named by jobs' `output`, by location. A job without one writes to
	// the archive.
	Outputs map[string]archive.Store
	// Attempts per run before it is reported failed (default 3); retries wait Backoff, doubling
	// (default 10 s).
	Attempts int
	Backoff  time.Duration
	// Force reruns a run whose manifest already exists; by default it is kept and skipped.
	Force   bool
	Log     *slog.Logger
	Metrics *RunMetrics
}

// Runner runs report jobs over an archive.
type Runner struct {
	archive archive.Store
	opts    RunnerOptions
}

func NewRunner(store archive.Store, opts RunnerOptions) *Runner {
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{archive: store, opts: opts}
}

// Run runs job once for the run named by `at`, reading [since, until) (zero: unbounded). It
// retries failures and returns the manifest of the result.
func (r *Runner) Run(ctx context.Context, job Job, at, since, until time.Time) (*Manifest, error) {
	out, err := r.output(job)
	if err != nil {
		return nil, err
	}
	prefix := RunPrefix(job.Name, at)
	log := r.opts.Log.With("job", job.Name, "run", at.UTC().Format(RunTimeLayout))
	if !r.opts.Force {
		if m, err := ReadManifest(ctx, out, prefix); err == nil {
			log.Info("report run already done, kept", "rows", m.Rows, "at", out.String()+"/"+prefix)
			r.opts.Metrics.observe(job.Name, "skipped", nil)
			return m, nil
		} else if !errors.Is(err, archive.ErrNotExist) {
			return nil, err
		}
	}
	backoff := r.opts.Backoff
	for attempt := 1; ; attempt++ {
		m, err := r.runOnce(ctx, job, out, prefix, at, since, until, log)
		if err == nil {
			m.Attempts = attempt
			if err = putJSON(ctx, out, prefix+ManifestName, m); err == nil {
				log.Info("report run done", "rows", m.Rows, "seconds", m.DurationSeconds, "at", out.String()+"/"+prefix)
				r.opts.Metrics.observe(job.Name, "success", m)
				return m, nil
			}
		}
		// Never leave half a result: a run without a manifest is not one, and its files go.
		r.removeRun(context.WithoutCancel(ctx), out, prefix, log)
		if attempt >= r.opts.Attempts || ctx.Err() != nil {
			log.Error("report run failed", "attempts", attempt, "err", err)
			r.opts.Metrics.observe(job.Name, "failure", nil)
			return nil, fmt.Errorf("job %s: %w", job.Name, err)
		}
		log.Warn("report run failed, retrying", "attempt", attempt, "in", backoff, "err", err)
		r.opts.Metrics.retry(job.Name)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (r *Runner) output(job Job) (archive.Store, error) {
	if job.Output == "" {
		return r.archive, nil
	}
	if s, ok := r.opts.Outputs[job.Output]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("job %s: output %s was not opened", job.Name, job.Output)
}

func (r *Runner) runOnce(ctx context.Context, job Job, out archive.Store, prefix string, at, since, until time.Time, log *slog.Logger) (*Manifest, error) {
	start := time.Now()
	eopts := r.opts.Engine
	eopts.Since, eopts.Until, eopts.Clusters = since, until, job.Clusters
	if eopts.Progress == nil {
		eopts.Progress = logProgress(log)
	}
	eng, err := Open(ctx, r.archive, eopts)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	if err := eng.SetParams(ctx, job.Params); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "kairn-report-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	stmt := job.Statement()
	sum := sha256.Sum256([]byte(stmt))
	m := &Manifest{Job: job.Name, Query: job.Query, SQLHash: hex.EncodeToString(sum[:]), Params: job.Params, Run: at.UTC(),
		Clusters: job.Clusters, Parts: eng.Parts()}
	if !since.IsZero() {
		s := since.UTC()
		m.Since = &s
	}
	if !until.IsZero() {
		u := until.UTC()
		m.Until = &u
	}
	log.Info("report run started", "parts", eng.Parts(), "since", m.Since, "until", m.Until)
	local := map[string]string{FormatParquet: filepath.Join(tmp, "result.parquet")}
	if m.Rows, err = eng.copyTo(ctx, trimStatement(stmt), local[FormatParquet], "FORMAT parquet, COMPRESSION zstd"); err != nil {
		return nil, err
	}
	if job.wants(FormatCSV) {
		local[FormatCSV] = filepath.Join(tmp, "result.csv")
		if _, err := eng.copyTo(ctx, "SELECT * FROM read_parquet("+fileList([]string{local[FormatParquet]})+")", local[FormatCSV], "FORMAT csv, HEADER"); err != nil {
			return nil, err
		}
	}
	for _, format := range []string{FormatParquet, FormatCSV} {
		file, ok := local[format]
		if !ok {
			continue
		}
		key := prefix + "result." + format
		size, err := putFile(ctx, out, key, file)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, ManifestFile{Key: key, Format: format, Bytes: size})
	}
	m.DurationSeconds = time.Since(start).Seconds()
	m.FinishedAt = time.Now().UTC()
	return m, nil
}

// copyTo runs stmt into a local file with DuckDB's COPY and returns the row count.
func (e *Engine) copyTo(ctx context.Context, stmt, file, options string) (int64, error) {
	res, err := e.db.ExecContext(ctx, "COPY ("+stmt+") TO '"+strings.ReplaceAll(file, "'", "''")+"' ("+options+")")
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// trimStatement drops trailing semicolons, so a statement can be nested in COPY or a view.
func trimStatement(s string) string {
	s = strings.TrimSpace(s)
	for strings.HasSuffix(s, ";") {
		s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	}
	return s
}

func (r *Runner) removeRun(ctx context.Context, out archive.Store, prefix string, log *slog.Logger) {
	objs, err := out.List(ctx, prefix)
	if err != nil {
		log.Warn("cannot list a failed run's files to remove them", "err", err)
		return
	}
	for _, o := range objs {
		if err := out.Delete(ctx, o.Key); err != nil {
			log.Warn("cannot remove a failed run's file", "key", o.Key, "err", err)
		}
	}
}

// ReadManifest reads the manifest of the run folder prefix.
func ReadManifest(ctx context.Context, store archive.Store, prefix string) (*Manifest, error) {
	rc, err := store.Get(ctx, path.Join(prefix, ManifestName))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m Manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", path.Join(prefix, ManifestName), err)
	}
	return &m, nil
}

func putJSON(ctx context.Context, store archive.Store, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return store.Put(ctx, key, bytes.NewReader(append(data, '\n')), int64(len(data)+1))
}

func putFile(ctx context.Context, store archive.Store, key, file string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), store.Put(ctx, key, f, fi.Size())
}

// logProgress logs fetch progress at every quarter of a long fetch.
func logProgress(log *slog.Logger) func(done, total int) {
	last := -1
	return func(done, total int) {
		if total < 20 {
			return
		}
		if q := done * 4 / total; q != last {
			last = q
			log.Info("fetching parts", "done", done, "total", total)
		}
	}
}

// RunMetrics are the report runner's Prometheus metrics. A nil *RunMetrics records nothing.
type RunMetrics struct {
	lastSuccess, duration, rows *prometheus.GaugeVec
	runs, retries               *prometheus.CounterVec
}

// NewRunMetrics registers the runner's metrics with reg.
func NewRunMetrics(reg prometheus.Registerer) *RunMetrics {
	m := &RunMetrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kairn_report_last_success_timestamp_seconds",
			Help: "When the job's last successful run finished (Unix seconds)."}, []string{"job"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kairn_report_last_duration_seconds",
			Help: "How long the job's last successful run took."}, []string{"job"}),
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kairn_report_last_rows",
			Help: "Rows in the job's last successful result."}, []string{"job"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_report_runs_total",
			Help: "Report runs by outcome: success, failure (after all retries), skipped (already done)."}, []string{"job", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_report_retries_total",
			Help: "Failed attempts that were retried."}, []string{"job"}),
	}
	reg.MustRegister(m.lastSuccess, m.duration, m.rows, m.runs, m.retries)
	return m
}

func (m *RunMetrics) observe(job, result string, man *Manifest) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(job, result).Inc()
	if man != nil {
		m.lastSuccess.WithLabelValues(job).Set(float64(man.FinishedAt.UnixNano()) / 1e9)
		m.duration.WithLabelValues(job).Set(man.DurationSeconds)
		m.rows.WithLabelValues(job).Set(float64(man.Rows))
	}
}

func (m *RunMetrics) retry(job string) {
	if m != nil {
		m.retries.WithLabelValues(job).Inc()
	}
}
