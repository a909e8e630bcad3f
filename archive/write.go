package archive

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/zeebo/xxh3"
)

// SpansPrefix is where span parts live: spans/cluster=<c>/window=<yyyymmddThhmm>/<part>.parquet.
const SpansPrefix = "spans/"

// PartKey is the object key of a span part.
func PartKey(cluster string, window time.Time, part string) string {
	return fmt.Sprintf("%scluster=%s/window=%s/%s.parquet", SpansPrefix, cluster, WindowKey(window), part)
}

// SortSpans orders rows by object, then object span first, then time: the order readers and
// the merger rely on. Rows are large, so it sorts their indexes and moves each row once. Rows
// that come in order (a linked batch's do) are only checked.
func SortSpans(rows []Span) {
	if sorted(rows) {
		return
	}
	idx := make([]int32, len(rows))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(i, j int32) int { return CompareSpans(&rows[i], &rows[j]) })
	// Apply the permutation in place, one cycle at a time: position k takes row idx[k].
	for start := range idx {
		if idx[start] < 0 || int(idx[start]) == start {
			continue
		}
		tmp := rows[start]
		k := start
		for {
			from := int(idx[k])
			idx[k] = -1
			if from == start {
				rows[k] = tmp
				break
			}
			rows[k] = rows[from]
			k = from
		}
	}
}

func sorted(rows []Span) bool {
	for i := 1; i < len(rows); i++ {
		if CompareSpans(&rows[i-1], &rows[i]) > 0 {
			return false
		}
	}
	return true
}

// CompareSpans is the order of SortSpans, comparing only as far as needed.
func CompareSpans(a, b *Span) int {
	if c := strings.Compare(a.Cluster, b.Cluster); c != 0 {
		return c
	}
	if c := strings.Compare(a.APIGroup, b.APIGroup); c != 0 {
		return c
	}
	if c := strings.Compare(a.Resource, b.Resource); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.UID, b.UID); c != 0 {
		return c
	}
	if c := cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)); c != 0 {
		return c
	}
	if c := a.StartTime.Compare(b.StartTime); c != 0 {
		return c
	}
	return strings.Compare(a.SpanID, b.SpanID)
}

func kindRank(k string) int {
	if k == KindObject {
		return 0
	}
	return 1
}

// The zstd codecs are shared by every part written: each pools its encoders, whose history
// tables are megabytes (a codec per part allocated them anew each time).
//
// Fresh parts, the flusher's, are written at zstd's fastest level: they are written on the
// ingest's one core, and read only until the merger rewrites their partition. On the generated
// traffic the fastest level makes parts 16 % larger than the default (91.7 against 78.9 B/span)
// and encoding ~20 % cheaper. What the merger writes stays, and is read by every report and
// trace: merged parts and object indexes use the "better compression" level. On the synthetic
// archive of 10 M spans that took merged parts from 878 to 687 MB and indexes from 163 to 115
// MB, a trace from MinIO fetches 22 % fewer bytes (first open p50 330 -> 256-278 ms), the
// reports ran as fast with the same output, and encoding a merged part costs ~35 % more
// (190k -> 145k rows/s).
var (
	zstdCodec      = &zstd.Codec{Level: zstd.SpeedBetterCompression}
	zstdCodecFresh = &zstd.Codec{Level: zstd.SpeedFastest}
)

// Row groups: rows are sorted by object, so a row group that holds one resource's rows carries
// statistics (api_group, resource) that let a reader skip the rest of the part. A query for
// Deployments then never decodes the pods' columns, the bulk of most parts (their `changes`
// above all). A group ends where the resource changes once it holds minGroupRows, so small
// resources share a group (each group repeats every dictionary and column-chunk header), and at
// maxGroupRows in any case, which also gives readers row groups to scan in parallel.
const (
	minGroupRows = 4096
	maxGroupRows = 256 << 10
)

// skipBounds leaves min/max statistics out for the columns of ids, versions, users, free text
// and the facts' own attributes (span kind, verb, stage, reason, ...): no reader prunes row
// groups by their ranges (rows are sorted by object, so these are spread over every group and
// each group's range is nearly the whole domain; a trace's rows are found by trace_id, whose
// bounds stay, and the object columns keep theirs), and computing them is per-page work on
// every row (about 7 % of encoding a part for the first list, 2 % more for the second).
var skipBounds = func() (opts []parquet.WriterOption) {
	for _, path := range [][]string{
		{"span_id"}, {"parent_span_id"}, {"observation_id"}, {"audit_id"}, {"message"},
		{"resource_version"}, {"prev_resource_version"}, {"user"}, {"user_agent"}, {"field_manager"},
		{"audit_link"}, {"changes", "list", "element", "path"},
		{"changes", "list", "element", "old"}, {"changes", "list", "element", "new"},
		{"links", "list", "element", "name"}, {"links", "list", "element", "uid"}, {"links", "list", "element", "span_id"},
		{"kind"}, {"time_source"}, {"stage"}, {"verb"}, {"subresource"}, {"reason"}, {"event_type"},
		{"reporter"}, {"revision_time_source"}, {"parent_uid"}, {"links", "list", "element", "relation"},
	} {
		opts = append(opts, parquet.SkipPageBounds(path...))
	}
	return opts
}()

// Pages: 256 KiB, except in parts that stay (EncodeParquet), where the columns only a trace
// reads get a page every tracePageRows rows. A trace is a few rows of each row group it
// touches, and the query server decompresses every page holding one of them: with 256 KiB
// pages that was ~2 MB per pod row group of the synthetic archive for ~15 rows. The columns
// reports read keep large pages, because DuckDB pays per page: 32 KiB pages for every column
// made rollout-first-pull 45–50 % more CPU (performance.md).
const tracePageRows = 1024

// tracePageColumns are the columns of tracePageRows pages: plain-encoded (ids, versions,
// times) and read by no report but a rare one; dictionary-encoded columns are cheap per row
// whatever their pages.
var tracePageColumns = [][]string{
	{"span_id"}, {"parent_span_id"}, {"end_time"}, {"observation_id"}, {"audit_id"},
	{"resource_version"}, {"prev_resource_version"},
}

// EncodeParquet writes rows (already sorted) as one zstd Parquet file, compressed to stay, with
// small pages for the columns only traces read (tracePageColumns).
func EncodeParquet(rows []Span) ([]byte, error) { return encodeParquet(rows, zstdCodec, tracePageRows) }

// encodeParquet writes rows as one Parquet file; pageRows > 0 ends a page of the
// tracePageColumns every pageRows rows.
func encodeParquet(rows []Span, codec *zstd.Codec, pageRows int) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[Span](&buf, append([]parquet.WriterOption{
		parquet.Compression(codec),
		parquet.KeyValueMetadata("kairn.schema.version", SchemaVersion),
		parquet.PageBufferSize(256 << 10),
		parquet.MaxRowsPerRowGroup(maxGroupRows),
	}, skipBounds...)...)
	var small []int // leaf indexes of tracePageColumns
	if pageRows > 0 {
		for i, path := range w.Schema().Columns() {
			if slices.ContainsFunc(tracePageColumns, func(p []string) bool { return slices.Equal(p, path) }) {
				small = append(small, i)
			}
		}
	}
	for len(rows) > 0 {
		n := groupEnd(rows)
		if err := writeGroup(w, rows[:n], pageRows, small); err != nil {
			return nil, fmt.Errorf("encode parquet: %w", err)
		}
		if err := w.Flush(); err != nil {
			return nil, fmt.Errorf("encode parquet: %w", err)
		}
		rows = rows[n:]
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode parquet: %w", err)
	}
	return buf.Bytes(), nil
}

// writeGroup writes one row group's rows, ending a page of each column in small every pageRows
// rows (pageRows 0: where parquet-go's page buffer fills).
func writeGroup(w *parquet.GenericWriter[Span], rows []Span, pageRows int, small []int) error {
	if pageRows <= 0 {
		_, err := w.Write(rows)
		return err
	}
	for len(rows) > 0 {
		n := min(len(rows), pageRows)
		if _, err := w.Write(rows[:n]); err != nil {
			return err
		}
		cols := w.ColumnWriters()
		for _, i := range small {
			if err := cols[i].Flush(); err != nil {
				return err
			}
		}
		rows = rows[n:]
	}
	return nil
}

// groupEnd is the number of rows of the next row group: up to the first change of resource
// after minGroupRows rows, at most maxGroupRows.
func groupEnd(rows []Span) int {
	for i := minGroupRows; i < len(rows) && i < maxGroupRows; i++ {
		a, b := &rows[i-1], &rows[i]
		if a.Cluster != b.Cluster || a.APIGroup != b.APIGroup || a.Resource != b.Resource {
			return i
		}
	}
	return min(len(rows), maxGroupRows)
}

// PartWritten describes one part put into the store.
type PartWritten struct {
	Key   string
	Rows  int
	Bytes int
}

// WriteParts groups rows by cluster and window, sorts each group, and puts one fresh part
// (fastest compression: see zstdCodecFresh) per group. It may reorder rows.
// The part name is writer plus a hash of the group's span ids, so writing the same facts again
// replaces the part instead of duplicating it.
func WriteParts(ctx context.Context, store Store, writer string, rows []Span) ([]PartWritten, error) {
	type group struct {
		cluster string
		window  time.Time
	}
	// Rows are grouped without growing slices of ~1 KB rows: counted first, and when they are
	// all one group (the usual case: one cluster's window) sorted where they are.
	counts := map[group]int{}
	for i := range rows {
		counts[group{rows[i].Cluster, rows[i].WindowStart}]++
	}
	groups := make(map[group][]Span, len(counts))
	if len(counts) == 1 {
		for g := range counts {
			groups[g] = rows
		}
	} else {
		for g, n := range counts {
			groups[g] = make([]Span, 0, n)
		}
		for i := range rows {
			g := group{rows[i].Cluster, rows[i].WindowStart}
			groups[g] = append(groups[g], rows[i])
		}
	}
	keys := make([]group, 0, len(groups))
	for g := range groups {
		keys = append(keys, g)
	}
	slices.SortFunc(keys, func(a, b group) int {
		return cmp.Or(cmp.Compare(a.cluster, b.cluster), a.window.Compare(b.window))
	})
	var out []PartWritten
	for _, g := range keys {
		part := groups[g]
		SortSpans(part)
		name := writer + "-" + contentHash(part)
		data, err := encodeParquet(part, zstdCodecFresh, 0)
		if err != nil {
			return out, err
		}
		key := PartKey(g.cluster, g.window, name)
		if err := store.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			return out, fmt.Errorf("put %s: %w", key, err)
		}
		out = append(out, PartWritten{Key: key, Rows: len(part), Bytes: len(data)})
	}
	return out, nil
}

// contentHash names a part by the span ids it holds (rows sorted), so the same facts always get
// the same name.
func contentHash(rows []Span) string {
	h := xxh3.New()
	for i := range rows {
		h.WriteString(rows[i].SpanID)
		h.WriteString(rows[i].ObservationID)
	}
	sum := h.Sum128().Bytes()
	return hex.EncodeToString(sum[:8])
}
