package collect

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// realdata is recordings written by others, kept outside the repo (see ../shared/realdata/README.md).
func realdata(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "realdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real recordings not available (%v): they live in ../shared/realdata next to the repo", err)
	}
	return p
}

// jsonLines decodes a file line by line with the standard library, independently of collect.
func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRealAudit2RBAC(t *testing.T) {
	p := realdata(t, "audit2rbac-demo-v1.log")
	var want int
	var wantUsers []string
	for _, m := range jsonLines(t, p) {
		ref, _ := m["objectRef"].(map[string]any)
		if m["stage"] == "ResponseComplete" && ref != nil && ref["resource"] != nil {
			want++
			user := m["user"].(map[string]any)["username"].(string)
			if imp, ok := m["impersonatedUser"].(map[string]any); ok {
				user = imp["username"].(string)
			}
			wantUsers = append(wantUsers, user)
		}
	}
	rec := &recorder{}
	st, err := ReadAuditFile(p, FileOptions{Cluster: "c"}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.obs) != want || st.Malformed != 0 || st.Records != 37 || st.Skipped != 37-want {
		t.Errorf("observations %d (want %d), stats %+v", len(rec.obs), want, st)
	}
	for i, o := range rec.obs {
		if o.AuditID == "" || o.Time.IsZero() || o.Verb == "" || o.Object.Resource == "" {
			t.Errorf("incomplete observation %+v", o)
		}
		if i < len(wantUsers) && o.User != wantUsers[i] {
			t.Errorf("record %d: user %q, want %q (the impersonated user where there is one)", i, o.User, wantUsers[i])
		}
	}
	// Forbidden responses are kept with their status.
	codes := map[int32]int{}
	for _, o := range rec.obs {
		codes[o.StatusCode]++
	}
	if codes[403] == 0 || codes[200] == 0 {
		t.Errorf("status codes %v: want 200s and 403s from the recording", codes)
	}
}

func TestRealFalcoSingleEvents(t *testing.T) {
	dir := realdata(t, "falco-k8s-audit")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 5 {
		t.Fatalf("want 5 falco files, have %d", len(files))
	}
	for _, f := range files {
		var m map[string]any
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		want := 0 // exec's record is its ResponseStarted stage: not a final stage
		if m["stage"] == "ResponseComplete" {
			want = 1
		}
		rec := &recorder{}
		st, err := ReadAuditFile(f, FileOptions{Cluster: "minikube"}, rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.obs) != want || st.Malformed != 0 || st.Skipped != 1-want {
			t.Errorf("%s: %d observations, %+v", filepath.Base(f), len(rec.obs), st)
		}
	}
	// The replicaset-controller's pod create names its owner in the response body.
	rec := &recorder{}
	ReadAuditFile(filepath.Join(dir, "create_nginx_pod_privileged.json"), FileOptions{Cluster: "minikube"}, rec)
	var raw map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "create_nginx_pod_privileged.json"))
	json.Unmarshal(b, &raw)
	owner := raw["responseObject"].(map[string]any)["metadata"].(map[string]any)["ownerReferences"].([]any)[0].(map[string]any)
	if len(rec.revs) != 1 || len(rec.revs[0].Owners) != 1 || rec.revs[0].Owners[0].Name != owner["name"] || rec.revs[0].Owners[0].UID != owner["uid"] {
		t.Errorf("revision owners = %+v, want %v", rec.revs, owner)
	}
	if rec.obs[0].Object.Name != "nginx-deployment-5cdcc99dbf-rgw6z" {
		t.Errorf("pod name %q", rec.obs[0].Object.Name)
	}
}

func TestRealAdmissionReviews(t *testing.T) {
	p := realdata(t, "kube-audit-rest-k3s-admissionreview.log")
	var wantAudit, wantEvents int
	for _, m := range jsonLines(t, p) {
		req := m["request"].(map[string]any)
		obj, _ := req["object"].(map[string]any)
		name, _ := req["name"].(string)
		if name == "" && obj != nil {
			name, _ = obj["metadata"].(map[string]any)["name"].(string)
		}
		if name != "" {
			wantAudit++
		}
		if obj != nil && obj["kind"] == "Event" {
			wantEvents++
		}
	}
	rec := &recorder{}
	st, err := ReadAuditFile(p, FileOptions{Cluster: "k3s"}, rec)
	if err != nil {
		t.Fatal(err)
	}
	var audits, events int
	for _, o := range rec.obs {
		switch o.Source {
		case "audit":
			audits++
		case "event":
			events++
		}
	}
	if audits != wantAudit || events != wantEvents || st.Malformed != 0 {
		t.Errorf("audit %d (want %d), events %d (want %d), %+v", audits, wantAudit, events, wantEvents, st)
	}
	if wantEvents != 13 {
		t.Errorf("recording has %d Events, README says 13", wantEvents)
	}
}

func TestRealKspanYAML(t *testing.T) {
	p := realdata(t, "kspan-deployment-2-pods.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Independent count: each document's top-level kind line.
	var wantEvents, wantObjects int
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "kind: Event":
			wantEvents++
		case strings.HasPrefix(line, "kind: "):
			wantObjects++
		}
	}
	rec := &recorder{}
	st, err := ReadWatchFile(p, FileOptions{Cluster: "kind"}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.obs) != wantEvents || len(rec.revs) != wantObjects || st.Malformed != 0 || wantEvents != 19 || wantObjects != 7 {
		t.Errorf("events %d/%d objects %d/%d stats %+v", len(rec.obs), wantEvents, len(rec.revs), wantObjects, st)
	}
	// README: the first Pulling is at 09:42:59Z (firstTimestamp), for a pod of px.
	var first time.Time
	for _, o := range rec.obs {
		if o.Reason == "Pulling" && (first.IsZero() || o.Time.Before(first)) {
			first = o.Time
			if !strings.HasPrefix(o.Object.Name, "px-") || o.Object.Resource != "pods" || o.Reporter != "kubelet" {
				t.Errorf("Pulling on %+v by %q", o.Object, o.Reporter)
			}
		}
	}
	if got := first.Format(time.RFC3339); got != "2021-05-19T09:42:59Z" {
		t.Errorf("first Pulling at %s", got)
	}
	// Objects carry the collector's time from the comment before each document.
	for _, r := range rec.revs {
		if r.Observed.IsZero() {
			t.Errorf("%s: no observed time from the # {\"time\"} comment", r.Object)
		}
	}
}

func TestRealJaegerFixtureIsNotAnInput(t *testing.T) {
	p := realdata(t, "jaeger-ui-trace-fixture-ui_01.json")
	rec := &recorder{}
	st, err := ReadAuditFile(p, FileOptions{Cluster: "c"}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed != 1 || len(rec.obs) != 0 || !strings.Contains(rec.bad[0].Reason, "auditID") {
		t.Errorf("a Jaeger trace read as audit: %+v %v", st, rec.bad)
	}
	rec = &recorder{}
	if st, _ := ReadWatchFile(p, FileOptions{Cluster: "c"}, rec); st.Malformed != 1 || len(rec.revs) != 0 {
		t.Errorf("a Jaeger trace read as watch: %+v", st)
	}
}

// The bundled recording (testdata/recording/README.md) parses without a single bad record, and
// every line and watch value is counted.
func TestOwnRecordingParses(t *testing.T) {
	dir := filepath.Join("..", "testdata", "recording")
	audit := filepath.Join(dir, "audit.log.gz")
	raw := gunzip(t, audit)
	lines := strings.Count(strings.TrimSpace(string(raw)), "\n") + 1
	rec := &recorder{}
	st, err := ReadAuditFile(audit, FileOptions{Cluster: "rec"}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != lines || st.Malformed != 0 || st.Observations+st.Skipped < lines {
		t.Errorf("audit: %+v, want %d records, none malformed", st, lines)
	}
	watches, _ := filepath.Glob(filepath.Join(dir, "watch-*.json.gz"))
	for _, w := range watches {
		dec := json.NewDecoder(bytes.NewReader(gunzip(t, w)))
		values := 0
		for {
			var v map[string]any
			if err := dec.Decode(&v); err != nil {
				break
			}
			values++
		}
		rec := &recorder{}
		st, err := ReadWatchFile(w, FileOptions{Cluster: "rec"}, rec)
		if err != nil {
			t.Fatal(err)
		}
		if st.Records != values || st.Malformed != 0 || st.Observations+st.Revisions != values || values == 0 {
			t.Errorf("%s: %+v, want %d values, none malformed", filepath.Base(w), st, values)
		}
	}
}

func gunzip(t *testing.T, path string) []byte {
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
