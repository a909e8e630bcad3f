package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- ground truth for the tree of Deployment shop/web, from the raw recording only ----

type rolloutTruth struct {
	deployment string            // uid
	rsOwner    map[string]string // ReplicaSet uid → Deployment uid (controller ownerReference)
	podOwner   map[string]string // pod uid → ReplicaSet uid
	pulling    map[string]int    // pod uid → Pulling events about it
}

// shopWebTruth reads the owners from the audit log's response bodies (creates of deployments,
// replicasets, pods) and the Pulling events from the core/v1 Event watch.
func shopWebTruth(t *testing.T) rolloutTruth {
	audit, watches := recordingFiles(t)
	tr := rolloutTruth{rsOwner: map[string]string{}, podOwner: map[string]string{}, pulling: map[string]int{}}
	controller := func(o any) string {
		for _, ref := range asList(get(o, "metadata", "ownerReferences")) {
			if c, _ := get(ref, "controller").(bool); c {
				return getS(ref, "uid")
			}
		}
		return ""
	}
	for _, a := range auditLines(t, audit) {
		if getS(a, "verb") != "create" || getS(a, "stage") != "ResponseComplete" || getS(a, "objectRef", "subresource") != "" {
			continue
		}
		code, _ := get(a, "responseStatus", "code").(float64)
		resp := get(a, "responseObject")
		if code >= 300 || resp == nil || getS(resp, "metadata", "namespace") != "shop" {
			continue
		}
		uid := getS(resp, "metadata", "uid")
		switch getS(a, "objectRef", "resource") {
		case "deployments":
			if getS(resp, "metadata", "name") == "web" {
				tr.deployment = uid
			}
		case "replicasets":
			tr.rsOwner[uid] = controller(resp)
		case "pods":
			tr.podOwner[uid] = controller(resp)
		}
	}
	for _, w := range watches {
		if filepath.Base(w) != "watch-events.json.gz" {
			continue
		}
		seen := map[string]bool{}
		for _, ev := range watchObjects(t, w) {
			uid := getS(ev, "metadata", "uid")
			if getS(ev, "reason") == "Pulling" && !seen[uid] {
				seen[uid] = true
				tr.pulling[getS(ev, "involvedObject", "uid")]++
			}
		}
	}
	if tr.deployment == "" {
		t.Fatal("no create of Deployment shop/web in the recording")
	}
	return tr
}

// wantTree is the expected tree of shop/web: RS → Deployment, pod → RS, with the Pulling counts.
func (tr rolloutTruth) want() (rs map[string]bool, pods map[string]string, pulling map[string]int) {
	rs, pods, pulling = map[string]bool{}, map[string]string{}, map[string]int{}
	for r, owner := range tr.rsOwner {
		if owner == tr.deployment {
			rs[r] = true
		}
	}
	for p, owner := range tr.podOwner {
		if rs[owner] {
			pods[p] = owner
			pulling[p] = tr.pulling[p]
		}
	}
	return rs, pods, pulling
}

// ---- a trace as any of the three APIs return it, reduced to what the assertions need ----

type gotSpan struct {
	id, parent, name string
	tags             map[string]string
}

func uiSpans(t *testing.T, body []byte) (traceID string, spans []gotSpan, warnings []string) {
	t.Helper()
	var env struct {
		Data []struct {
			TraceID string `json:"traceID"`
			Spans   []struct {
				SpanID        string `json:"spanID"`
				OperationName string `json:"operationName"`
				References    []struct {
					RefType, SpanID string
				} `json:"references"`
				Tags []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
			} `json:"spans"`
			Warnings []string `json:"warnings"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("bad trace JSON: %v\n%.500s", err, body)
	}
	if len(env.Data) == 0 {
		t.Fatalf("no trace in %.500s", body)
	}
	d := env.Data[0]
	for _, s := range d.Spans {
		g := gotSpan{id: s.SpanID, name: s.OperationName, tags: map[string]string{}}
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				g.parent = r.SpanID
				break
			}
		}
		for _, tag := range s.Tags {
			g.tags[tag.Key] = fmt.Sprint(tag.Value)
		}
		spans = append(spans, g)
	}
	return d.TraceID, spans, d.Warnings
}

// otlpSpans reads Jaeger's /api/v3/traces/{id} answer (OTLP JSON, hex ids).
func otlpSpans(t *testing.T, body []byte) []gotSpan {
	t.Helper()
	var env struct {
		Result struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []struct {
						SpanID       string `json:"spanId"`
						ParentSpanID string `json:"parentSpanId"`
						Name         string `json:"name"`
						Attributes   []struct {
							Key   string         `json:"key"`
							Value map[string]any `json:"value"`
						} `json:"attributes"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("bad OTLP JSON: %v\n%.500s", err, body)
	}
	var out []gotSpan
	for _, rs := range env.Result.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				g := gotSpan{id: strings.ToLower(s.SpanID), parent: strings.ToLower(s.ParentSpanID), name: s.Name, tags: map[string]string{}}
				for _, a := range s.Attributes {
					for _, v := range a.Value {
						g.tags[a.Key] = fmt.Sprint(v)
					}
				}
				out = append(out, g)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no spans in %.500s", body)
	}
	return out
}

// checkShopWebTree asserts the tree of Deployment shop/web: the Deployment at the root, both
// ReplicaSets under it, each pod under its ReplicaSet, each pod's Pulling events under the pod.
func checkShopWebTree(t *testing.T, api string, tr rolloutTruth, spans []gotSpan) {
	t.Helper()
	rs, pods, pulling := tr.want()
	if len(rs) != 2 || len(pods) < 4 {
		t.Fatalf("recording: shop/web has %d ReplicaSets and %d pods, want 2 and ≥ 4", len(rs), len(pods))
	}
	byUID := map[string]gotSpan{}
	byID := map[string]gotSpan{}
	for _, s := range spans {
		byID[s.id] = s
		if s.tags["kairn.kind"] == "object" {
			byUID[s.tags["uid"]] = s
		}
	}
	dep, ok := byUID[tr.deployment]
	if !ok {
		t.Fatalf("%s: no span for Deployment shop/web (uid %s)", api, tr.deployment)
	}
	if dep.parent != "" {
		t.Errorf("%s: Deployment span has parent %s, want the root", api, dep.parent)
	}
	for _, key := range []string{"cluster", "group", "resource", "namespace", "name", "uid"} {
		if _, ok := dep.tags[key]; !ok {
			t.Errorf("%s: Deployment span lacks tag %q", api, key)
		}
	}
	if dep.tags["name"] != "web" || dep.tags["namespace"] != "shop" || dep.tags["resource"] != "deployments" || dep.tags["group"] != "apps" || dep.tags["cluster"] != "rec" {
		t.Errorf("%s: Deployment tags %v", api, dep.tags)
	}
	for r := range rs {
		s, ok := byUID[r]
		switch {
		case !ok:
			t.Errorf("%s: ReplicaSet %s missing", api, r)
		case s.parent != dep.id:
			t.Errorf("%s: ReplicaSet %s (%s) has parent %s, want the Deployment %s", api, s.tags["name"], r, s.parent, dep.id)
		}
	}
	for p, owner := range pods {
		s, ok := byUID[p]
		if !ok {
			t.Errorf("%s: pod %s missing", api, p)
			continue
		}
		if want := byUID[owner]; s.parent != want.id {
			t.Errorf("%s: pod %s has parent %s, want ReplicaSet %s (%s)", api, s.tags["name"], s.parent, want.tags["name"], want.id)
		}
		n := 0
		for _, e := range spans {
			if e.parent == s.id && e.name == "event Pulling" {
				n++
			}
		}
		if n != pulling[p] || n == 0 {
			t.Errorf("%s: pod %s has %d Pulling event spans, the recording has %d", api, s.tags["name"], n, pulling[p])
		}
	}
	for _, s := range spans {
		if s.parent != "" && byID[s.parent].id == "" {
			t.Errorf("%s: span %s %q has parent %s, not in the trace", api, s.id, s.name, s.parent)
		}
	}
}

// ---- running kairn serve over the recording ----

// recordingArchive ingests and merges the bundled recording into a fresh local archive.
func recordingArchive(t *testing.T) string {
	t.Helper()
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	kairn(t, ingestArgs(dir, audit, watches)...)
	kairn(t, "merge", "--archive", dir, "--open")
	return dir
}

// startServe runs `kairn serve` in-process on free ports until the test ends.
func startServe(t *testing.T, archiveDir string, extra ...string) (grpcAddr, httpAddr, metricsAddr string) {
	t.Helper()
	grpcAddr, httpAddr, metricsAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	extra = append([]string{"--metrics-addr", metricsAddr}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var stderr syncWriter
	go func() {
		done <- run(ctx, append([]string{"serve", "--archive", archiveDir, "--grpc-addr", grpcAddr, "--http-addr", httpAddr}, extra...), io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("kairn serve exited %d: %s", code, stderr.String())
		}
	})
	waitHTTP(t, "http://"+httpAddr+"/api/services", done)
	return grpcAddr, httpAddr, metricsAddr
}

func waitHTTP(t *testing.T, u string, exited <-chan int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case code := <-exited:
			t.Fatalf("server exited (%d) before %s answered", code, u)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not answer within 30s", u)
}

func httpGet(t *testing.T, u string, wantCode int) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %d, want %d: %.1000s", u, resp.StatusCode, wantCode, body)
	}
	return body
}

// recordingRange is the search window around the recording (2026-11-24 06:09–06:12 UTC), in µs.
func recordingRange() (start, end string) {
	s := time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	return fmt.Sprint(s.UnixMicro()), fmt.Sprint(s.Add(time.Hour).UnixMicro())
}

func searchURL(base, service string) string {
	start, end := recordingRange()
	q := url.Values{"service": {service}, "start": {start}, "end": {end}, "limit": {"20"},
		"tags": {`{"group":"apps","resource":"deployments","namespace":"shop","name":"web"}`}}
	return base + "/api/traces?" + q.Encode()
}

func TestServeRecordingTree(t *testing.T) {
	tr := shopWebTruth(t)
	dir := recordingArchive(t)
	_, httpAddr, metricsAddr := startServe(t, dir)
	base := "http://" + httpAddr

	id, spans, _ := uiSpans(t, httpGet(t, searchURL(base, "tree"), 200))
	checkShopWebTree(t, "kairn /api/traces?service=tree", tr, spans)
	_, spans, _ = uiSpans(t, httpGet(t, base+"/api/traces/"+id, 200))
	checkShopWebTree(t, "kairn /api/traces/{id}", tr, spans)

	// Switching pipeline changes only the pipeline byte of the id.
	tid, _, _ := uiSpans(t, httpGet(t, searchURL(base, "tracing"), 200))
	if tid[:2] != id[:2] || tid[4:] != id[4:] || tid[2:4] == id[2:4] {
		t.Errorf("tree id %s and tracing id %s should differ only in the pipeline byte", id, tid)
	}
	// tracing: object spans, observations are logs; only failed ones stay spans, so every
	// pipeline shows the same errors.
	_, spans, _ = uiSpans(t, httpGet(t, base+"/api/traces/"+tid, 200))
	for _, s := range spans {
		if s.tags["kairn.kind"] != "object" && s.tags["error"] != "true" {
			t.Errorf("tracing: a span %q that is neither an object nor a failure", s.name)
		}
	}

	// Bad input: Jaeger's error shape, 400.
	for _, u := range []string{
		base + "/api/traces/nothex",
		base + "/api/traces/" + strings.Repeat("0", 32),
		base + "/api/traces?service=nosuch",
		base + "/api/traces?service=tree&tag=color:red",
		base + "/api/services/tree%20%5Bsiblings%5D/operations",
	} {
		body := httpGet(t, u, 400)
		var env struct {
			Data   any
			Errors []struct {
				Code int    `json:"code"`
				Msg  string `json:"msg"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(body, &env); err != nil || len(env.Errors) != 1 || env.Errors[0].Code != 400 || env.Errors[0].Msg == "" {
			t.Errorf("%s: %s", u, body)
		}
	}
	// Unknown trace of a valid shape: 404.
	httpGet(t, base+"/api/traces/6b03"+strings.Repeat("1", 14)+id[18:], 404)

	// Every request above is in the metrics, by route and code, never by trace id.
	metrics := string(httpGet(t, "http://"+metricsAddr+"/metrics", 200))
	for _, want := range []string{
		`kairn_serve_requests_total{api="http",code="200",method="/api/traces/{id}"} 2`,
		`kairn_serve_requests_total{api="http",code="400",method="/api/traces/{id}"} 2`,
		`kairn_serve_requests_total{api="http",code="404",method="/api/traces/{id}"} 1`,
		`kairn_serve_request_duration_seconds_count{api="http",method="/api/traces"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, id) {
		t.Error("a trace id became a metric label")
	}
	httpGet(t, "http://"+metricsAddr+"/readyz", 200)
}

// TestJaegerE2E puts a real Jaeger v2 (built by hack/jaeger.sh) in front of `kairn serve` via the
// remote storage v2 gRPC API, and checks that Jaeger's own APIs return the shop/web tree.
func TestJaegerE2E(t *testing.T) {
	if os.Getenv("KAIRN_E2E") == "" {
		t.Skip("KAIRN_E2E not set (make e2e)")
	}
	bin := os.Getenv("KAIRN_JAEGER_BIN")
	if bin == "" {
		out, err := exec.Command(filepath.Join("..", "..", "hack", "jaeger.sh"), "path").Output()
		if err != nil {
			t.Fatalf("hack/jaeger.sh path: %v", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	tr := shopWebTruth(t)
	dir := recordingArchive(t)
	grpcAddr, kairnHTTP, _ := startServe(t, dir)

	base := startJaeger(t, bin, grpcAddr, "")

	var svcs struct{ Data []string }
	_ = json.Unmarshal(httpGet(t, base+"/api/services", 200), &svcs)
	if !strings.Contains(strings.Join(svcs.Data, ","), "tree [ancestors]") {
		t.Errorf("jaeger /api/services: %v", svcs.Data)
	}
	id, spans, _ := uiSpans(t, httpGet(t, searchURL(base, "tree"), 200))
	checkShopWebTree(t, "jaeger /api/traces?service=tree", tr, spans)
	_, spans, _ = uiSpans(t, httpGet(t, base+"/api/traces/"+id, 200))
	checkShopWebTree(t, "jaeger /api/traces/{id}", tr, spans)
	checkShopWebTree(t, "jaeger /api/v3/traces/{id}", tr, otlpSpans(t, httpGet(t, base+"/api/v3/traces/"+id, 200)))
	// The same on kairn's own API, same id.
	_, spans, _ = uiSpans(t, httpGet(t, "http://"+kairnHTTP+"/api/traces/"+id, 200))
	checkShopWebTree(t, "kairn /api/traces/{id}", tr, spans)
}

// startJaeger runs a real Jaeger v2 whose query service reads kairn at kairnGRPC through remote
// storage v2 until the test ends, serving the built jaeger-ui in uiDir where one is given; it
// returns Jaeger's base URL once it answers.
func startJaeger(t *testing.T, bin, kairnGRPC, uiDir string) string {
	t.Helper()
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(jaegerConfig(httpAddr, grpcAddr, kairnGRPC, uiDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", cfg)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	var logs syncWriter
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan int, 1)
	go func() { _ = cmd.Wait(); exited <- cmd.ProcessState.ExitCode() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("jaeger output:\n%.20000s", logs.String())
		}
	})
	base := "http://" + httpAddr
	waitHTTP(t, base+"/api/services", exited)
	return base
}

// jaegerConfig is a Jaeger v2 config whose query service reads kairn through remote storage v2,
// and serves the built jaeger-ui in uiDir (jaeger_query's ui.assets_path) unless it is empty.
func jaegerConfig(httpAddr, grpcAddr, kairnGRPC, uiDir string) string {
	ui := ""
	if uiDir != "" {
		ui = fmt.Sprintf("\n    ui:\n      assets_path: %q", uiDir)
	}
	return fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [nop]
      processors: [batch]
      exporters: [nop]
  telemetry:
    logs:
      level: info
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: kairn%s
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      kairn:
        grpc:
          endpoint: %s
          tls:
            insecure: true
receivers:
  nop:
processors:
  batch:
exporters:
  nop:
`, ui, httpAddr, grpcAddr, kairnGRPC)
}

// syncWriter is a bytes.Buffer safe for concurrent writers.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
