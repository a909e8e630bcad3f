package collect

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kairn-dev/kairn/internal/atomicfile"
)

// TailOptions configure an audit log tail.
type TailOptions struct {
	Path    string // the apiserver's --audit-log-path (JSON lines)
	Cluster string
	// Checkpoint is the file holding the resume point. It is written atomically (temp file,
	// fsync, rename, fsync of the directory) after each successful Commit. Its directory must exist.
	Checkpoint string
	Poll       time.Duration // default 250ms: how often to look for new data and for rotation
	BatchLines int           // default 1000: lines per Commit at most
	Logger     *slog.Logger  // default slog.Default()
}

const (
	tailDefaultPoll       = 250 * time.Millisecond
	tailDefaultBatchLines = 1000
	// A batch also ends after this many bytes, so that BatchLines long lines (full request and
	// response bodies) do not pile up in memory.
	tailBatchBytes = 32 << 20
	// Commit retries back off from Poll up to this.
	tailMaxBackoff = 10 * time.Second
	// The fingerprint covers a file's first line, or its first tailFingerprintMax bytes when
	// that line is longer: enough to tell two audit logs apart (auditID and timestamps), and
	// written once, so it stays the same while the file grows.
	tailFingerprintMax = 1024
)

// errTailStopped ends a Run whose context is done, once what was read has been committed.
var errTailStopped = errors.New("audit log tail stopped")

// Tail follows the audit log kube-apiserver writes with --audit-log-path.
//
// It reads complete lines only, commits them in batches, and moves its checkpoint only after
// Commit returned nil, so a line is never skipped: after a failed Commit the same lines are
// retried. The checkpoint names the file by device and inode and by a fingerprint of its first
// line, with the offset and number of the next unread line, which makes a restart resume exactly
// where the last acknowledged batch ended.
//
// Rotation is found by polling, with no inotify dependency:
//   - rename (lumberjack, as kube-apiserver does, or logrotate's create): when Path names another
//     file, the old one, still open, is read to its end, and the tail switches to the new file
//     once the old one has not grown for one poll. After a restart, the file the checkpoint names
//     is looked for by inode in Path's directory and read to its end first.
//   - copytruncate (logrotate): when the file is shorter than the offset, or its first line
//     changed, the rest of what was read is looked for in a file in the same directory with the
//     same fingerprint (the copy, say audit.log.1), read from the offset on, and then the live
//     file is read from its start.
//
// What can still be lost or read twice:
//   - copytruncate's own race: lines the apiserver writes after logrotate copied the file and
//     before it truncated it are in neither file. No reader can get them back.
//   - a rotated file or copy that is no longer in Path's directory when it is needed (deleted by
//     --audit-log-maxbackup, compressed at once: use logrotate's delaycompress; moved with
//     olddir): the lines of it not read yet are lost, with a warning.
//   - lines a writer still appends to a renamed file after it has not grown for a whole poll (a
//     writer that reopens that late) are not read.
//   - more than one rotation between two polls, or while the tail is stopped: only the file the
//     checkpoint names and the current one are read, the files in between are not. Likewise a
//     copytruncate before the tail saw the first line of the current file cannot be detected.
//   - a line is read twice only if the process dies between Commit returning and the checkpoint
//     rename; the duplicates are removed downstream by observation id.
//
// On the first start, without a checkpoint, the tail reads Path from its beginning. Files are
// identified by syscall.Stat_t, so the tail builds on Unix only. One checkpoint serves one Run at
// a time.
type Tail struct {
	o   TailOptions
	abs string // Path made absolute, as the checkpoint records it
	dir string // where rotated files and copies are looked for
	log *slog.Logger
}

// NewTail checks the options and fills in the defaults.
func NewTail(o TailOptions) (*Tail, error) {
	if o.Path == "" {
		return nil, errors.New("audit log tail: no log path")
	}
	if o.Checkpoint == "" {
		return nil, errors.New("audit log tail: no checkpoint file: without one a restart would read the log again from its start")
	}
	if o.Poll < 0 || o.BatchLines < 0 {
		return nil, fmt.Errorf("audit log tail: negative poll interval (%v) or batch size (%d)", o.Poll, o.BatchLines)
	}
	if o.Poll == 0 {
		o.Poll = tailDefaultPoll
	}
	if o.BatchLines == 0 {
		o.BatchLines = tailDefaultBatchLines
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Dir(o.Checkpoint)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("audit log tail: checkpoint directory %s does not exist", filepath.Dir(o.Checkpoint))
	}
	return &Tail{o: o, abs: abs, dir: filepath.Dir(abs), log: o.Logger.With("source", "audit-log-tail", "log", o.Path)}, nil
}

func (t *Tail) Name() string { return "audit-log-tail" }

// tailFile is one open file of the log and how far it has been read.
type tailFile struct {
	f        *os.File
	path     string // the name it was last seen under, for reports
	dev, ino uint64
	fp       string // hex sha256 of the first fpLen bytes; empty until the first line is written
	fpLen    int64
	off      int64 // offset of the next unread line
	line     int   // number of the next unread line
	// rotated: Path no longer names this file (or it is a copytruncate copy). It is read to its
	// end, and the tail moves on once it stopped growing: lastSize is its size at the last poll.
	rotated  bool
	lastSize int64
}

func (c *tailFile) close() {
	if c != nil {
		c.f.Close()
	}
}

// reset starts the file over: it was truncated in place.
func (c *tailFile) reset() {
	c.off, c.line, c.fp, c.fpLen, c.rotated = 0, 1, "", 0, false
}

// tailState is what one Run follows: the file being read and, after a rename, the file now at
// Path, opened when the rename was seen so that it is not missed if Path rotates again.
type tailState struct {
	cur, next *tailFile
	dirty     bool // the checkpoint is behind cur
}

func (st *tailState) close() {
	st.cur.close()
	st.next.close()
}

// tailCheckpoint is the resume point, as JSON.
type tailCheckpoint struct {
	Log            string `json:"log"`  // TailOptions.Path, absolute
	File           string `json:"file"` // the file being read, by the name last seen
	Dev            uint64 `json:"dev"`
	Ino            uint64 `json:"ino"`
	Fingerprint    string `json:"fingerprint,omitempty"` // hex sha256 of the first FingerprintLen bytes
	FingerprintLen int64  `json:"fingerprintLen,omitempty"`
	Offset         int64  `json:"offset"` // of the next unread line
	Line           int    `json:"line"`   // its number
}

// Run follows the log until ctx is done. What was read is committed before it returns nil.
func (t *Tail) Run(ctx context.Context, out Spooler) error {
	st := &tailState{}
	defer st.close()
	if err := t.resume(st); err != nil {
		return err
	}
	tick := time.NewTicker(t.o.Poll)
	defer tick.Stop()
	for {
		err := t.poll(ctx, out, st)
		if st.dirty {
			t.save(st)
		}
		if errors.Is(err, errTailStopped) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// resume opens the file the checkpoint names, or Path when there is none.
func (t *Tail) resume(st *tailState) error {
	cp, err := t.load()
	if err != nil {
		return err
	}
	live, err := openTailFile(t.o.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if cp == nil {
		st.cur, st.dirty = live, live != nil
		return nil
	}
	if live != nil && live.dev == cp.Dev && live.ino == cp.Ino {
		live.fp, live.fpLen = cp.Fingerprint, cp.FingerprintLen
		ok, err := t.intact(st, live, cp.Offset)
		if err != nil {
			live.close()
			return err
		}
		live.off, live.line, st.cur = cp.Offset, cp.Line, live
		if ok {
			return nil
		}
		// Truncated in place while the tail was stopped.
		return t.truncated(st)
	}
	// Path names another file now (or none): the one we were reading was rotated away while the
	// tail was stopped. Finish it first.
	old, err := t.find(tailKey{dev: cp.Dev, ino: cp.Ino, fp: cp.Fingerprint, fpLen: cp.FingerprintLen}, true, cp.Offset, live)
	if err != nil {
		live.close()
		return err
	}
	if old == nil {
		t.log.Warn("the file the checkpoint points to is no longer in the log's directory: lines after the checkpoint that were not read from it are lost",
			"file", cp.File, "line", cp.Line, "dir", t.dir)
		st.cur, st.dirty = live, live != nil
		return nil
	}
	old.off, old.line, old.rotated, old.lastSize = cp.Offset, cp.Line, true, -1
	t.log.Info("audit log was rotated while the tail was stopped: reading the rest of the old file first", "file", old.path, "line", old.line)
	st.cur, st.next = old, live
	return nil
}

func (t *Tail) load() (*tailCheckpoint, error) {
	data, err := os.ReadFile(t.o.Checkpoint)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp tailCheckpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("%s: bad audit log checkpoint (%v); remove it to read %s from its start", t.o.Checkpoint, err, t.o.Path)
	}
	if cp.Log != t.abs {
		return nil, fmt.Errorf("%s: checkpoint is for %s, not %s", t.o.Checkpoint, cp.Log, t.abs)
	}
	return &cp, nil
}

// save writes the checkpoint. A failure is logged and retried at the next chance: the offset in
// memory is right, and a checkpoint left behind only means lines read twice after a restart.
func (t *Tail) save(st *tailState) {
	c := st.cur
	if c == nil {
		return
	}
	data, err := json.Marshal(tailCheckpoint{
		Log: t.abs, File: c.path, Dev: c.dev, Ino: c.ino, Fingerprint: c.fp, FingerprintLen: c.fpLen,
		Offset: c.off, Line: c.line,
	})
	if err == nil {
		err = atomicfile.WriteFile(t.o.Checkpoint, data)
	}
	if err != nil {
		t.log.Error("cannot write the checkpoint; will retry", "checkpoint", t.o.Checkpoint, "err", err)
		st.dirty = true
		return
	}
	st.dirty = false
}

// poll reads what is new and looks for rotation.
func (t *Tail) poll(ctx context.Context, out Spooler, st *tailState) error {
	if st.cur == nil {
		c, err := openTailFile(t.o.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // not written yet
		}
		if err != nil {
			return err
		}
		st.cur, st.dirty = c, true
	}
	if !st.cur.rotated {
		ok, err := t.intact(st, st.cur, st.cur.off)
		if err != nil {
			return err
		}
		if !ok {
			if err := t.truncated(st); err != nil {
				return err
			}
		}
	}
	if err := t.drain(ctx, out, st, false); err != nil {
		return err
	}
	c := st.cur
	if !c.rotated {
		return t.checkRotated(st)
	}
	fi, err := c.f.Stat()
	if err != nil {
		return err
	}
	// The writer may still hold the renamed file (logrotate's create, before the apiserver
	// reopens): move on only once it stopped growing.
	if fi.Size() != c.lastSize {
		c.lastSize = fi.Size()
		return nil
	}
	return t.finishRotated(ctx, out, st)
}

// drain reads and commits the complete lines of the current file up to its end. With final, a
// last line without its newline counts too.
func (t *Tail) drain(ctx context.Context, out Spooler, st *tailState, final bool) error {
	for {
		if ctx.Err() != nil {
			return errTailStopped
		}
		c := st.cur
		lines, end, err := tailReadLines(c, t.o.BatchLines, final)
		if err != nil {
			return fmt.Errorf("%s: %w", c.path, err)
		}
		if len(lines) == 0 {
			return nil
		}
		if !c.rotated {
			// A truncation between the check and the read would have handed us the middle of
			// the new content: only lines the file still holds are used.
			ok, err := t.intact(st, c, end)
			if err != nil {
				return err
			}
			if !ok {
				if err := t.truncated(st); err != nil {
					return err
				}
				continue
			}
		}
		if err := t.commit(ctx, out, c, lines); err != nil {
			return err
		}
		c.off, c.line = end, lines[len(lines)-1].no+1
		st.dirty = true
		t.save(st)
	}
}

// commit decodes lines into a batch and commits it, retrying with backoff until it succeeds:
// nothing is skipped. When ctx is done it tries once more, then gives up without acknowledging.
func (t *Tail) commit(ctx context.Context, out Spooler, c *tailFile, lines []tailLine) error {
	backoff := t.o.Poll
	stopping := false
	for attempt := 1; ; attempt++ {
		b := out.NewBatch()
		in := &auditReader{input{file: c.path, cluster: t.o.Cluster, sink: b}}
		for _, l := range lines {
			switch {
			case l.tooLong:
				in.malformed(l.no, fmt.Sprintf("line longer than %d bytes", maxValueBytes), nil)
			case len(l.raw) > 0:
				in.value(l.no, l.raw)
			}
		}
		err := b.Commit()
		if err == nil {
			return nil
		}
		first, last := lines[0].no, lines[len(lines)-1].no
		if stopping {
			t.log.Warn("commit failed while stopping: the lines stay unacknowledged and are read again on restart",
				"file", c.path, "lines", fmt.Sprintf("%d-%d", first, last), "err", err)
			return errTailStopped
		}
		t.log.Warn("commit failed; retrying the same lines", "file", c.path, "lines", fmt.Sprintf("%d-%d", first, last),
			"attempt", attempt, "retry_in", backoff, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			stopping = true
		case <-timer.C:
		}
		backoff = min(2*backoff, tailMaxBackoff)
	}
}

// intact reports whether c still holds what was read up to end: it is not shorter, and it
// starts with the same first line. It fingerprints c once its first line is written.
func (t *Tail) intact(st *tailState, c *tailFile, end int64) (bool, error) {
	fi, err := c.f.Stat()
	if err != nil {
		return false, err
	}
	if fi.Size() < end {
		return false, nil
	}
	if c.fpLen == 0 {
		fp, n, err := tailFingerprint(c.f)
		if err != nil {
			return false, err
		}
		if n > 0 {
			c.fp, c.fpLen, st.dirty = fp, n, true
		}
		return true, nil
	}
	return tailMatches(c.f, c.fp, c.fpLen)
}

// truncated handles a copytruncate of the current file: what was not read yet is in the copy,
// if it is still around; then the file is read again from its start.
func (t *Tail) truncated(st *tailState) error {
	c := st.cur
	t.log.Info("audit log was truncated in place (copytruncate)", "file", c.path, "line", c.line)
	if c.fpLen > 0 {
		cp, err := t.find(tailKey{fp: c.fp, fpLen: c.fpLen}, false, c.off, c)
		if err != nil {
			return err
		}
		var size int64
		if cp != nil {
			if fi, err := cp.f.Stat(); err == nil {
				size = fi.Size()
			}
		}
		switch {
		case cp == nil && c.off > 0:
			t.log.Warn("no copy of the truncated audit log found: lines written after the checkpoint and before the truncation, if any, are lost",
				"file", c.path, "line", c.line, "dir", t.dir)
		case cp != nil && size > c.off:
			t.log.Info("reading the rest of the truncated audit log from its copy", "copy", cp.path, "line", c.line)
			cp.off, cp.line, cp.rotated, cp.lastSize = c.off, c.line, true, -1
			c.reset()
			st.cur, st.next, st.dirty = cp, c, true
			return nil
		default:
			cp.close() // everything in it was read already
		}
	}
	c.reset()
	st.dirty = true
	return nil
}

// checkRotated looks whether Path still names the current file.
func (t *Tail) checkRotated(st *tailState) error {
	c := st.cur
	fi, err := os.Stat(t.o.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Renamed or removed, and nothing in its place yet.
	case err != nil:
		return err
	default:
		if dev, ino := tailFileID(fi); dev == c.dev && ino == c.ino {
			return nil
		}
		next, err := openTailFile(t.o.Path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if next != nil && next.dev == c.dev && next.ino == c.ino {
			next.close() // renamed back in between
			return nil
		}
		st.next = next
	}
	cfi, err := c.f.Stat()
	if err != nil {
		return err
	}
	c.rotated, c.lastSize = true, cfi.Size()
	if p := t.nameOf(c); p != "" {
		c.path = p
	}
	t.log.Info("audit log rotated: reading the old file to its end", "file", c.path, "line", c.line)
	return nil
}

// finishRotated reads the last of a rotated file and moves on to the file at Path.
func (t *Tail) finishRotated(ctx context.Context, out Spooler, st *tailState) error {
	// The file does not grow any more: a last line without its newline is all of it there is.
	if err := t.drain(ctx, out, st, true); err != nil {
		return err
	}
	c, next := st.cur, st.next
	if next == nil {
		n, err := openTailFile(t.o.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // wait for the new file
		}
		if err != nil {
			return err
		}
		next = n
	}
	if next.dev == c.dev && next.ino == c.ino {
		next.close()
		c.rotated, st.next = false, nil
		return nil
	}
	t.log.Info("switching to the new audit log", "from", c.path, "lines", c.line-1)
	c.close()
	st.cur, st.next = next, nil
	if _, err := t.intact(st, next, 0); err != nil { // fingerprint it if its first line is there
		return err
	}
	st.dirty = true
	t.save(st)
	return nil
}

// tailKey is what identifies a file: device and inode, and the fingerprint of its first line.
type tailKey struct {
	dev, ino uint64
	fp       string
	fpLen    int64
}

// find looks in the log's directory for a file of at least minSize bytes: with byInode, the one
// with k's device and inode (and fingerprint, against a reused inode), else the longest with k's
// fingerprint, which is how a copytruncate copy is found. skip (the live file) is left out.
func (t *Tail) find(k tailKey, byInode bool, minSize int64, skip *tailFile) (*tailFile, error) {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return nil, err
	}
	var (
		best     *tailFile
		bestSize int64
		bestIno  bool
	)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() < minSize {
			continue // gone meanwhile, or too short to hold what we read
		}
		dev, ino := tailFileID(fi)
		if skip != nil && dev == skip.dev && ino == skip.ino {
			continue
		}
		sameIno := byInode && dev == k.dev && ino == k.ino
		if !sameIno && (k.fpLen == 0 || bestIno) {
			continue
		}
		c, err := openTailFile(filepath.Join(t.dir, e.Name()))
		if err != nil {
			continue
		}
		if c.dev != dev || c.ino != ino {
			c.close() // replaced between the listing and the open
			continue
		}
		if k.fpLen > 0 {
			if ok, err := tailMatches(c.f, k.fp, k.fpLen); err != nil || !ok {
				c.close()
				continue
			}
		}
		c.fp, c.fpLen = k.fp, k.fpLen
		if sameIno || best == nil || fi.Size() > bestSize {
			best.close()
			best, bestSize, bestIno = c, fi.Size(), sameIno
			continue
		}
		c.close()
	}
	return best, nil
}

// nameOf finds the name a renamed file has now, to report its lines by it.
func (t *Tail) nameOf(c *tailFile) string {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			if dev, ino := tailFileID(fi); dev == c.dev && ino == c.ino {
				return filepath.Join(t.dir, e.Name())
			}
		}
	}
	return ""
}

func openTailFile(path string) (*tailFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	dev, ino := tailFileID(fi)
	return &tailFile{f: f, path: path, dev: dev, ino: ino, line: 1}, nil
}

func tailFileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// tailFingerprint hashes f's first line, or its first tailFingerprintMax bytes when the line is
// longer. n is 0 while that much is not written yet.
func tailFingerprint(f *os.File) (fp string, n int64, err error) {
	buf := make([]byte, tailFingerprintMax)
	m, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return "", 0, err
	}
	buf = buf[:m]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	} else if m < tailFingerprintMax {
		return "", 0, nil
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]), int64(len(buf)), nil
}

// tailMatches reports whether f's first n bytes hash to fp.
func tailMatches(f *os.File, fp string, n int64) (bool, error) {
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, err
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:]) == fp, nil
}

// tailLine is one line read from the log.
type tailLine struct {
	no      int
	raw     []byte // without its line end
	tooLong bool   // longer than maxValueBytes: reported, not kept
}

// tailReadLines reads the lines of c from its offset on, at most maxLines of them and about
// tailBatchBytes, and returns the offset after the last. A line without its newline is left for
// the next poll, unless final.
func tailReadLines(c *tailFile, maxLines int, final bool) ([]tailLine, int64, error) {
	fi, err := c.f.Stat()
	if err != nil {
		return nil, c.off, err
	}
	if fi.Size() <= c.off {
		return nil, c.off, nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(c.f, c.off, fi.Size()-c.off), 64<<10)
	var lines []tailLine
	end := c.off
	for len(lines) < maxLines && end-c.off < tailBatchBytes {
		line, n, complete, tooLong, err := tailReadLine(r)
		if err != nil {
			return nil, c.off, err
		}
		if n == 0 || (!complete && !final) {
			break
		}
		lines = append(lines, tailLine{no: c.line + len(lines), raw: bytes.TrimSpace(line), tooLong: tooLong})
		end += n
	}
	return lines, end, nil
}

// tailReadLine reads up to and including the next newline; n counts all its bytes.
func tailReadLine(r *bufio.Reader) (line []byte, n int64, complete, tooLong bool, err error) {
	for {
		frag, err := r.ReadSlice('\n')
		n += int64(len(frag))
		if !tooLong {
			if len(line)+len(frag) > maxValueBytes+2 { // +2: the line end
				line, tooLong = nil, true
			} else {
				line = append(line, frag...)
			}
		}
		switch err {
		case nil:
			return line, n, true, tooLong, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			return line, n, false, tooLong, nil
		default:
			return nil, n, false, false, err
		}
	}
}
