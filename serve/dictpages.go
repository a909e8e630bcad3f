package serve

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/kairn-dev/kairn/archive"
)

// Dictionary-encoded columns are read here page by page, with parquet-go's page format, codecs
// and RLE decoders but not its FilePages, so that a column chunk's decoded dictionary can be
// kept between requests: FilePages decodes the dictionary again on every read, which was a
// quarter of the CPU of opening a trace in the synthetic archive's partitions (a pod row
// group's uid dictionary alone holds 8k uids for the few the trace needs). Only the layout
// kairn writes takes this path — a flat string column whose data pages (v1 or v2) are all
// dictionary-encoded; anything else (a dictionary that overflowed to PLAIN, lists) is
// errNotDictionary, and the caller falls back to FilePages.

var errNotDictionary = errors.New("not a dictionary-encoded flat string column")

// dictionary is a column chunk's decoded dictionary page: its PLAIN values (each after its
// 4-byte length) as decompressed, and where each begins.
type dictionary struct {
	data   string
	starts []uint32 // value i is data[starts[i] : starts[i+1]-4]
}

func (d *dictionary) len() int { return len(d.starts) - 1 }

func (d *dictionary) value(i int32) string { return d.data[d.starts[i] : d.starts[i+1]-4] }

func (d *dictionary) bytes() int64 { return int64(len(d.data)) + 4*int64(len(d.starts)) }

// dictChunk is one column chunk read through its dictionary.
type dictChunk struct {
	sr      *sparseReader
	md      *format.ColumnMetaData
	oi      parquet.OffsetIndex
	numRows int64 // of the row group
	maxDef  int
	dict    *dictionary
	buf     *pageBuffers
}

// pageBuffers are reused from page to page: one page is decoded at a time.
type pageBuffers struct {
	data []byte
	defs []byte
}

// readPage reads the page at [off, off+n) (header included) and returns its header and body.
func readPage(sr *sparseReader, off, n int64) (*format.PageHeader, []byte, error) {
	if off < 0 || n <= 0 || n > 1<<30 {
		return nil, nil, fmt.Errorf("page at %d: bad size %d", off, n)
	}
	b, err := sr.view(off, n)
	if err != nil {
		return nil, nil, err
	}
	var h format.PageHeader
	r := new(thrift.CompactProtocol).NewReaderFromBytes(b)
	if err := thrift.NewDecoder(r).Decode(&h); err != nil {
		return nil, nil, fmt.Errorf("page header at %d: %w", off, err)
	}
	read, ok := r.(interface{ BytesRead() int })
	if !ok {
		return nil, nil, errNotDictionary
	}
	body := b[read.BytesRead():]
	if h.CompressedPageSize < 0 || int(h.CompressedPageSize) > len(body) || h.UncompressedPageSize < 0 {
		return nil, nil, fmt.Errorf("page at %d: %d bytes in a page of %d", off, h.CompressedPageSize, len(body))
	}
	return &h, body[:h.CompressedPageSize], nil
}

// decompress undoes the chunk's codec on b; want is the size the header promises. The output
// goes into *buf when buf is not nil, kept there for the next page. Uncompressed, b itself is
// returned: the fetched bytes, which nothing may write.
func decompress(md *format.ColumnMetaData, buf *[]byte, b []byte, want int) ([]byte, error) {
	if md.Codec == format.Uncompressed {
		return b, nil
	}
	var dst []byte
	if buf != nil {
		dst = (*buf)[:0]
	}
	// A damaged header's size is not allocated up front; the decoder grows what it needs.
	out, err := parquet.LookupCompressionCodec(md.Codec).Decode(slices.Grow(dst, min(want, 16<<20)), b)
	if err != nil {
		return nil, err
	}
	if buf != nil {
		*buf = out
	}
	if len(out) != want {
		return nil, fmt.Errorf("%d bytes decompressed, the header says %d", len(out), want)
	}
	return out, nil
}

// decodeDictionary reads and decodes the chunk's dictionary page (PLAIN byte arrays).
func decodeDictionary(sr *sparseReader, md *format.ColumnMetaData) (*dictionary, error) {
	if md.DictionaryPageOffset <= 0 || md.DictionaryPageOffset >= md.DataPageOffset || md.Type != format.ByteArray {
		return nil, errNotDictionary
	}
	h, body, err := readPage(sr, md.DictionaryPageOffset, md.DataPageOffset-md.DictionaryPageOffset)
	if err != nil {
		return nil, err
	}
	if h.Type != format.DictionaryPage || !h.DictionaryPageHeader.Valid {
		return nil, errNotDictionary
	}
	dh := h.DictionaryPageHeader.V
	if dh.Encoding != format.Plain && dh.Encoding != format.PlainDictionary {
		return nil, errNotDictionary
	}
	data, err := decompress(md, nil, body, int(h.UncompressedPageSize))
	if err != nil {
		return nil, fmt.Errorf("dictionary page: %w", err)
	}
	if md.Codec == format.Uncompressed {
		data = slices.Clone(data) // not the fetched range it lies in, which the cache would keep
	}
	n := int(dh.NumValues)
	if n < 0 || n > len(data)/4 {
		return nil, fmt.Errorf("dictionary page: %d values in %d bytes", dh.NumValues, len(data))
	}
	if len(data) > math.MaxUint32-4 {
		return nil, fmt.Errorf("dictionary page of %d bytes", len(data))
	}
	d := &dictionary{starts: make([]uint32, n+1)}
	off := 0
	for i := range n {
		if off+4 > len(data) {
			return nil, fmt.Errorf("dictionary page: value %d of %d past the end", i, n)
		}
		l := int(binary.LittleEndian.Uint32(data[off:]))
		off += 4
		if l < 0 || l > len(data)-off {
			return nil, fmt.Errorf("dictionary page: value %d of %d bytes past the end", i, l)
		}
		d.starts[i] = uint32(off)
		off += l
	}
	d.starts[n] = uint32(off + 4)
	// The strings the rows get alias the decompressed page, which nothing writes again.
	d.data = unsafe.String(unsafe.SliceData(data), len(data))
	return d, nil
}

// pageIndexes reads data page q of the chunk: its definition levels (nil for a required
// column) decoded, and its dictionary indexes, one for each defined value, left encoded for
// visit to read only those it needs (a trace is a few rows of pages of thousands). They are
// valid until the next call.
func (c *dictChunk) pageIndexes(q int) (defs []byte, idx hybridInt32, numRows int, err error) {
	defer func() {
		if p := recover(); p != nil { // parquet-go's RLE decoder indexes out of range on damaged runs
			defs, idx, numRows, err = nil, hybridInt32{}, 0, fmt.Errorf("page %d: %v", q, p)
		}
	}()
	h, body, err := readPage(c.sr, c.oi.Offset(q), c.oi.CompressedPageSize(q))
	if err != nil {
		return nil, idx, 0, err
	}
	isDict := func(e format.Encoding) bool { return e == format.RLEDictionary || e == format.PlainDictionary }
	levels := rle.Encoding{BitWidth: bits.Len(uint(c.maxDef))}
	var values []byte
	numValues := 0
	switch {
	case h.Type == format.DataPageV2 && h.DataPageHeaderV2.Valid:
		v2 := &h.DataPageHeaderV2.V
		if !isDict(v2.Encoding) || v2.RepetitionLevelsByteLength != 0 {
			return nil, idx, 0, errNotDictionary
		}
		n := int(v2.DefinitionLevelsByteLength)
		if n < 0 || n > len(body) {
			return nil, idx, 0, fmt.Errorf("page %d: definition levels of %d bytes in %d", q, n, len(body))
		}
		numValues = int(v2.NumValues)
		if c.maxDef > 0 {
			if defs, err = levels.DecodeLevels(c.buf.defs[:0], body[:n]); err != nil {
				return nil, idx, 0, fmt.Errorf("page %d: definition levels: %w", q, err)
			}
			c.buf.defs = defs
		}
		values = body[n:]
		if !v2.IsCompressed.Valid || v2.IsCompressed.V { // compressed unless it says not
			if values, err = decompress(c.md, &c.buf.data, values, int(h.UncompressedPageSize)-n); err != nil {
				return nil, idx, 0, fmt.Errorf("page %d: %w", q, err)
			}
		}
	case h.Type == format.DataPage && h.DataPageHeader.Valid:
		v1 := &h.DataPageHeader.V
		if !isDict(v1.Encoding) {
			return nil, idx, 0, errNotDictionary
		}
		numValues = int(v1.NumValues)
		if values, err = decompress(c.md, &c.buf.data, body, int(h.UncompressedPageSize)); err != nil {
			return nil, idx, 0, fmt.Errorf("page %d: %w", q, err)
		}
		if c.maxDef > 0 {
			if len(values) < 4 || int(binary.LittleEndian.Uint32(values)) > len(values)-4 {
				return nil, idx, 0, fmt.Errorf("page %d: definition levels past the page's end", q)
			}
			n := 4 + int(binary.LittleEndian.Uint32(values))
			if defs, err = levels.DecodeLevels(c.buf.defs[:0], values[4:n]); err != nil {
				return nil, idx, 0, fmt.Errorf("page %d: definition levels: %w", q, err)
			}
			c.buf.defs = defs
			values = values[n:]
		}
	default:
		return nil, idx, 0, errNotDictionary
	}
	if c.maxDef > 0 {
		if len(defs) < numValues {
			return nil, idx, 0, fmt.Errorf("page %d: %d definition levels for %d values", q, len(defs), numValues)
		}
		defs = defs[:numValues]
	}
	if idx, err = newHybridInt32(values); err != nil {
		return nil, idx, 0, fmt.Errorf("page %d: dictionary indexes: %w", q, err)
	}
	return defs, idx, numValues, nil
}

// hybridInt32 reads values of Parquet's RLE/bit-packed hybrid encoding, prefixed by their bit
// width (dictionary indexes), by position, in increasing order, without decoding the runs
// before them: an RLE run is skipped by its count, a bit-packed one by its length.
type hybridInt32 struct {
	data   []byte // the runs not reached yet
	width  uint
	start  int    // the position of the current run's first value
	end    int    // past the current run's last value
	rle    bool   // the current run is RLE: every value is value
	value  int32  // (RLE)
	packed []byte // the current run's bytes (bit-packed)
}

func newHybridInt32(b []byte) (hybridInt32, error) {
	if len(b) == 0 {
		return hybridInt32{}, errors.New("no bit width")
	}
	if b[0] > 32 {
		return hybridInt32{}, fmt.Errorf("bit width %d", b[0])
	}
	return hybridInt32{data: b[1:], width: uint(b[0])}, nil
}

// at returns the value at position i. Runs are read forward only: i must not lie before the run
// of the last position asked for (positions asked for in increasing order never do).
func (h *hybridInt32) at(i int) (int32, error) {
	if i < h.start {
		return 0, fmt.Errorf("value %d is before the run read, which starts at %d", i, h.start)
	}
	for i >= h.end {
		if err := h.nextRun(); err != nil {
			return 0, fmt.Errorf("value %d: %w", i, err)
		}
	}
	if h.rle {
		return h.value, nil
	}
	bit := uint(i-h.start) * h.width
	var w [8]byte
	copy(w[:], h.packed[bit/8:]) // nextRun checked that the run's bytes are there
	v := binary.LittleEndian.Uint64(w[:]) >> (bit % 8)
	return int32(v & (1<<h.width - 1)), nil
}

func (h *hybridInt32) nextRun() error {
	header, n := binary.Uvarint(h.data)
	if n <= 0 {
		return errors.New("past the last run")
	}
	h.data = h.data[n:]
	h.start = h.end
	if header>>1 == 0 { // an empty run, nothing after its header (as parquet-go reads it)
		return nil
	}
	if header&1 == 1 { // bit-packed: groups of 8 values, width bytes each
		groups := header >> 1
		if groups > math.MaxInt32/8 {
			return fmt.Errorf("bit-packed run of %d groups in %d bytes", groups, len(h.data))
		}
		size := int(groups) * int(h.width)
		if size > len(h.data) {
			return fmt.Errorf("bit-packed run of %d bytes in %d", size, len(h.data))
		}
		h.rle, h.packed, h.data = false, h.data[:size], h.data[size:]
		h.end += int(groups) * 8
		return nil
	}
	count := header >> 1
	size := int(h.width+7) / 8
	if count > math.MaxInt32 || size > len(h.data) {
		return fmt.Errorf("RLE run of %d values with %d bytes left", count, len(h.data))
	}
	var w [4]byte
	copy(w[:], h.data[:size])
	h.rle, h.value, h.data = true, int32(binary.LittleEndian.Uint32(w[:])), h.data[size:]
	h.end += int(count)
	return nil
}

// visit calls f for every row of runs (sorted, within the row group) with its value's
// dictionary index, or -1 for NULL. It decodes only the pages the offset index says hold them.
func (c *dictChunk) visit(runs []run, f func(row int64, ix int32)) error {
	np := c.oi.NumPages()
	q := -1
	var defs []byte
	var idx hybridInt32
	var first, end int64 // the rows of page q
	var pos int64        // the defined values of page q before row pos are counted
	counted := 0
	for _, ru := range runs {
		for row := ru.start; row < ru.end; row++ {
			if q < 0 || row >= end {
				next := max(q, 0)
				for next+1 < np && c.oi.FirstRowIndex(next+1) <= row {
					next++
				}
				if next == q || row >= c.numRows || row < c.oi.FirstRowIndex(next) {
					return fmt.Errorf("row %d: in no page of %d", row, np)
				}
				q, first, end = next, c.oi.FirstRowIndex(next), c.numRows
				if q+1 < np {
					end = c.oi.FirstRowIndex(q + 1)
				}
				var n int
				var err error
				if defs, idx, n, err = c.pageIndexes(q); err != nil {
					return err
				}
				if int64(n) != end-first {
					return fmt.Errorf("page %d: %d values for rows %d..%d", q, n, first, end)
				}
				pos, counted = first, 0
			}
			// The value of a row is the v-th defined one of its page.
			v, defined := int(row-first), true
			if defs != nil {
				counted += bytes.Count(defs[pos-first:row-first], []byte{byte(c.maxDef)})
				pos = row
				v, defined = counted, int(defs[row-first]) == c.maxDef
			}
			ix := int32(-1)
			if defined {
				var err error
				if ix, err = idx.at(v); err != nil {
					return fmt.Errorf("page %d: row %d: %w", q, row, err)
				}
				if ix < 0 || int(ix) >= c.dict.len() {
					return fmt.Errorf("page %d: row %d: dictionary index %d past the dictionary's %d values", q, row, ix, c.dict.len())
				}
			}
			f(row, ix)
		}
	}
	return nil
}

// chunkDicts gives the dictionaries of one part's column chunks, decoded once and cached by
// the Reader.
type chunkDicts struct {
	cache *lru[*dictionary]
	file  string                 // fileCacheKey
	read  map[[2]int]*dictionary // this request's, by row group and column, cached or not
	buf   pageBuffers
}

func (d *chunkDicts) key(rg, col int) string {
	k := append(append(make([]byte, 0, len(d.file)+16), d.file...), 0)
	k = append(strconv.AppendInt(k, int64(rg), 10), 0)
	return string(strconv.AppendInt(k, int64(col), 10))
}

func (d *chunkDicts) cached(rg, col int) bool { return d.peek(rg, col) != nil }

// peek returns the chunk's dictionary if it is decoded already (nil if not). One found in the
// cache is kept for the rest of the request, which asks for it again.
func (d *chunkDicts) peek(rg, col int) *dictionary {
	if v, ok := d.read[[2]int{rg, col}]; ok {
		return v
	}
	v, ok := d.cache.get(d.key(rg, col))
	if ok {
		d.keep(rg, col, v)
	}
	return v
}

func (d *chunkDicts) keep(rg, col int, v *dictionary) {
	if d.read == nil {
		d.read = map[[2]int]*dictionary{}
	}
	d.read[[2]int{rg, col}] = v
}

func (d *chunkDicts) get(sr *sparseReader, rg, col int, md *format.ColumnMetaData) (*dictionary, error) {
	if v := d.peek(rg, col); v != nil {
		return v, nil
	}
	v, err := decodeDictionary(sr, md)
	if err != nil {
		return nil, err
	}
	d.cache.put(d.key(rg, col), v, v.bytes())
	d.keep(rg, col, v)
	return v, nil
}

// allDictionaryPages says whether the chunk's encoding stats say every data page is
// dictionary-encoded. A dictionary that overflowed leaves PLAIN pages after it, holding values
// it lacks; without stats nothing is known.
func allDictionaryPages(md *format.ColumnMetaData) bool {
	data := 0
	for _, st := range md.EncodingStats {
		if st.PageType != format.DataPage && st.PageType != format.DataPageV2 {
			continue
		}
		if st.Encoding != format.RLEDictionary && st.Encoding != format.PlainDictionary {
			return false
		}
		data++
	}
	return data > 0
}

// dictChunk is column j of row group i read through its dictionary, or errNotDictionary.
func (pf *partFile) dictChunk(sr *sparseReader, dicts *chunkDicts, i, j int) (*dictChunk, error) {
	lf := &pf.leaves[j]
	md := &pf.f.Metadata().RowGroups[i].Columns[j].MetaData
	rg := pf.f.RowGroups()[i]
	oi, err := rg.ColumnChunks()[j].OffsetIndex()
	if err != nil || oi == nil || oi.NumPages() == 0 || lf.list != listNone || md.DictionaryPageOffset <= 0 ||
		(len(md.EncodingStats) > 0 && !allDictionaryPages(md)) {
		return nil, errNotDictionary
	}
	dict, err := dicts.get(sr, i, j, md)
	if err != nil {
		return nil, err
	}
	return &dictChunk{sr: sr, md: md, oi: oi, numRows: rg.NumRows(), maxDef: lf.maxDef, dict: dict, buf: &dicts.buf}, nil
}

// decodeDictColumn sets the flat string column j of rows (the runs' rows, in order) from row
// group i through its dictionary, or returns errNotDictionary.
func (pf *partFile) decodeDictColumn(sr *sparseReader, dicts *chunkDicts, i, j int, runs []run, rows []archive.Span) error {
	c, err := pf.dictChunk(sr, dicts, i, j)
	if err != nil {
		return err
	}
	if pf.fillConstant(sr, dicts, i, j, rows) { // the dictionary just decoded is one value
		return nil
	}
	set := pf.leaves[j].str
	out := 0
	err = c.visit(runs, func(_ int64, ix int32) {
		if ix >= 0 {
			*set(&rows[out]) = c.dict.value(ix)
		}
		out++
	})
	if err == nil {
		sr.stats.viaDictionary.Add(1)
	}
	return err
}

// dictMatches says, by dictionary index, which values are traces (nil: none). traces are a few
// of thousands of values: they are compared, not looked up a value at a time.
func dictMatches(d *dictionary, traces map[string]bool) []bool {
	var match []bool
	for t := range traces {
		for ix := range d.len() {
			if d.value(int32(ix)) == t {
				if match == nil {
					match = make([]bool, d.len())
				}
				match[ix] = true
			}
		}
	}
	return match
}
