package archive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

var testWindow = time.Date(2026, 11, 24, 5, 30, 0, 0, time.UTC)

func openTestSpool(t *testing.T, opts SpoolOptions) *Spool {
	t.Helper()
	s, err := OpenSpool(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendStrings(t *testing.T, s *Spool, w time.Time, late bool, recs ...string) {
	t.Helper()
	var b [][]byte
	for _, r := range recs {
		b = append(b, []byte(r))
	}
	if err := s.AppendBatch(w, late, b); err != nil {
		t.Fatal(err)
	}
}

func replayStrings(t *testing.T, s *Spool, w SpoolWindow) []string {
	t.Helper()
	out := []string{}
	if err := s.Replay(w, func(rec []byte) error { out = append(out, string(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func frameSize(recs ...string) int64 {
	var n int64
	for _, r := range recs {
		n += spoolFrameHeader + int64(len(r))
	}
	return n
}

// windowsSummary renders Windows() as "20261124T0530 n=3 sealed", "20261124T0530 late-1 n=1", …
func windowsSummary(ws []SpoolWindow) []string {
	out := []string{}
	for _, w := range ws {
		s := WindowKey(w.Start)
		if w.Late {
			s += fmt.Sprintf(" late-%d", w.Gen)
		}
		s += fmt.Sprintf(" n=%d", w.Records)
		if w.Sealed {
			s += " sealed"
		}
		out = append(out, s)
	}
	return out
}

func wantWindows(t *testing.T, s *Spool, want ...string) []SpoolWindow {
	t.Helper()
	ws := s.Windows()
	if got := windowsSummary(ws); !slices.Equal(got, want) {
		t.Fatalf("Windows() = %q, want %q", got, want)
	}
	return ws
}

func TestSpoolAppendReplayReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpool(t, SpoolOptions{Dir: dir})
	w1, w2 := testWindow, testWindow.Add(30*time.Minute)
	appendStrings(t, s, w2, false, "c")
	appendStrings(t, s, w1, false, "a", "b")
	appendStrings(t, s, w1, true, "x")
	appendStrings(t, s, w1, false, "") // an empty record is a record
	ws := wantWindows(t, s, "20261124T0530 n=3", "20261124T0530 late-1 n=1", "20261124T0600 n=1")
	if ws[0].Bytes != frameSize("a", "b", "") || s.Bytes() != frameSize("a", "b", "", "x", "c") {
		t.Errorf("bytes: window %d, spool %d", ws[0].Bytes, s.Bytes())
	}
	for _, name := range []string{"w-20261124T0530.spool", "w-20261124T0530-late-1.spool", "w-20261124T0600.spool"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	check := func(s *Spool, ws []SpoolWindow) {
		t.Helper()
		for i, want := range [][]string{{"a", "b", ""}, {"x"}, {"c"}} {
			if got := replayStrings(t, s, ws[i]); !slices.Equal(got, want) {
				t.Errorf("Replay(%v) = %q, want %q", ws[i], got, want)
			}
		}
	}
	check(s, ws)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendBatch(w1, false, [][]byte{[]byte("after close")}); err == nil {
		t.Error("AppendBatch after Close succeeded")
	}

	// After a restart the late segment is sealed (it may have been uploaded already), so late
	// records start a new generation; the open window's own segment takes appends again.
	s = openTestSpool(t, SpoolOptions{Dir: dir})
	ws = wantWindows(t, s, "20261124T0530 n=3", "20261124T0530 late-1 n=1 sealed", "20261124T0600 n=1")
	check(s, ws)
	if s.Bytes() != frameSize("a", "b", "", "x", "c") {
		t.Errorf("Bytes() after reopen = %d", s.Bytes())
	}
	appendStrings(t, s, w1, true, "y")
	appendStrings(t, s, w2, false, "d")
	ws = wantWindows(t, s, "20261124T0530 n=3", "20261124T0530 late-1 n=1 sealed", "20261124T0530 late-2 n=1", "20261124T0600 n=2")
	if got := replayStrings(t, s, ws[3]); !slices.Equal(got, []string{"c", "d"}) {
		t.Errorf("reopened segment = %q", got)
	}

	if err := s.AppendBatch(w1.Add(time.Second), false, [][]byte{[]byte("r")}); err == nil {
		t.Error("a window start that is not a whole minute was accepted")
	}
	if err := s.AppendBatch(w1, false, [][]byte{make([]byte, MaxSpoolRecord+1)}); err == nil {
		t.Error("an oversized record was accepted")
	}
}

// writeSegment writes a spool directory holding one segment of recs and returns the path and
// the offset of every record.
func writeSegment(t *testing.T, recs ...string) (dir, path string, offsets []int64, data []byte) {
	t.Helper()
	dir = t.TempDir()
	s, err := OpenSpool(SpoolOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		offsets = append(offsets, frameSize(recs[:i]...))
		appendStrings(t, s, testWindow, false, r)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "w-20261124T0530.spool")
	if data, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return dir, path, offsets, data
}

func TestSpoolTornTail(t *testing.T) {
	recs := []string{"first", "second record", "third", "the last record, torn by kill -9"}
	_, _, offsets, data := writeSegment(t, recs...)
	last := offsets[len(offsets)-1]
	if int64(len(data)) != frameSize(recs...) {
		t.Fatalf("segment is %d bytes, want %d", len(data), frameSize(recs...))
	}
	// Cut the file at every byte of its last record: the earlier records survive, the torn one
	// goes, and the spool takes appends after them.
	for cut := last; cut <= int64(len(data)); cut++ {
		want := recs[:len(recs)-1]
		if cut == int64(len(data)) {
			want = recs
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "w-20261124T0530.spool")
		if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSpool(SpoolOptions{Dir: dir})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		ws := s.Windows()
		if len(ws) != 1 || ws[0].Records != len(want) {
			t.Fatalf("cut at %d: Windows() = %+v", cut, ws)
		}
		if got := replayStrings(t, s, ws[0]); !slices.Equal(got, want) {
			t.Fatalf("cut at %d: replay = %q, want %q", cut, got, want)
		}
		if st, _ := os.Stat(path); st.Size() != frameSize(want...) || s.Bytes() != frameSize(want...) {
			t.Fatalf("cut at %d: file is %d bytes, spool counts %d, want %d", cut, st.Size(), s.Bytes(), frameSize(want...))
		}
		appendStrings(t, s, testWindow, false, "after restart")
		s.Close()
		s = openTestSpool(t, SpoolOptions{Dir: dir})
		if got := replayStrings(t, s, s.Windows()[0]); !slices.Equal(got, append(slices.Clone(want), "after restart")) {
			t.Fatalf("cut at %d: after append and reopen: %q", cut, got)
		}
		s.Close()
	}

	// A zero-filled tail (left by some filesystems after a power loss) is a torn tail too.
	dir := t.TempDir()
	path := filepath.Join(dir, "w-20261124T0530.spool")
	if err := os.WriteFile(path, append(slices.Clone(data), make([]byte, 5000)...), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openTestSpool(t, SpoolOptions{Dir: dir})
	if got := replayStrings(t, s, s.Windows()[0]); !slices.Equal(got, recs) {
		t.Errorf("zero tail: %q", got)
	}
	if st, _ := os.Stat(path); st.Size() != int64(len(data)) {
		t.Errorf("zero tail not cut: %d bytes", st.Size())
	}

	// A segment whose only write was torn holds nothing and is removed.
	dir = t.TempDir()
	path = filepath.Join(dir, "w-20261124T0530.spool")
	if err := os.WriteFile(path, data[:5], 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, SpoolOptions{Dir: dir})
	if ws := s.Windows(); len(ws) != 0 {
		t.Errorf("empty segment kept: %+v", ws)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("empty segment file: %v", err)
	}
}

// Corruption before the end of a segment is not a torn write: OpenSpool must refuse, name the
// file and offset, and leave the file as it was, so no record that validates is ever dropped.
func TestSpoolCorrupt(t *testing.T) {
	recs := []string{"zero", "one", "two, to be damaged", "three", "four"}
	_, _, offsets, data := writeSegment(t, recs...)
	for _, tc := range []struct {
		name   string
		damage func(b []byte)
		why    string
	}{
		{"payload byte", func(b []byte) { b[offsets[2]+spoolFrameHeader+3] ^= 0x40 }, "checksum mismatch"},
		{"checksum", func(b []byte) { b[offsets[2]+5] ^= 1 }, "checksum mismatch"},
		{"huge length", func(b []byte) { binary.LittleEndian.PutUint32(b[offsets[2]:], MaxSpoolRecord+1) }, "exceeds the maximum"},
		{"length past the end", func(b []byte) { binary.LittleEndian.PutUint32(b[offsets[2]:], uint32(len(b))) }, "valid records follow"},
		{"last record's checksum", func(b []byte) { b[offsets[4]+4] ^= 1 }, "checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off := offsets[2]
			if strings.HasPrefix(tc.name, "last") {
				off = offsets[4]
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "w-20261124T0530.spool")
			bad := slices.Clone(data)
			tc.damage(bad)
			if err := os.WriteFile(path, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := OpenSpool(SpoolOptions{Dir: dir})
			if !errors.Is(err, ErrSpoolCorrupt) {
				t.Fatalf("OpenSpool: %v, want ErrSpoolCorrupt", err)
			}
			for _, want := range []string{path, fmt.Sprintf("offset %d", off), tc.why} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
				t.Error("the corrupt segment was modified")
			}
		})
	}

	// Damage after opening is caught by Replay.
	dir, path, _, _ := writeSegment(t, recs...)
	s := openTestSpool(t, SpoolOptions{Dir: dir})
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'X'}, offsets[1]+spoolFrameHeader); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = s.Replay(s.Windows()[0], func([]byte) error { return nil })
	if !errors.Is(err, ErrSpoolCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", offsets[1])) {
		t.Errorf("Replay of a damaged segment: %v", err)
	}
}

func TestSpoolFull(t *testing.T) {
	dir := t.TempDir()
	rec := strings.Repeat("r", 20) // 28 bytes framed
	s := openTestSpool(t, SpoolOptions{Dir: dir, MaxBytes: 100})
	for i := 0; i < 3; i++ {
		appendStrings(t, s, testWindow, false, rec)
	}
	// 84 of 100 bytes are used: none of these fit. A batch is all or nothing, and the bound is
	// for the whole spool, not per window.
	for _, b := range []struct {
		w    time.Time
		recs []string
	}{
		{testWindow, []string{rec}},
		{testWindow.Add(time.Hour), []string{rec}},
		{testWindow, []string{"1", rec}},
	} {
		var recs [][]byte
		for _, r := range b.recs {
			recs = append(recs, []byte(r))
		}
		if err := s.AppendBatch(b.w, false, recs); !errors.Is(err, ErrSpoolFull) {
			t.Fatalf("AppendBatch(%s, %q) at the bound: %v, want ErrSpoolFull", WindowKey(b.w), b.recs, err)
		}
	}
	if s.Bytes() != 84 {
		t.Errorf("Bytes() = %d after refused batches, want 84", s.Bytes())
	}
	ws := wantWindows(t, s, "20261124T0530 n=3")
	if got := replayStrings(t, s, ws[0]); len(got) != 3 {
		t.Errorf("replay after refusals: %q", got)
	}

	// Reopening with a bound below what is spooled keeps everything and refuses new batches.
	s.Close()
	s = openTestSpool(t, SpoolOptions{Dir: dir, MaxBytes: 50})
	wantWindows(t, s, "20261124T0530 n=3")
	if err := s.AppendBatch(testWindow, false, [][]byte{[]byte("x")}); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("over the bound after reopen: %v", err)
	}
	// Once a window is flushed and dropped, there is room again.
	segs, err := s.CloseWindows(testWindow)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Drop(segs[0]); err != nil {
		t.Fatal(err)
	}
	if s.Bytes() != 0 {
		t.Errorf("Bytes() after drop = %d", s.Bytes())
	}
	appendStrings(t, s, testWindow.Add(time.Hour), false, rec)
}

func TestSpoolClosedWindows(t *testing.T) {
	dir := t.TempDir()
	w1, w2 := testWindow, testWindow.Add(time.Minute)
	s := openTestSpool(t, SpoolOptions{Dir: dir})
	appendStrings(t, s, w1, false, "a")
	appendStrings(t, s, w2, false, "open")
	segs, err := s.CloseWindows(w1)
	if err != nil {
		t.Fatal(err)
	}
	if got := windowsSummary(segs); !slices.Equal(got, []string{"20261124T0530 n=1 sealed"}) {
		t.Fatalf("CloseWindows = %q", got)
	}
	if !s.Closed(w1) || s.Closed(w2) {
		t.Errorf("Closed: w1 %v, w2 %v", s.Closed(w1), s.Closed(w2))
	}
	// A batch for a closed window goes to its late segment, whatever the caller says.
	appendStrings(t, s, w1, false, "b")
	ws := wantWindows(t, s, "20261124T0530 n=1 sealed", "20261124T0530 late-1 n=1", "20261124T0531 n=1")
	if err := s.Drop(ws[1]); err == nil {
		t.Error("Drop of a segment that still takes appends succeeded")
	}
	// Closing again seals the late segment; the next late batch starts generation 2.
	segs, err = s.CloseWindows(w1)
	if err != nil {
		t.Fatal(err)
	}
	if got := windowsSummary(segs); !slices.Equal(got, []string{"20261124T0530 n=1 sealed", "20261124T0530 late-1 n=1 sealed"}) {
		t.Fatalf("second CloseWindows = %q", got)
	}
	appendStrings(t, s, w1, false, "c")
	if err := s.Drop(segs[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Drop(segs[0]); err != nil {
		t.Errorf("second Drop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "w-20261124T0530.spool")); !os.IsNotExist(err) {
		t.Errorf("dropped segment still there: %v", err)
	}
	s.Close()
	if data, err := os.ReadFile(filepath.Join(dir, spoolClosedFile)); err != nil || string(data) != "20261124T0530\n" {
		t.Errorf("closed file = %q, %v", data, err)
	}

	// An interrupted rewrite of the closed file leaves a temporary file: ignored and removed.
	if err := os.WriteFile(filepath.Join(dir, spoolClosedFile+".tmp"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, SpoolOptions{Dir: dir})
	if !s.Closed(w1) || s.Closed(w2) {
		t.Errorf("after restart: Closed w1 %v, w2 %v", s.Closed(w1), s.Closed(w2))
	}
	if _, err := os.Stat(filepath.Join(dir, spoolClosedFile+".tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary closed file kept: %v", err)
	}
	appendStrings(t, s, w1, false, "d") // still late after a restart, in a new generation
	appendStrings(t, s, w2, false, "more")
	wantWindows(t, s, "20261124T0530 late-1 n=1 sealed", "20261124T0530 late-2 n=1 sealed", "20261124T0530 late-3 n=1", "20261124T0531 n=2")

	// Several windows close in one call (given out of order, one twice): every segment of each,
	// sorted by window, and all of them closed for good.
	w3 := testWindow.Add(2 * time.Minute)
	appendStrings(t, s, w3, false, "x", "y")
	segs, err = s.CloseWindows(w3, w2, w1, w3)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"20261124T0530 late-1 n=1 sealed", "20261124T0530 late-2 n=1 sealed", "20261124T0530 late-3 n=1 sealed",
		"20261124T0531 n=2 sealed", "20261124T0532 n=2 sealed"}
	if got := windowsSummary(segs); !slices.Equal(got, want) {
		t.Fatalf("CloseWindows of three windows = %q", got)
	}
	s.Close()
	if data, err := os.ReadFile(filepath.Join(dir, spoolClosedFile)); err != nil || string(data) != "20261124T0530\n20261124T0531\n20261124T0532\n" {
		t.Errorf("closed file = %q, %v", data, err)
	}
}

// Appends racing with closes: every acknowledged record is in exactly one segment, and a sealed
// segment never changes after CloseWindows returned it.
func TestSpoolConcurrentAppendAndClose(t *testing.T) {
	s := openTestSpool(t, SpoolOptions{Dir: t.TempDir()})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		acked   = map[string]bool{}
		flushed = map[string]int{}
		stop    = make(chan struct{})
	)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				w := testWindow.Add(time.Duration(i%3) * time.Minute)
				ids := []string{fmt.Sprintf("g%d-%d-a", g, i), fmt.Sprintf("g%d-%d-b", g, i)}
				if err := s.AppendBatch(w, false, [][]byte{[]byte(ids[0]), []byte(ids[1])}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[ids[0]], acked[ids[1]] = true, true
				mu.Unlock()
			}
		}()
	}
	flush := func(w time.Time) {
		segs, err := s.CloseWindows(w)
		if err != nil {
			t.Error(err)
			return
		}
		for _, seg := range segs {
			got := replayStrings(t, s, seg)
			if len(got) != seg.Records {
				t.Errorf("%+v: replayed %d records", seg, len(got))
			}
			mu.Lock()
			for _, id := range got {
				flushed[id]++
			}
			mu.Unlock()
			if err := s.Drop(seg); err != nil {
				t.Error(err)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			flush(testWindow.Add(time.Duration(i%3) * time.Minute))
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	for i := 0; i < 3; i++ {
		flush(testWindow.Add(time.Duration(i) * time.Minute))
	}
	if len(acked) != 6*60*2 {
		t.Fatalf("%d acked", len(acked))
	}
	for id := range acked {
		if flushed[id] != 1 {
			t.Errorf("%s flushed %d times", id, flushed[id])
		}
	}
	if s.Bytes() != 0 || len(s.Windows()) != 0 {
		t.Errorf("left over: %d bytes, %+v", s.Bytes(), s.Windows())
	}
}

// testRecord encodes a record the way the crash and outage tests do: id|unix nanoseconds|padding.
func testRecord(id string, at time.Time, pad int) []byte {
	return []byte(fmt.Sprintf("%s|%d|%s", id, at.UnixNano(), strings.Repeat("p", pad)))
}

// testBuild is a Build callback: one audit row per record, deduplicated by record id (as the
// linker dedupes by observation id), deterministic for the same records.
func testBuild(window time.Time, replay func(fn func(rec []byte) error) error) ([]Span, error) {
	seen := map[string]bool{}
	var rows []Span
	err := replay(func(rec []byte) error {
		parts := strings.SplitN(string(rec), "|", 3)
		if len(parts) != 3 {
			return fmt.Errorf("bad record %q", rec)
		}
		ns, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return fmt.Errorf("bad record %q: %w", rec, err)
		}
		id := parts[0]
		if seen[id] {
			return nil
		}
		seen[id] = true
		at := time.Unix(0, ns).UTC()
		rows = append(rows, Span{
			Kind: KindAudit, TraceID: "t", SpanID: id, Cluster: "c", Resource: "pods", Name: id,
			ObservationID: id, WindowStart: window, StartTime: at, EndTime: at,
		})
		return nil
	})
	return rows, err
}

// readStoredSpans reads every span part of the store.
func readStoredSpans(t *testing.T, st Store) (rows []Span, keys []string) {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, SpansPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		rc, err := st.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		part, err := parquet.Read[Span](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		for _, r := range part {
			if want := PartKey(r.Cluster, r.WindowStart, ""); !strings.HasPrefix(o.Key, strings.TrimSuffix(want, ".parquet")) {
				t.Errorf("%s holds a row of window %s", o.Key, WindowKey(r.WindowStart))
			}
		}
		rows = append(rows, part...)
		keys = append(keys, o.Key)
	}
	return rows, keys
}

// checkExactlyOnce checks that every id in want is stored exactly once, in the window of its
// record time, and that nothing is stored twice.
func checkExactlyOnce(t *testing.T, rows []Span, want map[string]bool, window time.Duration) (count map[string]int) {
	t.Helper()
	count = map[string]int{}
	for _, r := range rows {
		count[r.ObservationID]++
		if w := alignWindowForTest(r.StartTime, window); !w.Equal(r.WindowStart) {
			t.Errorf("%s at %s stored in window %s, want %s", r.ObservationID, r.StartTime, WindowKey(r.WindowStart), WindowKey(w))
		}
	}
	missing, dups := 0, 0
	for id := range want {
		if count[id] == 0 {
			missing++
			if missing <= 10 {
				t.Errorf("acknowledged %s is missing", id)
			}
		}
	}
	for id, n := range count {
		if n > 1 {
			dups++
			if dups <= 10 {
				t.Errorf("%s stored %d times", id, n)
			}
		}
	}
	if missing+dups > 0 {
		t.Errorf("%d of %d acknowledged records missing, %d stored more than once", missing, len(want), dups)
	}
	return count
}

func alignWindowForTest(t time.Time, w time.Duration) time.Time {
	sec, size := t.Unix(), int64(w/time.Second)
	sec -= (sec%size + size) % size // floor, also before 1970
	return time.Unix(sec, 0).UTC()
}

const (
	envCrashChild = "KAIRN_SPOOL_CHILD"
	envCrashDir   = "KAIRN_SPOOL_CRASH_DIR"
	envCrashRun   = "KAIRN_SPOOL_CRASH_RUN"
)

// crashBase is the fake time of the crash test's first record. Each run starts 90s of fake time
// after the previous one, while a run usually writes more than 90s of records: later runs write
// into windows an earlier run closed, so late segments are exercised too.
var crashBase = time.Date(2026, 11, 24, 5, 0, 0, 0, time.UTC)

func crashFlusher(s *Spool, st Store, now func() time.Time) (*Flusher, error) {
	return NewFlusher(FlusherOptions{
		Store: st, Spool: s, Window: time.Minute, Grace: 5 * time.Second, Writer: "crash",
		Build: testBuild, Now: now, Tick: 5 * time.Millisecond,
		Backoff: BackoffOptions{Initial: time.Millisecond, Max: 10 * time.Millisecond},
	})
}

// TestSpoolCrashChild is the process TestSpoolCrash kills: it appends small batches through a
// Flusher, prints "ack <id>" for each record only after Add returned nil, and flushes windows
// concurrently, until it is killed.
func TestSpoolCrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) != "1" {
		t.Skip("helper process of TestSpoolCrash")
	}
	fail := func(err error) {
		fmt.Printf("error %v\n", err)
		os.Exit(3)
	}
	run, err := strconv.Atoi(os.Getenv(envCrashRun))
	if err != nil {
		fail(err)
	}
	dir := os.Getenv(envCrashDir)
	s, err := OpenSpool(SpoolOptions{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		fail(err)
	}
	local, err := OpenLocal(filepath.Join(dir, "archive"))
	if err != nil {
		fail(err)
	}
	st := announcingStore{local}
	base := crashBase.Add(time.Duration(run) * 90 * time.Second)
	var clock atomic.Int64 // fake time: the newest record's
	clock.Store(base.UnixNano())
	f, err := crashFlusher(s, st, func() time.Time { return time.Unix(0, clock.Load()) })
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	go f.Run(ctx)
	var flushing atomic.Bool
	os.Stdout.WriteString("ready\n")

	rng := rand.New(rand.NewPCG(uint64(run), 7))
	deadline := time.Now().Add(20 * time.Second) // never outlive a parent that stopped killing
	for n, batch := 0, 0; time.Now().Before(deadline); batch++ {
		at := base.Add(time.Duration(n) * time.Second)
		if batch%5 == 4 {
			at = at.Add(-2 * time.Minute) // stragglers, for windows already closed
		} else {
			clock.Store(at.UnixNano())
		}
		var recs [][]byte
		var acks strings.Builder
		for k := 1 + rng.IntN(4); k > 0; k-- {
			id := fmt.Sprintf("rec-%d-%d", run, n)
			n++
			recs = append(recs, testRecord(id, at, rng.IntN(200)))
			fmt.Fprintf(&acks, "ack %s\n", id)
		}
		if batch%7 == 3 {
			recs = append(recs, recs[0]) // a source resending within the batch: Build dedupes
		}
		if err := f.Add(at, recs...); err != nil {
			fail(err)
		}
		os.Stdout.WriteString(acks.String()) // one write: the parent only counts whole lines
		if batch%40 == 39 && flushing.CompareAndSwap(false, true) {
			go func() {
				defer flushing.Store(false)
				if err := f.FlushAll(ctx); err != nil {
					fail(err)
				}
			}()
		}
	}
	os.Exit(0)
}

// announcingStore prints "put <key>" after each upload, so that the parent can kill the child
// between an upload and the Drop of its segment.
type announcingStore struct{ Store }

func (s announcingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	err := s.Store.Put(ctx, key, r, size)
	if err == nil {
		os.Stdout.WriteString("put " + key + "\n")
	}
	return err
}

// TestSpoolCrash kills a process that spools and flushes with SIGKILL at random points, many
// times, restarting it each time, then flushes what is left and checks the store: every
// acknowledged record is there, and no record is there twice.
func TestSpoolCrash(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	iterations := 40
	if testing.Short() {
		iterations = 10
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	acked := map[string]bool{}
	killedBeforeReady, puts := 0, 0
	for run := 0; run < iterations; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashDir+"="+dir, envCrashRun+"="+strconv.Itoa(run))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		put := make(chan struct{}, 1)
		lines := make(chan []string, 1)
		go func() {
			var got []string
			r := bufio.NewReader(out)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					break // a line cut by the kill has no newline: not an acknowledgement
				}
				if line == "ready\n" {
					close(ready)
				}
				if strings.HasPrefix(line, "put ") {
					select {
					case put <- struct{}{}:
					default:
					}
				}
				got = append(got, strings.TrimSuffix(line, "\n"))
			}
			lines <- got
		}()
		waitReady := func() {
			select {
			case <-ready:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("run %d: child not ready: %s", run, stderr.String())
			}
		}
		switch run % 5 {
		case 4:
			// Kill early: during startup, the spool's recovery, the first appends.
			time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		case 1, 3:
			// Kill right after an upload, most likely before its segment is dropped.
			waitReady()
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
			select {
			case <-put: // drain one that came before
			default:
			}
			select {
			case <-put:
			case <-time.After(2 * time.Second):
			}
		default:
			waitReady()
			time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		got := <-lines
		werr := cmd.Wait()
		if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !st.Signaled() {
			t.Fatalf("run %d: child was not killed but exited (%v):\n%s\n%s", run, werr, strings.Join(got, "\n"), stderr.String())
		}
		select {
		case <-ready:
		default:
			killedBeforeReady++
		}
		for _, l := range got {
			if id, ok := strings.CutPrefix(l, "ack "); ok {
				acked[id] = true
			} else if strings.HasPrefix(l, "put ") {
				puts++
			} else if strings.HasPrefix(l, "error") {
				t.Fatalf("run %d: child: %s\n%s", run, l, stderr.String())
			}
		}
	}

	s := openTestSpool(t, SpoolOptions{Dir: filepath.Join(dir, "spool")})
	st, err := OpenLocal(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := crashFlusher(s, st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Bytes() != 0 || len(s.Windows()) != 0 {
		t.Errorf("spool not empty after FlushAll: %d bytes, %+v", s.Bytes(), s.Windows())
	}

	rows, keys := readStoredSpans(t, st)
	count := checkExactlyOnce(t, rows, acked, time.Minute)
	late := 0
	for _, k := range keys {
		if strings.Contains(k, "/crash-late") {
			late++
		}
	}
	t.Logf("%d runs (%d killed before ready), %d uploads before the final flush: %d records acknowledged, %d stored (%d written but not yet acknowledged when killed), %d parts (%d late)",
		iterations, killedBeforeReady, puts, len(acked), len(count), len(count)-len(acked), len(keys), late)
	if len(acked) < iterations || late == 0 {
		t.Errorf("the test did not exercise enough: %d acknowledged, %d late parts", len(acked), late)
	}
}
