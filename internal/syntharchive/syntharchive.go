// Package syntharchive generates a deterministic synthetic archive for the benchmarks and the
// remote-reading tests (analyze's rollout-first-pull, serve's trace across 48 windows): a few
// clusters, a day of 30-minute windows, many namespaces of Deployments → ReplicaSets → Pods, each
// window with the object spans of everything alive and the status churn of pods (kubelet status
// patches, probes), and rollouts (a template change of the Deployment audited from kubectl, a new
// ReplicaSet, new pods scheduled, Pulling/Pulled/Created/Started, the old pods killed).
// Everything is a function of (cluster, deployment, window), so partitions are generated in
// parallel and the same scale always gives the same bytes. Partitions are written as the merger
// leaves them.
package syntharchive

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/zeebo/xxh3"
	"golang.org/x/sync/errgroup"

	"github.com/kairn-dev/kairn/archive"
)

// synthVersion names the generator in the cache: bump it when the output changes. v4: partitions
// as the merger leaves them (v3 left the ingest's fresh parts, which since 2026-12-02 are written
// at zstd's fastest level: 857 MiB instead of 811). v5: object indexes of schema version 2 (with
// object_hash). v6: merged parts with small pages for the columns only traces read
// (archive.EncodeParquet). v7: object indexes of schema version 3 (where each object's rows lie).
// v8: the index's trace_id dictionary-encoded. v9: merged parts and indexes at zstd's "better
// compression" level. v10: start_time delta-encoded. v11: uid uncompressed.
const synthVersion = 11

// Clusters is how many clusters the archive has.
const Clusters = synthClusters

const (
	synthClusters   = 3
	synthWindow     = 30 * time.Minute
	synthReplicas   = 3
	synthNamespaces = 60
	// spansPerWindow is about what one Deployment yields per window in one cluster: deployment 3
	// + replicaset 2 + 3 pods × 6, plus rollouts (~1.5 a day, ~50 spans each).
	spansPerWindow = 25
)

// Start is the first window of every cluster; the clusters are prod-1, prod-2, …
var Start = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

type synth struct {
	deployments int // per cluster
	windows     int // a day of them; small scales (tests) take 4 hours, so fewer, bigger parts
}

func newSynth(spans int) synth {
	s := synth{windows: 48}
	if spans < 1_000_000 {
		s.windows = 8
	}
	s.deployments = max(1, spans/(synthClusters*spansPerWindow*s.windows))
	return s
}

func h64(parts ...string) uint64 {
	h := xxh3.New()
	for _, p := range parts {
		h.WriteString(p)
		h.WriteString("\x00")
	}
	return h.Sum64()
}

func hex16(x uint64) string {
	var b [8]byte
	for i := range b {
		b[i] = byte(x >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}

func uidOf(parts ...string) string {
	a, b := h64(parts...), h64(append(parts, "2")...)
	s := hex16(a) + hex16(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// rollouts of deployment d: the windows it rolls out in (0-3 per day) and the offset in the window.
func (s synth) rollouts(cluster string, d int) []int {
	x := h64(cluster, strconv.Itoa(d), "rollouts")
	n := int(x % 4)
	var ws []int
	for i := 0; i < n; i++ {
		if w := 1 + int((x>>(8+8*i))%uint64(s.windows-1)); !contains(ws, w) {
			ws = append(ws, w)
		}
	}
	return ws
}

// revision of deployment d during window w (rollouts at or before it).
func revisionAt(rolls []int, w int) int {
	r := 0
	for _, x := range rolls {
		if x <= w {
			r++
		}
	}
	return r
}

type synthGen struct {
	cluster string
	window  time.Time
	w       int
	rows    []archive.Span
	seq     uint64
	rv      int64
}

func (g *synthGen) spanID() string {
	g.seq++
	return hex16(h64(g.cluster, g.window.String(), strconv.FormatUint(g.seq, 10)))
}

func (g *synthGen) nextRV() string {
	g.rv++
	return strconv.FormatInt(g.rv, 10)
}

type objRef struct {
	group, resource, kind, ns, name, uid string
}

// partition generates one cluster × window.
func (s synth) partition(cluster string, w int) []archive.Span {
	ws := Start.Add(time.Duration(w) * synthWindow)
	g := &synthGen{cluster: cluster, window: ws, w: w, rv: int64(w+1) * 100_000_000}
	for d := 0; d < s.deployments; d++ {
		s.deployment(g, d)
	}
	return g.rows
}

func (s synth) deployment(g *synthGen, d int) {
	c := g.cluster
	group, resource, ns, name, uid := Deployment(c, d)
	dep := objRef{group, resource, "Deployment", ns, name, uid}
	trace := hex16(h64(dep.uid)) + hex16(h64(dep.uid, "t"))
	rolls := s.rollouts(c, d)
	rev := revisionAt(rolls, g.w)
	rolled := rev > 0 && rolls[0] <= g.w && contains(rolls, g.w)
	ws := g.window
	at := func(off time.Duration) time.Time { return ws.Add(off) }
	rsOf := func(r int) objRef {
		n := fmt.Sprintf("%s-%s", name, hex16(h64(dep.uid, strconv.Itoa(r)))[:10])
		return objRef{"apps", "replicasets", "ReplicaSet", ns, n, uidOf(c, "rs", n)}
	}
	podOf := func(r, i int) objRef {
		rs := rsOf(r)
		n := fmt.Sprintf("%s-%s", rs.name, hex16(h64(rs.uid, strconv.Itoa(i)))[:5])
		return objRef{"", "pods", "Pod", ns, n, uidOf(c, "pod", n)}
	}
	image := func(r int) string { return fmt.Sprintf(`"registry.example.com/%s/%s:v1.%d.0"`, ns, name, r) }
	node := func(p objRef) string { return fmt.Sprintf("node-%03d", h64(p.uid)%200) }

	objSpan := func(o objRef, parent *objRef, parentSpan string, start, end time.Time) string {
		id := hex16(h64(c, o.uid, ws.String()))
		sp := archive.Span{Kind: archive.KindObject, TraceID: trace, SpanID: id, ParentSpanID: parentSpan,
			Cluster: c, APIGroup: o.group, Resource: o.resource, Namespace: o.ns, Name: o.name, UID: o.uid, ObjectKind: o.kind,
			WindowStart: ws, StartTime: start, EndTime: end, TimeSource: "observed"}
		if parent != nil {
			sp.ParentCluster, sp.ParentAPIGroup, sp.ParentResource, sp.ParentNamespace = c, parent.group, parent.resource, parent.ns
			sp.ParentKind, sp.ParentName, sp.ParentUID, sp.ParentRelation = parent.kind, parent.name, parent.uid, "owner"
		}
		if o.resource == "pods" {
			sp.Links = []archive.Link{{Relation: "node", Cluster: c, Resource: "nodes", Name: node(o), SpanID: hex16(h64(c, node(o), ws.String()))}}
		}
		g.rows = append(g.rows, sp)
		return id
	}
	obs := func(kind string, o objRef, parent *objRef, objID string, t time.Time) *archive.Span {
		g.rows = append(g.rows, archive.Span{Kind: kind, TraceID: trace, SpanID: g.spanID(), ParentSpanID: objID,
			Cluster: c, APIGroup: o.group, Resource: o.resource, Namespace: o.ns, Name: o.name, UID: o.uid, ObjectKind: o.kind,
			WindowStart: ws, StartTime: t, EndTime: t, TimeSource: "audit"})
		sp := &g.rows[len(g.rows)-1]
		if parent != nil {
			sp.ParentCluster, sp.ParentAPIGroup, sp.ParentResource, sp.ParentNamespace = c, parent.group, parent.resource, parent.ns
			sp.ParentKind, sp.ParentName, sp.ParentUID, sp.ParentRelation = parent.kind, parent.name, parent.uid, "owner"
		}
		return sp
	}
	audit := func(o objRef, parent *objRef, objID string, t time.Time, verb, sub, user, ua string, code int32) *archive.Span {
		sp := obs(archive.KindAudit, o, parent, objID, t)
		aid := uidOf(sp.SpanID, "audit")
		sp.EndTime = t.Add(time.Duration(2+h64(aid)%40) * time.Millisecond)
		sp.ObservationID, sp.AuditID, sp.Stage, sp.Verb, sp.Subresource = "audit/"+aid+"/ResponseComplete", aid, "ResponseComplete", verb, sub
		sp.User, sp.UserAgent, sp.StatusCode = user, ua, code
		sp.PrevResourceVersion = strconv.FormatInt(g.rv, 10)
		return sp
	}
	change := func(o objRef, parent *objRef, objID string, t time.Time, verb, sub, user, manager string, changes []archive.FieldChange) *archive.Span {
		sp := obs(archive.KindChange, o, parent, objID, t)
		sp.PrevResourceVersion = strconv.FormatInt(g.rv, 10)
		sp.ResourceVersion = g.nextRV()
		sp.ObservationID = "change/" + o.uid + "/" + sp.ResourceVersion
		sp.AuditID = uidOf(sp.SpanID, "audit")
		sp.Verb, sp.Subresource, sp.User, sp.FieldManager, sp.AuditLink = verb, sub, user, manager, "resourceVersion"
		sp.RevisionTime, sp.RevisionTimeSource = t.Truncate(time.Second), "managedFields"
		sp.Changes = changes
		return sp
	}
	event := func(o objRef, parent *objRef, objID string, t time.Time, reason, typ, reporter, msg string) {
		sp := obs(archive.KindEvent, o, parent, objID, t)
		eu := uidOf(sp.SpanID, "event")
		sp.ResourceVersion = g.nextRV()
		sp.ObservationID = "event/" + eu + "/" + sp.ResourceVersion
		sp.Reason, sp.EventType, sp.Reporter, sp.Message, sp.EventCount = reason, typ, reporter, msg, 1
	}
	condition := func(typ, status string, t time.Time) string {
		return fmt.Sprintf(`{"type":%q,"status":%q,"lastProbeTime":null,"lastTransitionTime":%q}`, typ, status, t.Format(time.RFC3339))
	}

	// The Deployment.
	depID := objSpan(dep, nil, "", at(0), at(synthWindow-time.Second))
	rs := rsOf(rev)
	rsID := objSpan(rs, &dep, depID, at(0), at(synthWindow-time.Second))
	t0 := at(time.Duration(h64(dep.uid, strconv.Itoa(g.w))%uint64(20*time.Minute)) + time.Minute)
	audit(dep, nil, depID, at(time.Duration(h64(dep.uid, "get", strconv.Itoa(g.w))%uint64(synthWindow))), "get", "", "system:serviceaccount:argocd:argocd-application-controller", "argocd-application-controller/v2.13.1", 200)
	change(dep, nil, depID, at(synthWindow-2*time.Minute), "update", "status", "system:serviceaccount:kube-system:deployment-controller", "kube-controller-manager",
		[]archive.FieldChange{{Path: "status.conditions[0].lastUpdateTime", Old: `"` + ws.Add(-synthWindow).Format(time.RFC3339) + `"`, New: `"` + ws.Format(time.RFC3339) + `"`}})
	change(rs, &dep, rsID, at(synthWindow-90*time.Second), "update", "status", "system:serviceaccount:kube-system:replicaset-controller", "kube-controller-manager",
		[]archive.FieldChange{{Path: "status.observedGeneration", Old: strconv.Itoa(rev + 1), New: strconv.Itoa(rev + 2)}})

	if rolled {
		old := rsOf(rev - 1)
		oldID := objSpan(old, &dep, depID, at(0), t0.Add(time.Minute))
		a := audit(dep, nil, depID, t0, "patch", "", "alice@example.com", "kubectl/v1.34.1 (linux/amd64) kubernetes/abc1234", 200)
		sp := change(dep, nil, depID, t0, "patch", "", "alice@example.com", "kubectl-set", []archive.FieldChange{
			{Path: "metadata.generation", Old: strconv.Itoa(rev + 1), New: strconv.Itoa(rev + 2)},
			{Path: "spec.template.spec.containers[0].image", Old: image(rev - 1), New: image(rev)},
		})
		sp.AuditID, sp.UserAgent = a.AuditID, a.UserAgent
		event(dep, nil, depID, t0.Add(20*time.Millisecond), "ScalingReplicaSet", "Normal", "deployment-controller", "Scaled up replica set "+rs.name+" from 0 to 3")
		event(dep, nil, depID, t0.Add(40*time.Second), "ScalingReplicaSet", "Normal", "deployment-controller", "Scaled down replica set "+old.name+" from 3 to 0")
		audit(rs, &dep, rsID, t0.Add(15*time.Millisecond), "create", "", "system:serviceaccount:kube-system:deployment-controller", "kube-controller-manager/v1.34.1", 201)
		change(rs, &dep, rsID, t0.Add(15*time.Millisecond), "create", "", "system:serviceaccount:kube-system:deployment-controller", "kube-controller-manager", nil)
		for i := 0; i < synthReplicas; i++ {
			p := podOf(rev-1, i)
			pid := objSpan(p, &old, oldID, at(0), t0.Add(time.Minute))
			td := t0.Add(time.Duration(30+10*i) * time.Second)
			audit(p, &old, pid, td, "delete", "", "system:serviceaccount:kube-system:replicaset-controller", "kube-controller-manager/v1.34.1", 200)
			change(p, &old, pid, td, "delete-requested", "", "system:serviceaccount:kube-system:replicaset-controller", "kube-controller-manager", nil)
			event(p, &old, pid, td.Add(5*time.Millisecond), "Killing", "Normal", "kubelet", "Stopping container app")
			change(p, &old, pid, td.Add(3*time.Second), "delete", "", "system:node:"+node(p), "kubelet", nil)
		}
	}
	for i := 0; i < synthReplicas; i++ {
		p := podOf(rev, i)
		created := rolled
		start := at(0)
		if created {
			start = t0.Add(time.Duration(50+40*i) * time.Millisecond)
		}
		pid := objSpan(p, &rs, rsID, start, at(synthWindow-time.Second))
		if created {
			audit(p, &rs, pid, start, "create", "", "system:serviceaccount:kube-system:replicaset-controller", "kube-controller-manager/v1.34.1", 201)
			change(p, &rs, pid, start, "create", "", "system:serviceaccount:kube-system:replicaset-controller", "kube-controller-manager", nil)
			tb := start.Add(8 * time.Millisecond)
			audit(p, &rs, pid, tb, "create", "binding", "system:kube-scheduler", "kube-scheduler/v1.34.1", 201)
			change(p, &rs, pid, tb, "update", "", "system:kube-scheduler", "kube-scheduler",
				[]archive.FieldChange{{Path: "spec.nodeName", New: `"` + node(p) + `"`}})
			event(p, &rs, pid, tb.Add(time.Millisecond), "Scheduled", "Normal", "default-scheduler", "Successfully assigned "+ns+"/"+p.name+" to "+node(p))
			tp := tb.Add(time.Duration(300+h64(p.uid)%900) * time.Millisecond)
			event(p, &rs, pid, tp, "Pulling", "Normal", "kubelet", "Pulling image "+image(rev))
			event(p, &rs, pid, tp.Add(2*time.Second), "Pulled", "Normal", "kubelet", "Successfully pulled image "+image(rev)+" in 1.91s (1.91s including waiting). Image size: 48213004 bytes.")
			event(p, &rs, pid, tp.Add(2100*time.Millisecond), "Created", "Normal", "kubelet", "Created container: app")
			event(p, &rs, pid, tp.Add(2200*time.Millisecond), "Started", "Normal", "kubelet", "Started container app")
		}
		// Status churn of a running pod: kubelet status patches (audited) and a probe event.
		for k := 0; k < 2; k++ {
			tk := at(time.Duration(h64(p.uid, strconv.Itoa(g.w), strconv.Itoa(k))%uint64(synthWindow-time.Minute)) + 30*time.Second)
			audit(p, &rs, pid, tk, "patch", "status", "system:node:"+node(p), "kubelet/v1.34.1 (linux/amd64) kubernetes/abc1234", 200)
			change(p, &rs, pid, tk, "patch", "status", "system:node:"+node(p), "kubelet", []archive.FieldChange{
				{Path: "status.conditions[1]", Old: condition("Ready", "False", tk.Add(-time.Hour)), New: condition("Ready", "True", tk)},
				{Path: "status.containerStatuses[0].restartCount", Old: strconv.Itoa(k), New: strconv.Itoa(k + 1)},
			})
		}
		event(p, &rs, pid, at(time.Duration(h64(p.uid, "probe", strconv.Itoa(g.w))%uint64(synthWindow))), "Unhealthy", "Warning", "kubelet",
			"Readiness probe failed: Get \"http://10.244.3.17:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// write generates every partition into store (ingest parts and the object index), in parallel.
func (s synth) write(ctx context.Context, store archive.Store) (spans int64, err error) {
	type job struct {
		cluster string
		w       int
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				rows := s.partition(j.cluster, j.w)
				werr := writeMerged(ctx, store, archive.Partition{Cluster: j.cluster, Window: rows[0].WindowStart}, rows)
				mu.Lock()
				spans += int64(len(rows))
				if err == nil {
					err = werr
				}
				mu.Unlock()
			}
		}()
	}
	for c := 0; c < synthClusters; c++ {
		for w := 0; w < s.windows; w++ {
			jobs <- job{fmt.Sprintf("prod-%d", c+1), w}
		}
	}
	close(jobs)
	wg.Wait()
	return spans, err
}

// Write generates the archive of about spans rows into store and returns how many it wrote.
func Write(ctx context.Context, store archive.Store, spans int) (int64, error) {
	return newSynth(spans).write(ctx, store)
}

// CacheDir is where Cached keeps archives: $KAIRN_BENCH_CACHE, else <user cache>/kairn/bench.
func CacheDir() (string, error) {
	if d := os.Getenv("KAIRN_BENCH_CACHE"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "kairn", "bench"), nil
}

// Cached returns a local directory holding the archive of about spans rows and its row count,
// generating it once into CacheDir, keyed by the generator version and scale (atomically: a
// crashed generation leaves only a temporary directory). logf reports a generation.
func Cached(ctx context.Context, spans int, logf func(format string, args ...any)) (dir string, rows int64, err error) {
	base, err := CacheDir()
	if err != nil {
		return "", 0, err
	}
	s := newSynth(spans)
	dir = filepath.Join(base, fmt.Sprintf("synth-v%d-%d", synthVersion, s.deployments))
	if b, err := os.ReadFile(filepath.Join(dir, "ROWS")); err == nil {
		n, err := strconv.ParseInt(string(b), 10, 64)
		return dir, n, err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", 0, err
	}
	tmp, err := os.MkdirTemp(base, ".gen-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	store, err := archive.OpenLocal(tmp)
	if err != nil {
		return "", 0, err
	}
	start := time.Now()
	logf("generating a synthetic archive of ~%d spans into %s", spans, dir)
	n, err := s.write(ctx, store)
	if err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "ROWS"), []byte(strconv.FormatInt(n, 10)), 0o644); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(filepath.Join(dir, "ROWS")); serr != nil {
			return "", 0, err
		}
	}
	logf("generated %d spans in %s (%.0f spans/s)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	return dir, n, nil
}

// Deployment is the key of deployment d (0 ≤ d < Deployments(spans)) of a cluster.
func Deployment(cluster string, d int) (group, resource, namespace, name, uid string) {
	name = fmt.Sprintf("svc-%d", d)
	return "apps", "deployments", fmt.Sprintf("team-%02d", d%synthNamespaces), name, uidOf(cluster, "deploy", name)
}

// Deployments is how many Deployments each cluster of the archive of about spans rows has.
func Deployments(spans int) int { return newSynth(spans).deployments }

// writeMerged writes a partition's rows the way an archive at rest holds them: a fresh part, then
// merged (one sorted part at the merger's compression, its object index and manifest).
func writeMerged(ctx context.Context, store archive.Store, p archive.Partition, rows []archive.Span) error {
	if _, err := archive.WriteParts(ctx, store, "ingest", rows); err != nil {
		return err
	}
	pp, err := archive.ListPartition(ctx, store, p)
	if err != nil {
		return err
	}
	_, err = archive.MergePartition(ctx, store, pp, func(s []archive.Span) []archive.Span { return s })
	return err
}

// CopyTo puts the archive in dir (its span parts, manifests and object indexes) into dst, 8
// files at a time: benchmarks read the same archive from MinIO.
func CopyTo(ctx context.Context, dir string, dst archive.Store) error {
	local, err := archive.OpenLocal(dir)
	if err != nil {
		return err
	}
	var objs []archive.ObjectInfo
	for _, prefix := range []string{archive.SpansPrefix, archive.IndexPrefix} {
		o, err := local.List(ctx, prefix)
		if err != nil {
			return err
		}
		objs = append(objs, o...)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, o := range objs {
		g.Go(func() error { return copyOne(ctx, dir, o, dst) })
	}
	return g.Wait()
}

func copyOne(ctx context.Context, dir string, o archive.ObjectInfo, dst archive.Store) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(o.Key)))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := dst.Put(ctx, o.Key, f, o.Size); err != nil {
		return fmt.Errorf("copy %s: %w", o.Key, err)
	}
	return nil
}
