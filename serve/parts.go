package serve

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"

	"github.com/kairn-dev/kairn/archive"
)

// Reading one trace's rows out of a merged part without reading the part.
//
// A part's footer (schema, row groups, page index) is parsed once and cached (partFile), keyed by
// the part's key, size and modification time: a merged part is never rewritten in place (a new
// merge writes a part with another name). Per request only byte ranges are fetched: the
// trace_id column chunks, then of the row groups holding the trace only the pages (by the offset
// index) that hold its runs of rows, each column's dictionary page, and nothing else. Local
// archives are read with pread, S3 with ranged GETs (several at once); parts up to wholeLimit
// bytes are fetched whole in one request, which is cheaper than several ranges. The rows are
// then decoded column by column, straight into archive.Span, without parquet-go's reflective
// row reconstruction.

// wholeLimit: parts up to this size are fetched in one piece.
const wholeLimit = 256 << 10

// defaultRangeGap is ReaderConfig.RangeGap's default. A request costs more than the bytes near
// it: CPU in the SDK and the server, and on S3 ~20 ms to its first byte. On the synthetic
// archive from MinIO (first open of a trace, 48 parts of 6 MB, alternated on one machine): a
// gap of 256 KiB (the default until 2026-12-04) fetched 142 MB in 288 requests, p99 512–581
// ms; 2 MiB fetched 284 MB in 48, p99 309–405 ms (query-server.md). On S3 requests run
// concurrently and the bytes cost bandwidth (142 MB more is ~110 ms at 10 Gbit/s), so where
// bandwidth is scarce a smaller gap may do better.
const defaultRangeGap = 2 << 20

// rangeSlack extends every fetched range: the page reader reads through a 4 KiB buffer and may
// look a little past the last page it needs.
const rangeSlack = 4 << 10

// partSource fetches byte ranges of one part.
type partSource interface {
	fetch(ctx context.Context, off, n int64) ([]byte, error)
	parallel() bool // ranges are worth fetching concurrently (network)
	close()
	release(b []byte) // b, which fetch returned, is no longer used
}

type fileSource struct{ f *os.File }

func (s fileSource) fetch(_ context.Context, off, n int64) ([]byte, error) {
	b := make([]byte, n) // page-sized (no gap between local ranges): not worth recycling
	if k, err := s.f.ReadAt(b, off); k < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // shorter than listed
		}
		return nil, fmt.Errorf("read %s [%d, %d): %w", s.f.Name(), off, off+n, err)
	}
	return b, nil
}
func (fileSource) parallel() bool { return false }
func (s fileSource) close()       { s.f.Close() }
func (fileSource) release([]byte) {}

type rangeSource struct {
	rr  archive.RangeReader
	key string
}

func (s rangeSource) fetch(ctx context.Context, off, n int64) ([]byte, error) {
	rc, err := s.rr.GetRange(ctx, s.key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := remoteBuffers.get(int(n))
	if _, err := io.ReadFull(rc, b); err != nil {
		remoteBuffers.put(b)
		return nil, fmt.Errorf("read %s [%d, %d): %w", s.key, off, off+n, err)
	}
	return b, nil
}
func (rangeSource) parallel() bool   { return true }
func (rangeSource) close()           {}
func (rangeSource) release(b []byte) { remoteBuffers.put(b) }

// wholeSource reads the object once with Get (stores that can do nothing else).
type wholeSource struct {
	store archive.Store
	key   string
	once  sync.Once
	data  []byte
	err   error
}

func (s *wholeSource) fetch(ctx context.Context, off, n int64) ([]byte, error) {
	s.once.Do(func() { s.data, s.err = archive.ReadAll(ctx, s.store, s.key) })
	if s.err != nil {
		return nil, s.err
	}
	if off+n > int64(len(s.data)) {
		return nil, fmt.Errorf("read %s: [%d, %d) past its end (%d bytes)", s.key, off, off+n, len(s.data))
	}
	return s.data[off : off+n], nil
}
func (*wholeSource) parallel() bool { return false }
func (*wholeSource) close()         {}
func (*wholeSource) release([]byte) {} // slices of the one object read

func (r *Reader) openSource(o archive.ObjectInfo) (partSource, error) {
	if ld, ok := r.store.(archive.LocalDirer); ok {
		f, err := os.Open(filepath.Join(ld.LocalDir(), filepath.FromSlash(o.Key)))
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: %w", o.Key, archive.ErrNotExist)
		}
		if err != nil {
			return nil, err
		}
		return fileSource{f}, nil
	}
	if rr, ok := r.store.(archive.RangeReader); ok {
		return rangeSource{rr, o.Key}, nil
	}
	return &wholeSource{store: r.store, key: o.Key}, nil
}

type byteRange struct{ off, end int64 }

// readStats count what reading parts cost (for tests and benchmarks).
type readStats struct {
	fetches, bytes, misses atomic.Int64
	viaDictionary          atomic.Int64 // column chunks decoded through their dictionary, not FilePages
	constantChunks         atomic.Int64 // column chunks of one value, filled without their data pages
	indexMismatches        atomic.Int64 // parts whose object index placed a trace wrongly (scanned instead)
	traceScans             atomic.Int64 // parts whose trace_id column was scanned for a trace
}

// sparseReader is an io.ReaderAt over the ranges of a part fetched so far; a read outside them
// fetches what it needs (correct, only slower).
type sparseReader struct {
	ctx   context.Context
	src   partSource
	size  int64
	mu    sync.Mutex
	segs  []segment // sorted by off
	gap   int64     // remote ranges closer than this are fetched as one
	stats *readStats
}

type segment struct {
	off int64
	b   []byte
}

func (s *sparseReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), s.size-off)
	s.mu.Lock()
	for _, g := range s.segs {
		if g.off <= off && off+want <= g.off+int64(len(g.b)) {
			n := copy(p, g.b[off-g.off:off-g.off+want])
			s.mu.Unlock()
			if int64(n) < int64(len(p)) {
				return n, io.EOF
			}
			return n, nil
		}
	}
	s.mu.Unlock()
	s.stats.misses.Add(1) // outside the prefetched ranges
	n := min(max(want, rangeSlack), s.size-off)
	b, err := s.fetch(off, n)
	if err != nil {
		return 0, err
	}
	s.add(segment{off, b})
	c := copy(p, b[:want])
	if c < len(p) {
		return c, io.EOF
	}
	return c, nil
}

// view returns [off, off+n) of the part: the fetched bytes themselves when a segment holds them
// (read only), else a copy read through ReadAt.
func (s *sparseReader) view(off, n int64) ([]byte, error) {
	s.mu.Lock()
	for _, g := range s.segs {
		if g.off <= off && off+n <= g.off+int64(len(g.b)) {
			s.mu.Unlock()
			return g.b[off-g.off : off-g.off+n : off-g.off+n], nil
		}
	}
	s.mu.Unlock()
	b := make([]byte, n)
	if _, err := s.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

func (s *sparseReader) fetch(off, n int64) ([]byte, error) {
	s.stats.fetches.Add(1)
	s.stats.bytes.Add(n)
	return s.src.fetch(s.ctx, off, n)
}

// release gives the fetched ranges back to the source: nothing read from them may be used
// afterwards (rows and dictionaries hold copies).
func (s *sparseReader) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		s.src.release(g.b)
	}
	s.segs = nil
}

func (s *sparseReader) add(g segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.segs, g.off, func(a segment, off int64) int { return cmp.Compare(a.off, off) })
	s.segs = slices.Insert(s.segs, i, g)
}

func (s *sparseReader) covered(r byteRange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		if g.off <= r.off && r.end <= g.off+int64(len(g.b)) {
			return true
		}
	}
	return false
}

// prefetch fetches the ranges not held yet, merged where they are close, concurrently when the
// source is remote.
func (s *sparseReader) prefetch(ranges []byteRange) error {
	var need []byteRange
	gap := s.gap
	if !s.src.parallel() {
		gap = 0 // a local file: a pread costs a syscall, not a round trip
	}
	for _, r := range mergeRanges(ranges, gap) {
		r.off, r.end = max(r.off, 0), min(r.end, s.size)
		if r.end > r.off && !s.covered(r) {
			need = append(need, r)
		}
	}
	if len(need) == 0 {
		return nil
	}
	if len(need) == 1 || !s.src.parallel() {
		for _, r := range need {
			b, err := s.fetch(r.off, r.end-r.off)
			if err != nil {
				return err
			}
			s.add(segment{r.off, b})
		}
		return nil
	}
	errs := make([]error, len(need))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, r := range need {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, err := s.fetch(r.off, r.end-r.off)
			if err != nil {
				errs[i] = err
				return
			}
			s.add(segment{r.off, b})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// maxMergedRange: ranges are not merged past this size, so a part's row group of hundreds of
// megabytes is still fetched over several connections at once (AWS suggests 8–16 MB a GET).
const maxMergedRange = 16 << 20

// mergeRanges sorts rs and merges those less than gap apart (or overlapping) while the merged
// range stays within maxMergedRange.
func mergeRanges(rs []byteRange, gap int64) []byteRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b byteRange) int { return cmp.Compare(a.off, b.off) })
	var out []byteRange
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			overlaps := r.off <= last.end
			near := r.off <= last.end+gap && max(r.end, last.end)-last.off <= maxMergedRange
			if overlaps || near {
				last.end = max(last.end, r.end)
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// detachedReader reads through r until r is cleared.
type detachedReader struct{ r io.ReaderAt }

func (d *detachedReader) ReadAt(p []byte, off int64) (int, error) {
	if d.r == nil {
		return 0, errors.New("part file read after its footer was parsed")
	}
	return d.r.ReadAt(p, off)
}

// partFile is a part's parsed footer and how each of its columns maps onto archive.Span.
type partFile struct {
	f      *parquet.File
	size   int64
	trace  int         // leaf index of trace_id
	leaves []leafField // by leaf index
}

// openPartFile parses the footer and page index of a part (fetching only its tail unless the
// part is small).
func openPartFile(sr *sparseReader, o archive.ObjectInfo) (*partFile, error) {
	tail := min(o.Size, int64(64<<10))
	if o.Size <= wholeLimit {
		tail = o.Size
	}
	if err := sr.prefetch([]byteRange{{o.Size - tail, o.Size}}); err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	// The File keeps its reader; the cached one must not keep this request's bytes (or
	// context): pages are read through PagesFrom with each request's own reader.
	dr := &detachedReader{sr}
	var f *parquet.File
	err := archive.Recovered(func() (err error) {
		f, err = parquet.OpenFile(dr, o.Size, parquet.SkipBloomFilters(true), parquet.SkipMagicBytes(o.Size > wholeLimit))
		return err
	})
	dr.r = nil
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	pf := &partFile{f: f, size: o.Size, trace: -1}
	var walk func(c *parquet.Column, elemDef int, list string)
	walk = func(c *parquet.Column, elemDef int, list string) {
		if c.Leaf() {
			path := strings.Join(c.Path(), ".")
			lf := leafField{path: path, maxDef: c.MaxDefinitionLevel(), elemDef: elemDef}
			if path == "trace_id" {
				pf.trace = c.Index()
			}
			switch list {
			case "":
				lf.set, lf.str = spanFields[path], spanStrings[path]
			case "links":
				lf.list, lf.setLink = listLinks, linkFields[c.Name()]
			case "changes":
				lf.list, lf.setChange = listChanges, changeFields[c.Name()]
			}
			for len(pf.leaves) <= c.Index() {
				pf.leaves = append(pf.leaves, leafField{})
			}
			pf.leaves[c.Index()] = lf
			return
		}
		for _, ch := range c.Columns() {
			ed, l := elemDef, list
			if c.Path() == nil || len(c.Path()) == 0 {
				l = ch.Name() // top-level field: links / changes are the lists
				if l != "links" && l != "changes" {
					l = ""
				}
			}
			if ch.Name() == "element" && l != "" {
				ed = ch.MaxDefinitionLevel()
			}
			walk(ch, ed, l)
		}
	}
	walk(f.Root(), 0, "")
	if pf.trace < 0 {
		return nil, fmt.Errorf("read %s: no trace_id column", o.Key)
	}
	return pf, nil
}

const (
	listNone = iota
	listLinks
	listChanges
)

type leafField struct {
	path      string
	set       fieldSetter
	str       func(*archive.Span) *string // flat string columns: where the value goes
	list      int
	setLink   func(l *archive.Link, s string)
	setChange func(c *archive.FieldChange, s string)
	maxDef    int
	elemDef   int // lists: the definition level at which an element exists
}

// fieldSetter sets one column's value on a row; v is not null.
type fieldSetter func(s *archive.Span, v parquet.Value, str func(parquet.Value) string)

func strField(f func(*archive.Span) *string) fieldSetter {
	return func(s *archive.Span, v parquet.Value, str func(parquet.Value) string) { *f(s) = str(v) }
}

func timeField(f func(*archive.Span) *time.Time) fieldSetter {
	return func(s *archive.Span, v parquet.Value, _ func(parquet.Value) string) {
		*f(s) = time.Unix(0, v.Int64()*1000).UTC()
	}
}

func int32Field(f func(*archive.Span) *int32) fieldSetter {
	return func(s *archive.Span, v parquet.Value, _ func(parquet.Value) string) { *f(s) = v.Int32() }
}

// spanStrings are the flat string columns.
var spanStrings = map[string]func(*archive.Span) *string{
	"kind":                  func(s *archive.Span) *string { return &s.Kind },
	"trace_id":              func(s *archive.Span) *string { return &s.TraceID },
	"span_id":               func(s *archive.Span) *string { return &s.SpanID },
	"parent_span_id":        func(s *archive.Span) *string { return &s.ParentSpanID },
	"cluster":               func(s *archive.Span) *string { return &s.Cluster },
	"api_group":             func(s *archive.Span) *string { return &s.APIGroup },
	"resource":              func(s *archive.Span) *string { return &s.Resource },
	"namespace":             func(s *archive.Span) *string { return &s.Namespace },
	"name":                  func(s *archive.Span) *string { return &s.Name },
	"uid":                   func(s *archive.Span) *string { return &s.UID },
	"object_kind":           func(s *archive.Span) *string { return &s.ObjectKind },
	"parent_cluster":        func(s *archive.Span) *string { return &s.ParentCluster },
	"parent_api_group":      func(s *archive.Span) *string { return &s.ParentAPIGroup },
	"parent_resource":       func(s *archive.Span) *string { return &s.ParentResource },
	"parent_namespace":      func(s *archive.Span) *string { return &s.ParentNamespace },
	"parent_kind":           func(s *archive.Span) *string { return &s.ParentKind },
	"parent_name":           func(s *archive.Span) *string { return &s.ParentName },
	"parent_uid":            func(s *archive.Span) *string { return &s.ParentUID },
	"parent_relation":       func(s *archive.Span) *string { return &s.ParentRelation },
	"time_source":           func(s *archive.Span) *string { return &s.TimeSource },
	"observation_id":        func(s *archive.Span) *string { return &s.ObservationID },
	"audit_id":              func(s *archive.Span) *string { return &s.AuditID },
	"stage":                 func(s *archive.Span) *string { return &s.Stage },
	"verb":                  func(s *archive.Span) *string { return &s.Verb },
	"subresource":           func(s *archive.Span) *string { return &s.Subresource },
	"user":                  func(s *archive.Span) *string { return &s.User },
	"user_agent":            func(s *archive.Span) *string { return &s.UserAgent },
	"reason":                func(s *archive.Span) *string { return &s.Reason },
	"message":               func(s *archive.Span) *string { return &s.Message },
	"event_type":            func(s *archive.Span) *string { return &s.EventType },
	"reporter":              func(s *archive.Span) *string { return &s.Reporter },
	"resource_version":      func(s *archive.Span) *string { return &s.ResourceVersion },
	"prev_resource_version": func(s *archive.Span) *string { return &s.PrevResourceVersion },
	"field_manager":         func(s *archive.Span) *string { return &s.FieldManager },
	"audit_link":            func(s *archive.Span) *string { return &s.AuditLink },
	"revision_time_source":  func(s *archive.Span) *string { return &s.RevisionTimeSource },
}

var spanFields = spanSetters()

func spanSetters() map[string]fieldSetter {
	m := map[string]fieldSetter{
		"window_start": timeField(func(s *archive.Span) *time.Time { return &s.WindowStart }),
		"start_time":   timeField(func(s *archive.Span) *time.Time { return &s.StartTime }),
		"end_time":     timeField(func(s *archive.Span) *time.Time { return &s.EndTime }),
		"status_code":  int32Field(func(s *archive.Span) *int32 { return &s.StatusCode }),
		"event_count":  int32Field(func(s *archive.Span) *int32 { return &s.EventCount }),
		"no_op": func(s *archive.Span, v parquet.Value, _ func(parquet.Value) string) {
			s.NoOp = v.Boolean()
		},
		"revision_time": timeField(func(s *archive.Span) *time.Time { return &s.RevisionTime }),
	}
	for path, f := range spanStrings {
		m[path] = strField(f)
	}
	return m
}

var linkFields = map[string]func(l *archive.Link, s string){
	"relation":  func(l *archive.Link, s string) { l.Relation = s },
	"cluster":   func(l *archive.Link, s string) { l.Cluster = s },
	"api_group": func(l *archive.Link, s string) { l.APIGroup = s },
	"resource":  func(l *archive.Link, s string) { l.Resource = s },
	"namespace": func(l *archive.Link, s string) { l.Namespace = s },
	"name":      func(l *archive.Link, s string) { l.Name = s },
	"uid":       func(l *archive.Link, s string) { l.UID = s },
	"span_id":   func(l *archive.Link, s string) { l.SpanID = s },
}

var changeFields = map[string]func(c *archive.FieldChange, s string){
	"path": func(c *archive.FieldChange, s string) { c.Path = s },
	"old":  func(c *archive.FieldChange, s string) { c.Old = s },
	"new":  func(c *archive.FieldChange, s string) { c.New = s },
}

type run struct{ start, end int64 } // rows [start, end) of a row group

// traceRows reads the rows of part o whose trace_id is in traces. The result is shared (cached):
// callers must not modify it.
//
// known, when not nil, are where those rows lie (from the partition's object index): the part's
// trace_id column is then not read.
func (r *Reader) traceRows(ctx context.Context, o archive.ObjectInfo, traces map[string]bool, known []archive.RowRange) ([]archive.Span, error) {
	ts := make([]string, 0, len(traces))
	for t := range traces {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	ckey := fileCacheKey(o) + "\x00" + strings.Join(ts, "\x00")
	if rows, ok := r.rowCache.get(ckey); ok {
		return rows, nil
	}
	rows, err := r.decodeTraceRows(ctx, o, traces, false, known)
	if err != nil {
		return nil, err
	}
	r.rowCache.put(ckey, rows, int64(len(rows))+1)
	return rows, nil
}

// unservedColumns are not decoded for serving: nothing in a rendered trace shows them (the
// primary parent's key is its span). Every page costs its decompression and buffers however few
// rows are needed from it. Links' keys are decoded: a link to an object of another trace is
// named by them and followed by the trace id they give.
var unservedColumns = map[string]bool{
	"parent_cluster": true, "parent_api_group": true, "parent_resource": true, "parent_namespace": true,
	"parent_kind": true, "parent_name": true, "parent_uid": true, "stage": true, "revision_time": true,
	"revision_time_source": true,
}

// decodeTraceRows decodes the rows of part o whose trace_id is in traces: every column when all,
// else only those a rendered trace shows.
func (r *Reader) decodeTraceRows(ctx context.Context, o archive.ObjectInfo, traces map[string]bool, all bool, known []archive.RowRange) ([]archive.Span, error) {
	src, err := r.openSource(o)
	if err != nil {
		return nil, err
	}
	defer src.close()
	fkey := fileCacheKey(o)
	pf, _ := r.files.get(fkey)
	sr := &sparseReader{ctx: ctx, src: src, size: o.Size, gap: r.rangeGap, stats: &r.stats}
	defer sr.release()
	if pf == nil {
		if pf, err = openPartFile(sr, o); err != nil {
			return nil, err
		}
		r.files.put(fkey, pf, 1)
	} else {
		if o.Size <= wholeLimit {
			if err := sr.prefetch([]byteRange{{0, o.Size}}); err != nil {
				return nil, fmt.Errorf("read %s: %w", o.Key, err)
			}
		}
	}
	var rows []archive.Span
	err = archive.Recovered(func() (err error) {
		dicts := &chunkDicts{cache: r.dicts, file: fkey}
		rows, err = pf.traceRows(sr, dicts, traces, all, known)
		if errors.Is(err, errIndexMismatch) {
			r.stats.indexMismatches.Add(1)
			rows, err = pf.traceRows(sr, dicts, traces, all, nil)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	return rows, nil
}

func fileCacheKey(o archive.ObjectInfo) string {
	return fmt.Sprintf("%s\x00%d\x00%d", o.Key, o.Size, o.Modified.UnixNano())
}

// errIndexMismatch: rows an object index placed in a part hold another trace (the index does
// not describe the part); they are found by scanning instead.
var errIndexMismatch = errors.New("the object index's rows of the trace hold other traces")

// knownRuns are ranges of a part's rows as runs of each of its row groups, or false when there
// are none or they lie outside its rows.
func knownRuns(rgs []parquet.RowGroup, known []archive.RowRange) ([][]run, bool) {
	if known == nil {
		return nil, false
	}
	runs := make([][]run, len(rgs))
	base := int64(0)
	for i, rg := range rgs {
		n := rg.NumRows()
		for _, k := range known {
			if s, e := max(k.Start, base), min(k.End, base+n); s < e {
				runs[i] = append(runs[i], run{s - base, e - base})
			}
		}
		base += n
	}
	end := int64(0)
	for _, k := range known {
		if k.Start < end || k.End < k.Start || k.End > base { // unsorted, overlapping or outside
			return nil, false
		}
		end = k.End
	}
	return runs, true
}

func (pf *partFile) traceRows(sr *sparseReader, dicts *chunkDicts, traces map[string]bool, all bool, known []archive.RowRange) ([]archive.Span, error) {
	md := pf.f.Metadata()
	rgs := pf.f.RowGroups()
	// 1. Where the trace's rows are: as the index says, else by scanning trace_id.
	runs, fromIndex := knownRuns(rgs, known)
	if !fromIndex {
		var err error
		if runs, err = pf.scanTraceRuns(sr, dicts, traces); err != nil || runs == nil {
			return nil, err
		}
	}
	wanted := func(j int) bool {
		if j >= len(pf.leaves) || (fromIndex && j == pf.trace) { // the index gives the trace ids
			return false
		}
		lf := &pf.leaves[j]
		return (lf.set != nil || lf.setLink != nil || lf.setChange != nil) && (all || !unservedColumns[lf.path])
	}
	// 2. The pages holding those runs, of every column.
	var want []byteRange
	for i, rg := range rgs {
		if len(runs[i]) == 0 {
			continue
		}
		for j, cc := range rg.ColumnChunks() {
			if !wanted(j) || pf.constantChunk(dicts, i, j) != nil {
				continue
			}
			want = append(want, pageRanges(&md.RowGroups[i].Columns[j].MetaData, cc, runs[i], dicts.cached(i, j))...)
		}
	}
	if err := sr.prefetch(want); err != nil {
		return nil, err
	}
	// 3. Decode, column by column.
	var out []archive.Span
	for i, rg := range rgs {
		if len(runs[i]) == 0 {
			continue
		}
		n := 0
		for _, ru := range runs[i] {
			n += int(ru.end - ru.start)
		}
		rows := make([]archive.Span, n)
		in := interner{}
		var buf []parquet.Value
		for j, cc := range rg.ColumnChunks() {
			if !wanted(j) {
				continue
			}
			lf := &pf.leaves[j]
			if pf.fillConstant(sr, dicts, i, j, rows) {
				continue
			}
			if lf.str != nil {
				err := pf.decodeDictColumn(sr, dicts, i, j, runs[i], rows)
				if err == nil {
					continue
				}
				if !errors.Is(err, errNotDictionary) {
					return nil, fmt.Errorf("column %s: %w", lf.path, err)
				}
			}
			if err := decodeColumn(cc.(*parquet.FileColumnChunk), sr, runs[i], rows, lf, &in, &buf); err != nil {
				return nil, fmt.Errorf("column %s: %w", strings.Join(cc.(*parquet.FileColumnChunk).Node().(*parquet.Column).Path(), "."), err)
			}
		}
		out = append(out, rows...)
	}
	if fromIndex {
		if err := labelIndexedRows(out, known); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// labelIndexedRows checks that the rows read at the index's ranges (in order, one range an
// object) are the objects it says, by the hash of their key, and gives them the index's trace
// ids; errIndexMismatch if they are not. The index is written with its part from the same rows,
// but a part it does not describe must not be served as if it did.
func labelIndexedRows(rows []archive.Span, known []archive.RowRange) error {
	at := 0
	for _, k := range known {
		n := int(k.End - k.Start)
		if n <= 0 || at+n > len(rows) {
			return errIndexMismatch
		}
		obj := rows[at : at+n]
		key := spanKey(&obj[0])
		if key.Hash().value() != k.Object {
			return errIndexMismatch
		}
		for i := range obj {
			if spanKey(&obj[i]) != key {
				return errIndexMismatch
			}
			obj[i].TraceID = k.Trace
		}
		at += n
	}
	if at != len(rows) {
		return errIndexMismatch
	}
	return nil
}

// constantChunk says, when column j of row group i is known to hold one value in every row
// without reading its data pages, how to set it on rows (else nil): a required column whose
// dictionary, already decoded, is one value, or a required fixed-width one whose statistics'
// minimum and maximum are equal (window_start; exact for integers, unlike a byte array's bounds,
// which a writer may truncate).
func (pf *partFile) constantChunk(dicts *chunkDicts, i, j int) func(rows []archive.Span) {
	lf := &pf.leaves[j]
	md := &pf.f.Metadata().RowGroups[i].Columns[j].MetaData
	if lf.list != listNone || lf.maxDef != 0 || md.NumValues != pf.f.Metadata().RowGroups[i].NumRows {
		return nil
	}
	if lf.str != nil {
		d := dicts.peek(i, j)
		if d == nil || d.len() != 1 || !allDictionaryPages(md) {
			return nil
		}
		return func(rows []archive.Span) {
			for k := range rows {
				*lf.str(&rows[k]) = d.value(0)
			}
		}
	}
	st := &md.Statistics
	if lf.set == nil || len(st.MinValue) == 0 || !bytes.Equal(st.MinValue, st.MaxValue) {
		return nil
	}
	var v parquet.Value
	switch {
	case md.Type == format.Int64 && len(st.MinValue) == 8:
		v = parquet.Int64Value(int64(binary.LittleEndian.Uint64(st.MinValue)))
	case md.Type == format.Int32 && len(st.MinValue) == 4:
		v = parquet.Int32Value(int32(binary.LittleEndian.Uint32(st.MinValue)))
	default:
		return nil
	}
	return func(rows []archive.Span) {
		for k := range rows {
			lf.set(&rows[k], v, nil)
		}
	}
}

// fillConstant sets column j of rows (of row group i) to its one value, if constantChunk knows it.
func (pf *partFile) fillConstant(sr *sparseReader, dicts *chunkDicts, i, j int, rows []archive.Span) bool {
	fill := pf.constantChunk(dicts, i, j)
	if fill == nil {
		return false
	}
	fill(rows)
	sr.stats.constantChunks.Add(1)
	return true
}

// scanTraceRuns finds the runs of rows of each row group whose trace_id is in traces by reading
// the trace_id chunks of every row group (but a dictionary already decoded); nil: none.
func (pf *partFile) scanTraceRuns(sr *sparseReader, dicts *chunkDicts, traces map[string]bool) ([][]run, error) {
	sr.stats.traceScans.Add(1)
	md := pf.f.Metadata()
	rgs := pf.f.RowGroups()
	var want []byteRange
	for i := range rgs {
		m := &md.RowGroups[i].Columns[pf.trace].MetaData
		r := metaRange(m)
		if dicts.cached(i, pf.trace) {
			r.off = m.DataPageOffset
		}
		want = append(want, r)
	}
	if err := sr.prefetch(want); err != nil {
		return nil, err
	}
	runs := make([][]run, len(rgs))
	any := false
	for i, rg := range rgs {
		var err error
		if runs[i], err = pf.scanTrace(sr, dicts, i, rg, traces); err != nil {
			return nil, fmt.Errorf("trace_id: %w", err)
		}
		any = any || len(runs[i]) > 0
	}
	if !any {
		return nil, nil
	}
	return runs, nil
}

func metaRange(m *format.ColumnMetaData) byteRange {
	off := m.DataPageOffset
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < off {
		off = m.DictionaryPageOffset
	}
	return byteRange{off, off + m.TotalCompressedSize}
}

// pageRanges are the byte ranges of a column chunk that hold the runs: its dictionary page
// (unless its decoding is cached) and the data pages the offset index says contain them (the
// whole chunk without an offset index).
func pageRanges(m *format.ColumnMetaData, cc parquet.ColumnChunk, runs []run, dictCached bool) []byteRange {
	whole := metaRange(m)
	oi, err := cc.OffsetIndex()
	if err != nil || oi == nil || oi.NumPages() == 0 {
		return []byteRange{whole}
	}
	var out []byteRange
	if m.DictionaryPageOffset > 0 && !dictCached {
		out = append(out, byteRange{m.DictionaryPageOffset, m.DataPageOffset + rangeSlack})
	}
	np := oi.NumPages()
	p := 0
	for _, ru := range runs {
		for p < np && (p+1 < np && oi.FirstRowIndex(p+1) <= ru.start) {
			p++
		}
		for q := p; q < np && oi.FirstRowIndex(q) < ru.end; q++ {
			end := oi.Offset(q) + oi.CompressedPageSize(q) + rangeSlack
			out = append(out, byteRange{oi.Offset(q), min(end, whole.end)})
		}
	}
	return out
}

// scanTrace returns the runs of rows of row group i whose trace_id is in traces.
func (pf *partFile) scanTrace(sr *sparseReader, dicts *chunkDicts, i int, rg parquet.RowGroup, traces map[string]bool) ([]run, error) {
	c, err := pf.dictChunk(sr, dicts, i, pf.trace)
	if err == nil {
		match := dictMatches(c.dict, traces)
		if match == nil && allDictionaryPages(c.md) {
			return nil, nil
		}
		if match == nil {
			match = make([]bool, c.dict.len()) // the traces may be in PLAIN pages: visit finds them
		}
		var runs []run
		err = c.visit([]run{{0, c.numRows}}, func(row int64, ix int32) {
			if ix >= 0 && match[ix] {
				if n := len(runs); n > 0 && runs[n-1].end == row {
					runs[n-1].end++
				} else {
					runs = append(runs, run{row, row + 1})
				}
			}
		})
		if !errors.Is(err, errNotDictionary) {
			if err == nil {
				sr.stats.viaDictionary.Add(1)
			}
			return runs, err
		}
	} else if !errors.Is(err, errNotDictionary) {
		return nil, err
	}
	return scanTracePages(rg.ColumnChunks()[pf.trace].(*parquet.FileColumnChunk), sr, traces)
}

// scanTracePages is scanTrace through parquet-go's page reader, for any layout.
func scanTracePages(cc *parquet.FileColumnChunk, sr *sparseReader, traces map[string]bool) ([]run, error) {
	pages := cc.PagesFrom(sr)
	defer pages.Close()
	var runs []run
	row := int64(0)
	mark := func(match bool) {
		if match {
			if n := len(runs); n > 0 && runs[n-1].end == row {
				runs[n-1].end++
			} else {
				runs = append(runs, run{row, row + 1})
			}
		}
		row++
	}
	var values []parquet.Value
	var dict parquet.Dictionary
	var dictMatch []bool
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		data := page.Data()
		if d := page.Dictionary(); d != nil && page.NumNulls() == 0 && data.Kind() == encoding.Int32 {
			if d != dict {
				dict, dictMatch = d, make([]bool, d.Len())
				for i := range dictMatch {
					dictMatch[i] = traces[string(d.Index(int32(i)).ByteArray())]
				}
			}
			for _, ix := range data.Int32() {
				mark(dictMatch[ix])
			}
			parquet.Release(page)
			continue
		}
		n := int(page.NumValues())
		values = slices.Grow(values[:0], n)[:n]
		got, err := page.Values().ReadValues(values)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		for _, v := range values[:got] {
			mark(!v.IsNull() && traces[string(v.ByteArray())])
		}
		parquet.Release(page)
	}
	return runs, nil
}

// interner shares the strings of dictionary-encoded columns among rows.
type interner map[string]string

func (in *interner) str(b []byte) string {
	if *in == nil {
		*in = interner{}
	}
	if s, ok := (*in)[string(b)]; ok {
		return s
	}
	s := string(b)
	(*in)[s] = s
	return s
}

// decodeColumn sets one column of rows from its values in runs (rows are the runs' rows, in
// order).
func decodeColumn(cc *parquet.FileColumnChunk, sr *sparseReader, runs []run, rows []archive.Span, lf *leafField, in *interner, buf *[]parquet.Value) error {
	pages := cc.PagesFrom(sr)
	defer pages.Close()
	oi, err := cc.OffsetIndex()
	if err != nil || oi == nil || oi.NumPages() == 0 {
		oi = nil
	}
	var page parquet.Page
	values := *buf
	defer func() {
		if page != nil {
			parquet.Release(page)
		}
		*buf = values[:0]
	}()
	plain := func(v parquet.Value) string { return string(v.ByteArray()) }
	interned := func(v parquet.Value) string { return in.str(v.ByteArray()) }
	str := plain
	var pageStart, pageEnd int64 // rows of the current page
	out := 0
	for _, ru := range runs {
		for row := ru.start; row < ru.end; {
			if page == nil || row >= pageEnd {
				// The next page, or (by the offset index) a later one holding row. Seek only to
				// page boundaries: a page read from its first row is the page reader's own, and
				// goes back to parquet-go's buffer pool when released.
				pageStart = pageEnd
				if page == nil {
					pageStart = 0
				}
				if oi != nil {
					q := sort.Search(oi.NumPages(), func(q int) bool { return oi.FirstRowIndex(q) > row }) - 1
					if q >= 0 && oi.FirstRowIndex(q) > pageStart {
						if err := pages.SeekToRow(oi.FirstRowIndex(q)); err != nil {
							return err
						}
						pageStart = oi.FirstRowIndex(q)
					}
				}
				p, err := pages.ReadPage()
				if err != nil {
					if errors.Is(err, io.EOF) {
						return fmt.Errorf("row %d: %w", row, io.ErrUnexpectedEOF)
					}
					return err
				}
				if page != nil {
					parquet.Release(page) // ours; the page reader's own reference goes at Close
				}
				page, pageEnd = p, pageStart+p.NumRows()
				str = plain
				if p.Dictionary() != nil {
					str = interned // dictionary-encoded: few distinct strings
				}
				continue
			}
			k := min(ru.end, pageEnd)
			sub := page.Slice(row-pageStart, k-pageStart)
			n := int(sub.NumValues())
			values = slices.Grow(values[:0], n)[:n]
			got, err := sub.Values().ReadValues(values)
			parquet.Release(sub) // a slice holds its own references to the page's buffers
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			values = values[:got]
			if lf.list == listNone {
				if len(values) != int(k-row) {
					return fmt.Errorf("rows %d..%d: %d values", row, k, len(values))
				}
				for i, v := range values {
					if !v.IsNull() {
						lf.set(&rows[out+i], v, str)
					}
				}
				out += len(values)
			} else {
				cur, elem := out-1, -1
				for _, v := range values {
					if v.RepetitionLevel() == 0 {
						cur, elem = cur+1, -1
					}
					if v.DefinitionLevel() < lf.elemDef {
						continue // a null or empty list
					}
					elem++
					s := ""
					if v.DefinitionLevel() == lf.maxDef && !v.IsNull() {
						s = str(v)
					}
					if cur >= len(rows) {
						return fmt.Errorf("rows %d..%d: more rows than asked for", row, k)
					}
					switch lf.list {
					case listLinks:
						ls := &rows[cur].Links
						for len(*ls) <= elem {
							*ls = append(*ls, archive.Link{})
						}
						if lf.setLink != nil {
							lf.setLink(&(*ls)[elem], s)
						}
					case listChanges:
						cs := &rows[cur].Changes
						for len(*cs) <= elem {
							*cs = append(*cs, archive.FieldChange{})
						}
						if lf.setChange != nil {
							lf.setChange(&(*cs)[elem], s)
						}
					}
				}
				out += int(k - row)
			}
			row = k
		}
	}
	return nil
}
