package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/serve/internal/storagev2"
)

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

// ---- trace ids ----

func TestTraceIDRoundTrip(t *testing.T) {
	for _, p := range Pipelines() {
		id := TraceID{Pipeline: p, Object: ObjectKey{Cluster: "c", Name: "x"}.Hash(), Start: t0, End: t0.Add(48 * 30 * time.Minute)}
		got, err := ParseTraceID(id.String())
		if err != nil || got != id {
			t.Fatalf("%s: %+v, %v; want %+v", id, got, err, id)
		}
	}
	for _, bad := range []string{"", "abc", strings.Repeat("z", 32), strings.Repeat("0", 32), "6b0f" + strings.Repeat("0", 28), "6b01" + strings.Repeat("0", 28)} {
		if _, err := ParseTraceID(bad); !errors.Is(err, ErrBadTraceID) {
			t.Errorf("ParseTraceID(%q) = %v, want ErrBadTraceID", bad, err)
		}
	}
	if _, err := (TraceID{Pipeline: DefaultPipeline, Start: t0, End: t0}).Bytes(); err == nil {
		t.Error("empty range encoded")
	}
	// The current format: 48 bits of hash and the cluster's hint in byte 8.
	k := ObjectKey{Cluster: "prod", Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "u"}
	id := newTraceID(DefaultPipeline, k, t0, t0.Add(time.Hour))
	b, err := id.Bytes()
	h := k.Hash()
	if err != nil || b[0] != 0x6c || [6]byte(b[2:8]) != [6]byte(h[:6]) || b[8] != clusterHint("prod") || b[8] == 0 {
		t.Fatalf("%x, %v: want format 0x6c, hash %x, hint %d", b, err, h[:6], clusterHint("prod"))
	}
	if got, err := DecodeTraceID(b[:]); err != nil || got != id || !got.names(k) {
		t.Fatalf("%+v, %v; want %+v naming %v", got, err, id, k)
	}
	other := k
	other.Cluster = "staging"
	if clusterHint("staging") == clusterHint("prod") || id.names(other) || !id.inCluster("prod") || id.inCluster("staging") {
		t.Errorf("the id of %v names %v too, or its hint does not tell their clusters apart", k, other)
	}
	b[8] = 0
	if _, err := DecodeTraceID(b[:]); !errors.Is(err, ErrBadTraceID) {
		t.Errorf("format 0x6c without a cluster hint: %v", err)
	}
	// The format of ids minted before: 56 bits, any cluster.
	old := TraceID{Pipeline: DefaultPipeline, Object: h, Start: t0, End: t0.Add(time.Hour)}
	if b, _ := old.Bytes(); b[0] != 0x6b || !old.names(k) || !old.inCluster("staging") || old.hashMask() != -1 {
		t.Errorf("format 0x6b: %x", b)
	}
}

// TestTraceReadsOnlyItsCluster: an id with a cluster hint reads only its cluster's partitions
// and finds the object there; an id of the earlier format (no hint) finds it reading all.
func TestTraceReadsOnlyItsCluster(t *testing.T) {
	local, err := archive.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, cluster := range []string{"prod", "staging"} {
		k := ObjectKey{Cluster: cluster, Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "u-" + cluster}
		for w := range 2 {
			win := t0.Add(time.Duration(w) * 30 * time.Minute)
			rows := []archive.Span{objectRow(k, "Deployment", "", win, "trace-"+cluster)}
			if _, err := archive.WriteParts(ctx, local, "test", rows); err != nil {
				t.Fatal(err)
			}
		}
	}
	mergeAll(t, local)
	store := &countingStore{Store: local}
	r := NewReader(store, ReaderConfig{})
	found, err := r.Find(ctx, Query{Pipeline: DefaultPipeline, Tags: map[string]string{"cluster": "prod"}})
	if err != nil || len(found) != 1 {
		t.Fatalf("find: %v %v", found, err)
	}
	for _, id := range []TraceID{found[0].ID, {Pipeline: DefaultPipeline, Object: found[0].Object.Hash(), Start: found[0].ID.Start, End: found[0].ID.End}} {
		r := NewReader(store, ReaderConfig{})
		store.gets = nil
		tr, err := r.Trace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Focus == "" || find(tr, tr.Focus).Object != found[0].Object || len(tr.Spans) != 1 {
			t.Errorf("%s: focus %q, %d spans", id, tr.Focus, len(tr.Spans))
		}
		staging := 0
		for _, k := range store.gets {
			if strings.Contains(k, "cluster=staging") {
				staging++
			}
		}
		if (id.ClusterHint != 0) != (staging == 0) {
			t.Errorf("%s (hint %d): %d reads of the other cluster's files", id, id.ClusterHint, staging)
		}
	}
}

func FuzzTraceID(f *testing.F) {
	id := TraceID{Pipeline: Pipeline{DisplayTree, SelectAncestors}, Start: t0, End: t0.Add(time.Hour)}
	f.Add(id.String())
	f.Add("")
	f.Add(strings.Repeat("f", 32))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseTraceID(s)
		if err != nil {
			if !errors.Is(err, ErrBadTraceID) || err.Error() == "" {
				t.Fatalf("error %v does not wrap ErrBadTraceID", err)
			}
			return
		}
		if again := id.String(); again != strings.ToLower(s) {
			t.Fatalf("%s → %+v → %s", s, id, again)
		}
	})
}

func TestParsePipeline(t *testing.T) {
	for _, p := range Pipelines() {
		if got, err := ParsePipeline(p.String()); err != nil || got != p {
			t.Errorf("%q: %v %v", p, got, err)
		}
	}
	if p, _ := ParsePipeline(""); p != DefaultPipeline {
		t.Errorf("default %v", p)
	}
	if p, err := ParsePipeline(" tracing [ ancestors ] "); err != nil || p != (Pipeline{DisplayTracing, SelectAncestors}) {
		t.Errorf("spaces: %v %v", p, err)
	}
	for _, bad := range []string{"trees", "tree [siblings]", "tree [ancestors", "[ancestors]"} {
		if _, err := ParsePipeline(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// ---- pipelines, each on its own over a small assembled trace ----

// sample: Deployment d → ReplicaSet d-5f → Pod d-5f-abc; an audit and a change on d, a
// Pulling event on the pod.
func sample() *Trace {
	obj := func(id, parent, kind, name string, start int) *Span {
		return &Span{ID: id, Parent: parent, Kind: "object", Name: kind + " ns/" + name, ObjectKind: kind,
			Object: ObjectKey{Cluster: "c", Namespace: "ns", Name: name}, Start: t0.Add(time.Duration(start) * time.Second), End: t0.Add(time.Minute)}
	}
	obs := func(id, parent, kind, name string, sec int) *Span {
		return &Span{ID: id, Parent: parent, Kind: kind, Name: name, Start: t0.Add(time.Duration(sec) * time.Second), End: t0.Add(time.Duration(sec) * time.Second),
			Tags: []Tag{{"kairn.kind", kind}}}
	}
	ch := obs("c1", "d", "change", "change update", 2)
	ch.Diffs = []string{"spec.replicas: 2 → 3"}
	return &Trace{
		ID:    TraceID{Pipeline: DefaultPipeline, Start: t0, End: t0.Add(30 * time.Minute)},
		Focus: "r",
		Spans: []*Span{
			obj("d", "", "Deployment", "d", 0), obj("r", "d", "ReplicaSet", "d-5f", 1), obj("p", "r", "Pod", "d-5f-abc", 3),
			obs("a1", "d", "audit", "audit patch deployments", 1), ch, obs("e1", "p", "event", "event Pulling", 4),
		},
	}
}

func names(t *Trace) map[string]string { // span id → parent id
	m := map[string]string{}
	for _, s := range t.Spans {
		m[s.ID] = s.Parent
	}
	return m
}

func find(t *Trace, id string) *Span {
	for _, s := range t.Spans {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func TestSelectors(t *testing.T) {
	in := sample()
	for _, c := range []struct {
		sel  Selector
		want []string
	}{
		{SelectFullTree, []string{"a1", "c1", "d", "e1", "p", "r"}},
		{SelectSubtree, []string{"e1", "p", "r"}},
		{SelectAncestors, []string{"a1", "c1", "d", "r"}},
		{SelectChildren, []string{"e1", "p", "r"}},
	} {
		got := Select(c.sel, in)
		var ids []string
		for _, s := range got.Spans {
			ids = append(ids, s.ID)
		}
		sort.Strings(ids)
		if !slices.Equal(ids, c.want) {
			t.Errorf("selector %d: %v, want %v", c.sel, ids, c.want)
		}
	}
	if got := Select(SelectSubtree, in); find(got, "r").Parent != "" {
		t.Error("subtree: the focus should become the root")
	}
	if len(in.Spans) != 6 || find(in, "r").Parent != "d" {
		t.Error("Select modified its input")
	}
}

func TestTree(t *testing.T) {
	got := Tree(sample())
	if n := find(got, "p").Name; n != "Pod ns/d-5f-abc" {
		t.Errorf("pod name %q", n)
	}
	if n := find(got, "r").Name; n != "ReplicaSet ns/d-5f" {
		t.Errorf("rs name %q", n)
	}
	if n := find(got, "d").Name; n != "Deployment ns/d" {
		t.Errorf("root name %q", n)
	}
	if !mapsEqual(names(got), names(sample())) {
		t.Error("tree changed parents")
	}
}

func TestTimeline(t *testing.T) {
	got := Timeline(sample())
	var order []string
	for _, s := range got.Spans {
		if s.Kind == "object" {
			if s.ID != "d" {
				t.Errorf("object span %s kept", s.ID)
			}
			continue
		}
		if s.Parent != "d" {
			t.Errorf("%s under %s, want the root", s.ID, s.Parent)
		}
		order = append(order, s.ID)
	}
	if !slices.Equal(order, []string{"a1", "c1", "e1"}) {
		t.Errorf("order %v", order)
	}
	if n := find(got, "e1").Name; n != "Pod ns/d-5f-abc: event Pulling" {
		t.Errorf("name %q", n)
	}
}

func TestTracing(t *testing.T) {
	got := Tracing(sample())
	if len(got.Spans) != 3 {
		t.Fatalf("%d spans, want the 3 object spans", len(got.Spans))
	}
	d := find(got, "d")
	if len(d.Logs) != 2 || d.Logs[0].Fields[0] != (Tag{"event", "audit patch deployments"}) {
		t.Fatalf("deployment logs %+v", d.Logs)
	}
	if !slices.Contains(d.Logs[1].Fields, Tag{"diff", "spec.replicas: 2 → 3"}) {
		t.Errorf("diff not in log: %+v", d.Logs[1])
	}
	if p := find(got, "p"); len(p.Logs) != 1 {
		t.Errorf("pod logs %+v", p.Logs)
	}
}

func TestGrouping(t *testing.T) {
	got := Grouping(sample())
	groups := map[string]*Span{}
	for _, s := range got.Spans {
		if s.Kind == kindSource {
			groups[s.Parent+"/"+s.Tags[0].Value.(string)] = s
		}
	}
	if len(groups) != 3 || groups["d/audit"] == nil || groups["d/change"] == nil || groups["p/event"] == nil {
		t.Fatalf("groups %v", groups)
	}
	if find(got, "e1").Parent != groups["p/event"].ID || find(got, "c1").Parent != groups["d/change"].ID {
		t.Error("observations not under their source")
	}
}

func TestCollapse(t *testing.T) {
	tr := &Trace{ID: sample().ID, Spans: []*Span{{ID: "root", Kind: "object"}}}
	for i := range 100 {
		c := fmt.Sprintf("c%03d", i)
		tr.Spans = append(tr.Spans, &Span{ID: c, Parent: "root", Kind: "object"})
		for j := range 10 {
			tr.Spans = append(tr.Spans, &Span{ID: fmt.Sprintf("%s-%d", c, j), Parent: c, Kind: "event"})
		}
	}
	if got := Collapse(tr, 2000); len(got.Spans) != 1101 || len(got.Warnings) != 0 {
		t.Fatalf("under the limit: %d spans, %v", len(got.Spans), got.Warnings)
	}
	got := Collapse(tr, 500) // level 2 (1000 events) folds into 100 summaries
	if len(got.Spans) != 201 || len(got.Warnings) != 1 {
		t.Fatalf("limit 500: %d spans, warnings %v", len(got.Spans), got.Warnings)
	}
	got = Collapse(tr, 50) // only the root and one summary fit
	if len(got.Spans) != 2 || !strings.Contains(got.Spans[1].Name, "1100 spans collapsed") {
		t.Fatalf("limit 50: %d spans %q", len(got.Spans), got.Spans[len(got.Spans)-1].Name)
	}
	if len(tr.Spans) != 1101 {
		t.Error("Collapse modified its input")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// ---- reading an archive: windows, unmerged parts, only the windows a trace covers ----

// countingStore records the keys read.
type countingStore struct {
	archive.Store
	mu   sync.Mutex
	gets []string
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.mu.Lock()
	c.gets = append(c.gets, key)
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func objectRow(k ObjectKey, kind, parentSpan string, w time.Time, trace string) archive.Span {
	h := k.Hash()
	return archive.Span{Kind: "object", TraceID: trace, SpanID: fmt.Sprintf("%x", h[:6]) + w.Format("1504"),
		ParentSpanID: parentSpan, Cluster: k.Cluster, APIGroup: k.Group, Resource: k.Resource, Namespace: k.Namespace, Name: k.Name, UID: k.UID,
		ObjectKind: kind, WindowStart: w, StartTime: w.Add(time.Minute), EndTime: w.Add(2 * time.Minute)}
}

// testArchive writes, per window, unmerged parts with a Deployment and its pod, each with an
// Event, and a stranger in another tree.
func testArchive(t *testing.T, windows int) (*countingStore, ObjectKey) {
	t.Helper()
	local, err := archive.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dep := ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "u-dep"}
	pod := ObjectKey{Cluster: "c", Resource: "pods", Namespace: "ns", Name: "web-1", UID: "u-pod"}
	other := ObjectKey{Cluster: "c", Resource: "configmaps", Namespace: "ns", Name: "cm", UID: "u-cm"}
	for i := range windows {
		w := t0.Add(time.Duration(i) * 30 * time.Minute)
		d := objectRow(dep, "Deployment", "", w, "trace-dep")
		p := objectRow(pod, "Pod", d.SpanID, w, "trace-dep")
		p.ParentUID = dep.UID
		o := objectRow(other, "ConfigMap", "", w, "trace-cm")
		ev := archive.Span{Kind: "event", TraceID: "trace-dep", SpanID: fmt.Sprintf("e%015d", i), ParentSpanID: p.SpanID, Cluster: "c", Resource: "pods",
			Namespace: "ns", Name: "web-1", UID: "u-pod", WindowStart: w, StartTime: w.Add(90 * time.Second), EndTime: w.Add(90 * time.Second), Reason: "Pulling"}
		data, err := archive.EncodeParquet([]archive.Span{d, p, o, ev})
		if err != nil {
			t.Fatal(err)
		}
		key := archive.Partition{Cluster: "c", Window: w}.Prefix() + "ingest-test.parquet"
		if err := local.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	return &countingStore{Store: local}, dep
}

func TestReaderStitchesWindowsAndReadsOnlyItsOwn(t *testing.T) {
	store, dep := testArchive(t, 6)
	r := NewReader(store, ReaderConfig{})
	ctx := context.Background()
	found, err := r.Find(ctx, Query{Pipeline: DefaultPipeline, Tags: map[string]string{"name": "web", "resource": "deployments"}, Start: t0, End: t0.Add(time.Hour)})
	if err != nil || len(found) != 1 {
		t.Fatalf("find: %v %v", found, err)
	}
	id := found[0].ID
	// Alive to the newest window of the archive, clipped to the search's hour.
	if !id.Start.Equal(t0) || !id.End.Equal(t0.Add(time.Hour)) {
		t.Errorf("trace range %s..%s", id.Start, id.End)
	}
	id.Start, id.End = t0.Add(time.Hour), t0.Add(2*time.Hour) // windows 2 and 3 only
	store.gets = nil
	tr, err := r.Trace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range store.gets {
		if !strings.Contains(k, "window=20261124T0700") && !strings.Contains(k, "window=20261124T0730") {
			t.Errorf("read %s, outside the trace's windows", k)
		}
	}
	var objects, events int
	for _, s := range Apply(Pipeline{DisplayTree, SelectFullTree}, tr).Spans {
		switch s.Kind {
		case "object":
			objects++
		case "event":
			events++
		}
	}
	if objects != 2 || events != 2 {
		t.Errorf("%d object spans (want 2, one per object across windows), %d events (want 2)", objects, events)
	}
	if tr.Focus == "" || find(tr, tr.Focus).Object != dep {
		t.Errorf("focus %q", tr.Focus)
	}
	// No tags: the roots.
	found, _ = r.Find(ctx, Query{Pipeline: DefaultPipeline})
	if len(found) != 2 {
		t.Errorf("roots: %v", found)
	}
	if _, err := r.Trace(ctx, TraceID{Pipeline: DefaultPipeline, Object: ObjectKey{Name: "nope"}.Hash(), Start: t0, End: t0.Add(time.Hour)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown object: %v", err)
	}
}

// ---- the gRPC API through an in-process client ----

func TestGRPC(t *testing.T) {
	store, _ := testArchive(t, 2)
	srv := New(store, Config{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.RegisterGRPC(g)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := storagev2.NewTraceReaderClient(conn)
	ctx := context.Background()

	svcs, err := c.GetServices(ctx, &storagev2.GetServicesRequest{})
	if err != nil || len(svcs.Services) != 16 || svcs.Services[0] != "tracing" {
		t.Fatalf("services %v %v", svcs, err)
	}
	ops, err := c.GetOperations(ctx, &storagev2.GetOperationsRequest{Service: "tree"})
	if err != nil || len(ops.Operations) != 1 || ops.Operations[0].Name != "c" {
		t.Fatalf("operations %v %v", ops, err)
	}
	q := &storagev2.FindTracesRequest{Query: &storagev2.TraceQueryParameters{ServiceName: "tree", OperationName: "c",
		Attributes:   []*storagev2.KeyValue{{Key: "name", Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: "web-1"}}}},
		StartTimeMin: timestamppb.New(t0), StartTimeMax: timestamppb.New(t0.Add(time.Hour))}}
	ids, err := c.FindTraceIDs(ctx, q)
	if err != nil || len(ids.TraceIds) != 1 {
		t.Fatalf("find ids %v %v", ids, err)
	}
	stream, err := c.GetTraces(ctx, &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: ids.TraceIds[0].TraceId}}})
	if err != nil {
		t.Fatal(err)
	}
	var spans int
	for {
		td, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, rs := range td.ResourceSpans {
			if v := rs.Resource.Attributes[0].Value.GetStringValue(); v != "Pod" {
				t.Errorf("service.name %q, want the object's kind", v)
			}
			if v := rs.Resource.Attributes[1].Value.GetStringValue(); v != "tree" {
				t.Errorf("kairn.pipeline %q", v)
			}
			for _, ss := range rs.ScopeSpans {
				spans += len(ss.Spans)
			}
		}
	}
	if spans != 3 { // the pod (subtree of the pod) and its two Pulling events
		t.Errorf("%d spans, want 3", spans)
	}
	fstream, err := c.FindTraces(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fstream.Recv(); err != nil {
		t.Errorf("FindTraces: %v", err)
	}

	// Bad input is InvalidArgument, never a crash.
	bad := []func() error{
		func() error {
			_, err := c.GetOperations(ctx, &storagev2.GetOperationsRequest{Service: "nosuch"})
			return err
		},
		func() error {
			_, err := c.FindTraceIDs(ctx, &storagev2.FindTracesRequest{Query: &storagev2.TraceQueryParameters{ServiceName: "tree",
				Attributes: []*storagev2.KeyValue{{Key: "color", Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: "red"}}}}}})
			return err
		},
		func() error { _, err := c.FindTraceIDs(ctx, &storagev2.FindTracesRequest{}); return err },
		func() error {
			s, err := c.GetTraces(ctx, &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: []byte{1, 2, 3}}}})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
	}
	for i, f := range bad {
		if err := f(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("bad request %d: %v, want InvalidArgument", i, err)
		}
	}
}

// ---- the HTTP API's JSON has the shape of Jaeger's own (its golden UI fixture) ----

// jsonShape lists every key path of a JSON value, arrays collapsed: "spans[].tags[].key".
func jsonShape(v any, prefix string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := prefix + "." + k
			if strings.HasPrefix(prefix, ".processes") && prefix == ".processes" {
				p = prefix + ".*" // process ids are keys
			}
			out[p] = true
			jsonShape(e, p, out)
		}
	case []any:
		for _, e := range x {
			jsonShape(e, prefix+"[]", out)
		}
	}
}

// TestHTTPMatchesJaegerFixture compares the JSON shape with Jaeger's golden UI fixture, which
// lives with the other real recordings in ../shared/realdata next to the repo (never copied in).
func TestHTTPMatchesJaegerFixture(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "realdata", "jaeger-ui-trace-fixture-ui_01.json")
	fixture, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("Jaeger's fixture not available (%v): it lives in ../shared/realdata next to the repo", err)
	}
	var want any
	if err := json.Unmarshal(fixture, &want); err != nil {
		t.Fatal(err)
	}
	wantShape := map[string]bool{}
	jsonShape(want, "", wantShape)

	store, _ := testArchive(t, 1)
	ts := httptest.NewServer(New(store, Config{}).Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/traces?service=tracing&tag=name:web&start=" + fmt.Sprint(t0.UnixMicro()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data []any `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || len(env.Data) != 1 {
		t.Fatalf("%v %v", env, err)
	}
	gotShape := map[string]bool{}
	jsonShape(env.Data[0], "", gotShape)
	for p := range gotShape {
		if !wantShape[p] {
			t.Errorf("kairn writes %s, Jaeger's fixture has no such field", p)
		}
	}
	for p := range wantShape {
		if !gotShape[p] && !strings.HasSuffix(p, ".warnings[]") {
			t.Errorf("Jaeger's fixture has %s, kairn does not write it", p)
		}
	}
}
