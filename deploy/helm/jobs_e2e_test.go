package helm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelmJobsE2E runs the chart's merge and analyze containers with their exact arguments over
// a local archive of testdata/daemonset (localArgs moves the archive, mounts and ports): the
// merge CronJob, the analyze CronJob with deploy/analyze-jobs.yaml as its jobs ConfigMap, and the
// analyze Deployment until its readiness probe (/readyz) and liveness probe (/healthz) pass.
func TestHelmJobsE2E(t *testing.T) {
	helmBin := os.Getenv("KAIRN_HELM_BIN")
	switch {
	case os.Getenv("KAIRN_E2E") != "1":
		t.Skip("live tests run with KAIRN_E2E=1 (make e2e)")
	case helmBin == "":
		t.Skip("KAIRN_HELM_BIN is not set (make e2e sets it from hack/helm.sh path)")
	}
	e := &env{helmBin: helmBin}
	dir := t.TempDir()
	archiveDir := filepath.Join(dir, "archive")
	bin := kairnBin(t)
	args := []string{"ingest", "--cluster", "rec", "--archive", archiveDir, "--audit", "../../testdata/daemonset/audit.log.gz"}
	watches, _ := filepath.Glob("../../testdata/daemonset/watch-*.json.gz")
	for _, w := range watches {
		args = append(args, "--watch", w)
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("kairn ingest: %v\n%s", err, out)
	}
	run := func(name string, c container, root string) string {
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
	run("merge", containerOf(t, def, "CronJob", "-merge", "merge"), filepath.Join(dir, "merge"))

	// analyze as a CronJob, the example jobs file in its ConfigMap
	jobs := writeJobsValues(t)
	cron := splitDocs(t, e.helm(t, "template", "e2e", chartDir, "--namespace", "kairn",
		"-f", "testdata/analyze-cronjob.yaml", "-f", jobs))
	root := filepath.Join(dir, "analyze-cron")
	for _, d := range cron {
		if d.Kind == "ConfigMap" && strings.HasSuffix(d.Name, "-analyze-jobs") {
			mount(t, root, "/etc/kairn/analyze/jobs.yaml", []byte(d.Data["jobs.yaml"]))
		}
	}
	out := run("analyze (cronjob)", containerOf(t, cron, "CronJob", "-analyze", "analyze"), root)
	for _, job := range []string{"rollouts-daily", "rollouts-weekly-summary", "conflicts-hourly", "warnings-daily"} {
		if !strings.Contains(out, job) {
			t.Errorf("analyze --once did not run job %s:\n%s", job, out)
		}
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
