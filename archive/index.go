package archive

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
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
	TraceID     string    `parquet:"trace_id"`
	SpanID      string    `parquet:"span_id"`
	ParentUID   string    `parquet:"parent_uid,optional"`
}

// IndexKey is the index file of a partition.
func IndexKey(p Partition) string {
	return fmt.Sprintf("%scluster=%s/window=%s/index.parquet", IndexPrefix, p.Cluster, WindowKey(p.Window))
}

// BuildIndex derives the index rows of a partition from its (merged) span rows.
func BuildIndex(rows []Span) []IndexRow {
	type life struct{ created, deleted time.Time }
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
	for i := range rows {
		r := &rows[i]
		if r.Kind != KindObject {
			continue
		}
		ir := IndexRow{
			Cluster: r.Cluster, APIGroup: r.APIGroup, Resource: r.Resource, Namespace: r.Namespace, Name: r.Name, UID: r.UID,
			ObjectKind: r.ObjectKind, WindowStart: r.WindowStart, FirstSeen: r.StartTime, LastSeen: r.EndTime,
			TraceID: r.TraceID, SpanID: r.SpanID, ParentUID: r.ParentUID,
		}
		if l := lives[r.UID]; l != nil {
			ir.CreatedAt, ir.DeletedAt = l.created, l.deleted
		}
		out = append(out, ir)
	}
	return out
}

// EncodeIndex writes index rows as one Parquet file.
func EncodeIndex(rows []IndexRow) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[IndexRow](&buf,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedDefault}),
		parquet.KeyValueMetadata("kairn.schema.version", SchemaVersion),
	)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteIndex writes the object index of a partition.
func WriteIndex(ctx context.Context, store Store, p Partition, rows []Span) error {
	data, err := EncodeIndex(BuildIndex(rows))
	if err != nil {
		return err
	}
	return store.Put(ctx, IndexKey(p), bytes.NewReader(data), int64(len(data)))
}
