package analyze

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/kairn-dev/kairn/archive"
)

// The sparse cache. A remote part is mirrored by a local file of the same size in which only
// the byte ranges a query needs are filled in: the Parquet footer (and the page indexes beside
// it) when the Engine opens, and the column chunks of the columns a statement reads just before
// DuckDB runs it. DuckDB reads the file as an ordinary local Parquet file; it only ever reads the
// footer and the column chunks of the columns it projects or filters on, so the holes (which
// read as zeros) are never decoded. A sidecar <file>.ranges lists the ranges that are present,
// one "start end" line each, appended only after the data is written and synced.
//
// Several processes may share a cache: files are created empty, at full size, and linked into
// place (never replaced); ranges are written in place with the same bytes whoever fetches them;
// and a process holds a shared flock on every file it has registered with DuckDB, which the
// evictor (exclusive, non-blocking) respects.

const (
	rangesSuffix = ".ranges"
	tailGuess    = 16 << 10 // first read of a footer
	mergeGap     = 16 << 10 // ranges closer than this are fetched in one request
	fetchWorkers = 8
	// wholeBelow: parts this small are fetched whole at open, in one GET: cheaper than the two
	// or more requests of footer and chunks (on S3 a request costs more than 256 KiB of transfer).
	wholeBelow = 256 << 10
)

// DefaultCacheBytes bounds the cache when Options.CacheBytes is 0.
const DefaultCacheBytes int64 = 10 << 30

// FetchStats count what an Engine fetched from a remote store.
type FetchStats struct {
	Requests int64 // GET requests (ranged or whole)
	Bytes    int64 // bytes downloaded
	// Files and FileBytes are the files behind the views after pruning, and their total size.
	Files     int
	FileBytes int64
}

type byteRange struct{ start, end int64 }

type chunk struct {
	col string // top-level column
	byteRange
}

type sparseFile struct {
	view   int // which view reads it (0 spans, 1 object_windows)
	key    string
	size   int64
	path   string
	f      *os.File // held open with a shared lock while the Engine lives
	chunks []chunk
	tail   byteRange // page indexes and footer
	have   []byteRange
}

type remote struct {
	store         archive.Store
	rr            archive.RangeReader // nil: only whole objects can be fetched
	root, dir     string
	limit         int64
	progress      func(done, total int)
	progressBytes func(done, total int64)
	fillHoles     byte  // tests: fill unfetched bytes with this instead of leaving holes
	wholeBelow    int64 // parts up to this size are fetched whole

	mu        sync.Mutex // one fetch at a time
	files     []*sparseFile
	requests  atomic.Int64
	bytes     atomic.Int64
	fileBytes int64
}

func (r *remote) stats() FetchStats {
	return FetchStats{Requests: r.requests.Load(), Bytes: r.bytes.Load(), Files: len(r.files), FileBytes: r.fileBytes}
}

func (r *remote) close() {
	for _, sf := range r.files {
		if sf.f != nil {
			sf.f.Close()
		}
	}
}

// cachePath names the local mirror of an object: its key under the cache folder. A mirror of
// another size is stale (the object was rewritten): it is removed when nobody uses it, else the
// mirror goes beside it with the size in its name, so it never meets the old ranges.
func (r *remote) cachePath(o archive.ObjectInfo) string {
	p := filepath.Join(r.dir, filepath.FromSlash(o.Key))
	fi, err := os.Stat(p)
	if err != nil || fi.Size() == o.Size {
		return p
	}
	if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
		if tryLockExclusive(f) {
			os.Remove(p + rangesSuffix)
			os.Remove(p)
			f.Close()
			return p
		}
		f.Close()
	}
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + "." + strconv.FormatInt(o.Size, 10) + ext
}

// openAll opens (creating where needed) the mirrors of objs and fetches their footers. view[i]
// names the view object i is read by.
func (r *remote) openAll(ctx context.Context, objs []archive.ObjectInfo, view func(i int) int) ([]string, error) {
	r.files = make([]*sparseFile, len(objs))
	for _, o := range objs {
		r.fileBytes += o.Size
	}
	var done int
	var mu sync.Mutex
	err := parallel(ctx, len(objs), func(i int) error {
		sf, err := r.open(ctx, objs[i])
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		sf.view = view(i)
		r.files[i] = sf
		done++
		if r.progress != nil {
			r.progress(done, len(objs))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(objs))
	for i, sf := range r.files {
		paths[i] = sf.path
	}
	r.evict()
	return paths, nil
}

func (r *remote) open(ctx context.Context, o archive.ObjectInfo) (*sparseFile, error) {
	path := r.cachePath(o)
	for attempt := 0; attempt < 10; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			if err := r.create(o, path); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := lockShared(f); err != nil {
			f.Close()
			return nil, err
		}
		if !sameFile(f, path) { // evicted between open and lock
			f.Close()
			continue
		}
		sf := &sparseFile{key: o.Key, size: o.Size, path: path, f: f}
		sf.have = readRanges(path+rangesSuffix, o.Size)
		now := time.Now()
		if err := os.Chtimes(path+rangesSuffix, now, now); err != nil { // recency, for eviction
			if err := appendRanges(path+rangesSuffix, nil); err != nil {
				f.Close()
				return nil, err
			}
		}
		if sf.size <= r.wholeBelow {
			if err := sf.fetch(ctx, r, []byteRange{{0, sf.size}}, nil); err != nil {
				f.Close()
				return nil, err
			}
		}
		if err := sf.loadFooter(ctx, r); err != nil {
			f.Close()
			return nil, err
		}
		return sf, nil
	}
	return nil, fmt.Errorf("cache %s: evicted while opening, again and again", path)
}

// create makes an empty mirror of full size and links it into place unless one is there.
func (r *remote) create(o archive.ObjectInfo, path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if r.fillHoles != 0 {
		_, err = io.Copy(tmp, io.LimitReader(repeat(r.fillHoles), o.Size))
	} else {
		err = tmp.Truncate(o.Size)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

type repeat byte

func (b repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// loadFooter reads the file's metadata (fetching the tail where missing) and lists its column
// chunks.
func (sf *sparseFile) loadFooter(ctx context.Context, r *remote) error {
	if sf.size < 12 {
		return fmt.Errorf("%s: %d bytes is too small for Parquet", sf.key, sf.size)
	}
	n := min(sf.size, tailGuess)
	buf, err := sf.readAt(ctx, r, sf.size-n, n)
	if err != nil {
		return err
	}
	if !bytes.Equal(buf[n-4:], []byte("PAR1")) {
		return fmt.Errorf("%s: not a Parquet file", sf.key)
	}
	flen := int64(binary.LittleEndian.Uint32(buf[n-8:]))
	if flen+8 > sf.size-4 {
		return fmt.Errorf("%s: bad footer length %d", sf.key, flen)
	}
	if flen+8 > n {
		if buf, err = sf.readAt(ctx, r, sf.size-flen-8, flen+8); err != nil {
			return err
		}
		n = flen + 8
	}
	var meta format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), buf[n-8-flen:n-8], &meta); err != nil {
		return fmt.Errorf("%s: reading the footer: %w", sf.key, err)
	}
	var dataEnd int64 = 4
	for _, rg := range meta.RowGroups {
		for _, cc := range rg.Columns {
			md := cc.MetaData
			start := md.DataPageOffset
			if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
				start = md.DictionaryPageOffset
			}
			col := ""
			if len(md.PathInSchema) > 0 {
				col = md.PathInSchema[0]
			}
			c := chunk{col, byteRange{start, start + md.TotalCompressedSize}}
			if c.start < 4 || c.end > sf.size || c.start > c.end {
				return fmt.Errorf("%s: column chunk %s out of the file", sf.key, col)
			}
			sf.chunks = append(sf.chunks, c)
			dataEnd = max(dataEnd, c.end)
			if md.BloomFilterOffset > 0 {
				end := sf.size - 8 - flen // length not recorded: up to the footer
				if md.BloomFilterLength > 0 {
					end = min(end, md.BloomFilterOffset+int64(md.BloomFilterLength))
				}
				sf.chunks = append(sf.chunks, chunk{col, byteRange{md.BloomFilterOffset, end}})
			}
		}
	}
	// Page indexes (and anything else) between the last column chunk and the footer.
	sf.tail = byteRange{dataEnd, sf.size}
	return sf.fetch(ctx, r, []byteRange{sf.tail}, nil)
}

// readAt returns n bytes at off, fetching what is missing first.
func (sf *sparseFile) readAt(ctx context.Context, r *remote, off, n int64) ([]byte, error) {
	if err := sf.fetch(ctx, r, []byteRange{{off, off + n}}, nil); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	_, err := sf.f.ReadAt(buf, off)
	return buf, err
}

// missing returns the parts of want (sorted, merged, gaps under mergeGap bridged) not present.
func (sf *sparseFile) missing(want []byteRange) []byteRange {
	var out []byteRange
	for _, w := range mergeRanges(want, 0) {
		cur := w.start
		for _, h := range sf.have {
			if h.end <= cur || h.start >= w.end {
				continue
			}
			if h.start > cur {
				out = append(out, byteRange{cur, h.start})
			}
			cur = max(cur, h.end)
		}
		if cur < w.end {
			out = append(out, byteRange{cur, w.end})
		}
	}
	return mergeRanges(out, mergeGap)
}

// fetch fills in the missing parts of want with ranged GETs, syncs, and records them.
func (sf *sparseFile) fetch(ctx context.Context, r *remote, want []byteRange, onBytes func(int64)) error {
	miss := sf.missing(want)
	if len(miss) == 0 {
		return nil
	}
	if r.rr == nil {
		miss = []byteRange{{0, sf.size}}
	}
	for _, m := range miss {
		var rc io.ReadCloser
		var err error
		if r.rr != nil {
			rc, err = r.rr.GetRange(ctx, sf.key, m.start, m.end-m.start)
		} else {
			rc, err = r.store.Get(ctx, sf.key)
		}
		if err != nil {
			return fmt.Errorf("fetch %s: %w", sf.key, err)
		}
		r.requests.Add(1)
		n, err := io.Copy(io.NewOffsetWriter(sf.f, m.start), &countReader{rc, r, onBytes})
		rc.Close()
		if err == nil && n != m.end-m.start {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("fetch %s [%d, %d): %w", sf.key, m.start, m.end, err)
		}
	}
	if err := sf.f.Sync(); err != nil {
		return err
	}
	if err := appendRanges(sf.path+rangesSuffix, miss); err != nil {
		return err
	}
	sf.have = mergeRanges(append(sf.have, miss...), 0)
	return nil
}

type countReader struct {
	r       io.Reader
	remote  *remote
	onBytes func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.remote.bytes.Add(int64(n))
	if c.onBytes != nil && n > 0 {
		c.onBytes(int64(n))
	}
	return n, err
}

// ensure fetches the column chunks the scans read (all: every file whole). A scan reads a file
// when the file's view has every column the scan names (the plan does not say which files a
// scan reads; a scan of spans names span columns, one of object_windows index columns, and one
// naming only columns both have is taken to read both).
func (r *remote) ensure(ctx context.Context, scans []map[string]bool, all bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cols map[int]map[string]bool // per view
	if !all {
		viewCols := map[int]map[string]bool{}
		known := map[string]bool{}
		for _, sf := range r.files {
			if viewCols[sf.view] == nil {
				viewCols[sf.view] = map[string]bool{}
			}
			for _, c := range sf.chunks {
				viewCols[sf.view][c.col] = true
				known[c.col] = true
			}
		}
		cols = map[int]map[string]bool{}
		for v, vc := range viewCols {
			cols[v] = map[string]bool{}
			for _, scan := range scans {
				reads := true
				for c := range scan {
					if known[c] && !vc[c] {
						reads = false
					}
				}
				if reads {
					for c := range scan {
						cols[v][c] = true
					}
				}
			}
		}
	}
	type task struct {
		sf   *sparseFile
		want []byteRange
	}
	var tasks []task
	var total int64
	for _, sf := range r.files {
		var want []byteRange
		if all {
			want = []byteRange{{0, sf.size}}
		} else {
			for _, c := range sf.chunks {
				if cols[sf.view][c.col] {
					want = append(want, c.byteRange)
				}
			}
		}
		if miss := sf.missing(want); len(miss) > 0 {
			tasks = append(tasks, task{sf, want})
			for _, m := range miss {
				total += m.end - m.start
			}
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	var done atomic.Int64
	var doneBytes atomic.Int64
	var progressMu sync.Mutex
	onBytes := func(n int64) {
		if r.progressBytes != nil {
			d := doneBytes.Add(n)
			progressMu.Lock()
			r.progressBytes(d, total)
			progressMu.Unlock()
		}
	}
	err := parallel(ctx, len(tasks), func(i int) error {
		if err := tasks[i].sf.fetch(ctx, r, tasks[i].want, onBytes); err != nil {
			return err
		}
		if r.progress != nil {
			progressMu.Lock()
			r.progress(int(done.Add(1)), len(tasks))
			progressMu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.evict()
	return nil
}

// parallel runs f(0..n-1) on fetchWorkers goroutines and returns the first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < min(fetchWorkers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func mergeRanges(rs []byteRange, gap int64) []byteRange {
	if len(rs) == 0 {
		return nil
	}
	rs = append([]byteRange(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	out := rs[:1]
	for _, x := range rs[1:] {
		last := &out[len(out)-1]
		if x.start <= last.end+gap {
			last.end = max(last.end, x.end)
		} else {
			out = append(out, x)
		}
	}
	return out
}

func readRanges(path string, size int64) []byteRange {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var rs []byteRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		a, b, ok := strings.Cut(sc.Text(), " ")
		s, err1 := strconv.ParseInt(a, 10, 64)
		e, err2 := strconv.ParseInt(b, 10, 64)
		if ok && err1 == nil && err2 == nil && 0 <= s && s < e && e <= size {
			rs = append(rs, byteRange{s, e})
		}
	}
	return mergeRanges(rs, 0)
}

// appendRanges appends lines in one write (O_APPEND), so concurrent writers never interleave
// within a line.
func appendRanges(path string, rs []byteRange) error {
	var b strings.Builder
	for _, x := range rs {
		fmt.Fprintf(&b, "%d %d\n", x.start, x.end)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// evict removes the least recently used mirrors (by their sidecar's time) until the cache is
// under its bound. Files any process holds (shared lock) are skipped, so a query that needs more
// than the bound keeps its files and the cache stays over it until the next eviction.
func (r *remote) evict() {
	if r.limit <= 0 {
		return
	}
	type entry struct {
		path  string
		bytes int64
		used  time.Time
	}
	var all []entry
	var total int64
	filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		e := entry{p, allocated(fi), fi.ModTime()}
		if si, err := os.Stat(p + rangesSuffix); err == nil {
			e.used = si.ModTime()
		}
		all = append(all, e)
		total += e.bytes
		return nil
	})
	if total <= r.limit {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	for _, e := range all {
		if total <= r.limit {
			return
		}
		f, err := os.OpenFile(e.path, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if tryLockExclusive(f) {
			// The sidecar first: a mirror created at this path afterwards must never meet
			// ranges that belonged to the old one.
			os.Remove(e.path + rangesSuffix)
			os.Remove(e.path)
			total -= e.bytes
		}
		f.Close()
	}
}
