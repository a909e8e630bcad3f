package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/collect"
	"github.com/kairn-dev/kairn/internal/benchrow"
	"github.com/kairn-dev/kairn/internal/jsonscan"
	"github.com/kairn-dev/kairn/internal/synth"
	"github.com/kairn-dev/kairn/link"
)

// benchConfig is the generated traffic the ingest benchmarks read: 30 Deployments of 3 replicas
// rolled out twice over an hour (two windows), with the recordings' Metadata background.
var benchConfig = synth.Config{Seed: 1, Deployments: 30, Replicas: 3, Rollouts: 2, Duration: time.Hour}

var benchOnce struct {
	sync.Once
	data  []byte
	lines [][]byte
}

// benchAudit returns the generated audit log as a file and its lines.
func benchAudit(b *testing.B) (string, [][]byte) {
	b.Helper()
	benchOnce.Do(func() {
		benchOnce.data = synth.Generate(benchConfig)[0].Audit
		sc := bufio.NewScanner(bytes.NewReader(benchOnce.data))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			benchOnce.lines = append(benchOnce.lines, bytes.Clone(sc.Bytes()))
		}
	})
	p := filepath.Join(b.TempDir(), "audit.log")
	if err := os.WriteFile(p, benchOnce.data, 0o644); err != nil {
		b.Fatal(err)
	}
	return p, benchOnce.lines
}

func reportEvents(b *testing.B, events, size int) {
	b.SetBytes(int64(size))
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// neededFields is what kairn reads of an audit event, decoded by encoding/json into a struct: the
// bodies are validated but kept raw.
type neededFields struct {
	Kind      string `json:"kind"`
	AuditID   string `json:"auditID"`
	Stage     string `json:"stage"`
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		Resource, Namespace, Name, UID, APIGroup, APIVersion, ResourceVersion, Subresource string
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code    int32  `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"responseStatus"`
	RequestObject            json.RawMessage `json:"requestObject"`
	ResponseObject           json.RawMessage `json:"responseObject"`
	RequestReceivedTimestamp time.Time       `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time       `json:"stageTimestamp"`
}

func stdlibMaps(lines [][]byte) error {
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			return err
		}
	}
	return nil
}

func stdlibStruct(lines [][]byte) error {
	for _, l := range lines {
		var e neededFields
		if err := json.Unmarshal(l, &e); err != nil {
			return err
		}
	}
	return nil
}

// ratios compares a measured stage with encoding/json decoding the same lines, in the same run:
// each iteration also times both stdlib baselines (timer stopped), and the ratios are of the best
// times seen, so a load spike on the shared machine skews neither side. The sums of all
// iterations give a second ratio (sum-x-stdlib-map) that drifts less between runs when the
// machine's speed changes from one iteration to the next.
type ratios struct {
	events                int
	best, bestMap, bestSt time.Duration
	sum, sumMap           time.Duration
}

func newRatios(events int) *ratios {
	const never = time.Duration(1 << 62)
	return &ratios{events: events, best: never, bestMap: never, bestSt: never}
}

// iteration records one timed iteration of the stage, then times the baselines.
func (r *ratios) iteration(b *testing.B, took time.Duration, lines [][]byte) {
	b.StopTimer()
	defer b.StartTimer()
	r.best = min(r.best, took)
	r.sum += took
	for _, base := range []struct {
		decode    func([][]byte) error
		best, sum *time.Duration
	}{{stdlibMaps, &r.bestMap, &r.sumMap}, {stdlibStruct, &r.bestSt, new(time.Duration)}} {
		start := time.Now()
		if err := base.decode(lines); err != nil {
			b.Fatal(err)
		}
		*base.best = min(*base.best, time.Since(start))
		*base.sum += time.Since(start)
	}
}

// record adds the stage to make bench's table: events/s against the map baseline, with the
// issue's throughput target, and with a ratio target the ratio itself as a second row.
func (r *ratios) record(name string, target, ratioTarget float64) {
	rate, base := float64(r.events)/r.best.Seconds(), float64(r.events)/r.bestMap.Seconds()
	benchrow.Record(benchrow.Row{Name: name + ", one core", Value: rate, Unit: "events/s", Baseline: base,
		BaselineName: "encoding/json into maps", Target: target})
	if ratioTarget > 0 {
		benchrow.Record(benchrow.Row{Name: name + " / encoding/json of the same bytes", Value: rate / base, Unit: "×", Target: ratioTarget})
	}
}

func (r *ratios) report(b *testing.B) {
	b.ReportMetric(float64(r.events)/r.best.Seconds(), "best-events/s")
	b.ReportMetric(float64(r.events)/r.bestMap.Seconds(), "stdlib-map-events/s")
	b.ReportMetric(r.bestMap.Seconds()/r.best.Seconds(), "x-stdlib-map")
	b.ReportMetric(r.bestSt.Seconds()/r.best.Seconds(), "x-stdlib-struct")
	b.ReportMetric(r.sumMap.Seconds()/r.sum.Seconds(), "sum-x-stdlib-map")
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
		if err := stdlibMaps(lines); err != nil {
			b.Fatal(err)
		}
	}
	reportEvents(b, len(lines), size)
}

// BenchmarkStdlibDecodeStruct is the other baseline: encoding/json into a struct of the fields
// kairn reads (bodies validated, kept raw).
func BenchmarkStdlibDecodeStruct(b *testing.B) {
	_, lines := benchAudit(b)
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	b.ResetTimer()
	for range b.N {
		if err := stdlibStruct(lines); err != nil {
			b.Fatal(err)
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
	r := newRatios(len(lines))
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := collect.ReadAuditFile(path, collect.FileOptions{Cluster: "bench"}, &discard{}); err != nil {
			b.Fatal(err)
		}
		r.iteration(b, time.Since(start), lines)
	}
	reportEvents(b, len(lines), int(info.Size()))
	r.report(b)
	r.record("audit decode", 0, 0)
}

// BenchmarkIngestPipeline is the whole ingest: decode → spool (fsync'd) → link per window →
// Parquet parts in a local archive. It reports bytes per span of the parts.
func BenchmarkIngestPipeline(b *testing.B) {
	path, lines := benchAudit(b)
	info, _ := os.Stat(path)
	var spans, parquetBytes int
	r := newRatios(len(lines))
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		dir := b.TempDir()
		store, _ := archive.OpenLocal(filepath.Join(dir, "archive"))
		p, err := openPipeline(pipelineConfig{Store: store, SpoolDir: filepath.Join(dir, "spool"), Window: link.DefaultWindow, Writer: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		sink := newCommittingSink(p)
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
		r.iteration(b, time.Since(start), lines)
		objs, _ := store.List(context.Background(), archive.SpansPrefix)
		parquetBytes = 0
		for _, o := range objs {
			parquetBytes += int(o.Size)
		}
		spans = p.rows
	}
	reportEvents(b, len(lines), int(info.Size()))
	r.report(b)
	b.ReportMetric(float64(parquetBytes)/float64(spans), "parquet-bytes/span")
	r.record("ingest (decode → spool → link → Parquet)", 100_000, 1.0)
	benchrow.Record(benchrow.Row{Name: "Parquet bytes per span (generated traffic)", Value: float64(parquetBytes) / float64(spans), Unit: "B", Target: 120, Max: true})
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
	benchrow.Record(benchrow.Row{Name: "merge, one core", Value: float64(len(rows)*b.N) / b.Elapsed().Seconds(), Unit: "rows/s"})
}

// BenchmarkValidateOnly is the floor under any decoder that rejects what encoding/json rejects:
// one validating pass over the same lines and nothing else (kairn's scanner, and json.Valid).
func BenchmarkValidateOnly(b *testing.B) {
	_, lines := benchAudit(b)
	size := 0
	for _, l := range lines {
		size += len(l)
	}
	for _, v := range []struct {
		name  string
		valid func([]byte) bool
	}{
		{"jsonscan", func(l []byte) bool {
			end, err := jsonscan.Skip(l, 0, false)
			return err == nil && jsonscan.End(l, end) == nil
		}},
		{"encoding-json", json.Valid},
	} {
		b.Run(v.name, func(b *testing.B) {
			for range b.N {
				for _, l := range lines {
					if !v.valid(l) {
						b.Fatal("invalid line")
					}
				}
			}
			reportEvents(b, len(lines), size)
		})
	}
}

// BenchmarkIngestStages splits BenchmarkIngestPipeline's work into its stages, each timed alone on
// the same generated log in the same iteration, so the table shows what each costs per event and
// which one a throughput target would have to come out of: decode (collect, into a sink that
// drops everything), spool (the records encoded and appended, fsync'd: decode + spool minus
// decode), replay (the spooled records read back), link (replayed into a link.Batch, Spans, the
// revisions kept: replay + link minus replay) and Parquet (archive.WriteParts of the rows into a
// local archive). encoding/json into maps is timed on the same lines in the same iteration.
func BenchmarkIngestStages(b *testing.B) {
	path, lines := benchAudit(b)
	stages := []string{"decode", "spool", "replay", "link", "Parquet"}
	best := make([]time.Duration, len(stages))
	for i := range best {
		best[i] = 1 << 62
	}
	base := newRatios(len(lines)) // the stdlib baselines, timed as the other ingest benchmarks time them
	timed := func(fn func()) time.Duration {
		start := time.Now()
		fn()
		return time.Since(start)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	var rowsN int
	for range b.N {
		dir := b.TempDir()
		store, err := archive.OpenLocal(filepath.Join(dir, "archive"))
		must(err)
		p, err := openPipeline(pipelineConfig{Store: store, SpoolDir: filepath.Join(dir, "spool"), Window: link.DefaultWindow, Writer: "bench"})
		must(err)
		decode := timed(func() {
			_, err := collect.ReadAuditFile(path, collect.FileOptions{Cluster: "bench"}, &discard{})
			must(err)
		})
		spooled := timed(func() {
			sink := newCommittingSink(p)
			_, err := collect.ReadAuditFile(path, collect.FileOptions{Cluster: "bench"}, sink)
			must(err)
			must(sink.Commit())
		})
		var starts []time.Time
		for _, w := range p.spool.Windows() {
			starts = append(starts, w.Start)
		}
		segs, err := p.spool.CloseWindows(starts...)
		must(err)
		replay := timed(func() {
			for _, seg := range segs {
				must(p.spool.Replay(seg, func([]byte) error { return nil }))
			}
		})
		var rows [][]archive.Span
		replayLink := timed(func() {
			for _, seg := range segs {
				batch := link.NewBatch(link.Config{Window: link.DefaultWindow, History: p.history})
				must(p.spool.Replay(seg, batch.AddRecord))
				r, _ := batch.Spans()
				must(p.history.Put(batch.LastRevisions()...))
				rows = append(rows, r)
			}
		})
		write := timed(func() {
			for _, r := range rows {
				_, err := archive.WriteParts(context.Background(), store, "bench", r)
				must(err)
			}
		})
		p.Close()
		rowsN = 0
		for _, r := range rows {
			rowsN += len(r)
		}
		took := []time.Duration{decode, spooled - decode, replay, replayLink - replay, write}
		for i, d := range took {
			best[i] = min(best[i], d)
		}
		base.iteration(b, spooled+replayLink+write, lines)
	}
	bestMap := base.bestMap
	perEvent := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(len(lines)) }
	var sum time.Duration
	for _, d := range best {
		sum += d
	}
	for i, name := range stages {
		b.ReportMetric(perEvent(best[i]), name+"-µs/event")
		benchrow.Record(benchrow.Row{Name: "ingest stage: " + name + ", one core", Value: perEvent(best[i]), Unit: "µs/event",
			Baseline: perEvent(bestMap), BaselineName: "encoding/json into maps",
			Note: fmt.Sprintf("%.0f %% of the stages' sum; 100k events/s is 10 µs/event for all of them", 100*best[i].Seconds()/sum.Seconds())})
	}
	b.ReportMetric(perEvent(sum), "sum-µs/event")
	b.ReportMetric(perEvent(bestMap), "stdlib-map-µs/event")
	b.ReportMetric(float64(rowsN)/float64(len(lines)), "rows/event")
}
