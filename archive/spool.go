package archive

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kairn-dev/kairn/internal/atomicfile"
)

const (
	// MaxSpoolRecord is the largest record the spool takes (a Kubernetes object is at most about
	// 1.5 MiB; an audit event carrying request and response bodies a few times that).
	MaxSpoolRecord = 32 << 20

	// DefaultSpoolMaxBytes is the disk bound when SpoolOptions.MaxBytes is 0.
	DefaultSpoolMaxBytes = 1 << 30

	spoolFrameHeader = 8
	spoolClosedFile  = "closed"

	// spoolMaxClosed bounds the closed-windows file. Older entries are forgotten (unless their
	// window still has a sealed segment): a record for a forgotten window then opens a new segment
	// of it, which is uploaded under a new part name, so nothing is duplicated or lost; it is only
	// not labelled late.
	spoolMaxClosed = 4096
)

var (
	// ErrSpoolFull is returned (wrapped) by AppendBatch when the batch would take the spool past
	// its disk bound. Nothing was written: the caller must not acknowledge the batch to its
	// source, and should make the source retry later (HTTP 429 for a webhook).
	ErrSpoolFull = errors.New("spool is full")
	// ErrSpoolCorrupt is returned (wrapped) by OpenSpool and Replay for a record that fails its
	// checksum and is not a torn write at the end of a segment.
	ErrSpoolCorrupt = errors.New("spool segment is corrupt")
)

var spoolCRCTable = crc32.MakeTable(crc32.Castagnoli)

// SpoolOptions configure a Spool.
type SpoolOptions struct {
	Dir string // created if missing; one process per directory
	// MaxBytes bounds the records held on disk (0: DefaultSpoolMaxBytes). At the bound AppendBatch
	// returns ErrSpoolFull and nothing already spooled is dropped.
	MaxBytes int64
}

// SpoolWindow describes one segment of the spool: a window's own records, or one generation of
// the records that arrived after it closed.
type SpoolWindow struct {
	Start   time.Time // window start, UTC
	Late    bool
	Gen     int // late segments: 1, 2, … in order of creation; 0 for the window's own segment
	Bytes   int64
	Records int
	// Sealed segments take no more appends: they may be replayed, uploaded and dropped.
	Sealed bool
}

type spoolSegKey struct {
	start int64 // window start, Unix seconds
	late  bool
	gen   int
}

type spoolSegment struct {
	key  spoolSegKey
	path string

	// Guarded by Spool.mu.
	sealed   bool
	bytes    int64 // bytes of acknowledged records
	records  int
	inflight sync.WaitGroup // AppendBatch calls that chose this segment and have not returned

	wmu sync.Mutex // serialises writes; guards f, end and err
	f   *os.File   // nil once sealed (or opened sealed)
	end int64      // end of the last complete write
	err error      // a failed write could not be undone, or fsync failed: no more appends

	smu    sync.Mutex // one fsync at a time; guards synced
	synced int64      // everything before this offset is durable
}

// Spool is where records wait, on local disk, between being acknowledged to their source and
// being written to the object store as part of their window.
//
// Layout of the spool directory:
//
//	w-20261124T0530.spool        the window's own records
//	w-20261124T0530-late-1.spool records that arrived after the window closed, generation 1, 2, …
//	closed                       the windows already closed, one WindowKey per line
//
// A segment file is a sequence of records, each framed as
//
//	uint32 little-endian payload length | uint32 little-endian CRC32C of (length bytes ‖ payload) | payload
//
// The checksum covers the length so that a zero-filled tail (which some filesystems leave after
// a crash) never reads as valid empty records.
//
// Exactly-once: a segment is sealed (takes no more appends) before anything reads it for upload,
// so every upload of a segment sees the same records, Build turns them into the same rows, and
// WriteParts gives them the same part name: a retried upload replaces the part. A window is sealed
// by CloseWindows, which persists it in "closed" first, so after a restart a sealed segment is
// still sealed; late segments found at startup are all treated as sealed.
//
// Records are opaque bytes. A Spool is safe for concurrent use; one process uses a directory.
type Spool struct {
	dir string
	max int64

	mu         sync.Mutex
	shut       bool
	segs       map[spoolSegKey]*spoolSegment
	activeLate map[int64]*spoolSegment // the late segment that takes appends, per window
	nextGen    map[int64]int
	closed     map[int64]bool
	bytes      int64 // acknowledged records plus batches being written
}

// OpenSpool opens (creating if needed) the spool in opts.Dir. It validates every record of every
// segment; a torn tail (the partial last write of a process killed mid-append, which was never
// acknowledged) is cut off and everything before it kept. A record that fails its checksum
// anywhere else is an error wrapping ErrSpoolCorrupt that names the file and offset: the spool
// refuses to start rather than guess, and never drops records that validate.
func OpenSpool(opts SpoolOptions) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no directory given")
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("spool: negative MaxBytes %d", opts.MaxBytes)
	}
	s := &Spool{
		dir:        opts.Dir,
		max:        opts.MaxBytes,
		segs:       map[spoolSegKey]*spoolSegment{},
		activeLate: map[int64]*spoolSegment{},
		nextGen:    map[int64]int{},
		closed:     map[int64]bool{},
	}
	if s.max == 0 {
		s.max = DefaultSpoolMaxBytes
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := s.loadClosed(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	changed := false
	for _, e := range entries {
		if e.Name() == spoolClosedFile+".tmp" {
			_ = os.Remove(filepath.Join(s.dir, e.Name())) // an interrupted saveClosed
			changed = true
			continue
		}
		key, ok := spoolParseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		g := &spoolSegment{key: key, path: filepath.Join(s.dir, e.Name())}
		records, size, repaired, err := spoolRecoverSegment(g.path)
		if err != nil {
			s.Close()
			return nil, err
		}
		changed = changed || repaired
		if records == 0 {
			if err := os.Remove(g.path); err != nil {
				s.Close()
				return nil, fmt.Errorf("spool: %w", err)
			}
			changed = true
			continue
		}
		g.bytes, g.records, g.end, g.synced = size, records, size, size
		// A late segment from before a restart may already have been uploaded (and not dropped):
		// appending to it would change its part name and duplicate what was uploaded.
		g.sealed = key.late || s.closed[key.start]
		if !g.sealed {
			if g.f, err = os.OpenFile(g.path, os.O_RDWR, 0); err != nil {
				s.Close()
				return nil, fmt.Errorf("spool: %w", err)
			}
		}
		if key.late {
			s.nextGen[key.start] = max(s.nextGen[key.start], key.gen+1)
		}
		s.segs[key] = g
		s.bytes += size
	}
	if changed {
		if err := spoolSyncDir(s.dir); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func spoolSegmentName(k spoolSegKey) string {
	key := WindowKey(time.Unix(k.start, 0))
	if k.late {
		return fmt.Sprintf("w-%s-late-%d.spool", key, k.gen)
	}
	return "w-" + key + ".spool"
}

func spoolParseSegmentName(name string) (spoolSegKey, bool) {
	rest, ok := strings.CutPrefix(name, "w-")
	if !ok {
		return spoolSegKey{}, false
	}
	if rest, ok = strings.CutSuffix(rest, ".spool"); !ok {
		return spoolSegKey{}, false
	}
	win, late, isLate := strings.Cut(rest, "-late-")
	t, err := ParseWindowKey(win)
	if err != nil {
		return spoolSegKey{}, false
	}
	k := spoolSegKey{start: t.Unix()}
	if isLate {
		gen, err := strconv.Atoi(late)
		if err != nil || gen < 1 {
			return spoolSegKey{}, false
		}
		k.late, k.gen = true, gen
	}
	return k, spoolSegmentName(k) == name
}

// spoolWindowKey checks that a window start can be named in files and partitions (WindowKey has
// minute resolution).
func spoolWindowKey(w time.Time) (int64, error) {
	if w.Nanosecond() != 0 || w.Unix()%60 != 0 {
		return 0, fmt.Errorf("spool: window start %s is not a whole minute", w.Format(time.RFC3339Nano))
	}
	return w.Unix(), nil
}

func spoolFrameCRC(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, spoolCRCTable), spoolCRCTable, payload)
}

func spoolAppendFrame(buf, rec []byte) []byte {
	var h [spoolFrameHeader]byte
	binary.LittleEndian.PutUint32(h[:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(h[4:], spoolFrameCRC(h[:4], rec))
	return append(append(buf, h[:]...), rec...)
}

func spoolCorruptAt(path string, off int64, why string) error {
	return fmt.Errorf("%w: %s: record at offset %d: %s (the records before offset %d are intact: "+
		"truncate the file to %d bytes to keep them, or move it aside, then restart)",
		ErrSpoolCorrupt, path, off, why, off, off)
}

// spoolRecoverSegment validates a segment file and cuts off a torn tail. A tail is torn when its first
// bad record runs past the end of the file and no complete valid record follows it (a write cut
// short by kill -9 or a crash), or when the rest of the file is zeros. Anything else is
// corruption: the file is left untouched and an error names it.
func spoolRecoverSegment(path string) (records int, size int64, repaired bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, false, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, false, fmt.Errorf("spool: %w", err)
	}
	fileSize := st.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	var (
		off     int64
		hdr     [spoolFrameHeader]byte
		payload []byte
	)
	for off < fileSize {
		rest := fileSize - off
		if rest < spoolFrameHeader {
			break // torn inside a header
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return 0, 0, false, fmt.Errorf("spool: %s: %w", path, err)
		}
		n := int64(binary.LittleEndian.Uint32(hdr[:4]))
		if n > MaxSpoolRecord {
			return 0, 0, false, spoolCorruptAt(path, off, fmt.Sprintf("length %d exceeds the maximum record size", n))
		}
		if spoolFrameHeader+n > rest {
			tail := make([]byte, rest) // shorter than one frame, so at most MaxSpoolRecord+8
			if _, err := f.ReadAt(tail, off); err != nil {
				return 0, 0, false, fmt.Errorf("spool: %s: %w", path, err)
			}
			if spoolContainsFrame(tail) {
				return 0, 0, false, spoolCorruptAt(path, off, fmt.Sprintf("length %d runs past the end of the file, but valid records follow", n))
			}
			break
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, 0, false, fmt.Errorf("spool: %s: %w", path, err)
		}
		if spoolFrameCRC(hdr[:4], payload) != binary.LittleEndian.Uint32(hdr[4:]) {
			zero, err := spoolAllZero(f, off, fileSize)
			if err != nil {
				return 0, 0, false, fmt.Errorf("spool: %s: %w", path, err)
			}
			if zero {
				break
			}
			return 0, 0, false, spoolCorruptAt(path, off, "checksum mismatch")
		}
		off += spoolFrameHeader + n
		records++
	}
	if off == fileSize {
		return records, off, false, nil
	}
	if err := f.Truncate(off); err != nil {
		return 0, 0, false, fmt.Errorf("spool: cutting the torn tail of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, 0, false, fmt.Errorf("spool: cutting the torn tail of %s: %w", path, err)
	}
	return records, off, true, nil
}

// spoolContainsFrame reports whether a complete, valid record starts anywhere in b.
func spoolContainsFrame(b []byte) bool {
	for p := 0; p+spoolFrameHeader <= len(b); p++ {
		n := int(binary.LittleEndian.Uint32(b[p:]))
		if n > len(b)-p-spoolFrameHeader {
			continue
		}
		if spoolFrameCRC(b[p:p+4], b[p+spoolFrameHeader:p+spoolFrameHeader+n]) == binary.LittleEndian.Uint32(b[p+4:]) {
			return true
		}
	}
	return false
}

func spoolAllZero(f *os.File, off, end int64) (bool, error) {
	buf := make([]byte, 64<<10)
	for off < end {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if err != nil && err != io.EOF {
			return false, err
		}
		if n == 0 {
			return true, nil
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += int64(n)
	}
	return true, nil
}

func spoolSyncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("spool: sync %s: %w", dir, err)
	}
	return nil
}

func (s *Spool) loadClosed() error {
	data, err := os.ReadFile(filepath.Join(s.dir, spoolClosedFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		t, err := ParseWindowKey(line)
		if err != nil {
			return fmt.Errorf("spool: %s line %d: %w", filepath.Join(s.dir, spoolClosedFile), i+1, err)
		}
		s.closed[t.Unix()] = true
	}
	return nil
}

// saveClosed rewrites the closed-windows file atomically (temporary file, fsync, rename, directory
// fsync). Called with s.mu held.
func (s *Spool) saveClosed() error {
	starts := make([]int64, 0, len(s.closed))
	for st := range s.closed {
		starts = append(starts, st)
	}
	slices.Sort(starts)
	for i := 0; len(s.closed) > spoolMaxClosed && i < len(starts); i++ {
		if s.segs[spoolSegKey{start: starts[i]}] == nil {
			delete(s.closed, starts[i])
		}
	}
	var buf bytes.Buffer
	for _, st := range starts {
		if s.closed[st] {
			buf.WriteString(WindowKey(time.Unix(st, 0)) + "\n")
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, spoolClosedFile), buf.Bytes()); err != nil {
		return fmt.Errorf("spool: saving closed windows: %w", err)
	}
	return nil
}

// AppendBatch appends recs to the segment of the window starting at window (a whole minute), or
// to its late segment when late is set or the window is already closed. It returns nil only once
// every record is written and fsync'd: that is the point at which a source may be acknowledged.
// On error nothing of the batch counts as spooled (ErrSpoolFull: the disk bound is reached).
// Concurrent calls share fsyncs (group commit).
func (s *Spool) AppendBatch(window time.Time, late bool, recs [][]byte) error {
	if len(recs) == 0 {
		return nil
	}
	start, err := spoolWindowKey(window)
	if err != nil {
		return err
	}
	size := 0
	for _, r := range recs {
		if len(r) > MaxSpoolRecord {
			return fmt.Errorf("spool: record of %d bytes exceeds the maximum of %d", len(r), MaxSpoolRecord)
		}
		size += spoolFrameHeader + len(r)
	}
	buf := make([]byte, 0, size)
	for _, r := range recs {
		buf = spoolAppendFrame(buf, r)
	}
	n := int64(len(buf))

	g, err := s.reserve(start, late, n)
	if err != nil {
		return err
	}
	defer g.inflight.Done()
	if err := g.append(buf); err != nil {
		s.mu.Lock()
		s.bytes -= n
		s.mu.Unlock()
		return fmt.Errorf("spool: %s: %w", g.path, err)
	}
	s.mu.Lock()
	g.bytes += n
	g.records += len(recs)
	s.mu.Unlock()
	return nil
}

// reserve accounts n bytes against the disk bound and picks (creating if needed) the segment.
func (s *Spool) reserve(start int64, late bool, n int64) (*spoolSegment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return nil, errors.New("spool: closed")
	}
	if s.bytes+n > s.max {
		return nil, fmt.Errorf("%w: a batch of %d bytes does not fit (%d of %d bytes in use in %s)", ErrSpoolFull, n, s.bytes, s.max, s.dir)
	}
	// Checking closed here, under the same lock that CloseWindows seals under, is what keeps a
	// batch from landing in a segment that is being uploaded.
	var key spoolSegKey
	var g *spoolSegment
	if late || s.closed[start] {
		g = s.activeLate[start]
		key = spoolSegKey{start: start, late: true, gen: max(s.nextGen[start], 1)}
	} else {
		key = spoolSegKey{start: start}
		g = s.segs[key]
	}
	if g == nil {
		f, err := os.OpenFile(filepath.Join(s.dir, spoolSegmentName(key)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		// The new name must be durable before any record in it is acknowledged.
		if err := spoolSyncDir(s.dir); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
		g = &spoolSegment{key: key, path: f.Name(), f: f}
		s.segs[key] = g
		if key.late {
			s.activeLate[start] = g
			s.nextGen[start] = key.gen + 1
		}
	}
	s.bytes += n
	g.inflight.Add(1)
	return g, nil
}

func (g *spoolSegment) append(buf []byte) error {
	g.wmu.Lock()
	if g.err != nil {
		g.wmu.Unlock()
		return g.err
	}
	off := g.end
	if _, err := g.f.WriteAt(buf, off); err != nil {
		// Cut the partial batch off, or the next batch would land behind bytes that fail to
		// validate, and be lost with them at the next start.
		if terr := g.f.Truncate(off); terr != nil {
			g.err = fmt.Errorf("segment unusable after a failed write (%v): %w", err, terr)
		}
		g.wmu.Unlock()
		return err
	}
	g.end = off + int64(len(buf))
	end := g.end
	g.wmu.Unlock()
	return g.sync(end)
}

// sync makes everything up to upto durable. A caller whose bytes were covered by another caller's
// fsync returns at once: concurrent appends share one fsync.
func (g *spoolSegment) sync(upto int64) error {
	g.smu.Lock()
	defer g.smu.Unlock()
	if g.synced >= upto {
		return nil
	}
	g.wmu.Lock()
	end, err := g.end, g.err
	g.wmu.Unlock()
	if err != nil {
		return err
	}
	if err := g.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages: nothing written
		// since the last good fsync can be trusted, so the segment takes no more appends.
		g.wmu.Lock()
		g.err = fmt.Errorf("fsync: %w", err)
		g.wmu.Unlock()
		return g.err
	}
	g.synced = end
	return nil
}

func (g *spoolSegment) durable() int64 {
	g.smu.Lock()
	defer g.smu.Unlock()
	return g.synced
}

func (g *spoolSegment) closeFile() error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.f == nil {
		return nil
	}
	err := g.f.Close()
	g.f = nil
	if g.err == nil {
		g.err = errors.New("segment is sealed")
	}
	return err
}

func (g *spoolSegment) info() SpoolWindow {
	return SpoolWindow{
		Start:   time.Unix(g.key.start, 0).UTC(),
		Late:    g.key.late,
		Gen:     g.key.gen,
		Bytes:   g.bytes,
		Records: g.records,
		Sealed:  g.sealed,
	}
}

func sortSpoolWindows(ws []SpoolWindow) {
	slices.SortFunc(ws, func(a, b SpoolWindow) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if a.Late != b.Late {
			if a.Late {
				return 1
			}
			return -1
		}
		return a.Gen - b.Gen
	})
}

// CloseWindows closes the windows starting at windows: it records them as closed (durably, in
// one rewrite of the closed-windows file, so later batches for them go to late segments, also
// after a restart) and seals every segment they have now, waiting for appends in progress. The
// returned segments, sorted by window, never change again: replay, upload and Drop them. Calling
// it again for a closed window seals the late segment that has filled since. A window whose
// segment fails to close is left out of the result, with the error; the others are returned.
func (s *Spool) CloseWindows(windows ...time.Time) ([]SpoolWindow, error) {
	starts := make(map[int64]bool, len(windows))
	for _, w := range windows {
		start, err := spoolWindowKey(w)
		if err != nil {
			return nil, err
		}
		starts[start] = true
	}
	s.mu.Lock()
	if s.shut {
		s.mu.Unlock()
		return nil, errors.New("spool: closed")
	}
	var added []int64
	for start := range starts {
		if !s.closed[start] {
			s.closed[start] = true
			added = append(added, start)
		}
	}
	if len(added) > 0 {
		if err := s.saveClosed(); err != nil {
			for _, start := range added {
				delete(s.closed, start)
			}
			s.mu.Unlock()
			return nil, err
		}
	}
	var segs []*spoolSegment
	for k, g := range s.segs {
		if starts[k.start] {
			g.sealed = true
			segs = append(segs, g)
		}
	}
	for start := range starts {
		delete(s.activeLate, start)
	}
	s.mu.Unlock()

	var errs []error
	failed := map[int64]bool{}
	for _, g := range segs {
		g.inflight.Wait()
		if err := g.closeFile(); err != nil {
			errs = append(errs, fmt.Errorf("spool: closing %s: %w", g.path, err))
			failed[g.key.start] = true
		}
	}
	s.mu.Lock()
	out := make([]SpoolWindow, 0, len(segs))
	for _, g := range segs {
		if !failed[g.key.start] {
			out = append(out, g.info())
		}
	}
	s.mu.Unlock()
	sortSpoolWindows(out)
	return out, errors.Join(errs...)
}

// Closed reports whether the window starting at window has been closed.
func (s *Spool) Closed(window time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed[window.Unix()] && window.Nanosecond() == 0
}

// Windows lists the spooled segments, by window start, the window's own segment before its late
// ones.
func (s *Spool) Windows() []SpoolWindow {
	s.mu.Lock()
	out := make([]SpoolWindow, 0, len(s.segs))
	for _, g := range s.segs {
		out = append(out, g.info())
	}
	s.mu.Unlock()
	sortSpoolWindows(out)
	return out
}

func (s *Spool) lookup(w SpoolWindow) (*spoolSegment, error) {
	k := spoolSegKey{start: w.Start.Unix(), late: w.Late, gen: w.Gen}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.segs[k]
	if g == nil {
		return nil, fmt.Errorf("spool: no segment %s", spoolSegmentName(k))
	}
	return g, nil
}

// replayChunk is the size of the buffers Replay cuts records from.
const replayChunk = 1 << 20

// Replay calls fn with each acknowledged record of segment w, in append order, and stops at the
// first error fn returns. rec is fn's to keep. A replay of a segment that is not sealed sees the
// records acknowledged when it started.
func (s *Spool) Replay(w SpoolWindow, fn func(rec []byte) error) error {
	g, err := s.lookup(w)
	if err != nil {
		return err
	}
	limit := g.durable()
	f, err := os.Open(g.path)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.LimitReader(f, limit), 256<<10)
	var hdr [spoolFrameHeader]byte
	var chunk []byte
	for off := int64(0); off < limit; {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("spool: %s at offset %d: %w", g.path, off, err)
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if n > MaxSpoolRecord {
			return spoolCorruptAt(g.path, off, fmt.Sprintf("length %d exceeds the maximum record size", n))
		}
		// Records are cut from shared chunks: one allocation per few thousand records, and a
		// kept record pins at most its chunk.
		if cap(chunk)-len(chunk) < int(n) {
			chunk = make([]byte, 0, max(int(n), replayChunk))
		}
		rec := chunk[len(chunk) : len(chunk)+int(n) : len(chunk)+int(n)]
		chunk = chunk[:len(chunk)+int(n)]
		if _, err := io.ReadFull(r, rec); err != nil {
			return fmt.Errorf("spool: %s at offset %d: %w", g.path, off, err)
		}
		if spoolFrameCRC(hdr[:4], rec) != binary.LittleEndian.Uint32(hdr[4:]) {
			return spoolCorruptAt(g.path, off, "checksum mismatch")
		}
		if err := fn(rec); err != nil {
			return err
		}
		off += spoolFrameHeader + int64(n)
	}
	return nil
}

// Drop deletes sealed segment w, once its parts are safely in the store. Dropping a segment that
// is already gone is not an error.
func (s *Spool) Drop(w SpoolWindow) error {
	k := spoolSegKey{start: w.Start.Unix(), late: w.Late, gen: w.Gen}
	s.mu.Lock()
	g := s.segs[k]
	if g == nil {
		s.mu.Unlock()
		return nil
	}
	if !g.sealed {
		s.mu.Unlock()
		return fmt.Errorf("spool: drop %s: the segment still takes appends (close its window first)", g.path)
	}
	s.mu.Unlock()
	g.inflight.Wait()
	cerr := g.closeFile()
	if err := os.Remove(g.path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("spool: %w", err)
	}
	s.mu.Lock()
	if s.segs[k] == g {
		delete(s.segs, k)
		s.bytes -= g.bytes
	}
	s.mu.Unlock()
	// The removal is not synced: should a crash lose it, the segment comes back sealed, is
	// uploaded again under the same part name, and dropped again. That is harmless, and it is
	// what a crash between the upload and the removal does anyway.
	return cerr
}

// Bytes is the size of the spooled records, including batches being written.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Close waits for appends in progress and closes the segment files. Records stay on disk for
// the next OpenSpool.
func (s *Spool) Close() error {
	s.mu.Lock()
	s.shut = true
	segs := make([]*spoolSegment, 0, len(s.segs))
	for _, g := range s.segs {
		segs = append(segs, g)
	}
	s.mu.Unlock()
	var errs []error
	for _, g := range segs {
		g.inflight.Wait()
		errs = append(errs, g.closeFile())
	}
	return errors.Join(errs...)
}
