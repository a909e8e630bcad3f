package collect

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kairn-dev/kairn/link"
)

// recorder is a Sink that keeps everything.
type recorder struct {
	obs  []link.Observation
	revs []link.Revision
	bad  []Malformed
}

func (r *recorder) Observe(o link.Observation) { r.obs = append(r.obs, o) }
func (r *recorder) Revise(v link.Revision)     { r.revs = append(r.revs, v) }
func (r *recorder) Malformed(m Malformed)      { r.bad = append(r.bad, m) }

func writeFile(t *testing.T, name, content string, gz bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	data := []byte(content)
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(data)
		w.Close()
		data = b.Bytes()
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodAudit = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","verb":"patch","user":{"username":"alice"},"userAgent":"kubectl/v1.32","objectRef":{"resource":"deployments","namespace":"shop","name":"web","apiGroup":"apps","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-11-24T05:00:00.123456Z","stageTimestamp":"2026-11-24T05:00:00.200000Z"}`

func TestAuditBadLineKeepsNeighbours(t *testing.T) {
	in := strings.Join([]string{
		goodAudit,
		`{"kind":"Event","auditID":"a2","verb":"get","objectRef":{"resource":"pods"},"requestReceivedTimestamp":"not-a-time"}`,
		`{"kind":"Event","auditID":"a3", "verb": "delete", "objectRef":{"resource":"pods","namespace":"x","name":"p"`, // cut off
		strings.Replace(goodAudit, `"a1"`, `"a4"`, 1),
		`garbage line`,
		strings.Replace(goodAudit, `"a1"`, `"a5"`, 1),
	}, "\n") + "\n"
	for _, gz := range []bool{false, true} {
		rec := &recorder{}
		st, err := ReadAuditFile(writeFile(t, "audit.log", in, gz), FileOptions{Cluster: "c"}, rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(rec.obs); got != "a1,a4,a5" {
			t.Errorf("gzip=%v: good records = %s, want a1,a4,a5", gz, got)
		}
		wantLines := []int{2, 3, 5}
		if len(rec.bad) != len(wantLines) || st.Malformed != 3 {
			t.Fatalf("gzip=%v: malformed = %v, want lines %v", gz, rec.bad, wantLines)
		}
		for i, m := range rec.bad {
			if m.Line != wantLines[i] || m.Reason == "" || !strings.HasSuffix(m.File, "audit.log") {
				t.Errorf("malformed[%d] = %s, want line %d with a reason", i, m, wantLines[i])
			}
		}
		if !strings.Contains(rec.bad[0].Reason, "requestReceivedTimestamp") && !strings.Contains(rec.bad[0].Reason, "not-a-time") {
			t.Errorf("reason %q does not name the bad field", rec.bad[0].Reason)
		}
	}
}

func TestEventListKeepsGoodItems(t *testing.T) {
	in := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + goodAudit + `,{"auditID":5},` + strings.Replace(goodAudit, `"a1"`, `"a2"`, 1) + `]}`
	rec := &recorder{}
	if _, err := ReadAuditFile(writeFile(t, "batch.json", in, false), FileOptions{Cluster: "c"}, rec); err != nil {
		t.Fatal(err)
	}
	if got := ids(rec.obs); got != "a1,a2" {
		t.Errorf("good = %s, want a1,a2", got)
	}
	if len(rec.bad) != 1 {
		t.Errorf("malformed = %v, want 1", rec.bad)
	}
}

func TestAuditFields(t *testing.T) {
	rec := &recorder{}
	if _, err := ReadAuditFile(writeFile(t, "a.log", goodAudit+"\n", false), FileOptions{Cluster: "dev"}, rec); err != nil {
		t.Fatal(err)
	}
	o := rec.obs[0]
	want := link.ObjectKey{Cluster: "dev", Group: "apps", Resource: "deployments", Namespace: "shop", Name: "web"}
	if o.Object != want || o.Verb != "patch" || o.User != "alice" || o.StatusCode != 200 ||
		o.Time.Format("15:04:05.000000") != "05:00:00.123456" || o.EndTime.Format("15:04:05.000000") != "05:00:00.200000" {
		t.Errorf("observation = %+v", o)
	}
}

func TestWrongFileTypes(t *testing.T) {
	watch := writeFile(t, "w.json", `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","uid":"u"}}}`, false)
	audit := writeFile(t, "a.log", goodAudit, true)
	parquet := writeFile(t, "x.parquet", "PAR1\x00\x01", false)
	text := writeFile(t, "notes.txt", "hello world\n", false)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"watch as audit", CheckAuditFile(watch), "pass it with --watch"},
		{"audit as watch", CheckWatchFile(audit), "pass it with --audit"},
		{"parquet", CheckAuditFile(parquet), "Parquet"},
		{"text", CheckWatchFile(text), `starts with "hello world`},
		{"missing", CheckAuditFile(filepath.Join(t.TempDir(), "nope")), "no such file"},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to say %q", c.name, c.err, c.want)
		}
	}
	if err := CheckAuditFile(audit); err != nil {
		t.Errorf("good gzip audit rejected: %v", err)
	}
}

func TestWatchPrettyStreamAndTruncation(t *testing.T) {
	// kubectl prints indented values back to back; a cut-off value must not swallow the next.
	in := `{
    "type": "ADDED",
    "object": {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "resourceVersion": "10",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d1", "controller": true}]}
    }
}
{
    "type": "MODIFIED",
    "object": {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
{
    "type": "DELETED",
    "object": {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "resourceVersion": "12"}}
}
`
	rec := &recorder{}
	if _, err := ReadWatchFile(writeFile(t, "w.json", in, false), FileOptions{Cluster: "c"}, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.revs) != 2 || rec.revs[0].ResourceVersion != "10" || !rec.revs[1].Deleted {
		t.Fatalf("revisions = %+v", rec.revs)
	}
	if o := rec.revs[0].Owners; len(o) != 1 || o[0].Resource != "deployments" || o[0].UID != "d1" || !o[0].Controller {
		t.Errorf("owners = %+v", o)
	}
	if len(rec.bad) != 1 || rec.bad[0].Line != 10 {
		t.Errorf("malformed = %v, want one at line 10", rec.bad)
	}
}

func TestSecretDataNeverKept(t *testing.T) {
	in := `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"n","uid":"u","resourceVersion":"1"},"data":{"password":"aHVudGVyMg=="},"stringData":{"k":"v"}}}`
	rec := &recorder{}
	if _, err := ReadWatchFile(writeFile(t, "w.json", in, false), FileOptions{Cluster: "c"}, rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.revs[0].Body["data"]; ok {
		t.Error("Secret data kept")
	}
	if _, ok := rec.revs[0].Body["stringData"]; ok {
		t.Error("Secret stringData kept")
	}
}

func ids(obs []link.Observation) string {
	var s []string
	for _, o := range obs {
		s = append(s, o.AuditID)
	}
	return strings.Join(s, ",")
}
