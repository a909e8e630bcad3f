package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/internal/testminio"
)

// The bundled recordings, made on a real control plane (testdata/*/README.md): the main one, and
// DaemonSet rollouts on two kwok nodes.
var (
	recordingDir = filepath.Join("..", "..", "testdata", "recording")
	daemonsetDir = filepath.Join("..", "..", "testdata", "daemonset")
)

func recordingFiles(t testing.TB) (audit string, watches []string) { return bundled(t, recordingDir) }
func daemonsetFiles(t testing.TB) (audit string, watches []string) { return bundled(t, daemonsetDir) }

func bundled(t testing.TB, dir string) (audit string, watches []string) {
	t.Helper()
	audit = filepath.Join(dir, "audit.log.gz")
	if _, err := os.Stat(audit); err != nil {
		t.Fatalf("bundled recording missing: %v", err)
	}
	watches, _ = filepath.Glob(filepath.Join(dir, "watch-*.json.gz"))
	if len(watches) == 0 {
		t.Fatalf("no watch streams in %s", dir)
	}
	return audit, watches
}

func gunzipFile(t testing.TB, path string) []byte {
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
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- ground truth, computed from the raw files with the standard library only ----

type obj = map[string]any

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

func getS(m any, path ...string) string { s, _ := get(m, path...).(string); return s }

func getT(t testing.TB, m any, path ...string) time.Time {
	s := getS(m, path...)
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %v: %v", path, err)
	}
	return v.UTC()
}

func auditLines(t testing.TB, path string) []obj {
	var out []obj
	sc := bufio.NewScanner(bytes.NewReader(gunzipFile(t, path)))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var m obj
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// watchObjects decodes kubectl's stream of pretty-printed {"type","object"} values.
func watchObjects(t testing.TB, path string) []obj {
	var out []obj
	dec := json.NewDecoder(bytes.NewReader(gunzipFile(t, path)))
	for {
		var m obj
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m["object"].(obj))
	}
	return out
}

type truthRow struct {
	namespace, kind, name string
	upgradeAt, firstPull  time.Time
}

// containersKey is what tells a pod template revision apart in the recording: names, images, env.
func containersKey(containers any) string {
	list, _ := containers.([]any)
	var parts []string
	for _, c := range list {
		env, _ := json.Marshal(get(c, "env"))
		parts = append(parts, getS(c, "name")+"="+getS(c, "image")+" "+string(env))
	}
	return strings.Join(parts, ";")
}

func groundTruth(t testing.TB, auditPath string, watches []string) []truthRow {
	type rollout struct {
		truthRow
		uid, template string
	}
	audits := auditLines(t, auditPath)
	// Rollouts: successful writes whose response shows a pod template different from the last one.
	lastTemplate := map[string]string{}
	var rollouts []rollout
	eventCreated := map[string]time.Time{}
	for _, a := range audits {
		code, _ := get(a, "responseStatus", "code").(float64)
		if getS(a, "stage") != "ResponseComplete" || code < 200 || code >= 300 {
			continue
		}
		res, verb := getS(a, "objectRef", "resource"), getS(a, "verb")
		if res == "events" && verb == "create" {
			// Reporters use generateName: the name is in the response body when it was logged.
			name := getS(a, "objectRef", "name")
			if name == "" {
				name = getS(a, "responseObject", "metadata", "name")
			}
			eventCreated[getS(a, "objectRef", "namespace")+"/"+name] = getT(t, a, "requestReceivedTimestamp")
		}
		if getS(a, "objectRef", "apiGroup") != "apps" || (res != "deployments" && res != "statefulsets" && res != "daemonsets") || getS(a, "objectRef", "subresource") != "" {
			continue
		}
		if verb != "create" && verb != "update" && verb != "patch" {
			continue
		}
		body := get(a, "responseObject")
		if body == nil {
			t.Fatalf("the recording's audit policy must log bodies for %s writes", res)
		}
		uid := getS(body, "metadata", "uid")
		tmpl, _ := json.Marshal(get(body, "spec", "template"))
		switch verb {
		case "create":
			lastTemplate[uid] = string(tmpl)
		case "update", "patch":
			if prev, ok := lastTemplate[uid]; ok && prev != string(tmpl) {
				rollouts = append(rollouts, rollout{
					truthRow: truthRow{namespace: getS(body, "metadata", "namespace"), kind: getS(body, "kind"), name: getS(body, "metadata", "name"),
						upgradeAt: getT(t, a, "requestReceivedTimestamp")},
					uid: uid, template: containersKey(get(body, "spec", "template", "spec", "containers")),
				})
			}
			lastTemplate[uid] = string(tmpl)
		}
	}
	// Ownership and pods from the watch streams.
	rsOwner := map[string]string{}
	type pod struct {
		owner, containers string
		created           time.Time
	}
	pods := map[string]pod{}
	var events []obj
	for _, w := range watches {
		for _, o := range watchObjects(t, w) {
			ctrl := ""
			for _, ref := range asList(get(o, "metadata", "ownerReferences")) {
				if c, _ := get(ref, "controller").(bool); c {
					ctrl = getS(ref, "uid")
				}
			}
			switch getS(o, "kind") {
			case "ReplicaSet":
				rsOwner[getS(o, "metadata", "uid")] = ctrl
			case "Pod":
				pods[getS(o, "metadata", "uid")] = pod{ctrl, containersKey(get(o, "spec", "containers")), getT(t, o, "metadata", "creationTimestamp")}
			case "Event":
				if getS(o, "apiVersion") == "v1" {
					events = append(events, o)
				}
			}
		}
	}
	pullAt := map[string]time.Time{} // pod uid → first Pulling, best time
	for _, e := range events {
		if getS(e, "reason") != "Pulling" {
			continue
		}
		at, ok := eventCreated[getS(e, "metadata", "namespace")+"/"+getS(e, "metadata", "name")]
		if !ok {
			at = getT(t, e, "firstTimestamp")
		}
		uid := getS(e, "involvedObject", "uid")
		if cur, ok := pullAt[uid]; !ok || at.Before(cur) {
			pullAt[uid] = at
		}
	}
	sort.Slice(rollouts, func(i, j int) bool { return rollouts[i].upgradeAt.Before(rollouts[j].upgradeAt) })
	var out []truthRow
	for i, r := range rollouts {
		var next time.Time
		for _, n := range rollouts[i+1:] {
			if n.uid == r.uid {
				next = n.upgradeAt
				break
			}
		}
		for uid, p := range pods {
			workload := p.owner
			if o, ok := rsOwner[p.owner]; ok {
				workload = o
			}
			if workload != r.uid || p.containers != r.template || p.created.Before(r.upgradeAt.Truncate(time.Second)) ||
				(!next.IsZero() && !p.created.Before(next.Truncate(time.Second))) {
				continue
			}
			if at, ok := pullAt[uid]; ok && (r.firstPull.IsZero() || at.Before(r.firstPull)) {
				r.firstPull = at
			}
		}
		out = append(out, r.truthRow)
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

// ---- running kairn as a user would ----

func kairn(t testing.TB, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("kairn %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

func ingestArgs(archiveDir, audit string, watches []string) []string {
	args := []string{"ingest", "--quiet", "--cluster", "rec", "--archive", archiveDir}
	if audit != "" {
		args = append(args, "--audit", audit)
	}
	for _, w := range watches {
		args = append(args, "--watch", w)
	}
	return args
}

const rolloutHeader = "cluster,namespace,kind,name,upgrade_at,first_pull_at,latency_seconds"

type reportRow struct {
	namespace, kind, name string
	upgradeAt, firstPull  time.Time
	latency               string
}

func parseReport(t testing.TB, out string) []reportRow { return parseReportCluster(t, out, "rec") }

func parseReportCluster(t testing.TB, out, cluster string) []reportRow {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, out)
	}
	if got := strings.Join(recs[0], ","); got != rolloutHeader {
		t.Fatalf("header %q, want %q", got, rolloutHeader)
	}
	var rows []reportRow
	for _, r := range recs[1:] {
		row := reportRow{namespace: r[1], kind: r[2], name: r[3], latency: r[6]}
		row.upgradeAt, err = time.Parse(time.RFC3339Nano, r[4])
		if err != nil || !strings.HasSuffix(r[4], "Z") {
			t.Fatalf("upgrade_at %q is not RFC 3339 UTC: %v", r[4], err)
		}
		if r[5] != "" {
			if row.firstPull, err = time.Parse(time.RFC3339Nano, r[5]); err != nil {
				t.Fatalf("first_pull_at %q: %v", r[5], err)
			}
		}
		if r[0] != cluster {
			t.Errorf("cluster %q, want %q", r[0], cluster)
		}
		rows = append(rows, row)
	}
	return rows
}

func compareToTruth(t *testing.T, truth []truthRow, got []reportRow, tolerance time.Duration) {
	t.Helper()
	if len(got) != len(truth) {
		t.Errorf("report has %d rollouts, ground truth %d", len(got), len(truth))
	}
	var worst time.Duration
	near := func(a, b time.Time) bool {
		worst = max(worst, a.Sub(b).Abs())
		return a.Sub(b).Abs() <= tolerance
	}
	defer func() {
		t.Logf("%d rollouts; largest deviation from the ground truth %s (tolerance %s)", len(truth), worst, tolerance)
	}()
	used := make([]bool, len(got))
	for _, w := range truth {
		found := false
		for i, g := range got {
			if used[i] || g.namespace != w.namespace || g.kind != w.kind || g.name != w.name || !near(g.upgradeAt, w.upgradeAt) {
				continue
			}
			used[i], found = true, true
			switch {
			case w.firstPull.IsZero() != g.firstPull.IsZero():
				t.Errorf("%s/%s %s at %s: first pull %v, want %v", w.namespace, w.name, w.kind, w.upgradeAt, g.firstPull, w.firstPull)
			case !w.firstPull.IsZero() && !near(g.firstPull, w.firstPull):
				t.Errorf("%s/%s %s at %s: first pull %s, want %s (±%s)", w.namespace, w.name, w.kind, w.upgradeAt, g.firstPull, w.firstPull, tolerance)
			case !w.firstPull.IsZero():
				lat := g.firstPull.Sub(g.upgradeAt).Seconds()
				printed, err := strconv.ParseFloat(g.latency, 64)
				if err != nil || math.Abs(printed-lat) > 0.001 {
					t.Errorf("%s/%s: latency_seconds %q, want %.3f", w.namespace, w.name, g.latency, lat)
				}
			}
			break
		}
		if !found {
			t.Errorf("rollout %s %s/%s at %s missing from the report", w.kind, w.namespace, w.name, w.upgradeAt.Format(time.RFC3339Nano))
		}
	}
	for i, g := range got {
		if !used[i] {
			t.Errorf("report has a rollout the ground truth does not: %+v", g)
		}
	}
}

// stripBodies rewrites an audit log as if its policy were Metadata everywhere.
func stripBodies(t testing.TB, path string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	enc := json.NewEncoder(zw)
	for _, a := range auditLines(t, path) {
		delete(a, "requestObject")
		delete(a, "responseObject")
		a["level"] = "Metadata"
		if err := enc.Encode(a); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	out := filepath.Join(t.TempDir(), "audit-metadata.log.gz")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRolloutFirstPullMatchesGroundTruth(t *testing.T) {
	audit, watches := recordingFiles(t)
	truth := groundTruth(t, audit, watches)
	kinds := map[string]bool{}
	pulled := 0
	for _, r := range truth {
		kinds[r.kind] = true
		if !r.firstPull.IsZero() {
			pulled++
		}
	}
	// The recording is documented to hold Deployment and StatefulSet rollouts with pulls.
	if !kinds["Deployment"] || !kinds["StatefulSet"] || pulled < len(truth)/2 {
		t.Fatalf("ground truth looks wrong for the documented recording: %+v", truth)
	}
	for _, mode := range []struct {
		name      string
		audit     string
		tolerance time.Duration
	}{
		// With bodies every time is the apiserver's own: exact to the microsecond.
		{"full audit", audit, time.Microsecond},
		{"metadata-only audit", stripBodies(t, audit), time.Second},
		// Watches alone give whole seconds, rounded down (managedFields, firstTimestamp), and
		// kwok stamps an Event a little before the apiserver receives it: at most 2 s off.
		{"watch only", "", 2 * time.Second},
	} {
		t.Run(mode.name, func(t *testing.T) {
			dir := t.TempDir()
			kairn(t, ingestArgs(dir, mode.audit, watches)...)
			got := parseReport(t, kairn(t, "report", "rollout-first-pull", "--archive", dir, "--format", "csv"))
			compareToTruth(t, truth, got, mode.tolerance)
		})
	}
}

func TestIngestIsIdempotent(t *testing.T) {
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	count := `SELECT count(*) AS n, count(DISTINCT span_id) AS ids FROM spans`
	first := kairn(t, "sql", "--archive", dir, "--format", "csv", count)
	kairn(t, ingestArgs(dir, audit, watches)...)
	if again := kairn(t, "sql", "--archive", dir, "--format", "csv", count); again != first {
		t.Errorf("second ingest changed the archive: %s → %s", first, again)
	}
	recs, _ := csv.NewReader(strings.NewReader(first)).ReadAll()
	if recs[1][0] != recs[1][1] {
		t.Errorf("duplicate span ids: %v", recs[1])
	}
}

// useMinIO points the kairn commands the test runs at s3:// archives in srv's bucket "kairn".
func useMinIO(t *testing.T, srv *testminio.Server) {
	t.Helper()
	testminio.Bucket(t, srv.Endpoint, srv.AccessKey, srv.SecretKey, "kairn")
	t.Setenv("KAIRN_S3_ENDPOINT", srv.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
}

func TestS3ArchiveThroughMinIO(t *testing.T) {
	audit, watches := recordingFiles(t)
	useMinIO(t, testminio.StartServer(t))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	local := t.TempDir()
	kairn(t, ingestArgs(local, audit, watches)...)
	kairn(t, ingestArgs("s3://kairn/archives/dev", audit, watches)...)
	want := kairn(t, "report", "rollout-first-pull", "--archive", local, "--format", "csv")
	got := kairn(t, "report", "rollout-first-pull", "--archive", "s3://kairn/archives/dev", "--format", "csv")
	if got != want {
		t.Errorf("report from S3 differs from the local archive:\n%s\nwant\n%s", got, want)
	}
	if n := len(parseReport(t, got)); n == 0 {
		t.Error("empty report from S3")
	}
	// The cache holds each part under its own name and size (sparse: only the column chunks a
	// statement read are filled in; analyze's tests prove the bytes).
	lp, _ := filepath.Glob(filepath.Join(local, "spans", "*", "*", "*.parquet"))
	cacheRoot, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "kairn", "parts", "*"))
	if len(lp) == 0 || len(cacheRoot) != 1 {
		t.Fatalf("local parts %d, cache roots %v", len(lp), cacheRoot)
	}
	for _, p := range lp {
		rel, _ := filepath.Rel(local, p)
		a, _ := os.Stat(p)
		b, err := os.Stat(filepath.Join(cacheRoot[0], rel))
		if err != nil || a.Size() != b.Size() {
			t.Errorf("%s: cached copy %v, want %d bytes (%v)", rel, b, a.Size(), err)
		}
	}
}
