package helm

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHelmJobsE2E runs the chart's merge and analyze containers with their exact arguments over
// a local archive of testdata/daemonset (localArgs moves the archive, mounts and ports): the
// merge CronJob, the analyze CronJob with deploy/analyze-jobs.yaml as its jobs ConfigMap (its
// default range relative to the run, -24h .. 0s, and fixed dates around the recording), and the
// analyze Deployment until its readiness probe (/readyz) and liveness probe (/healthz) pass.
func TestHelmJobsE2E(t *testing.T) {
	e := requireHelm(t)
	dir := t.TempDir()
	bin := kairnBin(t)
	ingest := func(archiveDir string) {
		t.Helper()
		args := []string{"ingest", "--cluster", "rec", "--archive", archiveDir, "--audit", "../../testdata/daemonset/audit.log.gz"}
		watches, _ := filepath.Glob("../../testdata/daemonset/watch-*.json.gz")
		for _, w := range watches {
			args = append(args, "--watch", w)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("kairn ingest: %v\n%s", err, out)
		}
	}
	archiveDir := filepath.Join(dir, "archive")
	ingest(archiveDir)
	run := func(name string, c container, root, archiveDir string) string {
		t.Helper()
		args, _ := localArgs(t, c.Args, root, archiveDir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = t.TempDir() // workingDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s container (%q): %v\n%s", name, c.Args, err, out)
		}
		t.Logf("%s container %q: ok", name, c.Args)
		return string(out)
	}

	// merge (CronJob)
	def := splitDocs(t, e.helm(t, "template", "e2e", chartDir, "--namespace", "kairn",
		"--set", "cluster.name=dev", "--set", "archive.url=s3://kairn/archive", "--set", "merge.retain=3650d"))
	run("merge", containerOf(t, def, "CronJob", "-merge", "merge"), filepath.Join(dir, "merge"), archiveDir)

	// analyze as a CronJob, the example jobs file in its ConfigMap
	jobs := writeJobsValues(t)
	analyzeCron := func(name, archiveDir string, set ...string) (args []string, out string) {
		t.Helper()
		cron := splitDocs(t, e.helm(t, append([]string{"template", "e2e", chartDir, "--namespace", "kairn",
			"-f", "testdata/analyze-cronjob.yaml", "-f", jobs}, set...)...))
		root := filepath.Join(dir, name)
		for _, d := range cron {
			if d.Kind == "ConfigMap" && strings.HasSuffix(d.Name, "-analyze-jobs") {
				mount(t, root, "/etc/kairn/analyze/jobs.yaml", []byte(d.Data["jobs.yaml"]))
			}
		}
		c := containerOf(t, cron, "CronJob", "-analyze", "analyze")
		out = run("analyze (cronjob, "+name+")", c, root, archiveDir)
		for _, job := range []string{"rollouts-daily", "rollouts-weekly-summary", "conflicts-hourly", "warnings-daily"} {
			if !strings.Contains(out, job) {
				t.Errorf("analyze --once did not run job %s:\n%s", job, out)
			}
		}
		return c.Args, out
	}
	// The default: every run over the 24 hours before it, passed as offsets (no shell).
	started := time.Now()
	args, out := analyzeCron("analyze-cron", archiveDir)
	for _, want := range []string{"--once", "--since=-24h", "--until=0s"} {
		if !slices.Contains(args, want) {
			t.Errorf("analyze CronJob args have no %s: %q", want, args)
		}
	}
	m := regexp.MustCompile(`job=rollouts-daily run=\S+ parts=\d+ since=(\S+) until=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("analyze --once logged no range for rollouts-daily:\n%s", out)
	}
	since, err1 := time.Parse(time.RFC3339Nano, m[1])
	until, err2 := time.Parse(time.RFC3339Nano, m[2])
	if err1 != nil || err2 != nil || (until.Sub(since)-24*time.Hour).Abs() > time.Second ||
		until.Before(started.Add(-time.Second)) || until.After(time.Now().Add(time.Second)) {
		t.Errorf("analyze --since=-24h --until=0s read %s .. %s, want the 24 h before the run (started %s)", m[1], m[2], started.UTC().Format(time.RFC3339))
	}
	t.Logf("analyze CronJob, default range: %s .. %s", m[1], m[2])

	// Fixed dates still work: the UTC day of the recording (and the next, in case it crossed
	// midnight) finds its rollouts, whenever the test runs.
	day := recordingDay(t, "../../testdata/daemonset/audit.log.gz")
	absArchive := filepath.Join(dir, "archive-abs")
	ingest(absArchive)
	args, out = analyzeCron("analyze-cron-abs", absArchive,
		"--set", "analyze.since="+day.Format("2006-01-02"), "--set", "analyze.until="+day.AddDate(0, 0, 2).Format("2006-01-02"))
	if !slices.Contains(args, "--since="+day.Format("2006-01-02")) {
		t.Errorf("analyze CronJob args have no fixed --since: %q", args)
	}
	if r := regexp.MustCompile(`(?m)^rollouts-daily\s+(\d+)\s`).FindStringSubmatch(out); r == nil || r[1] == "0" {
		t.Errorf("analyze --once over %s .. +2d found no rollouts in the recording:\n%s", day.Format("2006-01-02"), out)
	}

	// analyze as a Deployment: up until its probes pass
	c := containerOf(t, def, "Deployment", "-analyze", "analyze")
	args, ports := localArgs(t, c.Args, filepath.Join(dir, "analyze"), archiveDir)
	metrics := ports["9465"]
	if metrics == "" {
		t.Fatalf("analyze Deployment args listen on no :9465: %q", c.Args)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	logf, _ := os.Create(filepath.Join(dir, "analyze.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait(); logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s string
		errReady := getText("http://"+metrics+"/readyz", &s)
		errLive := getText("http://"+metrics+"/healthz", &s)
		if errReady == nil && errLive == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("analyze Deployment probes: /readyz %v, /healthz %v\n%s", errReady, errLive, b)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("analyze Deployment container %q: /readyz and /healthz ok", c.Args)
}

// recordingDay is the UTC day of the first audit event of a recorded audit log.
func recordingDay(t *testing.T, path string) time.Time {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(zr).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
	}
	if err := json.Unmarshal(line, &ev); err != nil || ev.RequestReceivedTimestamp.IsZero() {
		t.Fatalf("%s: first event has no requestReceivedTimestamp: %v", path, err)
	}
	return ev.RequestReceivedTimestamp.UTC().Truncate(24 * time.Hour)
}
