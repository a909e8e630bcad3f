package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// ErrNotFound is returned for a trace id that names no object in the windows it covers.
var ErrNotFound = errors.New("trace not found")

// ErrTooLarge is returned when a trace has more rows than a Reader may hold.
var ErrTooLarge = errors.New("trace too large")

// Reader reads traces from an archive. It only reads.
//
// It caches what does not change: the listing of spans/ for ListTTL (so recent data shows
// within that time), each partition's parts and objects (its object index, or for an unmerged
// partition its rows) keyed by the partition's files (keys, sizes, modification times: a merge
// or a new part changes them), and the parsed footers of parts.
type Reader struct {
	store    archive.Store
	window   time.Duration
	maxRows  int
	parallel int
	listTTL  time.Duration

	listMu sync.Mutex
	listed *listing

	partitions *lru[*partitionData] // cost: index rows + span rows
	files      *lru[*partFile]      // cost: 1
	rowCache   *lru[[]archive.Span] // a trace's rows of one part; cost: rows

	stats readStats
}

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	Window   time.Duration // the window length the archive was written with (default 30m)
	MaxRows  int           // most archive rows one trace may read (default 2,000,000); more is ErrTooLarge
	Parallel int           // partitions read at once (default 8; 32 from a remote store such as S3)
	// ListTTL is how long a listing of the archive is reused (default 5s; negative: list on
	// every request). New parts show after at most this long.
	ListTTL time.Duration
	// CacheRows bounds the partitions' objects kept between requests: object index rows, plus
	// 4 per span row of partitions not merged yet (a span row is about 4 index rows in memory).
	// Default 1,000,000 (≈ 250 MB at most); negative: none.
	CacheRows int
	// CacheFiles bounds the parsed part footers kept (default 1024; negative: none).
	CacheFiles int
	// CacheTraceRows bounds the decoded span rows of recently read traces kept (default
	// 100,000, ≈ 100 MB at most; negative: none). Opening a trace again (the UI's search, then
	// the trace, then another pipeline) then decodes nothing.
	CacheTraceRows int
}

// NewReader returns a Reader over store.
func NewReader(store archive.Store, cfg ReaderConfig) *Reader {
	if cfg.Window <= 0 {
		cfg.Window = 30 * time.Minute
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = 2_000_000
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
		if _, remote := store.(archive.RangeReader); remote {
			cfg.Parallel = 32 // waiting on the network, not the CPU
		}
	}
	if cfg.ListTTL == 0 {
		cfg.ListTTL = 5 * time.Second
	}
	if cfg.CacheRows == 0 {
		cfg.CacheRows = 1_000_000
	}
	if cfg.CacheFiles == 0 {
		cfg.CacheFiles = 1024
	}
	if cfg.CacheTraceRows == 0 {
		cfg.CacheTraceRows = 100_000
	}
	return &Reader{store: store, window: cfg.Window, maxRows: cfg.MaxRows, parallel: cfg.Parallel, listTTL: cfg.ListTTL,
		partitions: newLRU[*partitionData](int64(cfg.CacheRows)), files: newLRU[*partFile](int64(cfg.CacheFiles)),
		rowCache: newLRU[[]archive.Span](int64(cfg.CacheTraceRows))}
}

// listing is one List of spans/: the files of every partition.
type listing struct {
	at    time.Time
	files map[archive.Partition][]archive.ObjectInfo
	parts []archive.Partition // by window, then cluster
}

// list returns the archive's partitions, listing spans/ at most once per ListTTL; concurrent
// requests share one List.
func (r *Reader) list(ctx context.Context) (*listing, error) {
	r.listMu.Lock()
	defer r.listMu.Unlock()
	if l := r.listed; l != nil && r.listTTL > 0 && time.Since(l.at) < r.listTTL {
		return l, nil
	}
	at := time.Now()
	objs, err := r.store.List(ctx, archive.SpansPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", archive.SpansPrefix, err)
	}
	l := &listing{at: at, files: map[archive.Partition][]archive.ObjectInfo{}}
	for _, o := range objs {
		p, ok := parsePartitionDir(path.Dir(o.Key))
		if !ok {
			continue
		}
		if _, seen := l.files[p]; !seen {
			l.parts = append(l.parts, p)
		}
		l.files[p] = append(l.files[p], o)
	}
	sort.Slice(l.parts, func(i, j int) bool {
		return cmp.Or(l.parts[i].Window.Compare(l.parts[j].Window), cmp.Compare(l.parts[i].Cluster, l.parts[j].Cluster)) < 0
	})
	r.listed = l
	return l, nil
}

// listPartitions lists the partitions whose window overlaps [from, to) (zero bounds are open),
// of one cluster or all.
func (r *Reader) listPartitions(ctx context.Context, from, to time.Time, cluster string) (*listing, []archive.Partition, error) {
	l, err := r.list(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []archive.Partition
	for _, p := range l.parts {
		if cluster != "" && p.Cluster != cluster {
			continue
		}
		if (!from.IsZero() && !p.Window.Add(r.window).After(from)) || (!to.IsZero() && !p.Window.Before(to)) {
			continue
		}
		out = append(out, p)
	}
	return l, out, nil
}

// listedStore answers List from a listing already made (the files of one partition), so
// archive.ListPartition does not list the store again.
type listedStore struct {
	archive.Store
	files []archive.ObjectInfo
}

func (s listedStore) List(_ context.Context, prefix string) ([]archive.ObjectInfo, error) {
	var out []archive.ObjectInfo
	for _, o := range s.files {
		if strings.HasPrefix(o.Key, prefix) {
			out = append(out, o)
		}
	}
	return out, nil
}

func parsePartitionDir(dir string) (archive.Partition, bool) {
	rest, ok := strings.CutPrefix(dir+"/", archive.SpansPrefix+"cluster=")
	if !ok {
		return archive.Partition{}, false
	}
	cluster, rest, ok := strings.Cut(rest, "/window=")
	if !ok || cluster == "" {
		return archive.Partition{}, false
	}
	w, err := archive.ParseWindowKey(strings.TrimSuffix(rest, "/"))
	if err != nil {
		return archive.Partition{}, false
	}
	return archive.Partition{Cluster: cluster, Window: w}, true
}

// Clusters lists the clusters in the archive.
func (r *Reader) Clusters(ctx context.Context) ([]string, error) {
	_, ps, err := r.listPartitions(ctx, time.Time{}, time.Time{}, "")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Cluster)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// partitionData is what was read of one partition: its objects, and its rows when the parts had
// to be read to know them (no object index: an open or unmerged window). Shared between
// requests through the cache: never modified once made.
type partitionData struct {
	parts   archive.PartitionParts
	objects []archive.IndexRow     // nil when only traces was read
	rows    []archive.Span         // nil when objects came from the index
	byHash  map[ObjectHash][]int32 // objects by the hash of their key
	traces  *objectTraces          // set instead of objects, byHash for reading traces only
}

// tracesOf returns the trace ids of the objects with hash h.
func (d *partitionData) tracesOf(h ObjectHash) map[string]bool {
	out := map[string]bool{}
	if d.traces != nil {
		v := h.value()
		for i, x := range d.traces.hashes {
			if x == v {
				out[d.traces.ids[d.traces.trace[i]]] = true
			}
		}
		return out
	}
	for _, j := range d.byHash[h] {
		out[d.objects[j].TraceID] = true
	}
	return out
}

// objectTraces is what reading a trace needs of a merged partition's object index: each
// object's hash and trace id, read from those two columns. About 12 bytes an object where its
// index row takes 250, and the other columns are not decoded: on an archive of 3 clusters'
// day (144 partitions of 14k objects) decoding whole indexes was 29 ms per partition.
//
// Looking an object up scans hashes: 14k of them in a few microseconds, where sorting them for
// a binary search cost 2 ms a partition when it was read.
type objectTraces struct {
	hashes []int64 // in index order
	trace  []int32 // the trace of hashes[i]: an index into ids
	ids    []string
}

func newObjectTraces(rows []archive.IndexRow) *objectTraces {
	t := &objectTraces{hashes: make([]int64, len(rows)), trace: make([]int32, len(rows))}
	ids := map[string]int32{}
	for i := range rows {
		id, ok := ids[rows[i].TraceID]
		if !ok {
			id = int32(len(t.ids))
			ids[rows[i].TraceID] = id
			t.ids = append(t.ids, rows[i].TraceID)
		}
		t.hashes[i], t.trace[i] = rows[i].ObjectHash, id
	}
	return t
}

// partitionKey names what was read of a partition in the cache: its files (keys, sizes,
// modification times), which a merge or a new part changes.
func partitionKey(l *listing, p archive.Partition) string {
	var fp strings.Builder
	fp.WriteString(p.Prefix())
	for _, o := range l.files[p] {
		fmt.Fprintf(&fp, "\x00%s\x00%d\x00%d", o.Key, o.Size, o.Modified.UnixNano())
	}
	return fp.String()
}

// readObjects reads the objects of a partition: from the merger's index when the partition is
// merged and nothing came after, else from its parts. Cached by the partition's files.
func (r *Reader) readObjects(ctx context.Context, l *listing, p archive.Partition) (*partitionData, error) {
	return r.readPartition(ctx, l, p, false)
}

// readTraces reads what finding an object's trace in a partition needs: of a merged partition
// whose index has object_hash (schema version 2), only the hashes and trace ids; of any other,
// what readObjects reads.
func (r *Reader) readTraces(ctx context.Context, l *listing, p archive.Partition) (*partitionData, error) {
	return r.readPartition(ctx, l, p, true)
}

func (r *Reader) readPartition(ctx context.Context, l *listing, p archive.Partition, tracesOnly bool) (*partitionData, error) {
	key := partitionKey(l, p)
	if d, ok := r.partitions.get(key); ok {
		return d, nil
	}
	if d, ok := r.partitions.get(key + "\x00traces"); ok && tracesOnly {
		return d, nil
	}
	d, err := r.readPartitionUncached(ctx, listedStore{r.store, l.files[p]}, p, tracesOnly)
	if err != nil {
		return nil, err
	}
	if d.traces != nil {
		r.partitions.put(key+"\x00traces", d, int64(len(d.traces.hashes))/16+1)
		return d, nil
	}
	d.byHash = make(map[ObjectHash][]int32, len(d.objects))
	for i := range d.objects {
		// Rows of a version 1 index have no object_hash (0); a true hash of 0 hashes to 0 again.
		h := hashBytes(d.objects[i].ObjectHash)
		if d.objects[i].ObjectHash == 0 {
			h = indexKey(&d.objects[i]).Hash()
		}
		d.byHash[h] = append(d.byHash[h], int32(i))
	}
	r.partitions.put(key, d, int64(len(d.objects)+4*len(d.rows))+1)
	return d, nil
}

func (r *Reader) readPartitionUncached(ctx context.Context, store archive.Store, p archive.Partition, tracesOnly bool) (*partitionData, error) {
	pp, err := archive.ListPartition(ctx, store, p)
	if err != nil {
		return nil, err
	}
	d := &partitionData{parts: pp}
	if len(pp.Live) == 0 {
		return d, nil
	}
	if pp.Unmerged == 0 {
		index := archive.IndexKey(p)
		data, err := r.get(ctx, index)
		if err == nil {
			if tracesOnly {
				rows, err := archive.DecodeIndexColumns(data, "object_hash", "trace_id")
				if err == nil {
					d.traces = newObjectTraces(rows)
					return d, nil
				}
				if !errors.Is(err, archive.ErrNoColumn) {
					return nil, fmt.Errorf("read %s: %w", index, err)
				}
			}
			if d.objects, err = archive.DecodeIndex(data); err != nil {
				return nil, fmt.Errorf("read %s: %w", index, err)
			}
			return d, nil
		}
		if !errors.Is(err, archive.ErrNotExist) {
			return nil, err
		}
	}
	if err := r.readRows(ctx, d); err != nil {
		return nil, err
	}
	d.objects = archive.BuildIndex(d.rows)
	return d, nil
}

func (r *Reader) get(ctx context.Context, key string) ([]byte, error) {
	return archive.ReadAll(ctx, r.store, key)
}

func (r *Reader) readRows(ctx context.Context, d *partitionData) error {
	if d.rows != nil {
		return nil
	}
	d.rows = []archive.Span{}
	for _, o := range d.parts.Live {
		rows, err := archive.ReadPart(ctx, r.store, o.Key)
		if err != nil {
			return err
		}
		if len(d.rows)+len(rows) > r.maxRows {
			return fmt.Errorf("%w: partition %s has more than %d rows (the server's row limit)", ErrTooLarge, d.parts.Partition, r.maxRows)
		}
		d.rows = append(d.rows, rows...)
	}
	return nil
}

// forPartitions runs f on each partition, r.parallel at a time, and stops at the first error.
func (r *Reader) forPartitions(ctx context.Context, ps []archive.Partition, f func(ctx context.Context, i int, p archive.Partition) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, r.parallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i, p := range ps {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, i, p); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func indexKey(o *archive.IndexRow) ObjectKey {
	return ObjectKey{Cluster: o.Cluster, Group: o.APIGroup, Resource: o.Resource, Namespace: o.Namespace, Name: o.Name, UID: o.UID}
}

func spanKey(s *archive.Span) ObjectKey {
	return ObjectKey{Cluster: s.Cluster, Group: s.APIGroup, Resource: s.Resource, Namespace: s.Namespace, Name: s.Name, UID: s.UID}
}

// Trace reads and assembles the trace an id names (before any pipeline).
func (r *Reader) Trace(ctx context.Context, id TraceID) (*Trace, error) {
	t, err := r.trace(ctx, id)
	if errors.Is(err, archive.ErrNotExist) && r.forgetListing() {
		t, err = r.trace(ctx, id) // a merge removed parts the cached listing named
	}
	return t, err
}

// forgetListing drops the cached listing; it says whether there was one.
func (r *Reader) forgetListing() bool {
	r.listMu.Lock()
	defer r.listMu.Unlock()
	had := r.listed != nil && r.listTTL > 0
	r.listed = nil
	return had
}

func (r *Reader) trace(ctx context.Context, id TraceID) (*Trace, error) {
	l, ps, err := r.listPartitions(ctx, id.Start, id.End, "")
	if err != nil {
		return nil, err
	}
	results := make([][]*archive.Span, len(ps)) // pointers into (possibly cached) rows: read only
	var mu sync.Mutex
	total := 0
	err = r.forPartitions(ctx, ps, func(ctx context.Context, i int, p archive.Partition) error {
		d, err := r.readTraces(ctx, l, p)
		if err != nil {
			return err
		}
		traces := d.tracesOf(id.Object)
		if len(traces) == 0 {
			return nil
		}
		var keep []*archive.Span
		if d.rows != nil {
			for j := range d.rows {
				if traces[d.rows[j].TraceID] {
					keep = append(keep, &d.rows[j])
				}
			}
		} else {
			// Merged: decode only the trace's rows of the part.
			for _, o := range d.parts.Live {
				rows, err := r.traceRows(ctx, o, traces)
				if err != nil {
					return err
				}
				for j := range rows {
					keep = append(keep, &rows[j])
				}
			}
		}
		mu.Lock()
		total += len(keep)
		over := total > r.maxRows
		mu.Unlock()
		if over {
			return fmt.Errorf("%w: more than %d rows (the server's row limit)", ErrTooLarge, r.maxRows)
		}
		results[i] = keep
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]*archive.Span, 0, total)
	for _, rs := range results {
		rows = append(rows, rs...)
	}
	t := assemble(id, rows)
	if t.Focus == "" {
		return nil, fmt.Errorf("%w: no object with hash %x between %s and %s", ErrNotFound, id.Object[:], id.Start.Format(time.RFC3339), id.End.Format(time.RFC3339))
	}
	return t, nil
}

// Query is a search for traces: the objects matching Tags seen in [Start, End).
type Query struct {
	Pipeline Pipeline
	Cluster  string            // "" for every cluster
	Tags     map[string]string // cluster, group, resource, namespace, name, uid, kind
	Start    time.Time
	End      time.Time
	Limit    int // default 20
}

// SearchTags are the tags a Query may filter on.
var SearchTags = []string{"cluster", "group", "resource", "namespace", "name", "uid", "kind"}

// CheckTags says which tag, if any, cannot be searched.
func CheckTags(tags map[string]string) error {
	for k := range tags {
		if !slices.Contains(SearchTags, k) {
			return fmt.Errorf("unknown search tag %q: search by %s", k, strings.Join(SearchTags, ", "))
		}
	}
	return nil
}

// Found is one trace a search found.
type Found struct {
	ID       TraceID
	Object   ObjectKey
	LastSeen time.Time
}

// Find returns the traces of the objects a query matches, newest first. Without tags it finds
// the root objects (nothing owns them). Each trace covers every window the object lived in: from
// its creation (or first sighting) to its deletion (or the newest window of its cluster).
func (r *Reader) Find(ctx context.Context, q Query) ([]Found, error) {
	if err := CheckTags(q.Tags); err != nil {
		return nil, err
	}
	found, err := r.find(ctx, q)
	if errors.Is(err, archive.ErrNotExist) && r.forgetListing() {
		found, err = r.find(ctx, q) // a merge removed parts the cached listing named
	}
	return found, err
}

func (r *Reader) find(ctx context.Context, q Query) ([]Found, error) {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	l, all, err := r.listPartitions(ctx, time.Time{}, time.Time{}, q.Cluster)
	if err != nil {
		return nil, err
	}
	newest := map[string]time.Time{}
	var ps []archive.Partition
	for _, p := range all {
		newest[p.Cluster] = maxTime(newest[p.Cluster], p.Window)
		if (q.Start.IsZero() || p.Window.Add(r.window).After(q.Start)) && (q.End.IsZero() || p.Window.Before(q.End)) {
			ps = append(ps, p)
		}
	}
	type match struct {
		key              ObjectKey
		first, last      time.Time // windows
		seen             time.Time
		created, deleted time.Time
	}
	var mu sync.Mutex
	matches := map[ObjectKey]*match{}
	err = r.forPartitions(ctx, ps, func(ctx context.Context, _ int, p archive.Partition) error {
		d, err := r.readObjects(ctx, l, p)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range d.objects {
			o := &d.objects[i]
			if !matchObject(o, q) {
				continue
			}
			k := indexKey(o)
			m := matches[k]
			if m == nil {
				m = &match{key: k, first: o.WindowStart, last: o.WindowStart}
				matches[k] = m
			}
			m.first, m.last = minTime(m.first, o.WindowStart), maxTime(m.last, o.WindowStart)
			m.seen = maxTime(m.seen, o.LastSeen)
			m.created, m.deleted = minTime(m.created, o.CreatedAt), maxTime(m.deleted, o.DeletedAt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, m := range matches {
		start, end := m.first, m.last.Add(r.window)
		if !m.created.IsZero() {
			start = minTime(start, windowStart(m.created, r.window))
		}
		if !m.deleted.IsZero() {
			end = maxTime(end, windowStart(m.deleted, r.window).Add(r.window))
		} else {
			end = maxTime(end, newest[m.key.Cluster].Add(r.window))
		}
		out = append(out, Found{ID: TraceID{Pipeline: q.Pipeline, Object: m.key.Hash(), Start: start, End: end}, Object: m.key, LastSeen: m.seen})
	}
	slices.SortFunc(out, func(a, b Found) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), cmp.Compare(a.Object.String(), b.Object.String()), cmp.Compare(a.Object.UID, b.Object.UID))
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func matchObject(o *archive.IndexRow, q Query) bool {
	if q.Cluster != "" && o.Cluster != q.Cluster {
		return false
	}
	if !q.Start.IsZero() && o.LastSeen.Before(q.Start) {
		return false
	}
	if !q.End.IsZero() && !o.FirstSeen.Before(q.End) {
		return false
	}
	if len(q.Tags) == 0 {
		return o.ParentUID == "" && o.TraceID != "" && o.SpanID != "" && isRoot(o)
	}
	for k, v := range q.Tags {
		var got string
		switch k {
		case "cluster":
			got = o.Cluster
		case "group":
			got = o.APIGroup
		case "resource":
			got = o.Resource
		case "namespace":
			got = o.Namespace
		case "name":
			got = o.Name
		case "uid":
			got = o.UID
		case "kind":
			if strings.EqualFold(o.ObjectKind, v) {
				continue
			}
			return false
		}
		if got != v {
			return false
		}
	}
	return true
}

// isRoot: the index has no parent key beside parent_uid, so an object whose parent had no uid
// (an annotation parent by name) counts as a root too.
func isRoot(o *archive.IndexRow) bool { return o.ParentUID == "" }

func windowStart(t time.Time, w time.Duration) time.Time {
	ns := t.UnixNano()
	start := ns - ns%int64(w)
	if ns < 0 && ns%int64(w) != 0 {
		start -= int64(w)
	}
	return time.Unix(0, start).UTC()
}
