package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/analyze"
	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/internal/testminio"
	"github.com/kairn-dev/kairn/queries"
)

// runFolders returns the result folders a job has in a local archive.
func runFolders(t *testing.T, dir, job string) []string {
	t.Helper()
	runs, _ := filepath.Glob(filepath.Join(dir, "reports", job, "run=*"))
	return runs
}

func TestAnalyzeOnceWritesEveryReport(t *testing.T) {
	audit, watches := recordingFiles(t)
	truth := groundTruth(t, audit, watches)
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	out := kairn(t, "analyze", "--archive", dir, "--once", "--csv")
	for _, name := range queries.Names() {
		runs := runFolders(t, dir, name)
		if len(runs) != 1 {
			t.Errorf("%s: %d runs", name, len(runs))
			continue
		}
		for _, f := range []string{"result.parquet", "result.csv", "_manifest.json"} {
			if _, err := os.Stat(filepath.Join(runs[0], f)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if !strings.Contains(out, name) {
			t.Errorf("summary does not name %s:\n%s", name, out)
		}
	}
	// The stored rollout report is the ground truth, like the printed one.
	csvData, err := os.ReadFile(filepath.Join(runFolders(t, dir, "rollout-first-pull")[0], "result.csv"))
	if err != nil {
		t.Fatal(err)
	}
	compareToTruth(t, truth, parseReport(t, string(csvData)), time.Microsecond)
	var m analyze.Manifest
	data, _ := os.ReadFile(filepath.Join(runFolders(t, dir, "rollout-first-pull")[0], "_manifest.json"))
	if err := json.Unmarshal(data, &m); err != nil || m.Rows != int64(len(truth)) || m.Query != "rollout-first-pull" || m.Since != nil {
		t.Errorf("manifest %s (%v)", data, err)
	}

	// A range with no data gives empty results, not errors; a range after --until is refused.
	kairn(t, "analyze", "--archive", dir, "--once", "--job", "conflicts", "--since", "2001-01-01", "--until", "2001-01-02")
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"analyze", "--archive", dir, "--once", "--since", "2026-11-24", "--until", "2026-11-23"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "not before") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"analyze", "--archive", dir, "--once", "--job", "nope"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "no such job") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestAnalyzeRunsOnScheduleWithMetrics(t *testing.T) {
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	jobs := filepath.Join(t.TempDir(), "jobs.yaml")
	os.WriteFile(jobs, []byte(`jobs:
  - name: pods-every-second
    schedule: "@every 1s"
    sql: SELECT count(DISTINCT uid) AS pods FROM spans WHERE kind = 'change' AND verb = 'create' AND resource = 'pods'
`), 0o644)
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"analyze", "--archive", dir, "--jobs", jobs, "--metrics-addr", addr}, io.Discard, &stderr)
	}()

	success := regexp.MustCompile(`kairn_report_runs_total\{job="pods-every-second",result="success"\} ([0-9]+)`)
	var metrics string
	successes := func() int {
		m := success.FindStringSubmatch(metrics)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
			if successes() >= 2 {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if successes() < 2 {
		t.Fatalf("no two successful runs in the metrics:\n%s", metrics)
	}
	for _, name := range []string{"kairn_report_last_success_timestamp_seconds", "kairn_report_last_duration_seconds", "kairn_report_last_rows"} {
		if !strings.Contains(metrics, name+`{job="pods-every-second"}`) {
			t.Errorf("metrics lack %s", name)
		}
	}
	if resp, err := http.Get("http://" + addr + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz: %v %v", resp, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("analyze did not stop")
	}
	// Each run has its own folder, named by its scheduled second, each complete.
	pods := 0
	for _, a := range auditLines(t, audit) {
		if getS(a, "verb") == "create" && getS(a, "objectRef", "resource") == "pods" && getS(a, "objectRef", "subresource") == "" && getS(a, "stage") == "ResponseComplete" {
			pods++
		}
	}
	runs := runFolders(t, dir, "pods-every-second")
	if len(runs) < 2 {
		t.Fatalf("%d runs", len(runs))
	}
	for _, r := range runs {
		var m analyze.Manifest
		data, _ := os.ReadFile(filepath.Join(r, "_manifest.json"))
		if err := json.Unmarshal(data, &m); err != nil || m.Rows != 1 || m.Run.Nanosecond() != 0 {
			t.Errorf("%s: manifest %s (%v)", r, data, err)
		}
	}
	got := kairn(t, "sql", "--archive", dir, "--format", "csv", "-c", "SELECT pods FROM read_parquet('"+filepath.Join(runs[0], "result.parquet")+"')")
	if want := "pods\n" + strconv.Itoa(pods) + "\n"; got != want {
		t.Errorf("stored result %q, want %q (pod creates in the audit log)", got, want)
	}
}

func TestAnalyzeToMinIO(t *testing.T) {
	audit, watches := recordingFiles(t)
	useMinIO(t, testminio.StartServer(t))
	loc := "s3://kairn/archives/analyze"
	kairn(t, ingestArgs(loc, audit, watches)...)
	kairn(t, "analyze", "--archive", loc, "--once", "--job", "rollout-first-pull", "--csv")
	ctx := context.Background()
	store, err := archive.OpenStore(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := store.List(ctx, analyze.ReportsPrefix+"rollout-first-pull/")
	if err != nil || len(objs) != 3 {
		t.Fatalf("stored %v (%v)", objs, err)
	}
	rc, err := store.Get(ctx, strings.TrimSuffix(objs[0].Key, "_manifest.json")+"result.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	compareToTruth(t, groundTruth(t, audit, watches), parseReport(t, string(data)), time.Microsecond)
}

func TestReportListAndFlags(t *testing.T) {
	out := kairn(t, "report", "--list")
	for _, name := range queries.Names() {
		q, _ := queries.Get(name)
		if !strings.Contains(out, name) || !strings.Contains(out, q.Description) {
			t.Errorf("--list lacks %s: %s", name, q.Description)
		}
	}
	if got := kairn(t, "report", "--show", "conflicts"); !strings.Contains(got, "SELECT") {
		t.Errorf("--show: %s", got)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "conflicts", "--summary", "--archive", dir}, "has no summary"},
		{[]string{"report", "conflicts", "--param", "x=1", "--archive", dir}, "takes no parameters"},
		{[]string{"report", "conflicts", "--param", "novalue", "--archive", dir}, "want NAME=VALUE"},
		{[]string{"report", "nope", "--archive", dir}, `no query named "nope"`},
		{[]string{"sql", "-c", "SELECT 1", "SELECT 2", "--archive", dir}, "not both"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, %s (want %q)", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestSQLPrompt(t *testing.T) {
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	ctx := context.Background()
	store, _ := archive.OpenStore(ctx, dir)
	eng, err := analyze.Open(ctx, store, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.RegisterLibrary(ctx, ""); err != nil {
		t.Fatal(err)
	}
	script := `.format csv
SELECT count(*) AS n
FROM rollout_first_pull;
SELECT nope;
.tables
`
	var stdout, stderr bytes.Buffer
	err = repl(ctx, eng, strings.NewReader(script), &stdout, &stderr, "table", false)
	if err == nil || !strings.Contains(err.Error(), "1 statements failed") || !strings.Contains(stderr.String(), "nope") {
		t.Errorf("script with a bad statement: %v, %s", err, stderr.String())
	}
	want := "n\n" + strconv.Itoa(len(groundTruth(t, audit, watches))) + "\n"
	if !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("output %q, want it to start %q", stdout.String(), want)
	}
	// -c registers the report views the statement names.
	if got := kairn(t, "sql", "--archive", dir, "--format", "csv", "-c", "SELECT count(*) AS n FROM Rollout_First_Pull"); !strings.HasPrefix(stdout.String(), got) {
		t.Errorf("sql -c over a report view: %q, the prompt said %q", got, stdout.String())
	}
	for _, view := range []string{"spans", "objects", "object_windows", "rollout_first_pull", "pod_startup_latency"} {
		if !strings.Contains(stdout.String(), view+",VIEW") {
			t.Errorf(".tables lacks %s:\n%s", view, stdout.String())
		}
	}
}

func TestReportParams(t *testing.T) {
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	all := strings.Split(strings.TrimSpace(kairn(t, "report", "slowest-requests", "--archive", dir, "--format", "csv")), "\n")
	top3 := strings.Split(strings.TrimSpace(kairn(t, "report", "slowest-requests", "--archive", dir, "--format", "csv", "--param", "top_n=3")), "\n")
	if len(all) != 101 || len(top3) != 4 || strings.Join(top3, "\n") != strings.Join(all[:4], "\n") {
		t.Errorf("top_n=3 gave %d rows of %d:\n%s", len(top3)-1, len(all)-1, strings.Join(top3, "\n"))
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"report", "slowest-requests", "--archive", dir, "--param", "top=3"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "it has: top_n") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

func TestParseTimeFlag(t *testing.T) {
	now := time.Now().UTC()
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2026-11-24T05:00:00Z", time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)},
		{"2026-11-24T06:00:00+01:00", time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)},
		{"2026-11-24", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{"2026-11-24T05:30", time.Date(2026, 11, 24, 5, 30, 0, 0, time.UTC)},
		{"-24h", now.Add(-24 * time.Hour)},
		{"-7d", now.Add(-7 * 24 * time.Hour)},
		{"0s", now},
	} {
		got, err := parseTimeFlag("since", tc.in)
		if err != nil || got.Sub(tc.want).Abs() > 5*time.Second {
			t.Errorf("%s: %s (%v), want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"yesterday", "24h", "-1 day", "2026-13-01"} {
		if _, err := parseTimeFlag("since", bad); err == nil || !strings.Contains(err.Error(), "offset from now") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
