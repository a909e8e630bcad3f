package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// IndexPrefix is where the object index lives: objects/cluster=<c>/window=<w>/index.parquet, one
// row per object per window, written by the merger beside the partition it describes. Reading
// the (small) index first tells which windows hold an object's story, so its whole lifecycle is
// read without scanning unrelated partitions.
const IndexPrefix = "objects/"

// IndexRow is one object in one window.
type IndexRow struct {
	Cluster     string    `parquet:"cluster,dict"`
	APIGroup    string    `parquet:"api_group,optional,dict"`
	Resource    string    `parquet:"resource,dict"`
	Namespace   string    `parquet:"namespace,optional,dict"`
	Name        string    `parquet:"name,dict"`
	UID         string    `parquet:"uid,optional"`
	ObjectKind  string    `parquet:"object_kind,optional,dict"`
	WindowStart time.Time `parquet:"window_start,timestamp(microsecond)"`
	FirstSeen   time.Time `parquet:"first_seen,timestamp(microsecond)"`
	LastSeen    time.Time `parquet:"last_seen,timestamp(microsecond)"`
	CreatedAt   time.Time `parquet:"created_at,optional,timestamp(microsecond)"`
	DeletedAt   time.Time `parquet:"deleted_at,optional,timestamp(microsecond)"`
	TraceID     string    `parquet:"trace_id,dict"`
	SpanID      string    `parquet:"span_id"`
	ParentUID   string    `parquet:"parent_uid,optional"`
	// ObjectHash is ObjectHash of the key above: a trace id names its object by it, so finding an
	// object in a partition reads this one column instead of six. Since schema version 2.
	ObjectHash int64 `parquet:"object_hash"`
	// PartRow and PartRows are where the object's rows lie in the merged part the index was
	// written with (its kairn.index.part metadata; without it they mean nothing): rows
	// [PartRow, PartRow+PartRows), so that a trace's rows are found without scanning the part's
	// trace_id column. PartRows 0: not known (a trace some row of which lies outside its
	// objects' ranges). Since schema version 3.
	PartRow  int64 `parquet:"part_row"`
	PartRows int32 `parquet:"part_rows"`
}

// IndexPartKey is the key/value metadata naming the part an index's PartRow and PartRows refer
// to (its base name).
const IndexPartKey = "kairn.index.part"

// ObjectHash names an object in 56 bits: the first 7 bytes of a SHA-256 of its key, big endian.
// The query server's trace ids carry it (serve.TraceID); the object index stores it.
func ObjectHash(cluster, group, resource, namespace, name, uid string) int64 {
	h := sha256.Sum256([]byte(strings.Join([]string{"kairn-object", cluster, group, resource, namespace, name, uid}, "\x00")))
	return int64(binary.BigEndian.Uint64(h[:8]) >> 8)
}

// IndexKey is the index file of a partition.
func IndexKey(p Partition) string {
	return fmt.Sprintf("%scluster=%s/window=%s/index.parquet", IndexPrefix, p.Cluster, WindowKey(p.Window))
}

// BuildIndex derives the index rows of a partition from its (merged) span rows; PartRow and
// PartRows are positions in rows.
func BuildIndex(rows []Span) []IndexRow {
	lives := map[string]*life{}
	for i := range rows {
		r := &rows[i]
		if r.Kind != KindChange || r.UID == "" {
			continue
		}
		l := lives[r.UID]
		if l == nil {
			l = &life{}
			lives[r.UID] = l
		}
		switch r.Verb {
		case "create":
			if l.created.IsZero() || r.StartTime.Before(l.created) {
				l.created = r.StartTime
			}
		case "delete":
			if r.StartTime.After(l.deleted) {
				l.deleted = r.StartTime
			}
		}
	}
	var out []IndexRow
	unranged := map[string]bool{} // traces with a row outside their objects' ranges
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && sameObject(&rows[start], &rows[end]) {
			end++
		}
		objects := 0
		for i := start; i < end; i++ {
			if rows[i].Kind == KindObject {
				objects++
			}
		}
		if objects != 1 || end-start > math.MaxInt32 {
			for i := start; i < end; i++ {
				unranged[rows[i].TraceID] = true
			}
		}
		for i := start; i < end; i++ {
			r := &rows[i]
			if r.Kind != KindObject {
				continue
			}
			for k := start; k < end; k++ {
				if rows[k].TraceID != r.TraceID {
					unranged[r.TraceID], unranged[rows[k].TraceID] = true, true
				}
			}
			out = append(out, indexRow(r, lives[r.UID], int64(start), int32(end-start)))
		}
		start = end
	}
	for i := range out {
		if unranged[out[i].TraceID] {
			out[i].PartRow, out[i].PartRows = 0, 0
		}
	}
	return out
}

// sameObject says whether two rows are of the same object (the part's sort order begins so).
func sameObject(a, b *Span) bool {
	return a.Cluster == b.Cluster && a.APIGroup == b.APIGroup && a.Resource == b.Resource &&
		a.Namespace == b.Namespace && a.Name == b.Name && a.UID == b.UID
}

func indexRow(r *Span, l *life, partRow int64, partRows int32) IndexRow {
	ir := IndexRow{
		Cluster: r.Cluster, APIGroup: r.APIGroup, Resource: r.Resource, Namespace: r.Namespace, Name: r.Name, UID: r.UID,
		ObjectKind: r.ObjectKind, WindowStart: r.WindowStart, FirstSeen: r.StartTime, LastSeen: r.EndTime,
		TraceID: r.TraceID, SpanID: r.SpanID, ParentUID: r.ParentUID,
		ObjectHash: ObjectHash(r.Cluster, r.APIGroup, r.Resource, r.Namespace, r.Name, r.UID),
		PartRow:    partRow, PartRows: partRows,
	}
	if l != nil {
		ir.CreatedAt, ir.DeletedAt = l.created, l.deleted
	}
	return ir
}

// life is when an object was created and deleted, by its changes.
type life struct{ created, deleted time.Time }

// EncodeIndex writes index rows as one Parquet file.
func EncodeIndex(rows []IndexRow) ([]byte, error) { return encodeIndex(rows) }

func encodeIndex(rows []IndexRow, opts ...parquet.WriterOption) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[IndexRow](&buf, append([]parquet.WriterOption{
		parquet.Compression(zstdCodec),
		parquet.KeyValueMetadata("kairn.schema.version", SchemaVersion),
	}, opts...)...)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeIndex reads an index file. It decodes column by column straight into the rows:
// parquet.Read goes row by row through generic values, and took 5x the CPU on the query
// server's first read of a trace's 48 small indexes. Columns it does not know are skipped.
func DecodeIndex(data []byte) ([]IndexRow, error) {
	rows, err := decodeWhole(data, decodeIndex)
	if err != nil {
		return nil, fmt.Errorf("decode index: %w", err)
	}
	return rows, nil
}

// ErrNoColumn is wrapped by DecodeObjectTraces's error when the file lacks a column it reads
// (an index written before the column was added).
var ErrNoColumn = errors.New("no such column")

func decodeIndex(data []byte) ([]IndexRow, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	// Every row holds a unique span id, stored plain: a footer claiming more rows than the file
	// has bytes is damaged, and must not size the allocation.
	claimed := int64(0)
	for _, rg := range f.RowGroups() {
		claimed += rg.NumRows()
	}
	if n := f.NumRows(); n < 0 || n > int64(len(data)) || claimed != n {
		return nil, fmt.Errorf("the footer claims %d rows (row groups: %d) in %d bytes", n, claimed, len(data))
	}
	rows := make([]IndexRow, f.NumRows())
	leaves := f.Schema().Columns()
	seen := map[string]string{} // dictionary strings, shared by the rows
	intern := func(v parquet.Value) string {
		b := v.ByteArray()
		if s, ok := seen[string(b)]; ok {
			return s
		}
		s := string(b)
		seen[s] = s
		return s
	}
	var values []parquet.Value
	base := 0
	for _, rg := range f.RowGroups() {
		n := int(rg.NumRows())
		for j, cc := range rg.ColumnChunks() {
			set := indexSetters[leaves[j][0]]
			if set == nil || len(leaves[j]) != 1 {
				continue
			}
			row, err := decodeIndexColumn(cc, rows[base:base+n], set, intern, &values)
			if err == nil && row != n {
				err = fmt.Errorf("%d values for %d rows", row, n)
			}
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", leaves[j][0], err)
			}
		}
		base += n
	}
	return rows, nil
}

// decodeIndexColumn sets one column of rows from its chunk and returns how many values it read.
// Strings of dictionary pages are interned (few distinct ones); the others are copied.
func decodeIndexColumn(cc parquet.ColumnChunk, rows []IndexRow, set indexSetter, intern func(parquet.Value) string, buf *[]parquet.Value) (int, error) {
	pages := cc.Pages()
	defer pages.Close()
	row := 0
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return row, nil
		}
		if err != nil {
			return row, err
		}
		str := plainString
		if p.Dictionary() != nil {
			str = intern
		}
		values := slices.Grow((*buf)[:0], int(p.NumValues()))[:p.NumValues()]
		got, err := p.Values().ReadValues(values)
		parquet.Release(p)
		if err != nil && !errors.Is(err, io.EOF) {
			return row, err
		}
		if row+got > len(rows) {
			return row + got, fmt.Errorf("more values than the row group's %d rows", len(rows))
		}
		for _, v := range values[:got] {
			if !v.IsNull() {
				set(&rows[row], v, str)
			}
			row++
		}
		*buf = values[:0]
	}
}

func plainString(v parquet.Value) string { return string(v.ByteArray()) }

type indexSetter func(r *IndexRow, v parquet.Value, str func(parquet.Value) string)

func indexString(f func(*IndexRow) *string) indexSetter {
	return func(r *IndexRow, v parquet.Value, str func(parquet.Value) string) { *f(r) = str(v) }
}

func indexTime(f func(*IndexRow) *time.Time) indexSetter {
	return func(r *IndexRow, v parquet.Value, _ func(parquet.Value) string) {
		*f(r) = time.UnixMicro(v.Int64()).UTC()
	}
}

// indexSetters sets each column of IndexRow, by its Parquet name (the struct tags above).
var indexSetters = map[string]indexSetter{
	"cluster":      indexString(func(r *IndexRow) *string { return &r.Cluster }),
	"api_group":    indexString(func(r *IndexRow) *string { return &r.APIGroup }),
	"resource":     indexString(func(r *IndexRow) *string { return &r.Resource }),
	"namespace":    indexString(func(r *IndexRow) *string { return &r.Namespace }),
	"name":         indexString(func(r *IndexRow) *string { return &r.Name }),
	"uid":          indexString(func(r *IndexRow) *string { return &r.UID }),
	"object_kind":  indexString(func(r *IndexRow) *string { return &r.ObjectKind }),
	"window_start": indexTime(func(r *IndexRow) *time.Time { return &r.WindowStart }),
	"first_seen":   indexTime(func(r *IndexRow) *time.Time { return &r.FirstSeen }),
	"last_seen":    indexTime(func(r *IndexRow) *time.Time { return &r.LastSeen }),
	"created_at":   indexTime(func(r *IndexRow) *time.Time { return &r.CreatedAt }),
	"deleted_at":   indexTime(func(r *IndexRow) *time.Time { return &r.DeletedAt }),
	"trace_id":     indexString(func(r *IndexRow) *string { return &r.TraceID }),
	"span_id":      indexString(func(r *IndexRow) *string { return &r.SpanID }),
	"parent_uid":   indexString(func(r *IndexRow) *string { return &r.ParentUID }),
	"object_hash": func(r *IndexRow, v parquet.Value, _ func(parquet.Value) string) {
		r.ObjectHash = v.Int64()
	},
	"part_row": func(r *IndexRow, v parquet.Value, _ func(parquet.Value) string) {
		r.PartRow = v.Int64()
	},
	"part_rows": func(r *IndexRow, v parquet.Value, _ func(parquet.Value) string) {
		r.PartRows = v.Int32()
	},
}

// WriteIndex writes the object index of a partition whose rows, in this order, are its merged
// part named part.
func WriteIndex(ctx context.Context, store Store, p Partition, part string, rows []Span) error {
	data, err := encodeIndex(BuildIndex(rows), parquet.KeyValueMetadata(IndexPartKey, part))
	if err != nil {
		return err
	}
	return store.Put(ctx, IndexKey(p), bytes.NewReader(data), int64(len(data)))
}
