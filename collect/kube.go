package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kairn-dev/kairn/link"

	"github.com/kairn-dev/kairn/internal/atomicfile"
)

// WatchOptions configures a Watch.
type WatchOptions struct {
	// Cluster names the cluster in every fact (link.ObjectKey.Cluster).
	Cluster string
	// Config reaches the cluster's apiserver.
	Config *rest.Config
	// Resources to watch as object revisions; nil means DefaultWatchResources. A core/v1 or
	// events.k8s.io/v1 "events" entry is watched as Events (observations), not as revisions.
	Resources []schema.GroupVersionResource
	// Events also watches core/v1 and events.k8s.io/v1 Events.
	Events bool
	// StateDir keeps the resume point (per resource, the highest resourceVersion committed),
	// written atomically after each successful Commit. Empty: no resume point, so a restart
	// emits every object and Event again (downstream dedupes them by uid + resourceVersion).
	StateDir string
	// Resync is the informers' periodic resync; 0 disables it. Resyncs never become facts.
	Resync time.Duration
	// Logger receives the watch's and client-go's logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultWatchResources is the workload chain, Nodes, Services and EndpointSlices.
func DefaultWatchResources() []schema.GroupVersionResource {
	return []schema.GroupVersionResource{
		{Group: "apps", Version: "v1", Resource: "deployments"},
		{Group: "apps", Version: "v1", Resource: "replicasets"},
		{Group: "apps", Version: "v1", Resource: "statefulsets"},
		{Group: "apps", Version: "v1", Resource: "daemonsets"},
		{Group: "batch", Version: "v1", Resource: "jobs"},
		{Version: "v1", Resource: "pods"},
		{Version: "v1", Resource: "nodes"},
		{Version: "v1", Resource: "services"},
		{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	}
}

// EventResources are the two APIs Events are served under.
func EventResources() []schema.GroupVersionResource {
	return []schema.GroupVersionResource{
		{Version: "v1", Resource: "events"},
		{Group: "events.k8s.io", Version: "v1", Resource: "events"},
	}
}

const (
	watchFlushEvery   = 200 * time.Millisecond
	watchBatchMax     = 1000 // records per Commit; a buffer this full is committed at once
	watchBufferMax    = 4000 // records held uncommitted before the informers' handlers block
	watchFinalTimeout = 5 * time.Second
	watchRetryMin     = 100 * time.Millisecond
	watchRetryMax     = 5 * time.Second
)

// Watch is the object and Event watch source: one dynamic informer per resource. Every add,
// update and delete of a watched object becomes a link.Revision (From "watch", Observed the
// receive time, except for objects of the initial list); every new revision of an Event becomes
// an event observation. Resyncs and relists of unchanged objects are not reported.
//
// Resume: StateDir keeps, per resource, the highest resourceVersion committed (of the initial
// list only once all of it is committed). After a restart, initial-list objects at or below it
// are skipped as already committed; those above changed while the watch was down and are
// emitted. Limits: objects deleted while down are not seen (the audit log has them); of an
// object changed several times while down only its latest state is; a crash while a relist
// after a watch gap is being delivered can skip objects the relist delivers after a newer one
// was committed.
type Watch struct {
	o      WatchOptions
	client dynamic.Interface
	disco  *discovery.DiscoveryClient
	log    *slog.Logger

	// Tunables, fixed by NewWatch; tests lower them.
	flushEvery time.Duration
	batchMax   int
	bufferMax  int
	// onSynced, when set, is called once every informer's initial list reached the handlers.
	onSynced func()
	// resyncs counts updates skipped as resyncs or relists of unchanged objects.
	resyncs atomic.Int64
}

// NewWatch checks the options and builds the clients; nothing is contacted until Run.
func NewWatch(o WatchOptions) (*Watch, error) {
	if o.Config == nil {
		return nil, errors.New("watch: no rest.Config")
	}
	if o.Cluster == "" {
		return nil, errors.New("watch: no cluster name")
	}
	if o.Resync < 0 {
		return nil, fmt.Errorf("watch: negative resync %s", o.Resync)
	}
	if o.Resources == nil {
		o.Resources = DefaultWatchResources()
	}
	if o.Events {
		o.Resources = append(append([]schema.GroupVersionResource(nil), o.Resources...), EventResources()...)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg := rest.CopyConfig(o.Config)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "kairn-watch"
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("watch: dynamic client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("watch: discovery client: %w", err)
	}
	return &Watch{
		o: o, client: client, disco: disco,
		log:        o.Logger.With("source", "watch", "cluster", o.Cluster),
		flushEvery: watchFlushEvery, batchMax: watchBatchMax, bufferMax: watchBufferMax,
	}, nil
}

// Name implements Source.
func (w *Watch) Name() string { return "watch" }

// Run watches until ctx is done, then commits what it still holds (for at most a few seconds)
// and returns nil. It may be called again after it returned (e.g. after a leadership change):
// each run resumes from StateDir.
func (w *Watch) Run(ctx context.Context, out Spooler) error {
	resources := w.resolve(ctx)
	if len(resources) == 0 {
		return errors.New("watch: none of the configured resources is served")
	}
	r := newWatchRun(w, out, resources)
	r.clusterID = w.clusterUID(ctx)
	r.loadState()

	// client-go logs through the context's logger: route it to ours.
	ictx := klog.NewContext(ctx, logr.FromSlogHandler(w.log.Handler()))
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.client, w.o.Resync, metav1.NamespaceAll, nil)
	var informers []cache.SharedIndexInformer
	var synced []cache.InformerSynced
	for _, res := range resources {
		inf := factory.ForResource(res.gvr).Informer()
		// Secret and ConfigMap data never even enters the cache.
		if err := inf.SetTransform(stripDataTransform); err != nil {
			return fmt.Errorf("watch %s: %w", res.key, err)
		}
		reg, err := inf.AddEventHandler(r.handler(res))
		if err != nil {
			return fmt.Errorf("watch %s: %w", res.key, err)
		}
		res.synced = reg.HasSynced
		synced = append(synced, reg.HasSynced)
		informers = append(informers, inf)
	}
	// The informers run with ictx (not factory.Start) so that client-go logs to our logger.
	var wg sync.WaitGroup
	for _, inf := range informers {
		wg.Go(func() { inf.RunWithContext(ictx) })
	}
	w.log.Info("watching", "resources", len(resources), "state", r.statePath())
	go func() {
		start := time.Now()
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			w.log.Info("watch: initial lists delivered", "took", time.Since(start).Round(time.Millisecond))
			if w.onSynced != nil {
				w.onSynced()
			}
		}
	}()

	tick := time.NewTicker(w.flushEvery)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		case <-r.full:
		}
		for {
			n, err := r.flush(ctx)
			if err != nil || n < w.batchMax {
				break
			}
		}
	}

	// Release handlers blocked on a full buffer (what they hold is dropped, and their
	// resources' resume points stop moving), let the informers stop, then commit the rest.
	r.close()
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), watchFinalTimeout)
	defer cancel()
	for {
		n, err := r.flush(fctx)
		if err != nil {
			w.log.Warn("watch: records left uncommitted at shutdown", "records", r.pendingLen(), "err", err)
			break
		}
		if n == 0 {
			break
		}
	}
	return nil
}

// watchedResource is one informer's resource and its resume bookkeeping (guarded by
// watchRun.mu once Run started).
type watchedResource struct {
	gvr    schema.GroupVersionResource
	key    string // group-qualified resource, e.g. "deployments.apps": the state file's key
	kind   string // from discovery, for objects that come without one
	events bool   // Events: observations, not revisions
	synced func() bool

	resume    uint64 // loaded resume point: initial-list objects at or below it were committed before
	hasResume bool
	committed uint64 // highest resourceVersion of a committed watch-event record
	initMax   uint64 // highest resourceVersion of a committed initial-list record
	initOpen  int    // initial-list records buffered, not yet committed
	dropped   bool   // a record was dropped at shutdown: the resume point must not move again
	skipped   int    // initial-list objects skipped as already committed
	announced bool   // the end of the initial list was logged
}

func (res *watchedResource) mark() (uint64, bool) {
	if res.dropped {
		return 0, false // the resume point last saved stays
	}
	m, ok := res.resume, res.hasResume
	// A committed watch event comes after the whole initial list in delivery order, so the
	// initial list is committed too; without one, the initial list counts once it was
	// delivered in full and nothing of it is still buffered.
	if res.committed > m {
		m, ok = res.committed, true
	}
	if res.initMax > m && res.initOpen == 0 && res.synced != nil && res.synced() {
		m, ok = res.initMax, true
	}
	return m, ok
}

// resolve checks the configured resources against discovery: resources the apiserver does not
// serve (or not with list and watch) are left out with a warning. When discovery itself fails
// the resource is kept: its informer retries until the apiserver answers.
func (w *Watch) resolve(ctx context.Context) []*watchedResource {
	lists := map[string]*metav1.APIResourceList{}
	failed := map[string]error{}
	seen := map[schema.GroupVersionResource]bool{}
	var out []*watchedResource
	for _, gvr := range w.o.Resources {
		if seen[gvr] {
			continue
		}
		seen[gvr] = true
		gv := gvr.GroupVersion().String()
		if _, done := lists[gv]; !done && failed[gv] == nil {
			l, err := w.disco.ServerResourcesForGroupVersionWithContext(ctx, gv)
			if err != nil {
				failed[gv] = err
			} else {
				lists[gv] = l
			}
		}
		res := &watchedResource{
			gvr:    gvr,
			key:    schema.GroupResource{Group: gvr.Group, Resource: gvr.Resource}.String(),
			events: gvr.Resource == "events" && (gvr.Group == "" || gvr.Group == "events.k8s.io"),
		}
		if err := failed[gv]; err != nil {
			if apierrors.IsNotFound(err) {
				w.log.Warn("watch: API group version not served, resource skipped", "resource", res.key, "version", gv)
				continue
			}
			w.log.Warn("watch: discovery failed, watching anyway", "resource", res.key, "err", err)
			out = append(out, res)
			continue
		}
		found := false
		for _, ar := range lists[gv].APIResources {
			if ar.Name != gvr.Resource {
				continue
			}
			found = hasVerbs(ar.Verbs, "list", "watch")
			res.kind = ar.Kind
		}
		if !found {
			w.log.Warn("watch: resource not served with list and watch, skipped", "resource", res.key, "version", gv)
			continue
		}
		out = append(out, res)
	}
	return out
}

func hasVerbs(have []string, want ...string) bool {
	for _, v := range want {
		ok := false
		for _, h := range have {
			ok = ok || h == v
		}
		if !ok {
			return false
		}
	}
	return true
}

// watchRecord is one fact on its way to the spool.
type watchRecord struct {
	res     *watchedResource
	rv      uint64
	numeric bool // rv is the object's resourceVersion as a number
	initial bool // delivered as part of the informer's initial list
	rev     *link.Revision
	obs     *link.Observation
	bad     *Malformed
}

// watchRun is one Run's shared state: the bounded buffer between the informers' handlers and
// the committing loop, and the resume points.
type watchRun struct {
	w         *Watch
	out       Spooler
	resources []*watchedResource
	full      chan struct{} // the buffer holds a batch's worth

	mu        sync.Mutex
	space     *sync.Cond // signalled when records left the buffer (or on close)
	pending   []watchRecord
	closed    bool
	clusterID string            // uid of namespace kube-system: tells a re-created cluster apart
	saved     map[string]string // the resume points last written
	now       func() time.Time
}

func newWatchRun(w *Watch, out Spooler, resources []*watchedResource) *watchRun {
	r := &watchRun{
		w: w, out: out, resources: resources,
		full:  make(chan struct{}, 1),
		saved: map[string]string{},
		now:   time.Now,
	}
	r.space = sync.NewCond(&r.mu)
	return r
}

func (r *watchRun) handler(res *watchedResource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			if initial && res.hasResume {
				if rv, ok := parseRV(u.GetResourceVersion()); ok && rv <= res.resume {
					r.mu.Lock()
					res.skipped++
					r.mu.Unlock()
					return // committed before the restart
				}
			}
			r.add(r.record(res, u, false, initial))
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, _ := oldObj.(*unstructured.Unstructured)
			u, ok := newObj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			if o != nil && o.GetResourceVersion() == u.GetResourceVersion() {
				r.w.resyncs.Add(1)
				return // a resync, or a relist of an unchanged object
			}
			r.add(r.record(res, u, false, false))
		},
		DeleteFunc: func(obj any) {
			if res.events {
				return // an Event expiring is no fact
			}
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj // missed the delete (relist): its last known state
			}
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return
			}
			r.add(r.record(res, u, true, false))
		},
	}
}

// record turns an informer object into a revision or an Event observation. The informer's
// object is shared with its cache and is never modified: the body is a copy, with JSON numbers
// as float64 like every other source's bodies.
func (r *watchRun) record(res *watchedResource, u *unstructured.Unstructured, deleted, initial bool) watchRecord {
	observed := r.now().UTC().Truncate(time.Microsecond)
	rec := watchRecord{res: res, initial: initial}
	rec.rv, rec.numeric = parseRV(u.GetResourceVersion())
	body, _ := jsonCopy(u.Object).(map[string]any)
	if body == nil {
		body = map[string]any{}
	}
	if str(body["kind"]) == "" && res.kind != "" {
		body["kind"] = res.kind
	}
	if str(body["apiVersion"]) == "" {
		body["apiVersion"] = res.gvr.GroupVersion().String()
	}
	stripData(body)
	cluster := r.w.o.Cluster
	if res.events {
		obs, ok := eventObservation(cluster, body)
		if !ok {
			rec.bad = r.malformed(res, u, "Event without involvedObject/regarding")
			return rec
		}
		if obs.Time.IsZero() {
			obs.Time, obs.TimeSource = observed, "observed"
		}
		rec.obs = &obs
		return rec
	}
	rev, err := revisionFromBody(cluster, body, "watch")
	if err != nil {
		rec.bad = r.malformed(res, u, err.Error())
		return rec
	}
	rev.Deleted = deleted
	// An object from the initial list may have changed long before this start: its receive
	// time says nothing, and the linker then times it by managedFields or creationTimestamp.
	if !initial {
		rev.Observed = observed
	}
	rec.rev = &rev
	return rec
}

func (r *watchRun) malformed(res *watchedResource, u *unstructured.Unstructured, reason string) *Malformed {
	u = u.DeepCopy()
	stripData(u.Object)
	raw, _ := json.Marshal(u.Object)
	return &Malformed{File: "watch:" + r.w.o.Cluster + "/" + res.key, Reason: reason, Raw: raw}
}

// add buffers a record, blocking while the buffer is full (backpressure on the informer's
// handler). After close it drops the record, and its resource's resume point stays where it
// was, so a restart emits the object again.
func (r *watchRun) add(rec watchRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.pending) >= r.w.bufferMax && !r.closed {
		r.space.Wait()
	}
	if r.closed {
		rec.res.dropped = true
		return
	}
	r.pending = append(r.pending, rec)
	if rec.initial {
		rec.res.initOpen++
	}
	if len(r.pending) >= r.w.batchMax {
		select {
		case r.full <- struct{}{}:
		default:
		}
	}
}

func (r *watchRun) close() {
	r.mu.Lock()
	r.closed = true
	r.space.Broadcast()
	r.mu.Unlock()
}

func (r *watchRun) pendingLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// flush commits up to batchMax of the oldest buffered records, retrying failed commits with
// backoff until ctx is done, then moves and saves the resume points. It returns how many
// records it committed.
func (r *watchRun) flush(ctx context.Context) (int, error) {
	r.mu.Lock()
	n := min(len(r.pending), r.w.batchMax)
	recs := r.pending[:n:n] // the handlers only append: these stay as they are
	r.mu.Unlock()
	if n > 0 {
		if err := r.commit(ctx, recs); err != nil {
			return 0, err
		}
	}

	r.mu.Lock()
	for _, rec := range recs {
		res := rec.res
		if rec.initial {
			res.initOpen--
		}
		if !rec.numeric {
			continue
		}
		if rec.initial {
			res.initMax = max(res.initMax, rec.rv)
		} else {
			res.committed = max(res.committed, rec.rv)
		}
	}
	rest := copy(r.pending, r.pending[n:])
	clear(r.pending[rest:])
	r.pending = r.pending[:rest]
	r.space.Broadcast()
	marks := map[string]string{}
	changed := false
	for _, res := range r.resources {
		if !res.announced && res.synced != nil && res.synced() {
			res.announced = true
			r.w.log.Debug("watch: initial list delivered", "resource", res.key, "skipped_as_committed", res.skipped)
		}
		if m, ok := res.mark(); ok {
			marks[res.key] = strconv.FormatUint(m, 10)
			changed = changed || r.saved[res.key] != marks[res.key]
		}
	}
	clusterID := r.clusterID
	r.mu.Unlock()

	if changed && r.w.o.StateDir != "" {
		if err := r.saveState(clusterID, marks); err != nil {
			// Not fatal: the resume point stays behind, so a restart emits duplicates
			// (deduplicated downstream), never loses anything.
			r.w.log.Warn("watch: saving resume point", "err", err)
		} else {
			r.mu.Lock()
			r.saved = marks
			r.mu.Unlock()
		}
	}
	return n, nil
}

// commit hands recs to a new Batch and commits it, retrying with backoff (a new Batch each
// time) until it succeeds or ctx is done.
func (r *watchRun) commit(ctx context.Context, recs []watchRecord) error {
	wait := watchRetryMin
	for attempt := 1; ; attempt++ {
		b := r.out.NewBatch()
		for _, rec := range recs {
			switch {
			case rec.rev != nil:
				b.Revise(*rec.rev)
			case rec.obs != nil:
				b.Observe(*rec.obs)
			case rec.bad != nil:
				b.Malformed(*rec.bad)
			}
		}
		err := b.Commit()
		if err == nil {
			if attempt > 1 {
				r.w.log.Info("watch: commit succeeded after retries", "attempts", attempt, "records", len(recs))
			}
			return nil
		}
		r.w.log.Warn("watch: commit failed, retrying", "attempt", attempt, "records", len(recs), "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("commit: %w (then %w)", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, watchRetryMax)
	}
}

// watchState is the resume point file.
type watchState struct {
	// ClusterUID is namespace kube-system's uid: a re-created cluster (new etcd, resourceVersions
	// counting from the start again) has another one, and the resume points are dropped.
	ClusterUID       string            `json:"cluster_uid,omitempty"`
	ResourceVersions map[string]string `json:"resource_versions"`
}

func (r *watchRun) statePath() string {
	if r.w.o.StateDir == "" {
		return ""
	}
	name := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			return c
		}
		return '_'
	}, r.w.o.Cluster)
	return filepath.Join(r.w.o.StateDir, "watch-"+name+".json")
}

// clusterUID is namespace kube-system's uid, or "" when it cannot be read.
func (w *Watch) clusterUID(ctx context.Context) string {
	ns, err := w.client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).
		Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		w.log.Warn("watch: cannot tell the cluster's identity (namespace kube-system)", "err", err)
		return ""
	}
	return string(ns.GetUID())
}

// loadState reads the resume points, unless they belong to another incarnation of the cluster.
func (r *watchRun) loadState() {
	path := r.statePath()
	if path == "" {
		return
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var st watchState
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	if err != nil {
		r.w.log.Warn("watch: unreadable resume point, starting over", "path", path, "err", err)
		return
	}
	if st.ClusterUID != "" && r.clusterID != "" && st.ClusterUID != r.clusterID {
		r.w.log.Warn("watch: resume point is from another incarnation of the cluster, starting over",
			"path", path, "saved_uid", st.ClusterUID, "uid", r.clusterID)
		return
	}
	for _, res := range r.resources {
		if rv, ok := parseRV(st.ResourceVersions[res.key]); ok {
			res.resume, res.hasResume = rv, true
			r.saved[res.key] = st.ResourceVersions[res.key]
		}
	}
	// Resources no longer watched keep their entries, in case they are watched again.
	for k, v := range st.ResourceVersions {
		if _, ok := r.saved[k]; !ok {
			r.saved[k] = v
		}
	}
}

func (r *watchRun) saveState(clusterID string, marks map[string]string) error {
	r.mu.Lock()
	for k, v := range r.saved {
		if _, ok := marks[k]; !ok {
			marks[k] = v
		}
	}
	r.mu.Unlock()
	raw, err := json.MarshalIndent(watchState{ClusterUID: clusterID, ResourceVersions: marks}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.w.o.StateDir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(r.statePath(), append(raw, '\n'))
}

// parseRV reads a resourceVersion as the decimal number etcd-backed apiservers hand out.
func parseRV(s string) (uint64, bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// stripData removes a core/v1 Secret's or ConfigMap's payload from an object.
func stripData(obj map[string]any) {
	if str(obj["apiVersion"]) != "v1" {
		return
	}
	switch str(obj["kind"]) {
	case "Secret", "ConfigMap":
		delete(obj, "data")
		delete(obj, "stringData")
		delete(obj, "binaryData")
	}
}

// stripDataTransform is the informers' transform: it runs on every object freshly decoded from
// the apiserver (which it may modify) before the object reaches the cache or a handler.
func stripDataTransform(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		stripData(u.Object)
	}
	return obj, nil
}

// jsonCopy deep-copies a decoded object, turning its integers (unstructured decoding keeps
// int64) into float64, as encoding/json decodes them and as the rest of collect expects.
func jsonCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = jsonCopy(e)
		}
		return s
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	default:
		return v // string, float64, bool, nil
	}
}
