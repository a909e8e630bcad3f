package archive

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
)

// The string columns of an IndexTable, in object key order, then the kind.
const (
	IndexCluster = iota
	IndexGroup
	IndexResource
	IndexNamespace
	IndexName
	IndexUID
	IndexKind
	IndexStrings
)

// The time columns of an IndexTable.
const (
	IndexWindow = iota
	IndexFirstSeen
	IndexLastSeen
	IndexCreated
	IndexDeleted
	IndexTimes
)

// NoTime stands for a NULL (zero) time in an IndexTable's time column.
const NoTime = math.MinInt64

// IndexTable is an object index held by column for scanning many objects (the query server's
// search): each string column as numbers of strings kept once in one buffer (a dictionary's
// strings once a dictionary, other names and uids once a row), times as Unix nanoseconds. About
// 154 bytes an object where an IndexRow takes ~400 (strings allocated one by one, times of 24
// bytes).
type IndexTable struct {
	ObjectTraces
	Text    []byte   // the strings, concatenated
	Ends    []uint32 // string n is Text[Ends[n-1]:Ends[n]]; string 0 is ""
	Strings [IndexStrings][]uint32
	Times   [IndexTimes][]int64 // or NoTime
	Root    []bool              // owned by nothing, with a span: what a search without tags finds
}

// Len is the number of objects.
func (t *IndexTable) Len() int { return len(t.Root) }

// Str is string number n.
func (t *IndexTable) Str(n uint32) []byte {
	start := uint32(0)
	if n > 0 {
		start = t.Ends[n-1]
	}
	return t.Text[start:t.Ends[n]]
}

// Bytes is about the memory the table holds.
func (t *IndexTable) Bytes() int64 {
	n := len(t.Text) + 4*len(t.Ends) + (8+4+1+4*IndexStrings+8*IndexTimes)*t.Len()
	for _, id := range t.TraceIDs {
		n += 16 + len(id)
	}
	return int64(n)
}

// tableBuilder adds strings to a table: once each, or (add) once each call.
type tableBuilder struct {
	t       *IndexTable
	numbers map[string]uint32
}

func newTableBuilder(n int) *tableBuilder {
	t := &IndexTable{Ends: []uint32{0}, Root: make([]bool, n)}
	for c := range t.Strings {
		t.Strings[c] = make([]uint32, n)
	}
	for c := range t.Times {
		t.Times[c] = make([]int64, n)
	}
	return &tableBuilder{t: t, numbers: map[string]uint32{"": 0}}
}

func (b *tableBuilder) add(s []byte) uint32 {
	if len(s) == 0 {
		return 0
	}
	b.t.Text = append(b.t.Text, s...)
	b.t.Ends = append(b.t.Ends, uint32(len(b.t.Text)))
	return uint32(len(b.t.Ends) - 1)
}

func (b *tableBuilder) number(s []byte) uint32 {
	n, ok := b.numbers[string(s)]
	if !ok {
		n = b.add(s)
		b.numbers[string(s)] = n
	}
	return n
}

// str is the number of s in string column c: names and uids are added a row at a time (nearly
// one an object: not worth a lookup), the others once each.
func (b *tableBuilder) str(c int, s []byte) uint32 {
	if c == IndexName || c == IndexUID {
		return b.add(s)
	}
	return b.number(s)
}

// NewIndexTable holds rows by column.
func NewIndexTable(rows []IndexRow) *IndexTable {
	b := newTableBuilder(len(rows))
	t := b.t
	t.ObjectTraces = *NewObjectTraces(rows)
	for i := range rows {
		o := &rows[i]
		for c, s := range [IndexStrings]string{o.Cluster, o.APIGroup, o.Resource, o.Namespace, o.Name, o.UID, o.ObjectKind} {
			t.Strings[c][i] = b.str(c, []byte(s))
		}
		for c, v := range [IndexTimes]time.Time{o.WindowStart, o.FirstSeen, o.LastSeen, o.CreatedAt, o.DeletedAt} {
			t.Times[c][i] = NoTime
			if !v.IsZero() {
				t.Times[c][i] = v.UnixNano()
			}
		}
		t.Root[i] = o.ParentUID == "" && o.TraceID != "" && o.SpanID != ""
		if o.ObjectHash == 0 {
			// Rows of a version 1 index have no object_hash; a true hash of 0 computes to 0 again.
			t.Hashes[i] = ObjectHash(o.Cluster, o.APIGroup, o.Resource, o.Namespace, o.Name, o.UID)
		}
	}
	t.Text = slices.Clip(t.Text)
	return t
}

// indexTableColumns are the columns DecodeIndexTable reads besides object_hash and trace_id.
var indexTableColumns = map[string]tableColumn{
	"cluster": strColumn(IndexCluster), "api_group": strColumn(IndexGroup), "resource": strColumn(IndexResource),
	"namespace": strColumn(IndexNamespace), "name": strColumn(IndexName), "uid": strColumn(IndexUID),
	"object_kind":  strColumn(IndexKind),
	"window_start": timeColumn(IndexWindow), "first_seen": timeColumn(IndexFirstSeen), "last_seen": timeColumn(IndexLastSeen),
	"created_at": timeColumn(IndexCreated), "deleted_at": timeColumn(IndexDeleted),
	"span_id": {str: -1, time: -1, flag: flagSpan}, "parent_uid": {str: -1, time: -1, flag: flagParent},
}

func strColumn(c int) tableColumn  { return tableColumn{str: c, time: -1, flag: -1} }
func timeColumn(c int) tableColumn { return tableColumn{str: -1, time: c, flag: -1} }

// tableColumn is where a column goes: a string column, else a time column, else a flag.
type tableColumn struct{ str, time, flag int }

const (
	flagSpan   = iota // has a span id
	flagParent        // has a parent uid
)

// errPageLayout: a page DecodeIndexTable does not read (EncodeIndex writes none such).
var errPageLayout = errors.New("unexpected page layout")

// DecodeIndexTable reads an index file into an IndexTable straight from its pages' values: no
// IndexRow or parquet.Value a row, a dictionary's strings numbered once (for a day of 144
// partitions, 2 M objects, the query server's first search took 1.6 s, 3.1 CPU-s, through
// DecodeIndex, its writes a column at a time into rows of 270 bytes most of it). An index of
// schema version 1 (no object_hash), or with pages of another layout, goes through DecodeIndex.
func DecodeIndexTable(data []byte) (*IndexTable, error) {
	t, err := decodeWhole(data, decodeIndexTable)
	if errors.Is(err, ErrNoColumn) || errors.Is(err, errPageLayout) {
		rows, err := DecodeIndex(data)
		if err != nil {
			return nil, err
		}
		return NewIndexTable(rows), nil
	}
	if err != nil {
		return nil, fmt.Errorf("decode index: %w", err)
	}
	return t, nil
}

func decodeIndexTable(data []byte) (*IndexTable, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	traces, err := objectTracesOf(f, len(data))
	if err != nil {
		return nil, err
	}
	n := len(traces.Hashes)
	b := newTableBuilder(n)
	t := b.t
	t.ObjectTraces = *traces
	for c := range t.Times {
		for i := range t.Times[c] {
			t.Times[c][i] = NoTime
		}
	}
	var flags [2][]bool
	for k := range flags {
		flags[k] = make([]bool, n)
	}
	leaves := f.Schema().Columns()
	base := 0
	for g, rg := range f.RowGroups() {
		rows := int(rg.NumRows())
		for j, cc := range rg.ColumnChunks() {
			if len(leaves[j]) != 1 {
				continue
			}
			col, ok := indexTableColumns[leaves[j][0]]
			if !ok {
				continue
			}
			row, err := b.decodeColumn(cc, col, flags, base, base+rows)
			if err == nil && row != base+rows {
				err = fmt.Errorf("%d values for %d rows", row-base, rows)
			}
			if err != nil {
				return nil, fmt.Errorf("row group %d: column %s: %w", g, leaves[j][0], err)
			}
		}
		base += rows
	}
	for i := range n {
		t.Root[i] = !flags[flagParent][i] && flags[flagSpan][i] && t.TraceIDs[t.Traces[i]] != ""
	}
	t.Text = slices.Clip(t.Text)
	return t, nil
}

// decodeColumn decodes one column chunk into rows [from, to) of the table (or flags) and
// returns the row it got to.
func (b *tableBuilder) decodeColumn(cc parquet.ColumnChunk, col tableColumn, flags [2][]bool, from, to int) (int, error) {
	row := from
	var dict parquet.Dictionary
	var dictNumbers []uint32 // string numbers of dict's values (string columns)
	var dictFlags []bool     // whether dict's values are non-empty (flag columns)
	err := eachPage(cc, func(p parquet.Page) error {
		count := int(p.NumValues())
		if count > to-row {
			return fmt.Errorf("more values than the row group's %d rows", to-from)
		}
		values := p.Data()
		var idx []int32
		var words []byte
		var offsets []uint32
		var ints []int64
		have := 0 // values in the page (its non-NULL rows)
		switch d := p.Dictionary(); {
		case d != nil && col.time < 0 && values.Kind() == encoding.Int32:
			if d != dict {
				dict, dictNumbers, dictFlags = d, nil, nil
				ds := d.Page().Data()
				dw, doff := ds.ByteArray()
				for k := range d.Len() {
					s := dw[doff[k]:doff[k+1]]
					if col.str >= 0 {
						dictNumbers = append(dictNumbers, b.str(col.str, s))
					} else {
						dictFlags = append(dictFlags, len(s) > 0)
					}
				}
			}
			idx = values.Int32()
			have = len(idx)
		case d == nil && col.time < 0 && values.Kind() == encoding.ByteArray:
			words, offsets = values.ByteArray()
			have = max(len(offsets)-1, 0)
		case d == nil && col.str < 0 && col.time >= 0 && values.Kind() == encoding.Int64:
			ints = values.Int64()
			have = len(ints)
		default:
			return fmt.Errorf("%w: a page of %s", errPageLayout, p.Type())
		}
		defs := p.DefinitionLevels()
		if len(defs) > 0 && len(defs) != count {
			return fmt.Errorf("%d definition levels for %d values", len(defs), count)
		}
		v := 0
		for k := range count {
			if len(defs) > 0 && defs[k] == 0 {
				continue // NULL: string 0, NoTime, no flag
			}
			if v >= have {
				return fmt.Errorf("%d values for the %d rows of a page", have, count)
			}
			r := row + k
			switch {
			case idx != nil:
				ix := idx[v]
				if ix < 0 || int(ix) >= dict.Len() {
					return fmt.Errorf("dictionary index %d of %d", ix, dict.Len())
				}
				if col.str >= 0 {
					b.t.Strings[col.str][r] = dictNumbers[ix]
				} else {
					flags[col.flag][r] = dictFlags[ix]
				}
			case ints != nil:
				b.t.Times[col.time][r] = ints[v] * 1000 // microseconds in the file
			default:
				s := words[offsets[v]:offsets[v+1]]
				if col.str >= 0 {
					b.t.Strings[col.str][r] = b.str(col.str, s)
				} else {
					flags[col.flag][r] = len(s) > 0
				}
			}
			v++
		}
		row += count
		return nil
	})
	return row, err
}
