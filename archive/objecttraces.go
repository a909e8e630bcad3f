package archive

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
)

// ObjectTraces is what finding an object's trace needs of an object index: each row's
// object_hash and its trace_id, numbered. About 12 bytes a row where an IndexRow takes 270.
type ObjectTraces struct {
	Hashes   []int64  // by row
	Traces   []int32  // the trace of row i is TraceIDs[Traces[i]]
	TraceIDs []string // distinct
	// Part is the merged part PartRow and PartRows refer to ("" when not known: an index of
	// schema version 2 or older); PartRows is then nil.
	Part     string
	PartRow  []int64 // by row, as IndexRow
	PartRows []int32
}

// RowRange is rows [Start, End) of a part, the rows of one object: Object is its ObjectHash,
// Trace its trace_id, as the index says.
type RowRange struct {
	Start, End int64
	Object     int64
	Trace      string
}

// RowsOf returns where the rows of traces lie in Part, one range an object, sorted, or false
// when that is not known for one of them (see IndexRow.PartRows) or the ranges overlap (an
// index that cannot describe a part).
func (t *ObjectTraces) RowsOf(traces map[string]bool) ([]RowRange, bool) {
	if t.PartRows == nil {
		return nil, false
	}
	wanted := make([]bool, len(t.TraceIDs))
	for n, id := range t.TraceIDs {
		wanted[n] = traces[id]
	}
	var out []RowRange
	for i, n := range t.Traces {
		if !wanted[n] {
			continue
		}
		if t.PartRows[i] <= 0 || t.PartRow[i] < 0 || t.PartRow[i] > math.MaxInt64-int64(t.PartRows[i]) {
			return nil, false
		}
		out = append(out, RowRange{Start: t.PartRow[i], End: t.PartRow[i] + int64(t.PartRows[i]), Object: t.Hashes[i], Trace: t.TraceIDs[n]})
	}
	slices.SortFunc(out, func(a, b RowRange) int { return cmp.Compare(a.Start, b.Start) })
	for i := 1; i < len(out); i++ {
		if out[i].Start < out[i-1].End {
			return nil, false
		}
	}
	return out, true
}

// TracesOf returns the trace ids of the rows whose object_hash has hash's bits of mask (-1: is
// hash). It scans: 14k hashes in a few microseconds, where sorting them for a binary search cost
// 2 ms an index.
func (t *ObjectTraces) TracesOf(hash, mask int64) map[string]bool {
	out := map[string]bool{}
	hash &= mask
	for i, h := range t.Hashes {
		if h&mask == hash {
			out[t.TraceIDs[t.Traces[i]]] = true
		}
	}
	return out
}

// NewObjectTraces numbers the trace ids of rows.
func NewObjectTraces(rows []IndexRow) *ObjectTraces {
	t := &ObjectTraces{Hashes: make([]int64, len(rows)), Traces: make([]int32, len(rows))}
	numbers := map[string]int32{}
	for i := range rows {
		t.Hashes[i], t.Traces[i] = rows[i].ObjectHash, number(t, numbers, rows[i].TraceID)
	}
	return t
}

// number is the number of trace id in t, numbers indexing t.TraceIDs. A []byte id is copied
// only when new.
func number[S string | []byte](t *ObjectTraces, numbers map[string]int32, id S) int32 {
	n, ok := numbers[string(id)]
	if !ok {
		s := string(id)
		n = int32(len(t.TraceIDs))
		numbers[s] = n
		t.TraceIDs = append(t.TraceIDs, s)
	}
	return n
}

// DecodeObjectTraces reads the object_hash and trace_id columns of an index file, straight from
// their pages' values: 1.2–1.7 ms for an index of 14k objects, where going through a
// parquet.Value and an IndexRow a row took 3–4 ms, which a query server starting on a day of
// 144 partitions pays for each. An index without object_hash (schema version 1) is ErrNoColumn.
func DecodeObjectTraces(data []byte) (*ObjectTraces, error) {
	t, err := decodeWhole(data, decodeObjectTraces)
	if err != nil {
		return nil, fmt.Errorf("decode index: %w", err)
	}
	return t, nil
}

func decodeObjectTraces(data []byte) (*ObjectTraces, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	return objectTracesOf(f, len(data))
}

// objectTracesOf decodes the object_hash and trace_id columns of an opened index file of size
// bytes.
func objectTracesOf(f *parquet.File, size int) (*ObjectTraces, error) {
	flat := map[string]int{} // leaf index of each flat column, by name
	for j, leaf := range f.Schema().Columns() {
		if len(leaf) == 1 {
			flat[leaf[0]] = j
		}
	}
	hashCol, hasHash := flat["object_hash"]
	traceCol, hasTrace := flat["trace_id"]
	if !hasHash || !hasTrace {
		return nil, fmt.Errorf("%w: object_hash or trace_id", ErrNoColumn)
	}
	if n := f.NumRows(); n < 0 || n > int64(size) {
		return nil, fmt.Errorf("the footer claims %d rows in %d bytes", n, size)
	}
	t := &ObjectTraces{Hashes: make([]int64, 0, f.NumRows()), Traces: make([]int32, 0, f.NumRows())}
	rowCol, hasRow := flat["part_row"]
	rowsCol, hasRows := flat["part_rows"]
	if part, ok := f.Lookup(IndexPartKey); ok && part != "" && hasRow && hasRows {
		t.Part = part
		t.PartRow, t.PartRows = make([]int64, 0, f.NumRows()), make([]int32, 0, f.NumRows())
	}
	numbers := map[string]int32{}
	for g, rg := range f.RowGroups() {
		n := int(rg.NumRows())
		before := len(t.Hashes)
		err := appendPlain(rg.ColumnChunks()[hashCol], "object_hash", encoding.Int64, (*encoding.Values).Int64, &t.Hashes)
		if err == nil && len(t.Hashes)-before != n {
			err = fmt.Errorf("object_hash: %d values for %d rows", len(t.Hashes)-before, n)
		}
		if err == nil && t.Part != "" {
			err = appendPlain(rg.ColumnChunks()[rowCol], "part_row", encoding.Int64, (*encoding.Values).Int64, &t.PartRow)
			if err == nil {
				err = appendPlain(rg.ColumnChunks()[rowsCol], "part_rows", encoding.Int32, (*encoding.Values).Int32, &t.PartRows)
			}
			if err == nil && (len(t.PartRow) != len(t.Hashes) || len(t.PartRows) != len(t.Hashes)) {
				err = fmt.Errorf("part_row, part_rows: %d and %d values for %d rows", len(t.PartRow), len(t.PartRows), len(t.Hashes))
			}
		}
		if err != nil {
			return nil, fmt.Errorf("row group %d: %w", g, err)
		}
		err = eachPage(rg.ColumnChunks()[traceCol], func(p parquet.Page) error {
			if p.NumNulls() != 0 {
				return errors.New("trace_id: null values")
			}
			if dict := p.Dictionary(); dict != nil {
				// Numbers of the dictionary's strings, then of each row's index into it.
				ds := dict.Page().Data()
				words, offsets := ds.ByteArray()
				local := make([]int32, dict.Len())
				for k := range local {
					local[k] = number(t, numbers, words[offsets[k]:offsets[k+1]])
				}
				indexes := p.Data()
				for _, k := range indexes.Int32() {
					if k < 0 || int(k) >= len(local) {
						return fmt.Errorf("trace_id: dictionary index %d of %d", k, len(local))
					}
					t.Traces = append(t.Traces, local[k])
				}
				return nil
			}
			values := p.Data()
			if values.Kind() != encoding.ByteArray {
				return fmt.Errorf("trace_id: a page of %s", p.Type())
			}
			words, offsets := values.ByteArray()
			for k := 0; k+1 < len(offsets); k++ {
				t.Traces = append(t.Traces, number(t, numbers, words[offsets[k]:offsets[k+1]]))
			}
			return nil
		})
		if err == nil && len(t.Traces) != len(t.Hashes) {
			err = fmt.Errorf("trace_id: %d values for %d rows", len(t.Traces)-before, n)
		}
		if err != nil {
			return nil, fmt.Errorf("row group %d: %w", g, err)
		}
	}
	return t, nil
}

// appendPlain appends the values of a column chunk of plain pages without NULLs of kind to dst.
func appendPlain[T int32 | int64](cc parquet.ColumnChunk, name string, kind encoding.Kind, values func(*encoding.Values) []T, dst *[]T) error {
	return eachPage(cc, func(p parquet.Page) error {
		if v := p.Data(); v.Kind() == kind && p.NumNulls() == 0 && p.Dictionary() == nil {
			*dst = append(*dst, values(&v)...)
			return nil
		}
		return fmt.Errorf("%s: a page of %s", name, p.Type())
	})
}

// eachPage calls f with each page of a column chunk, in order.
func eachPage(cc parquet.ColumnChunk, f func(parquet.Page) error) error {
	pages := cc.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		err = f(p)
		parquet.Release(p)
		if err != nil {
			return err
		}
	}
}
