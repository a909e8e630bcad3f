package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
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
	rangeGap int64

	listMu sync.Mutex
	listed *listing

	partitions *lru[*partitionData] // cost: see ReaderConfig.CacheRows
	files      *lru[*partFile]      // cost: 1
	rowCache   *lru[[]archive.Span] // a trace's rows of one part; cost: rows
	dicts      *lru[*dictionary]    // a column chunk's dictionary; cost: bytes

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
	// CacheRows bounds the partitions' objects kept between requests, in units of about 256
	// bytes (cacheRowBytes): an object takes about 0.6 (a day of 3 clusters' 2 M objects takes
	// 1.2 M), a span row of a partition not merged yet 4. Default 2,000,000 (≈ 512 MB at most);
	// negative: none.
	CacheRows int
	// CacheFiles bounds the parsed part footers kept (default 1024; negative: none).
	CacheFiles int
	// CacheTraceRows bounds the decoded span rows of recently read traces kept (default
	// 100,000, ≈ 100 MB at most; negative: none). Opening a trace again (the UI's search, then
	// the trace, then another pipeline) then decodes nothing.
	CacheTraceRows int
	// CacheDictionaryBytes bounds the decoded dictionary pages of parts kept (default 256 MiB;
	// negative: none). A trace's rows are a few of each row group it touches, and a row group's
	// dictionaries (the uids and names of thousands of pods) are shared by every trace in it:
	// kept, opening the next trace in the same windows decodes only the pages holding its rows.
	CacheDictionaryBytes int64
	// RangeGap: of a part in a remote store (S3), ranges closer than this many bytes are
	// fetched in one request (default 2 MiB; negative: every range on its own). Raise it where
	// requests cost more (a server sharing the reader's CPU), lower it where bytes do.
	RangeGap int64
}

// cacheRowBytes is the unit of ReaderConfig.CacheRows.
const cacheRowBytes = 256

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
		cfg.CacheRows = 2_000_000
	}
	if cfg.CacheFiles == 0 {
		cfg.CacheFiles = 1024
	}
	if cfg.CacheTraceRows == 0 {
		cfg.CacheTraceRows = 100_000
	}
	if cfg.CacheDictionaryBytes == 0 {
		cfg.CacheDictionaryBytes = 256 << 20
	}
	if cfg.RangeGap == 0 {
		cfg.RangeGap = defaultRangeGap
	}
	return &Reader{store: store, window: cfg.Window, maxRows: cfg.MaxRows, parallel: cfg.Parallel, listTTL: cfg.ListTTL, rangeGap: max(cfg.RangeGap, 0),
		partitions: newLRU[*partitionData](int64(cfg.CacheRows)), files: newLRU[*partFile](int64(cfg.CacheFiles)),
		rowCache: newLRU[[]archive.Span](int64(cfg.CacheTraceRows)), dicts: newLRU[*dictionary](cfg.CacheDictionaryBytes)}
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
	traces  *archive.ObjectTraces // always set
	objects *objectTable          // nil when only traces were read
	rows    []archive.Span        // nil when objects came from the index
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
	if d.objects == nil {
		r.partitions.put(key+"\x00traces", d, int64(len(d.traces.Hashes))/16+1)
		return d, nil
	}
	r.partitions.put(key, d, d.objects.Bytes()/cacheRowBytes+int64(4*len(d.rows))+1)
	return d, nil
}

func (r *Reader) readPartitionUncached(ctx context.Context, store archive.Store, p archive.Partition, tracesOnly bool) (*partitionData, error) {
	pp, err := archive.ListPartition(ctx, store, p)
	if err != nil {
		return nil, err
	}
	d := &partitionData{parts: pp}
	if len(pp.Live) == 0 {
		d.objects = newObjectTable(nil)
		d.traces = &d.objects.ObjectTraces
		return d, nil
	}
	if pp.Unmerged == 0 {
		index := archive.IndexKey(p)
		data, err := r.get(ctx, index)
		if err == nil {
			if tracesOnly {
				traces, err := archive.DecodeObjectTraces(data)
				if err == nil {
					d.traces = traces
					return d, nil
				}
				if !errors.Is(err, archive.ErrNoColumn) {
					return nil, fmt.Errorf("read %s: %w", index, err)
				}
			}
			table, err := archive.DecodeIndexTable(data)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", index, err)
			}
			d.objects = &objectTable{*table}
			d.traces = &d.objects.ObjectTraces
			return d, nil
		}
		if !errors.Is(err, archive.ErrNotExist) {
			return nil, err
		}
	}
	if err := r.readRows(ctx, d); err != nil {
		return nil, err
	}
	d.objects = newObjectTable(archive.BuildIndex(d.rows))
	d.traces = &d.objects.ObjectTraces
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
	l, all, err := r.listPartitions(ctx, id.Start, id.End, "")
	if err != nil {
		return nil, err
	}
	var ps []archive.Partition
	for _, p := range all {
		if id.inCluster(p.Cluster) {
			ps = append(ps, p)
		}
	}
	results := make([][]*archive.Span, len(ps)) // pointers into (possibly cached) rows: read only
	var mu sync.Mutex
	total := 0
	err = r.forPartitions(ctx, ps, func(ctx context.Context, i int, p archive.Partition) error {
		d, err := r.readTraces(ctx, l, p)
		if err != nil {
			return err
		}
		traces := d.traces.TracesOf(id.Object.value(), id.hashMask())
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
			// Merged: decode only the trace's rows of the part, where the index says they are
			// when it describes this part.
			known, ok := d.traces.RowsOf(traces)
			for _, o := range d.parts.Live {
				var at []archive.RowRange
				if ok && path.Base(o.Key) == d.traces.Part {
					at = known
				}
				rows, err := r.traceRows(ctx, o, traces, at)
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
// the root objects (nothing owns them). Event objects and nameless collection objects are not
// found (listedObject). Each trace covers what of the object's life lies in the search's range:
// from its creation (or first sighting) to its deletion (or the newest window of its cluster),
// clipped to the range to the minute.
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
		objects          *objectTable // its key is objects.key(row), read once it is among the newest
		row              int
		first, last      int64 // windows; these as in archive.IndexTable.Times
		seen             int64
		created, deleted int64
	}
	var mu sync.Mutex
	matches := map[int64]*match{} // by object hash
	err = r.forPartitions(ctx, ps, func(ctx context.Context, _ int, p archive.Partition) error {
		d, err := r.readObjects(ctx, l, p)
		if err != nil {
			return err
		}
		t := d.objects
		found := t.match(q)
		mu.Lock()
		defer mu.Unlock()
		for _, i := range found {
			window := t.Times[archive.IndexWindow][i]
			m := matches[t.Hashes[i]]
			if m == nil {
				m = &match{objects: t, row: i, first: window, last: window, seen: archive.NoTime, created: archive.NoTime, deleted: archive.NoTime}
				matches[t.Hashes[i]] = m
			}
			m.first, m.last = min(m.first, window), max(m.last, window)
			m.seen = max(m.seen, t.Times[archive.IndexLastSeen][i])
			if c := t.Times[archive.IndexCreated][i]; c != archive.NoTime && (m.created == archive.NoTime || c < m.created) {
				m.created = c
			}
			m.deleted = max(m.deleted, t.Times[archive.IndexDeleted][i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Keys are made only for the newest matches (a search for every Pod of a day matches
	// hundreds of thousands), with the ties at the limit, so the order by key below is exact.
	newestFirst := slices.SortedFunc(maps.Values(matches), func(a, b *match) int { return cmp.Compare(b.seen, a.seen) })
	if len(newestFirst) > q.Limit {
		n := q.Limit
		for n < len(newestFirst) && newestFirst[n].seen == newestFirst[q.Limit-1].seen {
			n++
		}
		newestFirst = newestFirst[:n]
	}
	out := make([]Found, 0, len(newestFirst))
	for _, m := range newestFirst {
		key := m.objects.key(m.row)
		start, end := nanoTime(m.first), nanoTime(m.last).Add(r.window)
		if m.created != archive.NoTime {
			start = minTime(start, windowStart(nanoTime(m.created), r.window))
		}
		if m.deleted != archive.NoTime {
			end = maxTime(end, windowStart(nanoTime(m.deleted), r.window).Add(r.window))
		} else {
			end = maxTime(end, newest[key.Cluster].Add(r.window))
		}
		start, end = searchRange(q, start, end)
		out = append(out, Found{ID: newTraceID(q.Pipeline, key, start, end), Object: key, LastSeen: nanoTime(m.seen)})
	}
	slices.SortFunc(out, func(a, b Found) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), cmp.Compare(a.Object.String(), b.Object.String()), cmp.Compare(a.Object.UID, b.Object.UID))
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// searchRange narrows an object's trace range [start, end) to the search's time range, to the
// minute (what a trace id holds): the trace then shows what happened in the range searched,
// and says how many observations it leaves out (assemble).
func searchRange(q Query, start, end time.Time) (time.Time, time.Time) {
	s, e := start, end
	if !q.Start.IsZero() && q.Start.After(s) {
		s = q.Start.Truncate(time.Minute)
	}
	if !q.End.IsZero() && q.End.Before(e) {
		e = q.End.Truncate(time.Minute)
		if e.Before(q.End) {
			e = e.Add(time.Minute)
		}
	}
	if !e.After(s) {
		return start, end
	}
	return s, e
}

func windowStart(t time.Time, w time.Duration) time.Time {
	ns := t.UnixNano()
	start := ns - ns%int64(w)
	if ns < 0 && ns%int64(w) != 0 {
		start -= int64(w)
	}
	return time.Unix(0, start).UTC()
}
