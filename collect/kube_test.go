package collect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kairn-dev/kairn/link"
)

// in is what was committed about objects in namespace ns.
func (s *memSpool) in(ns string) ([]link.Revision, []link.Observation) {
	revs, obs := s.snapshot()
	var r []link.Revision
	var o []link.Observation
	for _, x := range revs {
		if x.Object.Namespace == ns {
			r = append(r, x)
		}
	}
	for _, x := range obs {
		if x.Object.Namespace == ns {
			o = append(o, x)
		}
	}
	return r, o
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// --- without a cluster: the handlers, the buffer and the resume point --------------------------

func unitWatch(t *testing.T, stateDir string) *Watch {
	return &Watch{
		o:   WatchOptions{Cluster: "c1", StateDir: stateDir},
		log: testLogger(t), flushEvery: 10 * time.Millisecond, batchMax: 3, bufferMax: 5,
	}
}

func obj(apiVersion, kind, ns, name, uid, rv string, extra map[string]any) *unstructured.Unstructured {
	m := map[string]any{
		"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{
			"namespace": ns, "name": name, "uid": uid, "resourceVersion": rv, "generation": int64(2),
			"creationTimestamp": "2026-01-02T03:04:05Z",
			"managedFields":     []any{map[string]any{"manager": "kubectl", "operation": "Update", "time": "2026-01-02T03:04:06Z"}},
		},
	}
	for k, v := range extra {
		m[k] = v
	}
	return &unstructured.Unstructured{Object: m}
}

func TestWatchHandlers(t *testing.T) {
	w := unitWatch(t, "")
	w.bufferMax = 100
	cms := &watchedResource{gvr: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, key: "configmaps", synced: func() bool { return true }}
	deps := &watchedResource{gvr: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, key: "deployments.apps", kind: "Deployment", synced: func() bool { return true }}
	evs := &watchedResource{gvr: schema.GroupVersionResource{Version: "v1", Resource: "events"}, key: "events", events: true, synced: func() bool { return true }}
	sp := &memSpool{}
	r := newWatchRun(w, sp, []*watchedResource{cms, deps, evs})
	fixed := time.Date(2026, 1, 2, 3, 4, 7, 123456789, time.UTC)
	r.now = func() time.Time { return fixed }

	cm := obj("v1", "ConfigMap", "ns", "cm", "u-cm", "10", map[string]any{
		"data": map[string]any{"password": "hunter2"}, "binaryData": map[string]any{"b": "aHVudGVyMg=="},
	})
	before, _ := json.Marshal(cm.Object)
	hc := r.handler(cms)
	hc.OnAdd(cm, true)
	if after, _ := json.Marshal(cm.Object); string(after) != string(before) {
		t.Fatalf("the informer's object was modified:\n%s\n%s", before, after)
	}
	hc.OnUpdate(cm, cm) // resync
	cm2 := obj("v1", "ConfigMap", "ns", "cm", "u-cm", "11", map[string]any{"data": map[string]any{"password": "hunter3"}})
	hc.OnUpdate(cm, cm2)
	hc.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/cm", Obj: cm2})

	// A Deployment without kind (as some list items come): the kind comes from discovery.
	dep := obj("apps/v1", "", "ns", "web", "u-web", "12", nil)
	delete(dep.Object, "kind")
	r.handler(deps).OnAdd(dep, false)

	ev := obj("v1", "Event", "ns", "web.1", "u-ev", "13", map[string]any{
		"involvedObject": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns", "name": "web", "uid": "u-web"},
		"reason":         "ScalingReplicaSet", "count": int64(3), "lastTimestamp": "2026-01-02T03:04:09Z",
	})
	he := r.handler(evs)
	he.OnAdd(ev, false)
	he.OnDelete(ev) // Events expiring are no facts
	bad := obj("v1", "Event", "ns", "bad", "u-bad", "14", nil)
	he.OnAdd(bad, false)

	for r.pendingLen() > 0 {
		if _, err := r.flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	revs, obs := sp.snapshot()
	if len(revs) != 4 {
		t.Fatalf("want 4 revisions (cm add, cm update, cm delete, deployment), got %d: %+v", len(revs), revs)
	}
	for i, rv := range revs[:3] {
		for _, k := range []string{"data", "binaryData", "stringData"} {
			if _, ok := rv.Body[k]; ok {
				t.Errorf("ConfigMap revision %s keeps %s", rv.ResourceVersion, k)
			}
		}
		want := fixed.Truncate(time.Microsecond)
		if i == 0 {
			want = time.Time{} // initial list: no receive time
		}
		if rv.From != "watch" || !rv.Observed.Equal(want) {
			t.Errorf("revision %d: From %q Observed %v, want %v", i, rv.From, rv.Observed, want)
		}
	}
	if revs[0].ResourceVersion != "10" || revs[1].ResourceVersion != "11" || revs[2].ResourceVersion != "11" || !revs[2].Deleted || revs[1].Deleted {
		t.Errorf("ConfigMap revisions: %s/%v %s/%v %s/%v", revs[0].ResourceVersion, revs[0].Deleted, revs[1].ResourceVersion, revs[1].Deleted, revs[2].ResourceVersion, revs[2].Deleted)
	}
	if revs[0].Manager != "kubectl" {
		t.Errorf("manager %q", revs[0].Manager)
	}
	if d := revs[3]; d.Kind != "Deployment" || d.Object.Resource != "deployments" || d.Object.Group != "apps" || d.Generation != 2 {
		t.Errorf("deployment revision: %+v", d)
	}
	if _, isFloat := revs[3].Body["metadata"].(map[string]any)["generation"].(float64); !isFloat {
		t.Errorf("body numbers are not float64: %T", revs[3].Body["metadata"].(map[string]any)["generation"])
	}
	if len(obs) != 1 || obs[0].Reason != "ScalingReplicaSet" || obs[0].Count != 3 || obs[0].ID != "event/u-ev/13" || obs[0].Object.Name != "web" {
		t.Errorf("observations: %+v", obs)
	}
	if len(sp.bad) != 1 || !strings.Contains(sp.bad[0].Reason, "involvedObject") {
		t.Errorf("malformed: %+v", sp.bad)
	}
}

func readMarks(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st watchState
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st.ResourceVersions
}

func TestWatchResumePoint(t *testing.T) {
	dir := t.TempDir()
	w := unitWatch(t, dir)
	w.bufferMax = 100
	var synced atomic.Bool
	cms := &watchedResource{gvr: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, key: "configmaps", synced: synced.Load}
	sp := &memSpool{failNext: 2}
	r := newWatchRun(w, sp, []*watchedResource{cms})
	r.clusterID = "cluster-a"
	r.loadState()
	h := r.handler(cms)
	cm := func(name, rv string) *unstructured.Unstructured {
		return obj("v1", "ConfigMap", "ns", name, "u-"+name, rv, nil)
	}

	// The initial list comes in any order; the resume point moves only once all of it is
	// delivered and committed.
	h.OnAdd(cm("b", "20"), true)
	h.OnAdd(cm("a", "5"), true)
	if _, err := r.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if sp.failed != 2 || sp.commits != 1 {
		t.Errorf("commit retries: failed %d, commits %d", sp.failed, sp.commits)
	}
	if m := readMarks(t, r.statePath()); m != nil {
		t.Fatalf("resume point saved before the initial list was complete: %v", m)
	}
	h.OnAdd(cm("c", "7"), true)
	synced.Store(true)
	if _, err := r.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m := readMarks(t, r.statePath()); m["configmaps"] != "20" {
		t.Fatalf("resume point after the initial list: %v", m)
	}
	h.OnUpdate(cm("a", "5"), cm("a", "30"))
	h.OnAdd(cm("d", "31"), false)
	if _, err := r.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m := readMarks(t, r.statePath()); m["configmaps"] != "31" {
		t.Fatalf("resume point after watch events: %v", m)
	}

	// Restart: the initial list skips what is at or below the resume point.
	sp2 := &memSpool{}
	r2 := newWatchRun(w, sp2, []*watchedResource{{gvr: cms.gvr, key: cms.key, synced: func() bool { return true }}})
	r2.clusterID = "cluster-a"
	r2.loadState()
	h2 := r2.handler(r2.resources[0])
	for _, o := range []*unstructured.Unstructured{cm("a", "30"), cm("b", "20"), cm("c", "7"), cm("d", "31"), cm("e", "40"), cm("f", "x1")} {
		h2.OnAdd(o, true)
	}
	if _, err := r2.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rv := range sp2.revs {
		got = append(got, rv.Object.Name+"@"+rv.ResourceVersion)
	}
	if want := []string{"e@40", "f@x1"}; !slices.Equal(got, want) {
		t.Errorf("after restart emitted %v, want %v (non-numeric resourceVersions are emitted)", got, want)
	}
	if m := readMarks(t, r.statePath()); m["configmaps"] != "40" {
		t.Errorf("resume point after restart: %v", m)
	}

	// Another incarnation of the cluster (a new kube-system uid): the resume point is dropped.
	r3 := newWatchRun(w, &memSpool{}, []*watchedResource{{gvr: cms.gvr, key: cms.key}})
	r3.clusterID = "cluster-b"
	r3.loadState()
	if r3.resources[0].hasResume {
		t.Error("resume point of another cluster incarnation was used")
	}
}

func TestWatchBackpressure(t *testing.T) {
	w := unitWatch(t, "")
	cms := &watchedResource{gvr: schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, key: "configmaps", synced: func() bool { return true }}
	block := make(chan struct{})
	sp := &memSpool{release: block}
	r := newWatchRun(w, sp, []*watchedResource{cms})
	h := r.handler(cms)
	var added atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 12 {
			h.OnAdd(obj("v1", "ConfigMap", "ns", fmt.Sprint("cm", i), fmt.Sprint("u", i), fmt.Sprint(100+i), nil), false)
			added.Add(1)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	if n := added.Load(); n != int32(w.bufferMax) {
		t.Fatalf("handler went on past a full buffer: %d added, buffer %d", n, w.bufferMax)
	}
	flushed := make(chan int)
	go func() {
		total := 0
		for total < 12 {
			n, err := r.flush(t.Context())
			if err != nil {
				break
			}
			total += n
		}
		flushed <- total
	}()
	close(block)
	<-done
	if n := <-flushed; n != 12 {
		t.Fatalf("flushed %d records, want 12", n)
	}
	revs, _ := sp.snapshot()
	for i, rv := range revs {
		if want := fmt.Sprint(100 + i); rv.ResourceVersion != want {
			t.Fatalf("record %d has resourceVersion %s, want %s (order kept)", i, rv.ResourceVersion, want)
		}
	}
	if sp.commits < 4 {
		t.Errorf("%d commits for 12 records at %d per batch", sp.commits, w.batchMax)
	}

	// After close, a blocked handler is released and its record dropped; the resume point of
	// its resource stops moving.
	r2 := newWatchRun(w, &memSpool{}, []*watchedResource{cms})
	h2 := r2.handler(cms)
	for i := range w.bufferMax {
		h2.OnAdd(obj("v1", "ConfigMap", "ns", fmt.Sprint("x", i), fmt.Sprint("x", i), fmt.Sprint(200+i), nil), false)
	}
	released := make(chan struct{})
	go func() {
		h2.OnAdd(obj("v1", "ConfigMap", "ns", "late", "late", "300", nil), false)
		close(released)
	}()
	time.Sleep(50 * time.Millisecond)
	r2.close()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still blocked after close")
	}
	if !cms.dropped || r2.pendingLen() != w.bufferMax {
		t.Errorf("dropped %v, pending %d", cms.dropped, r2.pendingLen())
	}
}

// --- against the dev control plane (deploy/dev/cluster.sh up) ----------------------------------

// devCluster returns the admin config of the running dev control plane, or skips.
func devCluster(t *testing.T) *rest.Config {
	t.Helper()
	path := filepath.Join("..", ".dev", "cluster", "admin.kubeconfig")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("dev control plane not up (no %s; run deploy/dev/cluster.sh up)", path)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Skipf("dev control plane: unreadable %s: %v", path, err)
	}
	cfg.Timeout = 30 * time.Second
	probe := rest.CopyConfig(cfg)
	probe.Timeout = 3 * time.Second
	hc, err := rest.HTTPClientFor(probe)
	if err != nil {
		t.Skipf("dev control plane: %v", err)
	}
	resp, err := hc.Get(strings.TrimRight(cfg.Host, "/") + "/readyz")
	if err != nil {
		t.Skipf("dev control plane not up (/readyz: %v; run deploy/dev/cluster.sh up)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Skipf("dev control plane not ready (/readyz: %s)", resp.Status)
	}
	return cfg
}

var (
	gvrNamespaces  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrConfigMaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrSecrets     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrEvents      = schema.GroupVersionResource{Version: "v1", Resource: "events"}
	gvrDeployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrLeases      = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
)

// testNamespace creates a namespace kairn-<prefix>-<random>, deleted at the end of the test.
func testNamespace(t *testing.T, dc dynamic.Interface, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "kairn-" + prefix + "-" + hex.EncodeToString(b)
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := dc.Resource(gvrNamespaces).Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dc.Resource(gvrNamespaces).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", name, err)
		}
	})
	return name
}

func create(t *testing.T, dc dynamic.Interface, gvr schema.GroupVersionResource, ns string, o map[string]any) *unstructured.Unstructured {
	t.Helper()
	u, err := dc.Resource(gvr).Namespace(ns).Create(t.Context(), &unstructured.Unstructured{Object: o}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s: %v", gvr.Resource, err)
	}
	return u
}

// startWatch runs a Watch until the returned stop is called (or the test ends).
func startWatch(t *testing.T, o WatchOptions, out Spooler) (stop func()) {
	_, stop = startWatchW(t, o, out)
	return stop
}

func startWatchW(t *testing.T, o WatchOptions, out Spooler) (_ *Watch, stop func()) {
	t.Helper()
	o.Cluster = "dev"
	o.Logger = testLogger(t)
	w, err := NewWatch(o)
	if err != nil {
		t.Fatal(err)
	}
	synced := make(chan struct{})
	w.onSynced = func() { close(synced) }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	// What the test does next is then seen as watch events, not folded into the initial list.
	select {
	case <-synced:
	case err := <-done:
		t.Fatalf("Watch.Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("informers not synced after 30 s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Watch.Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("Watch.Run did not return 30 s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func image(rev link.Revision) string {
	containers, _, _ := unstructured.NestedSlice(rev.Body, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return ""
	}
	c, _ := containers[0].(map[string]any)
	return str(c["image"])
}

func ownedBy(rev link.Revision, uids map[string]bool) bool {
	for _, o := range rev.Owners {
		if uids[o.UID] {
			return true
		}
	}
	return false
}

func TestWatchE2EDeployment(t *testing.T) {
	cfg := devCluster(t)
	dc := dynamic.NewForConfigOrDie(cfg)
	ns := testNamespace(t, dc, "watch")
	sp := &memSpool{}
	startWatch(t, WatchOptions{Config: cfg, Events: true}, sp)

	dep := create(t, dc, gvrDeployments, ns, map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{
					"containers": []any{map[string]any{"name": "web", "image": "registry.invalid/web:1"}},
				},
			},
		},
	})
	depUID := string(dep.GetUID())

	// facts collects what was committed about the Deployment, its ReplicaSets and their Pods.
	type facts struct {
		deps, rss, pods []link.Revision
		rsUIDs          map[string]bool
		started         map[string]bool // pod name → a Started Event was seen
		reasons         map[string]bool
		podEvents       []link.Observation
	}
	get := func() facts {
		revs, obs := sp.in(ns)
		var f facts
		f.rsUIDs, f.started, f.reasons = map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, r := range revs {
			switch r.Object.Resource {
			case "deployments":
				if r.Object.UID == depUID {
					f.deps = append(f.deps, r)
				}
			case "replicasets":
				if ownedBy(r, map[string]bool{depUID: true}) {
					f.rss = append(f.rss, r)
					f.rsUIDs[r.Object.UID] = true
				}
			}
		}
		for _, r := range revs {
			if r.Object.Resource == "pods" && ownedBy(r, f.rsUIDs) {
				f.pods = append(f.pods, r)
			}
		}
		for _, o := range obs {
			if o.Object.Resource == "pods" {
				f.podEvents = append(f.podEvents, o)
				f.reasons[o.Reason] = true
				if o.Reason == "Started" {
					f.started[o.Object.Name] = true
				}
			}
		}
		return f
	}
	eventually(t, 90*time.Second, "the first Pod's Started Event", func() bool { return len(get().started) >= 1 })
	first := get()

	patch := []byte(`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.invalid/web:2"}]`)
	if _, err := dc.Resource(gvrDeployments).Namespace(ns).Patch(t.Context(), "web", types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("set image: %v", err)
	}
	eventually(t, 90*time.Second, "the new ReplicaSet's Pod to start", func() bool {
		f := get()
		if len(f.started) < 2 {
			return false
		}
		for _, d := range f.deps {
			if image(d) == "registry.invalid/web:2" && d.Generation == 2 {
				return true
			}
		}
		return false
	})
	f := get()

	// The Deployment: its create and its update, in strictly increasing resourceVersions.
	if len(f.deps) < 2 {
		t.Fatalf("%d Deployment revisions", len(f.deps))
	}
	for i := 1; i < len(f.deps); i++ {
		if !link.RVLess(f.deps[i-1].ResourceVersion, f.deps[i].ResourceVersion) {
			t.Errorf("Deployment resourceVersions not strictly increasing: %s then %s", f.deps[i-1].ResourceVersion, f.deps[i].ResourceVersion)
		}
	}
	if d := f.deps[0]; d.Generation != 1 || image(d) != "registry.invalid/web:1" || d.Kind != "Deployment" || d.From != "watch" || d.Observed.IsZero() {
		t.Errorf("first Deployment revision is not its create: generation %d image %q kind %q", d.Generation, image(d), d.Kind)
	}
	if d := f.deps[len(f.deps)-1]; d.Generation != 2 || image(d) != "registry.invalid/web:2" {
		t.Errorf("last Deployment revision: generation %d image %q", d.Generation, image(d))
	}
	if len(f.rsUIDs) != 2 {
		t.Errorf("%d ReplicaSets owned by the Deployment, want 2", len(f.rsUIDs))
	}
	podNames := map[string]bool{}
	for _, p := range f.pods {
		podNames[p.Object.Name] = true
	}
	if len(podNames) < 2 {
		t.Errorf("Pods owned by its ReplicaSets: %v", podNames)
	}
	for _, reason := range []string{"Pulling", "Pulled", "Created", "Started"} {
		if !f.reasons[reason] {
			t.Errorf("no %s Event observation about its Pods (have %v)", reason, f.reasons)
		}
	}
	for _, o := range f.podEvents {
		if o.Source != link.SourceEvent || o.Carrier.Resource != "events" || !strings.HasPrefix(o.ID, "event/") || o.Time.IsZero() {
			t.Errorf("Event observation: %+v", o)
			break
		}
	}
	t.Logf("%d Deployment, %d ReplicaSet, %d Pod revisions, %d Pod Event observations (first Pod started after %d revisions)",
		len(f.deps), len(f.rss), len(f.pods), len(f.podEvents), len(first.deps)+len(first.rss)+len(first.pods))
}

func TestWatchE2EConfigMapData(t *testing.T) {
	cfg := devCluster(t)
	dc := dynamic.NewForConfigOrDie(cfg)
	ns := testNamespace(t, dc, "watch")
	sp := &memSpool{}
	startWatch(t, WatchOptions{Config: cfg, Resources: []schema.GroupVersionResource{gvrConfigMaps, gvrSecrets}}, sp)

	secret := "s3cr3t-" + ns
	create(t, dc, gvrConfigMaps, ns, map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "conf"},
		"data": map[string]any{"password": secret}, "binaryData": map[string]any{"blob": "czNjcjN0"},
	})
	create(t, dc, gvrSecrets, ns, map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "creds"},
		"stringData": map[string]any{"token": secret},
	})
	patch := []byte(`{"data":{"password":"` + secret + `-2"}}`)
	if _, err := dc.Resource(gvrConfigMaps).Namespace(ns).Patch(t.Context(), "conf", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the ConfigMap's create and update and the Secret", func() bool {
		revs, _ := sp.in(ns)
		n := map[string]int{}
		for _, r := range revs {
			n[r.Object.Name]++
		}
		return n["conf"] >= 2 && n["creds"] >= 1
	})
	revs, _ := sp.snapshot()
	sp.mu.Lock()
	all, _ := json.Marshal([]any{revs, sp.obs, sp.bad})
	sp.mu.Unlock()
	if strings.Contains(string(all), secret) || strings.Contains(string(all), "czNjcjN0") {
		t.Fatal("ConfigMap or Secret data reached the spool")
	}
	for _, r := range revs {
		if r.Kind != "ConfigMap" && r.Kind != "Secret" {
			continue
		}
		for _, k := range []string{"data", "stringData", "binaryData"} {
			if _, ok := r.Body[k]; ok {
				t.Errorf("%s %s/%s keeps %s", r.Kind, r.Object.Namespace, r.Object.Name, k)
			}
		}
	}
}

func TestWatchE2ERestart(t *testing.T) {
	cfg := devCluster(t)
	dc := dynamic.NewForConfigOrDie(cfg)
	ns := testNamespace(t, dc, "watch")
	stateDir := t.TempDir()
	opts := WatchOptions{Config: cfg, Resources: []schema.GroupVersionResource{gvrConfigMaps}, Events: true, StateDir: stateDir}

	cm := func(name string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}, "data": map[string]any{"k": "v"}}
	}
	event := func(name string, about *unstructured.Unstructured) map[string]any {
		now := time.Now().UTC().Format(time.RFC3339)
		return map[string]any{
			"apiVersion": "v1", "kind": "Event", "metadata": map[string]any{"name": name},
			"involvedObject": map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "name": about.GetName(), "uid": string(about.GetUID())},
			"reason":         "Tested", "message": name, "type": "Normal", "count": int64(1),
			"firstTimestamp": now, "lastTimestamp": now, "source": map[string]any{"component": "kairn-test"},
		}
	}
	a := create(t, dc, gvrConfigMaps, ns, cm("a"))
	b := create(t, dc, gvrConfigMaps, ns, cm("b"))
	e1 := create(t, dc, gvrEvents, ns, event("e1", a))

	sp1 := &memSpool{}
	stop1 := startWatch(t, opts, sp1)
	statePath := filepath.Join(stateDir, "watch-dev.json")
	eventually(t, 30*time.Second, "a, b and e1 committed and in the resume point", func() bool {
		m := readMarks(t, statePath)
		for _, k := range []string{"configmaps", "events", "events.events.k8s.io"} {
			if m[k] == "" {
				return false
			}
		}
		return !link.RVLess(m["configmaps"], b.GetResourceVersion()) &&
			!link.RVLess(m["events"], e1.GetResourceVersion()) && !link.RVLess(m["events.events.k8s.io"], e1.GetResourceVersion())
	})
	revs1, obs1 := sp1.in(ns)
	names := map[string]bool{}
	for _, r := range revs1 {
		names[r.Object.Name] = true
	}
	if !names["a"] || !names["b"] || len(obs1) == 0 {
		t.Fatalf("first watch: revisions of %v, %d observations", names, len(obs1))
	}
	stop1()

	// While the watch is down: one change, one new Event.
	patch := []byte(`{"metadata":{"labels":{"changed":"while-down"}}}`)
	b2, err := dc.Resource(gvrConfigMaps).Namespace(ns).Patch(t.Context(), "b", types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e2 := create(t, dc, gvrEvents, ns, event("e2", b2))

	sp2 := &memSpool{}
	startWatch(t, opts, sp2)
	e2ID := "event/" + string(e2.GetUID()) + "/" + e2.GetResourceVersion()
	eventually(t, 30*time.Second, "b's change and e2", func() bool {
		revs, obs := sp2.in(ns)
		var rev, ev bool
		for _, r := range revs {
			rev = rev || r.Object.Name == "b" && r.ResourceVersion == b2.GetResourceVersion()
		}
		for _, o := range obs {
			ev = ev || o.ID == e2ID
		}
		return rev && ev
	})
	// Let both Event APIs' and the ConfigMaps' initial lists be delivered in full.
	time.Sleep(2 * time.Second)
	revs2, obs2 := sp2.in(ns)
	for _, r := range revs2 {
		if r.Object.Name != "b" || r.ResourceVersion != b2.GetResourceVersion() {
			t.Errorf("re-emitted after restart: %s %s@%s", r.Kind, r.Object.Name, r.ResourceVersion)
		}
	}
	for _, o := range obs2 {
		if o.ID != e2ID {
			t.Errorf("Event re-emitted after restart: %s (%s)", o.ID, o.Message)
		}
	}
	if len(revs2) != 1 {
		t.Errorf("%d revisions of b after restart, want 1", len(revs2))
	}
	// Nothing else anywhere at or below the first run's resume point.
	allRevs, _ := sp2.snapshot()
	m := readMarks(t, statePath)
	for _, r := range allRevs {
		if !link.RVLess(m["configmaps"], r.ResourceVersion) && link.RVLess(r.ResourceVersion, b2.GetResourceVersion()) {
			t.Errorf("unchanged object re-emitted: %s", r.Object)
		}
	}
	_ = e1
}

func TestWatchE2EResync(t *testing.T) {
	cfg := devCluster(t)
	dc := dynamic.NewForConfigOrDie(cfg)
	ns := testNamespace(t, dc, "watch")
	for _, name := range []string{"x", "y"} {
		create(t, dc, gvrConfigMaps, ns, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name}})
	}
	sp := &memSpool{}
	w, _ := startWatchW(t, WatchOptions{Config: cfg, Resources: []schema.GroupVersionResource{gvrConfigMaps}, Resync: time.Second}, sp)
	eventually(t, 30*time.Second, "x and y", func() bool {
		revs, _ := sp.in(ns)
		return len(revs) >= 3 // x, y and the namespace's kube-root-ca.crt
	})
	before, _ := sp.in(ns)
	resyncs := w.resyncs.Load()
	time.Sleep(3 * time.Second)
	after, _ := sp.in(ns)
	if w.resyncs.Load() == resyncs {
		t.Error("no resync happened in 3 s with Resync 1s")
	}
	t.Logf("%d updates skipped as resyncs in 3 s", w.resyncs.Load()-resyncs)
	if len(after) != len(before) {
		for _, r := range after[len(before):] {
			t.Errorf("resync reported as a change: %s@%s", r.Object, r.ResourceVersion)
		}
	}
}

// leaderRun is a run function that records overlapping runs and who leads.
type leaderRun struct {
	active  atomic.Int32
	overlap atomic.Bool
	mu      sync.Mutex
	leader  string
	terms   []string
}

func (l *leaderRun) fn(id string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if l.active.Add(1) > 1 {
			l.overlap.Store(true)
		}
		l.mu.Lock()
		l.leader = id
		l.terms = append(l.terms, id)
		l.mu.Unlock()
		<-ctx.Done()
		time.Sleep(300 * time.Millisecond) // a source takes a moment to stop
		l.mu.Lock()
		l.leader = ""
		l.mu.Unlock()
		l.active.Add(-1)
		return nil
	}
}

func (l *leaderRun) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader
}

func TestLeaderE2EHandover(t *testing.T) {
	cfg := devCluster(t)
	dc := dynamic.NewForConfigOrDie(cfg)
	ns := testNamespace(t, dc, "lease")
	var l leaderRun
	ctxs := map[string]context.CancelFunc{}
	dones := map[string]chan error{}
	for _, id := range []string{"replica-a", "replica-b"} {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		ctxs[id], dones[id] = cancel, done
		go func() { done <- RunElected(ctx, cfg, ns, "kairn-test", id, l.fn(id)) }()
	}
	t.Cleanup(func() {
		for _, c := range ctxs {
			c()
		}
	})
	eventually(t, 20*time.Second, "a leader", func() bool { return l.current() != "" })
	first := l.current()
	time.Sleep(3 * time.Second)
	if l.current() != first || l.overlap.Load() {
		t.Fatalf("leadership moved or overlapped without cause: %v", l.terms)
	}
	other := "replica-a"
	if first == other {
		other = "replica-b"
	}

	start := time.Now()
	ctxs[first]()
	select {
	case err := <-dones[first]:
		if err != nil {
			t.Errorf("RunElected(%s) after cancel: %v", first, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("RunElected(%s) did not return after cancel", first)
	}
	eventually(t, 20*time.Second, other+" to take over", func() bool { return l.current() == other })
	t.Logf("%s took over %.1fs after %s was cancelled", other, time.Since(start).Seconds(), first)
	ctxs[other]()
	if err := <-dones[other]; err != nil {
		t.Errorf("RunElected(%s): %v", other, err)
	}
	if l.overlap.Load() {
		t.Errorf("two runs overlapped: %v", l.terms)
	}
}

func TestLeaderE2ELost(t *testing.T) {
	cfg := devCluster(t)
	dc := dynamic.NewForConfigOrDie(cfg)
	ns := testNamespace(t, dc, "lease")
	var l leaderRun
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- RunElected(ctx, cfg, ns, "kairn-test", "replica-a", l.fn("replica-a")) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("RunElected did not return after cancel")
		}
	}()
	eventually(t, 20*time.Second, "leadership", func() bool { return l.current() == "replica-a" })

	// Another holder takes the Lease over (as after a partition): the leader cannot renew, so
	// it stops its run within the renew deadline and campaigns again.
	leases := dc.Resource(gvrLeases).Namespace(ns)
	lease, err := leases.Get(ctx, "kairn-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	unstructured.SetNestedField(lease.Object, "intruder", "spec", "holderIdentity")
	unstructured.SetNestedField(lease.Object, now, "spec", "acquireTime")
	unstructured.SetNestedField(lease.Object, now, "spec", "renewTime")
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	lostAt := time.Now()
	eventually(t, 20*time.Second, "the run to stop after losing the Lease", func() bool { return l.current() == "" })
	t.Logf("run stopped %.1fs after the Lease was taken", time.Since(lostAt).Seconds())
	select {
	case err := <-done:
		t.Fatalf("RunElected returned after losing leadership instead of campaigning again: %v", err)
	default:
	}
	// The intruder never renews: after the lease duration, replica-a leads again.
	eventually(t, 30*time.Second, "leadership again", func() bool { return l.current() == "replica-a" })
	t.Logf("leading again %.1fs after the Lease was taken; terms %v", time.Since(lostAt).Seconds(), l.terms)
}
