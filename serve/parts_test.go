package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/kairn-dev/kairn/archive"
)

// rangeStore is an in-memory Store with ranged reads (like S3) that counts the bytes read.
type rangeStore struct {
	archive.Store
	mu     sync.Mutex
	data   map[string][]byte
	bytes  int64
	ranges int
}

func (s *rangeStore) GetRange(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.data[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, archive.ErrNotExist)
	}
	if n < 0 {
		n = int64(len(d)) - off
	}
	if off+n > int64(len(d)) {
		return nil, fmt.Errorf("range [%d, %d) past %d", off, off+n, len(d))
	}
	s.bytes += n
	s.ranges++
	return io.NopCloser(bytes.NewReader(d[off : off+n])), nil
}

func (s *rangeStore) Size(_ context.Context, key string) (int64, error) {
	return int64(len(s.data[key])), nil
}

// randomRows makes rows of many objects in several traces, with lists, NULLs and every column
// type, sorted the way parts are.
func randomRows(n, block int) []archive.Span {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []archive.Span
	w := t0
	for i := 0; len(rows) < n; i++ {
		k := ObjectKey{Cluster: "c", Resource: "pods", Namespace: "ns", Name: fmt.Sprintf("o-%04d", i), UID: fmt.Sprintf("u-%d", i)}
		if i%3 == 0 {
			k.Group, k.Namespace = "apps", ""
		}
		trace := fmt.Sprintf("trace-%d", (i/block)%7) // trees are runs of objects
		o := objectRow(k, "Pod", "", w, trace)
		if rng.IntN(2) == 0 {
			o.ParentSpanID, o.ParentRelation, o.ParentName, o.ParentUID = "p"+o.SpanID, "owner", "owner", "u-owner"
		}
		for j := range rng.IntN(3) {
			o.Links = append(o.Links, archive.Link{Relation: "node", Cluster: "c", Resource: "nodes", Name: fmt.Sprintf("n%d", j), SpanID: fmt.Sprintf("s%d", j), APIGroup: []string{"", "x"}[j%2]})
		}
		rows = append(rows, o)
		for j := range rng.IntN(40) {
			at := w.Add(time.Duration(j) * time.Second)
			s := archive.Span{Kind: []string{"audit", "event", "change"}[j%3], TraceID: trace, SpanID: fmt.Sprintf("%x-%d", i, j), ParentSpanID: o.SpanID,
				Cluster: k.Cluster, APIGroup: k.Group, Resource: k.Resource, Namespace: k.Namespace, Name: k.Name, UID: k.UID,
				WindowStart: w, StartTime: at, EndTime: at.Add(time.Millisecond), ObservationID: fmt.Sprintf("obs/%d/%d", i, j),
				Verb: []string{"update", "patch", ""}[j%3], StatusCode: int32([]int{0, 200, 409}[rng.IntN(3)]), NoOp: rng.IntN(4) == 0,
				Message: []string{"", "a message"}[rng.IntN(2)], EventCount: int32(rng.IntN(3))}
			if rng.IntN(3) == 0 {
				s.RevisionTime, s.RevisionTimeSource = at.Add(-time.Second), "managedFields"
			}
			for c := range rng.IntN(4) {
				s.Changes = append(s.Changes, archive.FieldChange{Path: fmt.Sprintf("spec.f%d", c), Old: []string{"", `"x"`}[rng.IntN(2)], New: []string{"", `"y"`}[rng.IntN(2)]})
			}
			rows = append(rows, s)
		}
	}
	archive.SortSpans(rows)
	return rows
}

func encodeWith(t *testing.T, rows []archive.Span, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[archive.Span](&buf, append([]parquet.WriterOption{parquet.Compression(&zstd.Codec{})}, opts...)...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTraceRowsMatchesFullRead: the column decoder gives exactly the rows parquet-go's row
// reader gives, for one page per column, many small pages, many row groups, and big parts read
// by ranges; from a local directory, a ranged store and a store that can only Get.
func TestTraceRowsMatchesFullRead(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(6000, 40)
	encoded, err := archive.EncodeParquet(rows)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]byte{
		"one-page":   encoded,
		"small-page": encodeWith(t, rows, parquet.PageBufferSize(2048)),
		"row-groups": encodeWith(t, rows, parquet.PageBufferSize(4096), parquet.MaxRowsPerRowGroup(700)),
		"big":        encodeWith(t, randomRows(100_000, 400), parquet.PageBufferSize(32<<10)),
		// Read through FilePages, not dictChunk: dictionaries that overflow to PLAIN pages
		// part-way through a chunk.
		"dict-overflow": encodeWith(t, rows, parquet.PageBufferSize(4096), parquet.DictionaryMaxBytes(512)),
		"pages-v1":      encodeWith(t, rows, parquet.PageBufferSize(4096), parquet.DataPageVersion(1)),
		// Pages read straight out of the fetched ranges, which go back to remoteBuffers after
		// each part: a dictionary kept from the first pass must not alias them.
		"uncompressed": encodeWith(t, rows, parquet.PageBufferSize(4096), parquet.Compression(&uncompressed.Codec{})),
		// Columns of one value in some row groups and not in others (window_start, cluster).
		"mixed-values": encodeWith(t, mixedValues(rows), parquet.PageBufferSize(4096), parquet.MaxRowsPerRowGroup(700)),
	}
	dir := t.TempDir()
	local, err := archive.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	rs := &rangeStore{Store: local, data: map[string][]byte{}}
	for name, data := range parts {
		key := archive.PartKey("c", t0, "merged-"+name)
		if err := local.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		rs.data[key] = data
	}
	stores := map[string]archive.Store{"local": local, "ranged": rs, "get-only": &countingStore{Store: local}}
	via := map[string]int64{} // column chunks read through their dictionary, by layout, store, traces, pass
	for _, traces := range []map[string]bool{{"trace-1": true}, {"trace-0": true, "trace-3": true}, {"nope": true}} {
		for name, data := range parts {
			all, err := parquet.Read[archive.Span](bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			var want []archive.Span
			for _, r := range all {
				if traces[r.TraceID] {
					want = append(want, r)
				}
			}
			key := archive.PartKey("c", t0, "merged-"+name)
			for sname, store := range stores {
				cfg := ReaderConfig{}
				if name == "big" {
					cfg.RangeGap = -1 // so the bytes read show what was skipped
				}
				r := NewReader(store, cfg)
				var passBytes [2]int64
				for pass := range 2 { // the second with the footer and dictionaries cached
					rs.bytes, rs.ranges = 0, 0
					r.stats.misses.Store(0)
					r.stats.viaDictionary.Store(0)
					r.stats.constantChunks.Store(0)
					got, err := r.decodeTraceRows(ctx, archive.ObjectInfo{Key: key, Size: int64(len(data)), Modified: t0}, traces, true, nil)
					if err != nil {
						t.Fatalf("%s %s: %v", name, sname, err)
					}
					// Rows and cached dictionaries must not alias the fetched ranges, which went
					// back to remoteBuffers and will hold other bytes.
					poisonBuffers(&remoteBuffers)
					if len(got) != len(want) {
						t.Fatalf("%s %s %v: %d rows, want %d", name, sname, traces, len(got), len(want))
					}
					for i := range want {
						if !reflect.DeepEqual(normalize(got[i]), normalize(want[i])) {
							t.Fatalf("%s %s %v: row %d:\n got %+v\nwant %+v", name, sname, traces, i, got[i], want[i])
						}
					}
					via[fmt.Sprintf("%s %s %v %d", name, sname, traces, pass)] = r.stats.viaDictionary.Load()
					// Every row's cluster, resource and window_start is the same: those chunks
					// are filled without their pages (the dictionaries once cached).
					if len(want) > 0 && pass == 1 && name != "mixed-values" && r.stats.constantChunks.Load() == 0 {
						t.Errorf("%s %s %v: no column chunk filled as one value", name, sname, traces)
					}
					passBytes[pass] = rs.bytes
					if sname == "ranged" && name == "big" && pass == 1 && len(want) > 0 && passBytes[1] >= passBytes[0] {
						t.Errorf("%s %v: %d bytes read with the dictionaries cached, %d without", name, traces, passBytes[1], passBytes[0])
					}
					if sname == "ranged" && name == "big" && pass == 1 {
						// Dictionary pages are read whole (here they are most of the bytes
						// left); data pages only where the trace's runs are.
						t.Logf("%s %v: %d of %d bytes in %d ranges, %d reads outside them", name, traces, rs.bytes, len(data), rs.ranges, r.stats.misses.Load())
						limit := int64(len(data)) * 3 / 4
						if len(want) == 0 {
							limit = int64(len(data)) / 50 // the trace_id column only
						}
						if (len(traces) == 1 && rs.bytes > limit) || r.stats.misses.Load() > 0 {
							t.Errorf("%s %v: read %d of %d bytes, %d reads outside the prefetched ranges", name, traces, rs.bytes, len(data), r.stats.misses.Load())
						}
					}
				}
			}
		}
	}
	// The same rows in the same page size: v1 pages go through dictionaries as v2 pages do;
	// dictionaries that overflow to PLAIN part-way fall back to FilePages.
	for _, traces := range []string{"map[trace-1:true]", "map[trace-0:true trace-3:true]"} {
		for sname := range stores {
			for pass := range 2 {
				k := func(layout string) int64 { return via[fmt.Sprintf("%s %s %v %d", layout, sname, traces, pass)] }
				if k("small-page") == 0 || k("pages-v1") != k("small-page") || k("dict-overflow") >= k("small-page") {
					t.Errorf("%s %s pass %d: column chunks read through their dictionary: %d (v2 pages), %d (v1), %d (overflowing)",
						sname, traces, pass, k("small-page"), k("pages-v1"), k("dict-overflow"))
				}
			}
		}
	}
}

// mixedValues are rows whose window_start and cluster vary in every 700 rows but the first 700.
func mixedValues(rows []archive.Span) []archive.Span {
	out := slices.Clone(rows)
	for i := 700; i < len(out); i += 97 {
		out[i].WindowStart = out[i].WindowStart.Add(30 * time.Minute)
		out[i].Cluster = "c2"
	}
	return out
}

// TestTraceRowsAtIndexRanges: given where a trace's rows lie (as a merged partition's object
// index says: one range an object, with its hash and trace), the same rows as a scan of the
// part's trace_id column, without that scan; given ranges that hold other objects, or name
// other objects (an index that does not describe the part), the same rows again, by a scan.
func TestTraceRowsAtIndexRanges(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(6000, 40)
	encoded, err := archive.EncodeParquet(rows)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string][]byte{
		"one-page":   encoded,
		"row-groups": encodeWith(t, rows, parquet.PageBufferSize(4096), parquet.MaxRowsPerRowGroup(700)),
	}
	local, err := archive.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range parts {
		key := archive.PartKey("c", t0, "merged-"+name)
		if err := local.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		for _, traces := range []map[string]bool{{"trace-1": true}, {"trace-0": true, "trace-3": true}} {
			var want []archive.Span
			var exact, shifted, misnamed []archive.RowRange
			for i, r := range rows {
				if !traces[r.TraceID] {
					continue
				}
				want = append(want, r)
				if k := len(exact) - 1; k >= 0 && exact[k].End == int64(i) && rows[i-1].UID == r.UID {
					exact[k].End++
				} else {
					exact = append(exact, archive.RowRange{Start: int64(i), End: int64(i) + 1, Trace: r.TraceID,
						Object: archive.ObjectHash(r.Cluster, r.APIGroup, r.Resource, r.Namespace, r.Name, r.UID)})
				}
			}
			for i, r := range exact {
				s := r
				s.Start, s.End = r.Start+1, min(r.End+1, int64(len(rows)))
				shifted = append(shifted, s)
				m := r
				m.Object = exact[(i+1)%len(exact)].Object
				misnamed = append(misnamed, m)
			}
			// An object's range one row longer, into the rows of an object of another trace.
			overlong := slices.Clone(exact)
			for i := range overlong {
				next := int64(len(rows))
				if i+1 < len(overlong) {
					next = overlong[i+1].Start
				}
				if overlong[i].End < next {
					overlong[i].End++
					break
				}
			}
			for _, c := range []struct {
				name              string
				known             []archive.RowRange
				scans, mismatches int64
			}{{"scan", nil, 1, 0}, {"exact", exact, 0, 0}, {"shifted", shifted, 1, 1}, {"misnamed", misnamed, 1, 1}, {"overlong", overlong, 1, 1}} {
				r := NewReader(local, ReaderConfig{})
				got, err := r.decodeTraceRows(ctx, archive.ObjectInfo{Key: key, Size: int64(len(data)), Modified: t0}, traces, true, c.known)
				if err != nil {
					t.Fatalf("%s %s: %v", name, c.name, err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s %s %v: %d rows, want %d", name, c.name, traces, len(got), len(want))
				}
				for i := range want {
					if !reflect.DeepEqual(normalize(got[i]), normalize(want[i])) {
						t.Fatalf("%s %s %v: row %d:\n got %+v\nwant %+v", name, c.name, traces, i, got[i], want[i])
					}
				}
				if s, m := r.stats.traceScans.Load(), r.stats.indexMismatches.Load(); s != c.scans || m != c.mismatches {
					t.Errorf("%s %s %v: %d scans of trace_id, %d mismatches; want %d, %d", name, c.name, traces, s, m, c.scans, c.mismatches)
				}
			}
		}
	}
}

// normalize makes empty lists nil: parquet-go reads an empty list as an empty slice or nil
// depending on the page layout; both render alike.
func normalize(s archive.Span) archive.Span {
	if len(s.Links) == 0 {
		s.Links = nil
	}
	if len(s.Changes) == 0 {
		s.Changes = nil
	}
	return s
}

// FuzzDictChunk damages the pages of a part (its footer intact, as parsed before) and reads
// every flat dictionary column of it through dictChunk: an error or values, never a panic.
func FuzzDictChunk(f *testing.F) {
	rows := randomRows(800, 10)
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[archive.Span](&buf, parquet.Compression(&zstd.Codec{}), parquet.PageBufferSize(1024))
	if _, err := w.Write(rows); err != nil {
		f.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	data := buf.Bytes()
	stats := &readStats{}
	pf, err := openPartFile(&sparseReader{ctx: context.Background(), src: memSource(data), size: int64(len(data)), stats: stats}, archive.ObjectInfo{Key: "k", Size: int64(len(data))})
	if err != nil {
		f.Fatal(err)
	}
	pagesEnd := pf.f.Metadata().RowGroups[0].Columns[0].MetaData.DataPageOffset
	for _, rg := range pf.f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			pagesEnd = max(pagesEnd, c.MetaData.DataPageOffset+c.MetaData.TotalCompressedSize)
		}
	}
	f.Add(uint32(4), []byte{0xff})
	f.Add(uint32(100), []byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint32(pagesEnd/2), []byte("\x15\x00\x15\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, at uint32, patch []byte) {
		damaged := bytes.Clone(data)
		off := 4 + int64(at)%(pagesEnd-4)
		copy(damaged[off:pagesEnd], patch)
		sr := &sparseReader{ctx: context.Background(), size: int64(len(damaged)), stats: stats, segs: []segment{{0, damaged}}}
		dicts := &chunkDicts{cache: newLRU[*dictionary](0), file: "k"}
		for i, rg := range pf.f.RowGroups() {
			for j := range rg.ColumnChunks() {
				if pf.leaves[j].str == nil {
					continue
				}
				c, err := pf.dictChunk(sr, dicts, i, j)
				if err != nil {
					continue
				}
				_ = c.visit([]run{{0, c.numRows}}, func(_ int64, ix int32) {
					if ix >= 0 {
						_ = c.dict.value(ix)
					}
				})
			}
		}
	})
}

// poisonBuffers overwrites the buffers p holds.
func poisonBuffers(p *fetchBuffers) {
	for c := range p.classes {
		var held [][]byte
		for {
			b, ok := p.classes[c].Get().(*[]byte)
			if !ok {
				break
			}
			held = append(held, (*b)[:cap(*b)])
		}
		for _, b := range held {
			for i := range b {
				b[i] = 0xa5
			}
			p.put(b)
		}
	}
}

type memSource []byte

func (m memSource) fetch(_ context.Context, off, n int64) ([]byte, error) { return m[off : off+n], nil }
func (memSource) parallel() bool                                          { return false }
func (memSource) close()                                                  {}
func (memSource) release([]byte)                                          {}

// TestTraceRowsDictionaryOverflow: a trace_id dictionary that overflowed to PLAIN pages lacks
// the later traces; they are found in those pages, on first reading and with the dictionary
// cached.
func TestTraceRowsDictionaryOverflow(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(3000, 1)
	for i := range rows {
		rows[i].TraceID = "t-" + rows[i].Name // one trace an object: hundreds of values
	}
	data := encodeWith(t, rows, parquet.PageBufferSize(1024), parquet.DictionaryMaxBytes(256))
	local, err := archive.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := archive.PartKey("c", t0, "merged-overflow")
	if err := local.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	for _, trace := range []string{rows[0].TraceID, rows[len(rows)-1].TraceID} {
		var want []archive.Span
		for _, r := range rows {
			if r.TraceID == trace {
				want = append(want, r)
			}
		}
		r := NewReader(local, ReaderConfig{})
		for pass := range 2 {
			got, err := r.decodeTraceRows(ctx, archive.ObjectInfo{Key: key, Size: int64(len(data)), Modified: t0}, map[string]bool{trace: true}, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s, pass %d: %d rows, want %d", trace, pass, len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(normalize(got[i]), normalize(want[i])) {
					t.Fatalf("%s, pass %d: row %d:\n got %+v\nwant %+v", trace, pass, i, got[i], want[i])
				}
			}
		}
	}
}

// TestTraceRowsMixedCodecs: columns of one part with and without compression, pages v1 and v2:
// an uncompressed page is read where it was fetched, and decompressing the next column's page
// must not write over it.
func TestTraceRowsMixedCodecs(t *testing.T) {
	type mixed struct {
		Kind      string `parquet:"kind,dict,uncompressed"`
		TraceID   string `parquet:"trace_id,dict"`
		Name      string `parquet:"name,dict,uncompressed"`
		Namespace string `parquet:"namespace,optional,dict"`
		UID       string `parquet:"uid,optional,dict,uncompressed"`
		Verb      string `parquet:"verb,optional,dict"`
	}
	ctx := context.Background()
	var rows []mixed
	var spans []archive.Span
	for i := range 2000 {
		m := mixed{Kind: []string{"object", "audit", "event"}[i%3], TraceID: fmt.Sprintf("trace-%d", i/100), Name: fmt.Sprintf("o-%d", i/10),
			Namespace: []string{"", "ns-a", "ns-b"}[i%3], UID: []string{"", fmt.Sprintf("u-%d", i/10)}[i%2], Verb: []string{"get", "", "patch"}[i%3]}
		rows = append(rows, m)
		spans = append(spans, archive.Span{Kind: m.Kind, TraceID: m.TraceID, Name: m.Name, Namespace: m.Namespace, UID: m.UID, Verb: m.Verb})
	}
	local, err := archive.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []int{1, 2} {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[mixed](&buf, parquet.Compression(&zstd.Codec{}), parquet.PageBufferSize(1024), parquet.DataPageVersion(version))
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		key := archive.PartKey("c", t0, fmt.Sprintf("merged-mixed-v%d", version))
		if err := local.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			t.Fatal(err)
		}
		r := NewReader(local, ReaderConfig{})
		traces := map[string]bool{"trace-3": true, "trace-17": true}
		got, err := r.decodeTraceRows(ctx, archive.ObjectInfo{Key: key, Size: int64(buf.Len()), Modified: t0}, traces, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []archive.Span
		for _, s := range spans {
			if traces[s.TraceID] {
				want = append(want, s)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("pages v%d: %d rows, want %d", version, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(normalize(got[i]), want[i]) {
				t.Fatalf("pages v%d: row %d:\n got %+v\nwant %+v", version, i, got[i], want[i])
			}
		}
		if r.stats.viaDictionary.Load() == 0 {
			t.Errorf("pages v%d: no column read through its dictionary", version)
		}
	}
}

func TestMergeRanges(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name string
		in   []byteRange
		gap  int64
		want []byteRange
	}{
		{"sorted and merged across a small gap", []byteRange{{300, 400}, {0, 100}, {150, 200}}, 60, []byteRange{{0, 200}, {300, 400}}},
		{"no gap: only touching or overlapping", []byteRange{{0, 100}, {100, 150}, {120, 130}, {151, 160}}, 0, []byteRange{{0, 150}, {151, 160}}},
		{"not merged past maxMergedRange", []byteRange{{0, 10 * mib}, {10*mib + 1, 15 * mib}, {15*mib + 1, 17 * mib}}, 2 * mib,
			[]byteRange{{0, 15 * mib}, {15*mib + 1, 17 * mib}}},
		{"overlapping ranges merge past it", []byteRange{{0, 15 * mib}, {14 * mib, 20 * mib}}, 2 * mib, []byteRange{{0, 20 * mib}}},
	} {
		if got := mergeRanges(c.in, c.gap); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFileSourceShortRead: a local part shorter than its listing (truncated after the List) is
// an error naming it, not zeros read past its end.
func TestFileSourceShortRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "part.parquet")
	if err := os.WriteFile(path, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	src := fileSource{f}
	defer src.close()
	if b, err := src.fetch(context.Background(), 2, 8); err != nil || string(b) != "23456789" {
		t.Fatalf("fetch [2, 10): %q, %v", b, err)
	}
	b, err := src.fetch(context.Background(), 4, 10)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), path) {
		t.Fatalf("fetch [4, 14) of 10 bytes: %q, %v; want an unexpected EOF naming %s", b, err, path)
	}
}
