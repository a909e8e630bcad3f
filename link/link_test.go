package link

import (
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/kairn-dev/kairn/archive"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDiff(t *testing.T) {
	old := decode(t, `{"metadata":{"resourceVersion":"1","annotations":{"deployment.kubernetes.io/revision":"1"}},
		"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.25"}]}}}}`)
	new := decode(t, `{"metadata":{"resourceVersion":"2","annotations":{"deployment.kubernetes.io/revision":"2"}},
		"spec":{"replicas":2,"paused":true,"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"},{"name":"side","image":"busybox"}]}}}}`)
	got := Diff(old, new)
	want := []FieldChange{
		{Path: `metadata.annotations["deployment.kubernetes.io/revision"]`, Old: `"1"`, New: `"2"`},
		{Path: "spec.paused", New: "true"},
		{Path: "spec.template.spec.containers[0].image", Old: `"nginx:1.25"`, New: `"nginx:1.27"`},
		{Path: "spec.template.spec.containers[1]", New: `{"image":"busybox","name":"side"}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff =\n%v\nwant\n%v", got, want)
	}
	if d := Diff(old, old); len(d) != 0 {
		t.Errorf("Diff of equal objects = %v", d)
	}
}

func TestWindowStartIsEpochAligned(t *testing.T) {
	at := time.Date(2026, 11, 24, 5, 47, 13, 0, time.UTC)
	for _, c := range []struct {
		w    time.Duration
		want string
	}{{30 * time.Minute, "05:30:00"}, {time.Minute, "05:47:00"}, {7 * time.Minute, "05:46:00"}} {
		got := WindowStart(at, c.w)
		if got.Format("15:04:05") != c.want || got.UnixNano()%int64(c.w) != 0 {
			t.Errorf("window %s: %s, want %s", c.w, got.Format("15:04:05"), c.want)
		}
	}
}

func rev(uid, rv, name, kind, resource string, managerTime string, owners []OwnerRef, body string) Revision {
	mt, _ := time.Parse(time.RFC3339, managerTime)
	return Revision{
		Object: ObjectKey{Cluster: "c", Group: "apps", Resource: resource, Namespace: "ns", Name: name, UID: uid},
		Kind:   kind, ResourceVersion: rv, From: "watch", Owners: owners,
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Manager: "kubectl-set", ManagerOp: "Update", ManagerTime: mt.UTC(),
		Body: map[string]any{"spec": map[string]any{"image": body}},
	}
}

func TestLinkAuditByResourceVersionAndByFit(t *testing.T) {
	dep := []Revision{
		rev("d1", "10", "web", "Deployment", "deployments", "2026-01-01T00:00:00Z", nil, "a"),
		rev("d1", "20", "web", "Deployment", "deployments", "2026-01-01T00:05:00Z", nil, "b"),
		rev("d1", "30", "web", "Deployment", "deployments", "2026-01-01T00:09:00Z", nil, "c"),
	}
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	key := ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web"}
	withBody := Observation{Source: SourceAudit, Object: key, ID: "audit/A/ResponseComplete", AuditID: "A", Verb: "patch",
		StatusCode: 200, User: "alice", UserAgent: "kubectl/v1.32", ResourceVersion: "20",
		Time: at("2026-01-01T00:05:00.300Z"), EndTime: at("2026-01-01T00:05:00.310Z")}
	withBody.Object.UID = "d1"
	metadataOnly := Observation{Source: SourceAudit, Object: key, ID: "audit/B/ResponseComplete", AuditID: "B", Verb: "patch",
		StatusCode: 200, User: "bob", UserAgent: "kubectl/v1.32",
		Time: at("2026-01-01T00:09:00.700Z"), EndTime: at("2026-01-01T00:09:00.720Z")}
	failed := metadataOnly
	failed.ID, failed.AuditID, failed.StatusCode = "audit/C/ResponseComplete", "C", 409

	b := NewBatch(Config{Window: 30 * time.Minute})
	for _, r := range dep {
		b.Revise(r)
	}
	b.Observe(withBody)
	b.Observe(metadataOnly)
	b.Observe(failed)
	rows, st := b.Spans()
	if st.AuditLinkedByRV != 1 || st.AuditLinkedByFit != 1 {
		t.Fatalf("stats %+v", st)
	}
	changes := map[string]archive.Span{}
	for _, r := range rows {
		if r.Kind == archive.KindChange {
			changes[r.ResourceVersion] = r
		}
	}
	if c := changes["20"]; c.AuditID != "A" || c.User != "alice" || !c.StartTime.Equal(withBody.Time) || c.TimeSource != "audit" || c.Verb != "patch" ||
		len(c.Changes) != 1 || c.Changes[0].Path != "spec.image" || c.Changes[0].Old != `"a"` || c.Changes[0].New != `"b"` {
		t.Errorf("change rv 20 = %+v", c)
	}
	if c := changes["30"]; c.AuditID != "B" || c.User != "bob" || !c.StartTime.Equal(metadataOnly.Time) {
		t.Errorf("change rv 30 = %+v (want linked to the Metadata-level audit B)", c)
	}
	if c := changes["10"]; c.Verb != "create" || c.AuditID != "" {
		t.Errorf("change rv 10 = %+v", c)
	}
}

func TestOwnersNestAndMissingOwnerGetsASpan(t *testing.T) {
	rsOwner := []OwnerRef{{Group: "apps", Kind: "Deployment", Resource: "deployments", Name: "web", UID: "d1", Controller: true}}
	podOwner := []OwnerRef{{Group: "apps", Kind: "ReplicaSet", Resource: "replicasets", Name: "web-1", UID: "r1", Controller: true}}
	b := NewBatch(Config{})
	b.Revise(rev("r1", "5", "web-1", "ReplicaSet", "replicasets", "2026-01-01T00:00:00Z", rsOwner, "x"))
	p := rev("p1", "6", "web-1-abc", "Pod", "pods", "2026-01-01T00:00:00Z", podOwner, "x")
	p.Object.Group = ""
	b.Revise(p)
	rows, st := b.Spans()
	objects := map[string]archive.Span{}
	for _, r := range rows {
		if r.Kind == archive.KindObject {
			objects[r.Resource] = r
		}
	}
	pod, rs, dep := objects["pods"], objects["replicasets"], objects["deployments"]
	if dep.Name != "web" || dep.UID != "d1" || dep.ObjectKind != "Deployment" || st.OwnerOnlySpans != 1 {
		t.Fatalf("deployment span made from the reference: %+v (stats %+v)", dep, st)
	}
	if pod.ParentSpanID != rs.SpanID || rs.ParentSpanID != dep.SpanID || dep.ParentSpanID != "" {
		t.Errorf("nesting pod→rs→deployment broken: %s→%s, %s→%s", pod.ParentSpanID, rs.SpanID, rs.ParentSpanID, dep.SpanID)
	}
	if pod.TraceID != dep.TraceID || pod.TraceID != TraceID(ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "d1"}) {
		t.Error("the trace is not named by the root owner")
	}
	if pod.ParentUID != "r1" || pod.ParentKind != "ReplicaSet" {
		t.Errorf("pod parent keys %+v", pod)
	}
	// Deterministic: a second writer with the same facts produces the same ids.
	b2 := NewBatch(Config{})
	b2.Revise(p)
	rows2, _ := b2.Spans()
	for _, r := range rows2 {
		if r.Kind == archive.KindObject && r.Resource == "pods" && r.SpanID != pod.SpanID {
			t.Error("object span id differs between writers")
		}
	}
}

func TestEventTimedByAuditedCreation(t *testing.T) {
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	pod := ObjectKey{Cluster: "c", Resource: "pods", Namespace: "ns", Name: "p", UID: "u"}
	ev := Observation{Source: SourceEvent, Object: pod, ID: "event/e1/1", Reason: "Pulling", Count: 1,
		Carrier: ObjectKey{Cluster: "c", Resource: "events", Namespace: "ns", Name: "p.123", UID: "e1"},
		Time:    at("2026-01-01T00:00:01Z"), TimeSource: "firstTimestamp"}
	audit := Observation{Source: SourceAudit, Object: ObjectKey{Cluster: "c", Resource: "events", Namespace: "ns", Name: "p.123"},
		ID: "audit/X/ResponseComplete", Verb: "create", StatusCode: 201, Time: at("2026-01-01T00:00:01.437Z")}
	b := NewBatch(Config{})
	b.Observe(ev)
	b.Observe(audit)
	rows, _ := b.Spans()
	for _, r := range rows {
		if r.Kind == archive.KindEvent && (!r.StartTime.Equal(audit.Time) || r.TimeSource != "audit") {
			t.Errorf("event at %s (%s), want the audited creation %s", r.StartTime, r.TimeSource, audit.Time)
		}
	}
}

// TestHashesStable: span and trace ids are part of the archive; the one-shot hashes give what the
// streaming hasher gave.
func TestHashesStable(t *testing.T) {
	parts := []string{"object", "c", "apps", "deployments", "shop", strings.Repeat("web", 100), "u", ""}
	h := xxh3.New()
	for _, p := range parts {
		h.WriteString(p)
		h.Write([]byte{0})
	}
	s := h.Sum64()
	var b [8]byte
	for i := range 8 {
		b[i] = byte(s >> (56 - 8*i))
	}
	if got, want := hash64(parts...), hex.EncodeToString(b[:]); got != want {
		t.Errorf("hash64 %s, streaming %s", got, want)
	}
	b16 := h.Sum128().Bytes()
	if got, want := hash128(parts...), hex.EncodeToString(b16[:]); got != want {
		t.Errorf("hash128 %s, streaming %s", got, want)
	}
}
