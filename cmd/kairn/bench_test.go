package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/collect"
	"github.com/kairn-dev/kairn/link"
)

// benchAudit returns the bundled recording's audit log, uncompressed, as a file and its lines.
func benchAudit(b *testing.B) (string, [][]byte) {
	b.Helper()
	audit, _ := recordingFiles(b)
	data := gunzipFile(b, audit)
	p := filepath.Join(b.TempDir(), "audit.log")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	return p, lines
}

func reportEvents(b *testing.B, events, size int) {
	b.SetBytes(int64(size))
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStdlibDecode is the baseline: plain encoding/json of the same bytes into generic maps.
func BenchmarkStdlibDecode(b *testing.B) {
	_, lines := benchAudit(b)
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	b.ResetTimer()
	for range b.N {
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportEvents(b, len(lines), size)
}

type discard struct{ n int }

func (d *discard) Observe(link.Observation)    { d.n++ }
func (d *discard) Revise(link.Revision)        { d.n++ }
func (d *discard) Malformed(collect.Malformed) {}

// BenchmarkAuditDecode is kairn's audit decoder alone (split, decode, observation + revision).
func BenchmarkAuditDecode(b *testing.B) {
	path, lines := benchAudit(b)
	info, _ := os.Stat(path)
	b.ResetTimer()
	for range b.N {
		if _, err := collect.ReadAuditFile(path, collect.FileOptions{Cluster: "bench"}, &discard{}); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, len(lines), int(info.Size()))
}

// BenchmarkIngestPipeline is the whole ingest: decode → spool (fsync'd) → link per window →
// Parquet parts in a local archive. It reports bytes per span of the parts.
func BenchmarkIngestPipeline(b *testing.B) {
	path, lines := benchAudit(b)
	info, _ := os.Stat(path)
	var spans, parquetBytes int
	b.ResetTimer()
	for range b.N {
		dir := b.TempDir()
		store, _ := archive.OpenLocal(filepath.Join(dir, "archive"))
		p, err := openPipeline(pipelineConfig{Store: store, SpoolDir: filepath.Join(dir, "spool"), Window: link.DefaultWindow, Writer: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		sink := &committingSink{Batch: p.NewBatch()}
		if _, err := collect.ReadAuditFile(path, collect.FileOptions{Cluster: "bench"}, sink); err != nil {
			b.Fatal(err)
		}
		if err := sink.Commit(); err != nil {
			b.Fatal(err)
		}
		if err := p.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		p.Close()
		objs, _ := store.List(context.Background(), archive.SpansPrefix)
		parquetBytes = 0
		for _, o := range objs {
			parquetBytes += int(o.Size)
		}
		spans = p.rows
	}
	reportEvents(b, len(lines), int(info.Size()))
	b.ReportMetric(float64(parquetBytes)/float64(spans), "parquet-bytes/span")
}

// batchSink links everything in one batch, in memory.
type batchSink struct{ *link.Batch }

func (batchSink) Malformed(collect.Malformed) {}

// BenchmarkMergeRows is the merger's stitching over one partition: the recording's spans,
// replicated into 20 clusters' worth of objects and written twice (two writers that saw the same
// facts), so that de-duplication and re-linking do real work.
func BenchmarkMergeRows(b *testing.B) {
	audit, watches := recordingFiles(b)
	batch := link.NewBatch(link.Config{})
	sink := batchSink{batch}
	if _, err := collect.ReadAuditFile(audit, collect.FileOptions{Cluster: "bench"}, sink); err != nil {
		b.Fatal(err)
	}
	for _, w := range watches {
		if _, err := collect.ReadWatchFile(w, collect.FileOptions{Cluster: "bench"}, sink); err != nil {
			b.Fatal(err)
		}
	}
	base, _ := batch.Spans()
	var rows []archive.Span
	for copyN := range 20 {
		for _, r := range base {
			r.Cluster = r.Cluster + "-" + string(rune('a'+copyN))
			r.SpanID += string(rune('a' + copyN))
			if r.ParentSpanID != "" {
				r.ParentSpanID += string(rune('a' + copyN))
			}
			if r.ObservationID != "" {
				r.ObservationID += "/" + string(rune('a'+copyN))
			}
			rows = append(rows, r, r)
		}
	}
	b.ResetTimer()
	for range b.N {
		in := append([]archive.Span(nil), rows...)
		link.MergeRows(in, nil)
	}
	b.ReportMetric(float64(len(rows)*b.N)/b.Elapsed().Seconds(), "rows/s")
}
