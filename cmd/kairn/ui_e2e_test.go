package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestJaegerUIE2E opens the demo Deployment's trace in the real Jaeger UI (jaeger-ui v1.76.0
// served by a real Jaeger v2.13 in front of `kairn serve`) in headless Chromium, and asserts
// what a person sees there: Deployment → ReplicaSets → Pods nested, no span warnings (clock
// skew, duplicate tags), no console error, no failed request. The browser side is
// hack/browser/jaeger-ui.mjs; it keeps a screenshot of each trace in $KAIRN_ARTIFACTS (else a
// directory it prints).
//
// Needs: KAIRN_E2E=1, a built jaeger-ui (KAIRN_JAEGER_UI_DIR, default ../shared/vendor beside
// the repo), Chromium (KAIRN_CHROMIUM, default chromium on PATH), node and npm
// (KAIRN_BROWSER_DIR: where hack/browser.sh installed puppeteer-core; default: it installs).
func TestJaegerUIE2E(t *testing.T) {
	if os.Getenv("KAIRN_E2E") == "" {
		t.Skip("KAIRN_E2E not set (make e2e)")
	}
	uiDir := os.Getenv("KAIRN_JAEGER_UI_DIR")
	if uiDir == "" {
		uiDir = filepath.Join("..", "..", "..", "shared", "vendor", "jaeger-ui-v1.76.0")
		// Where there is no ../shared, the one make ui built from the release tag, if any.
		if _, err := os.Stat(uiDir); err != nil {
			cache := os.Getenv("KAIRN_CACHE") // as hack/ui.sh: $KAIRN_CACHE, else ~/.cache/kairn
			if c, err := os.UserCacheDir(); cache == "" && err == nil {
				cache = filepath.Join(c, "kairn")
			}
			if cache != "" {
				uiDir = filepath.Join(cache, "jaeger-ui-v1.76.0")
			}
		}
	}
	if _, err := os.Stat(filepath.Join(uiDir, "index.html")); err != nil {
		t.Skipf("no built Jaeger UI at %s (set KAIRN_JAEGER_UI_DIR to a jaeger-ui v1.76.0 build, e.g. the one make ui builds where GitHub is reachable)", uiDir)
	}
	uiDir, _ = filepath.Abs(uiDir)
	chromium := os.Getenv("KAIRN_CHROMIUM")
	if chromium == "" {
		chromium, _ = exec.LookPath("chromium")
	}
	if chromium == "" {
		t.Skip("no Chromium (apt-get install -y chromium, or set KAIRN_CHROMIUM)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node (apt-get install -y nodejs npm)")
	}
	browserDir := os.Getenv("KAIRN_BROWSER_DIR")
	if browserDir == "" {
		if _, err := exec.LookPath("npm"); err != nil {
			t.Skip("no npm to install puppeteer-core (apt-get install -y npm, or set KAIRN_BROWSER_DIR)")
		}
		out, err := exec.Command(filepath.Join("..", "..", "hack", "browser.sh"), "modules").Output()
		if err != nil {
			t.Fatalf("hack/browser.sh modules: %v", err)
		}
		browserDir = strings.TrimSpace(string(out))
	}
	bin := os.Getenv("KAIRN_JAEGER_BIN")
	if bin == "" {
		out, err := exec.Command(filepath.Join("..", "..", "hack", "jaeger.sh"), "path").Output()
		if err != nil {
			t.Fatalf("hack/jaeger.sh path: %v", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	artifacts := os.Getenv("KAIRN_ARTIFACTS")
	if artifacts == "" {
		// Not t.TempDir: the screenshots are for a person to look at after the test.
		artifacts, err = os.MkdirTemp("", "kairn-ui-e2e-")
		if err != nil {
			t.Fatal(err)
		}
	}
	artifacts, _ = filepath.Abs(artifacts)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	want := shopWebObjects(t)
	dir := recordingArchive(t)
	grpcAddr, _, _ := startServe(t, dir)
	base := startJaegerUI(t, bin, uiDir, grpcAddr)

	start, end := recordingRange()
	services := []string{"tracing", "tree"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(ctx, node, filepath.Join("..", "..", "hack", "browser", "jaeger-ui.mjs"),
		"--ui", base, "--start", start, "--end", end, "--services", strings.Join(services, ","), "--artifacts", artifacts)
	cmd.Env = append(os.Environ(), "KAIRN_CHROMIUM="+chromium, "KAIRN_BROWSER_DIR="+browserDir)
	var stderr syncWriter
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/browser/jaeger-ui.mjs: %v\n%s", err, stderr.String())
	}
	var res uiResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("hack/browser/jaeger-ui.mjs printed no JSON: %v\n%.2000s\n%s", err, out, stderr.String())
	}
	_ = os.WriteFile(filepath.Join(artifacts, "result.json"), out, 0o644)
	t.Logf("browser: %s (Chromium launch %d ms); screenshots and result.json in %s", time.Since(began).Round(time.Millisecond), res.LaunchMs, artifacts)

	for _, e := range res.ConsoleErrors {
		t.Errorf("console error: %s", e)
	}
	for _, r := range res.FailedRequests {
		t.Errorf("failed request: %s", r)
	}
	for _, s := range res.Screenshots {
		if fi, err := os.Stat(s); err != nil || fi.Size() < 10000 {
			t.Errorf("screenshot %s missing or empty (%v)", s, err)
		}
	}
	for _, svc := range services {
		got, ok := res.Services[svc]
		if !ok {
			t.Errorf("%s: the browser did not get to the trace", svc)
			continue
		}
		t.Logf("%s: search %d ms, click to timeline %d ms, %d details %d ms; %s", svc, got.Timings.SearchMs, got.Timings.OpenMs, len(got.Details), got.Timings.DetailsMs, got.URL)
		checkUITrace(t, svc, want, got)
	}
}

type uiRow struct {
	Depth     int    `json:"depth"`
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Label     string `json:"label"`
	Error     bool   `json:"error"`
}

type uiTrace struct {
	Error          string   `json:"error"`
	ServicesListed []string `json:"servicesListed"`
	SearchResults  []string `json:"searchResults"`
	Opened         string   `json:"opened"`
	URL            string   `json:"url"`
	Header         string   `json:"header"`
	TotalSpans     int      `json:"totalSpans"`
	Rows           []uiRow  `json:"rows"`
	Details        []struct {
		Label, Detail, Warnings string
		Missing                 bool
	} `json:"details"`
	Warnings []struct{ Span, Text string } `json:"warnings"`
	PageText string                        `json:"pageText"`
	Timings  struct {
		SearchMs, OpenMs, DetailsMs int64
	} `json:"timings"`
}

type uiResult struct {
	Services       map[string]uiTrace `json:"services"`
	ConsoleErrors  []string           `json:"consoleErrors"`
	FailedRequests []string           `json:"failedRequests"`
	Screenshots    []string           `json:"screenshots"`
	LaunchMs       int64              `json:"launchMs"`
}

// checkUITrace asserts the trace page as a person reads it: the rows in order, each row's
// depth from its indent guides, its label (service and operation), and what the opened span
// details say.
func checkUITrace(t *testing.T, svc string, want shopWeb, got uiTrace) {
	t.Helper()
	if got.Error != "" {
		t.Errorf("%s: %s", svc, got.Error)
		return
	}
	if !contains(got.ServicesListed, svc) {
		t.Errorf("%s: the search page's services are %v", svc, got.ServicesListed)
	}
	if !regexp.MustCompile(`\bDeployment\b`).MatchString(got.Opened) || !strings.Contains(got.Opened, "web") {
		t.Errorf("%s: the search listed %q, none titled Deployment shop/web", svc, got.SearchResults)
	}
	if len(got.Rows) == 0 {
		t.Errorf("%s: no span rows on the trace page %s", svc, got.URL)
		return
	}
	if len(got.Rows) != got.TotalSpans {
		t.Errorf("%s: %d span rows read, the header says %d spans (%q)", svc, len(got.Rows), got.TotalSpans, got.Header)
	}
	// Which row shows which object: its label names the kind and the object (in full, or the
	// rest after its owner's name, as "…-8mtwc").
	find := func(kind, name string) (int, bool) {
		at, n := -1, 0
		for i, r := range got.Rows {
			if labels(r.Label, kind, name) {
				at, n = i, n+1
			}
		}
		if n != 1 {
			t.Errorf("%s: %d rows show %s %s, want 1", svc, n, kind, name)
			return at, false
		}
		return at, true
	}
	parent := func(i int) int {
		for j := i - 1; j >= 0; j-- {
			if got.Rows[j].Depth < got.Rows[i].Depth {
				return j
			}
		}
		return -1
	}
	dep, ok := find("Deployment", "web")
	if ok && (dep != 0 || got.Rows[dep].Depth != 0) {
		t.Errorf("%s: Deployment shop/web is row %d at depth %d, want the first row, at the root", svc, dep, got.Rows[dep].Depth)
	}
	rsRow := map[string]int{}
	for _, rs := range want.replicaSets {
		i, ok := find("ReplicaSet", rs)
		if !ok {
			continue
		}
		rsRow[rs] = i
		if p := parent(i); got.Rows[i].Depth != 1 || p != dep {
			t.Errorf("%s: ReplicaSet %s (row %d, depth %d) is under row %d %s, want depth 1 under the Deployment", svc, rs, i, got.Rows[i].Depth, p, rowLabel(got.Rows, p))
		}
	}
	for pod, rs := range want.pods {
		i, ok := find("Pod", pod)
		if !ok {
			continue
		}
		want, known := rsRow[rs]
		if p := parent(i); got.Rows[i].Depth != 2 || !known || p != want {
			t.Errorf("%s: Pod %s (row %d, depth %d) is under row %d %s, want depth 2 under ReplicaSet %s", svc, pod, i, got.Rows[i].Depth, p, rowLabel(got.Rows, p), rs)
		}
	}
	// Every span's detail was opened and read, so "no warning" below is not for lack of looking.
	missing := 0
	for _, d := range got.Details {
		if d.Missing {
			missing++
		}
	}
	if len(got.Details) != len(got.Rows) || missing > 0 {
		t.Errorf("%s: opened %d span details (%d did not open) for %d rows", svc, len(got.Details), missing, len(got.Rows))
	}
	// Jaeger shows a span's warnings in its detail: clock skew (a child before its parent),
	// duplicate tags, bad references. None belongs in a faithful trace.
	kinds := map[string]int{}
	for _, w := range got.Warnings {
		switch {
		case strings.Contains(strings.ToLower(w.Text), "clock skew"):
			kinds["clock skew"]++
		case strings.Contains(w.Text, "Duplicate tag"):
			kinds["Duplicate tag"]++
		default:
			kinds["other"]++
		}
		if kinds["clock skew"]+kinds["Duplicate tag"]+kinds["other"] <= 10 {
			t.Errorf("%s: span %q warns: %s", svc, w.Span, w.Text)
		}
	}
	if len(got.Warnings) > 0 {
		t.Errorf("%s: %d spans show warnings %v", svc, len(got.Warnings), kinds)
	}
	text := got.PageText
	for _, d := range got.Details {
		text += "\n" + d.Detail
	}
	if strings.Contains(strings.ToLower(text), "clock skew") {
		t.Errorf(`%s: the page says "clock skew"`, svc)
	}
	if strings.Contains(text, "Duplicate tag") {
		t.Errorf(`%s: the page says "Duplicate tag"`, svc)
	}
}

// labels reports whether a span row's label shows object kind/name: the kind as a word and the
// name as a whole token, or the part of it after a dash, shortened as "…-rest".
func labels(label, kind, name string) bool {
	if !regexp.MustCompile(`\b` + regexp.QuoteMeta(kind) + `\b`).MatchString(label) {
		return false
	}
	end := `($|[^\w.-])`
	if regexp.MustCompile(`(^|[\s/])` + regexp.QuoteMeta(name) + end).MatchString(label) {
		return true
	}
	for i := strings.IndexByte(name, '-'); i >= 0; {
		if regexp.MustCompile(`…` + regexp.QuoteMeta(name[i:]) + end).MatchString(label) {
			return true
		}
		j := strings.IndexByte(name[i+1:], '-')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func rowLabel(rows []uiRow, i int) string {
	if i < 0 {
		return "(none: a root)"
	}
	return fmt.Sprintf("%q", rows[i].Label)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// shopWeb is the demo Deployment's tree by name, read from the raw audit log: its ReplicaSets
// and, for each of their pods, the pod's ReplicaSet.
type shopWeb struct {
	replicaSets []string
	pods        map[string]string // pod name → ReplicaSet name
}

func shopWebObjects(t *testing.T) shopWeb {
	t.Helper()
	audit, _ := recordingFiles(t)
	type obj struct{ name, owner string }
	byUID := map[string]obj{}
	var deployment string
	for _, a := range auditLines(t, audit) {
		if getS(a, "verb") != "create" || getS(a, "stage") != "ResponseComplete" || getS(a, "objectRef", "subresource") != "" {
			continue
		}
		resp := get(a, "responseObject")
		if code, _ := get(a, "responseStatus", "code").(float64); code >= 300 || resp == nil || getS(resp, "metadata", "namespace") != "shop" {
			continue
		}
		o := obj{name: getS(resp, "metadata", "name")}
		for _, ref := range asList(get(resp, "metadata", "ownerReferences")) {
			if c, _ := get(ref, "controller").(bool); c {
				o.owner = getS(ref, "uid")
			}
		}
		switch getS(a, "objectRef", "resource") {
		case "deployments":
			if o.name == "web" {
				deployment = getS(resp, "metadata", "uid")
			}
		case "replicasets", "pods":
			byUID[getS(resp, "metadata", "uid")] = o
		}
	}
	w := shopWeb{pods: map[string]string{}}
	for _, o := range byUID {
		if o.owner == deployment && deployment != "" {
			w.replicaSets = append(w.replicaSets, o.name)
		}
	}
	for _, o := range byUID {
		if rs, ok := byUID[o.owner]; ok && rs.owner == deployment {
			w.pods[o.name] = rs.name
		}
	}
	if len(w.replicaSets) != 2 || len(w.pods) < 4 {
		t.Fatalf("recording: shop/web has ReplicaSets %v and pods %v, want 2 and ≥ 4", w.replicaSets, w.pods)
	}
	return w
}

// startJaegerUI runs a real Jaeger v2 that serves the built jaeger-ui in uiDir and reads kairn
// at kairnGRPC; it returns the UI's base URL.
func startJaegerUI(t *testing.T, bin, uiDir, kairnGRPC string) string {
	t.Helper()
	base := startJaeger(t, bin, kairnGRPC, uiDir)
	// The real UI, not the placeholder page a binary without embedded assets serves.
	if page := string(httpGet(t, base+"/search", 200)); !strings.Contains(page, "/static/index-") {
		t.Fatalf("jaeger serves no built UI from %s: %.500s", uiDir, page)
	}
	return base
}

// TestUILabels: which row labels TestJaegerUIE2E takes to show an object.
func TestUILabels(t *testing.T) {
	for _, c := range []struct {
		label, kind, name string
		want              bool
	}{
		{"tracing Deployment shop/web", "Deployment", "web", true},
		{"Deployment Deployment shop/web", "Deployment", "web", true},
		{"Deployment audit update deployments/status 409", "Deployment", "web", false},
		{"ReplicaSet ReplicaSet shop/web-6dc5fb9867", "ReplicaSet", "web-6dc5fb9867", true},
		{"tree ReplicaSet …-6dc5fb9867", "ReplicaSet", "web-6dc5fb9867", true},
		{"Pod Pod shop/web-6dc5fb9867-8mtwc", "ReplicaSet", "web-6dc5fb9867", false},
		{"Pod Pod shop/web-6dc5fb9867-8mtwc", "Pod", "web-6dc5fb9867-8mtwc", true},
		{"tree Pod …-8mtwc", "Pod", "web-6dc5fb9867-8mtwc", true},
		{"Pod Pod shop/db-0 (3f2a)", "Pod", "db-0", true},
		{"Pod Pod shop/web-6dc5fb9867-8mtwc", "Pod", "web-6dc5fb9867-m4975", false},
		{"ReplicaSet event SuccessfulCreate: Created pod: web-6dc5fb9867-8mtwc", "Pod", "web-6dc5fb9867-8mtwc", false},
	} {
		if got := labels(c.label, c.kind, c.name); got != c.want {
			t.Errorf("labels(%q, %s, %s) = %v, want %v", c.label, c.kind, c.name, got, c.want)
		}
	}
}
