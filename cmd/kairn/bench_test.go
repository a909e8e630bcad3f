package main

import (
	"bufio"
	"bytes"
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

// BenchmarkIngestPipeline is decode → link → Parquet encode, and reports bytes per span.
func BenchmarkIngestPipeline(b *testing.B) {
	path, lines := benchAudit(b)
	info, _ := os.Stat(path)
	var spans, parquetBytes int
	b.ResetTimer()
	for range b.N {
		batch := link.NewBatch(link.Config{})
		if _, err := collect.ReadAuditFile(path, collect.FileOptions{Cluster: "bench"}, &ingestSink{Batch: batch}); err != nil {
			b.Fatal(err)
		}
		rows, _ := batch.Spans()
		archive.SortSpans(rows)
		data, err := archive.EncodeParquet(rows)
		if err != nil {
			b.Fatal(err)
		}
		spans, parquetBytes = len(rows), len(data)
	}
	reportEvents(b, len(lines), int(info.Size()))
	b.ReportMetric(float64(parquetBytes)/float64(spans), "parquet-bytes/span")
}

// BenchmarkMergeRows is the merger's stitching over one partition: the recording's spans,
// replicated into 20 clusters' worth of objects and written twice (two writers that saw the same
// facts), so that de-duplication and re-linking do real work.
func BenchmarkMergeRows(b *testing.B) {
	audit, watches := recordingFiles(b)
	batch := link.NewBatch(link.Config{})
	sink := &ingestSink{Batch: batch}
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
		link.MergeRows(in)
	}
	b.ReportMetric(float64(len(rows)*b.N)/b.Elapsed().Seconds(), "rows/s")
}
