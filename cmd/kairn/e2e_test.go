package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The live tests run against the real control plane of deploy/dev/cluster.sh (`make e2e` brings
// it up and down). They skip unless KAIRN_E2E=1.
var clusterDir = filepath.Join("..", "..", ".dev", "cluster")

// kubectlBin is $KUBECTL (deploy/dev/cluster.sh env sets it, building one where none is
// installed), else kubectl from PATH.
func kubectlBin() string {
	if k := os.Getenv("KUBECTL"); k != "" {
		return k
	}
	return "kubectl"
}

func requireCluster(t *testing.T) string {
	t.Helper()
	if os.Getenv("KAIRN_E2E") != "1" {
		t.Skip("live tests run with KAIRN_E2E=1 against deploy/dev/cluster.sh (make e2e)")
	}
	kc, _ := filepath.Abs(filepath.Join(clusterDir, "admin.kubeconfig"))
	if out, err := exec.Command(kubectlBin(), "--kubeconfig", kc, "get", "--raw", "/readyz").CombinedOutput(); err != nil {
		t.Fatalf("KAIRN_E2E=1 but the dev cluster is not ready (deploy/dev/cluster.sh up): %v %s", err, out)
	}
	return kc
}

func kubectl(t *testing.T, kc string, args ...string) string {
	t.Helper()
	out, err := exec.Command(kubectlBin(), append([]string{"--kubeconfig", kc}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// collector is a `kairn collect` child process.
type collector struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func startCollector(t *testing.T, kc, archive, spool string) *collector {
	t.Helper()
	c := startCollectorArgs(t, "collect", "--cluster", "dev", "--kubeconfig", kc, "--archive", archive, "--spool", spool,
		"--webhook-addr", "127.0.0.1:8765", "--webhook-insecure-http", "--window", "1m", "--grace", "5s", "--metrics-addr", "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://127.0.0.1:8765/healthz"); err == nil {
			resp.Body.Close()
			return c
		}
		if time.Now().After(deadline) {
			c.cmd.Process.Kill()
			t.Fatalf("kairn collect did not start:\n%s", c.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startCollectorArgs(t *testing.T, args ...string) *collector {
	t.Helper()
	c := &collector{cmd: exec.Command(os.Args[0]), logs: &bytes.Buffer{}}
	c.cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
	c.cmd.Stderr = c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// stop sends SIGTERM (or SIGKILL) and waits.
func (c *collector) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	c.cmd.Process.Signal(sig)
	err := c.cmd.Wait()
	if sig == syscall.SIGTERM && err != nil {
		t.Fatalf("kairn collect exited with %v after SIGTERM:\n%s", err, c.logs)
	}
}

// watchRecorder records `kubectl get --watch` streams: the ground truth's second source.
type watchRecorder struct {
	cmds  []*exec.Cmd
	files []string
}

func recordWatches(t *testing.T, kc string) *watchRecorder {
	w := &watchRecorder{}
	dir := t.TempDir()
	for _, r := range []string{"deployments", "replicasets", "statefulsets", "pods", "events"} {
		f, err := os.Create(filepath.Join(dir, "watch-"+r+".json"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(kubectlBin(), "--kubeconfig", kc, "get", r, "-A", "--watch", "--output-watch-events", "-o", "json")
		cmd.Stdout = f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.cmds = append(w.cmds, cmd)
		w.files = append(w.files, f.Name())
	}
	time.Sleep(2 * time.Second) // let the watches establish
	return w
}

func (w *watchRecorder) stop(t *testing.T) []string {
	var gz []string
	for i, cmd := range w.cmds {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		gz = append(gz, gzipCopy(t, w.files[i], nil))
	}
	return gz
}

// gzipCopy gzips a file, keeping only the lines keep accepts (all when nil).
func gzipCopy(t *testing.T, path string, keep func([]byte) bool) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if keep == nil || keep(sc.Bytes()) {
			zw.Write(sc.Bytes())
			zw.Write([]byte{'\n'})
		}
	}
	zw.Close()
	out := filepath.Join(t.TempDir(), filepath.Base(path)+".gz")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiserverAudit is the apiserver's own audit log from since on, gzipped.
func apiserverAudit(t *testing.T, since time.Time) string {
	return gzipCopy(t, filepath.Join(clusterDir, "audit.log"), func(line []byte) bool {
		var a struct {
			RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
		}
		return json.Unmarshal(line, &a) == nil && !a.RequestReceivedTimestamp.Before(since)
	})
}

func randomSuffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// scenario runs workload changes in a fresh namespace: Deployments and a StatefulSet, image
// upgrades, a scale, a 409 between two writers, a rollback and a delete. between runs after each
// step (restarts of the collector go there).
func scenario(t *testing.T, kc string, between func(step int)) string {
	ns := "e2e-" + randomSuffix()
	k := func(args ...string) string { return kubectl(t, kc, append([]string{"-n", ns}, args...)...) }
	rollout := func(what string) { k("rollout", "status", what, "--timeout=120s") }
	kubectl(t, kc, "create", "namespace", ns)
	steps := []func(){
		func() {
			k("create", "deployment", "web", "--image=nginx:1.25", "--replicas=2")
			k("create", "deployment", "api", "--image=httpd:2.4.58")
			rollout("deployment/web")
			rollout("deployment/api")
		},
		func() { k("set", "image", "deployment/web", "nginx=nginx:1.26"); rollout("deployment/web") },
		func() { k("scale", "deployment/web", "--replicas=3"); rollout("deployment/web") },
		func() {
			// Two writers holding the same resourceVersion: the second gets 409 Conflict.
			obj := k("get", "deployment", "web", "-o", "json")
			dir := t.TempDir()
			for i, owner := range []string{"team-a", "team-b"} {
				edited := strings.Replace(obj, `"annotations": {`, `"annotations": {"example.com/owner": "`+owner+`",`, 1)
				p := filepath.Join(dir, fmt.Sprintf("%d.json", i))
				os.WriteFile(p, []byte(edited), 0o644)
				out, err := exec.Command(kubectlBin(), "--kubeconfig", kc, "-n", ns, "replace", "-f", p).CombinedOutput()
				if i == 1 && (err == nil || !strings.Contains(string(out), "modified")) {
					t.Errorf("second replace should conflict: %v %s", err, out)
				}
			}
		},
		func() { k("set", "image", "deployment/api", "httpd=httpd:2.4.59"); rollout("deployment/api") },
		func() { k("rollout", "undo", "deployment/api"); rollout("deployment/api") },
		func() {
			sts := `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: "postgres:16.1"}]}
`
			cmd := exec.Command(kubectlBin(), "--kubeconfig", kc, "-n", ns, "apply", "-f", "-")
			cmd.Stdin = strings.NewReader(sts)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("apply statefulset: %v %s", err, out)
			}
			rollout("statefulset/db")
			k("set", "image", "statefulset/db", "db=postgres:16.2")
			rollout("statefulset/db")
		},
		func() { k("delete", "deployment", "api", "--wait=true") },
	}
	for i, step := range steps {
		step()
		if between != nil {
			between(i)
		}
	}
	time.Sleep(3 * time.Second) // the audit webhook batches for up to 1 s
	return ns
}

func TestE2ECollectMatchesGroundTruth(t *testing.T) {
	kc := requireCluster(t)
	root := t.TempDir()
	archiveDir, spool := filepath.Join(root, "archive"), filepath.Join(root, "spool")
	start := time.Now().UTC()
	watches := recordWatches(t, kc)
	c := startCollector(t, kc, archiveDir, spool)
	ns := scenario(t, kc, func(step int) {
		switch step {
		case 1: // SIGTERM mid-scenario: flush, exit, start again
			c.stop(t, syscall.SIGTERM)
			c = startCollector(t, kc, archiveDir, spool)
		case 3: // kill -9 mid-scenario: the spool and the apiserver's retries make up for it
			c.stop(t, syscall.SIGKILL)
			c = startCollector(t, kc, archiveDir, spool)
		case 4: // webhook down for 10 s while the cluster keeps writing
			c.stop(t, syscall.SIGTERM)
			kubectl(t, kc, "annotate", "namespace", "default", "kairn.dev/e2e-"+randomSuffix()+"=down", "--overwrite")
			time.Sleep(10 * time.Second)
			c = startCollector(t, kc, archiveDir, spool)
		}
	})
	time.Sleep(3 * time.Second) // the apiserver's last batches and retries
	finalStop := time.Now()
	c.stop(t, syscall.SIGTERM)
	watchFiles := watches.stop(t)
	audit := apiserverAudit(t, start)
	kairn(t, "merge", "--quiet", "--archive", archiveDir, "--open", "--window", "1m")

	checkAuditComplete(t, archiveDir, audit, start, finalStop)

	// The rollout report matches the ground truth from the apiserver's own audit log and the
	// kubectl watch recording, within 1 s.
	truth := groundTruth(t, audit, watchFiles)
	var mine []truthRow
	for _, r := range truth {
		if r.namespace == ns {
			mine = append(mine, r)
		}
	}
	var report []reportRow
	for _, r := range parseReportCluster(t, kairn(t, "report", "rollout-first-pull", "--archive", archiveDir, "--format", "csv"), "dev") {
		if r.namespace == ns {
			report = append(report, r)
		}
	}
	if len(mine) < 4 {
		t.Fatalf("ground truth found %d rollouts in %s; the scenario makes 4", len(mine), ns)
	}
	compareToTruth(t, mine, report, time.Second)

	// The 409 is grouped with the write that won.
	conflicts := kairn(t, "report", "conflicts", "--archive", archiveDir, "--format", "csv")
	if !strings.Contains(conflicts, ns+",deployments,web,") {
		t.Errorf("the 409 on %s/web is not in the conflicts report:\n%s", ns, conflicts)
	}
}

// checkAuditComplete: nothing acknowledged is lost, nothing is duplicated. Every final-stage
// resource request the apiserver logged between start and stop is in the archive exactly once.
func checkAuditComplete(t *testing.T, archiveDir, audit string, start, stop time.Time) {
	t.Helper()
	want := map[string]string{}
	for _, a := range auditLines(t, audit) {
		// Requests that completed after the collector's final stop (its own watches end with it)
		// had nobody to deliver them to.
		if getS(a, "stage") == "ResponseComplete" && getS(a, "objectRef", "resource") != "" && getT(t, a, "stageTimestamp").Before(stop) {
			want[getS(a, "auditID")] = getS(a, "verb") + "/" + getS(a, "objectRef", "resource") + "/" + fmt.Sprint(getS(a, "objectRef", "name") != "")
		}
	}
	out := kairn(t, "sql", "--archive", archiveDir, "--format", "csv",
		fmt.Sprintf(`SELECT audit_id, count(*) FROM spans WHERE kind = 'audit' AND start_time >= '%s' GROUP BY ALL`, start.Format(time.RFC3339Nano)))
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		id, n, _ := strings.Cut(line, ",")
		got[id] = true
		if n != "1" {
			t.Errorf("audit %s archived %s times", id, n)
		}
	}
	missing := 0
	byKind := map[string]int{}
	for id := range want {
		if !got[id] {
			missing++
			byKind[want[id]]++
		}
	}
	if missing > 0 {
		t.Logf("missing by verb/resource/name?: %v", byKind)
	}
	if missing > 0 || len(want) == 0 {
		t.Errorf("%d of %d audit records the apiserver logged are missing from the archive", missing, len(want))
	}

	t.Logf("%d audit records checked", len(want))
}

func TestE2EUnauthenticatedPostRefused(t *testing.T) {
	requireCluster(t)
	dir := t.TempDir()
	token := filepath.Join(dir, "tokens")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	args := []string{"collect", "--cluster", "dev", "--archive", filepath.Join(dir, "a"), "--spool", filepath.Join(dir, "s"),
		"--webhook-addr", "127.0.0.1:8766", "--webhook-insecure-http", "--webhook-token-file", token, "--metrics-addr", ""}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}`
	var resp *http.Response
	var err error
	for range 100 {
		if resp, err = http.Post("http://127.0.0.1:8766/audit", "application/json", strings.NewReader(body)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("webhook not up: %v\n%s", err, logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without a token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://127.0.0.1:8766/audit", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("POST with the token: %v %v", resp, err)
	}
}

// The audit log tail alone, against the apiserver's own log file, restarted mid-way.
func TestE2EAuditLogTail(t *testing.T) {
	kc := requireCluster(t)
	root := t.TempDir()
	archiveDir, spool := filepath.Join(root, "archive"), filepath.Join(root, "spool")
	logPath, _ := filepath.Abs(filepath.Join(clusterDir, "audit.log"))
	args := []string{"collect", "--cluster", "dev", "--archive", archiveDir, "--spool", spool, "--audit-log", logPath,
		"--webhook-addr", "", "--window", "1m", "--metrics-addr", ""}
	start := time.Now().UTC()
	c := startCollectorArgs(t, args...)
	ns := "e2e-tail-" + randomSuffix()
	kubectl(t, kc, "create", "namespace", ns)
	kubectl(t, kc, "-n", ns, "create", "deployment", "web", "--image=nginx:1.25")
	time.Sleep(2 * time.Second)
	c.stop(t, syscall.SIGKILL) // the checkpoint and spool carry on
	kubectl(t, kc, "-n", ns, "set", "image", "deployment/web", "nginx=nginx:1.26")
	c = startCollectorArgs(t, args...)
	kubectl(t, kc, "-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
	time.Sleep(2 * time.Second) // the apiserver writes its log as requests complete; the tail polls
	stop := time.Now()
	time.Sleep(time.Second)
	c.stop(t, syscall.SIGTERM)
	kairn(t, "merge", "--quiet", "--archive", archiveDir, "--open", "--window", "1m")
	checkAuditComplete(t, archiveDir, apiserverAudit(t, start), start, stop)
}
