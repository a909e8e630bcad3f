package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"

	"github.com/kairn-dev/kairn/queries"
)

// Job is one scheduled report: a query, when to run it, over which time range, and where its
// results go. A jobs file (YAML) is `jobs: [Job…]`; see docs/reports.md.
type Job struct {
	// Name names the job's results: reports/<name>/run=<time>/. Lower case, digits and dashes.
	Name string `json:"name"`
	// Schedule is a cron spec in UTC: five fields ("30 0 * * *") or a descriptor ("@daily",
	// "@every 6h").
	Schedule string `json:"schedule"`
	// Query names a library query (kairn report --list). SQL, instead, is an ad-hoc statement.
	Query string `json:"query,omitempty"`
	SQL   string `json:"sql,omitempty"`
	// Params are the query's parameters (see its `@param` lines), read with getvariable().
	Params map[string]string `json:"params,omitempty"`
	// Range is the archive time range a run reads, relative to its scheduled time. Without it a
	// run reads the whole archive.
	Range *Range `json:"range,omitempty"`
	// Clusters restricts the run to these clusters' partitions.
	Clusters []string `json:"clusters,omitempty"`
	// Formats of the result: parquet is always written; add csv to get a CSV copy too.
	Formats []string `json:"formats,omitempty"`
	// Output is the store the results go to (a directory or s3://bucket/prefix). Default: the
	// archive itself, under reports/.
	Output string `json:"output,omitempty"`
}

// Range is a time range relative to a run. The run's scheduled time is first truncated to
// Align (when set), then Since and Until are added: {align: 24h, since: -24h, until: 0s} is the
// previous UTC day whenever in the day the job runs.
type Range struct {
	Align Duration `json:"align,omitempty"`
	Since Duration `json:"since"`
	Until Duration `json:"until"`
}

// Resolve returns the absolute range of a run scheduled at `at`.
func (r Range) Resolve(at time.Time) (since, until time.Time) {
	base := at.UTC()
	if r.Align > 0 {
		base = base.Truncate(time.Duration(r.Align))
	}
	return base.Add(time.Duration(r.Since)), base.Add(time.Duration(r.Until))
}

// Duration is a time.Duration written as text in YAML: "90m", "-24h", and days as "7d".
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"-24h\" or \"7d\", got %s", b)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q: days must be a whole number, like 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (want e.g. -24h, 90m, 7d)", s)
	}
	return v, nil
}

// Formats a job can write.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
)

// PreviousDay is the default jobs' range: the previous UTC day.
var PreviousDay = Range{Align: Duration(24 * time.Hour), Since: Duration(-24 * time.Hour)}

// DefaultJobs is the built-in job set: every library query, daily at 00:30 UTC (late parts of
// the day's last window have landed by then), over the previous UTC day.
func DefaultJobs() []Job {
	var jobs []Job
	for _, name := range queries.Names() {
		r := PreviousDay
		jobs = append(jobs, Job{Name: name, Schedule: "30 0 * * *", Query: name, Range: &r})
	}
	return jobs
}

// ReadJobsFile reads and validates a jobs file.
func ReadJobsFile(path string) ([]Job, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	jobs, err := ParseJobs(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return jobs, nil
}

// ParseJobs decodes a jobs file; unknown fields are errors, so a typo cannot silently drop a
// setting.
func ParseJobs(data []byte) ([]Job, error) {
	var f struct {
		Jobs []Job `json:"jobs"`
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty jobs file (want `jobs:` with at least one job)")
	}
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, err
	}
	if len(f.Jobs) == 0 {
		return nil, errors.New("no jobs (want `jobs:` with at least one job)")
	}
	seen := map[string]bool{}
	for i := range f.Jobs {
		j := &f.Jobs[i]
		if err := j.validate(); err != nil {
			if j.Name != "" {
				return nil, fmt.Errorf("job %q: %w", j.Name, err)
			}
			return nil, fmt.Errorf("job %d: %w", i+1, err)
		}
		if seen[j.Name] {
			return nil, fmt.Errorf("job %q: name used twice", j.Name)
		}
		seen[j.Name] = true
	}
	return f.Jobs, nil
}

var jobName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func (j *Job) validate() error {
	if !jobName.MatchString(j.Name) {
		return fmt.Errorf("name %q: use lower case letters, digits and dashes", j.Name)
	}
	if _, err := cron.ParseStandard(j.Schedule); err != nil {
		return fmt.Errorf("schedule %q: %v", j.Schedule, err)
	}
	switch {
	case j.Query != "" && j.SQL != "":
		return errors.New("give query or sql, not both")
	case j.Query != "":
		q, err := queries.Get(j.Query)
		if err != nil {
			return err
		}
		if err := q.CheckParams(j.Params); err != nil {
			return err
		}
	case strings.TrimSpace(j.SQL) == "":
		return errors.New("give query (a library query name) or sql")
	}
	if j.Range != nil && j.Range.Since >= j.Range.Until {
		return fmt.Errorf("range: since (%s) must be before until (%s)", time.Duration(j.Range.Since), time.Duration(j.Range.Until))
	}
	if j.Range != nil && j.Range.Align < 0 {
		return errors.New("range: align must be positive")
	}
	for _, f := range j.Formats {
		if f != FormatParquet && f != FormatCSV {
			return fmt.Errorf("format %q: want parquet or csv", f)
		}
	}
	return nil
}

// Statement is the SQL the job runs.
func (j Job) Statement() string {
	if j.Query != "" {
		q, _ := queries.Get(j.Query)
		return q.SQL
	}
	return j.SQL
}

// wants reports whether the job writes format f.
func (j Job) wants(f string) bool {
	if f == FormatParquet {
		return true
	}
	for _, x := range j.Formats {
		if x == f {
			return true
		}
	}
	return false
}
