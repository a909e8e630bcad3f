package serve

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/internal/benchrow"
	"github.com/kairn-dev/kairn/internal/syntharchive"
	"github.com/kairn-dev/kairn/internal/testminio"
)

// benchArchive writes a merged archive of 48 windows (24 h) in which one Deployment has 10,000
// observations in all (≈ 208 per window) beside 200 other objects of 20 observations each per
// window, the way the merger leaves it: one merged part, the object index and the manifest.
func benchArchive(b *testing.B, store archive.Store) ObjectKey {
	b.Helper()
	ctx := context.Background()
	dep := ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "ns", Name: "big", UID: "u-big"}
	const windows, observations = 48, 10_000
	n := 0
	for i := range windows {
		w := t0.Add(time.Duration(i) * 30 * time.Minute)
		var rows []archive.Span
		obj := func(k ObjectKey, trace string, count int) {
			h := k.Hash()
			o := archive.Span{Kind: "object", TraceID: trace, SpanID: fmt.Sprintf("%x", h[:6]) + w.Format("1504"),
				Cluster: k.Cluster, APIGroup: k.Group, Resource: k.Resource, Namespace: k.Namespace, Name: k.Name, UID: k.UID,
				ObjectKind: "Deployment", WindowStart: w, StartTime: w, EndTime: w.Add(29 * time.Minute)}
			rows = append(rows, o)
			for j := range count {
				at := w.Add(time.Duration(j) * 29 * time.Minute / time.Duration(count))
				rows = append(rows, archive.Span{Kind: "change", TraceID: trace, SpanID: fmt.Sprintf("%08x%04x%04x", h[:4], i, j), ParentSpanID: o.SpanID,
					Cluster: k.Cluster, APIGroup: k.Group, Resource: k.Resource, Namespace: k.Namespace, Name: k.Name, UID: k.UID,
					WindowStart: w, StartTime: at, EndTime: at, Verb: "update", User: "system:serviceaccount:kube-system:deployment-controller",
					ResourceVersion: fmt.Sprint(1000 + j), ObservationID: fmt.Sprintf("change/%s/%d/%d", k.UID, i, j),
					Changes: []archive.FieldChange{{Path: "status.observedGeneration", Old: fmt.Sprint(j), New: fmt.Sprint(j + 1)}}})
			}
		}
		count := observations / windows
		if i < observations%windows {
			count++
		}
		n += count
		obj(dep, "trace-big", count)
		for k := range 200 {
			other := ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "ns", Name: fmt.Sprintf("other-%03d", k), UID: fmt.Sprintf("u-%d", k)}
			obj(other, fmt.Sprintf("trace-%d", k), 20)
		}
		slices.SortStableFunc(rows, func(a, b archive.Span) int {
			if c := cmpKey(a, b); c != 0 {
				return c
			}
			return a.StartTime.Compare(b.StartTime)
		})
		data, err := archive.EncodeParquet(rows)
		if err != nil {
			b.Fatal(err)
		}
		p := archive.Partition{Cluster: "c", Window: w}
		if err := store.Put(ctx, p.Prefix()+"ingest-bench.parquet", bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		pp, err := archive.ListPartition(ctx, store, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := archive.MergePartition(ctx, store, pp, keepRows); err != nil {
			b.Fatal(err)
		}
	}
	if n != observations {
		b.Fatalf("%d observations", n)
	}
	return dep
}

func cmpKey(a, b archive.Span) int {
	for _, c := range [][2]string{{a.Name, b.Name}, {a.Kind, b.Kind}} {
		if c[0] != c[1] {
			if c[0] < c[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// BenchmarkTrace48Windows fetches one object's trace across 48 windows with 10,000 observations
// (pipeline tree: every observation is a span) and reports p50 and p99 latency, the CPU time of
// the whole process per fetch (user + system, GC included; MinIO's own CPU is not counted), and
// the bytes fetched per fetch. Targets: p99 ≤ 100 ms from a local archive, ≤ 300 ms from MinIO.
//
// Variants per store: warm, decode (first open), cold (a new server): benchFetches. The baseline
// is the same run's time to read the 48 merged parts' bytes (8 at a time, as the reader does)
// and decode them whole with parquet-go (parquet.Read), the naive way to get the trace.
func BenchmarkTrace48Windows(b *testing.B) {
	// The collector's target kairn serve runs with (the baselines run with it too).
	defer debug.SetGCPercent(debug.SetGCPercent(GCPercent))
	b.Run("local", func(b *testing.B) {
		store, err := archive.OpenLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		benchTrace(b, store, "local", 100)
	})
	b.Run("minio", func(b *testing.B) {
		benchTrace(b, benchMinIO(b), "MinIO", 300)
	})
}

// benchMinIO starts a MinIO and returns an empty archive in it.
func benchMinIO(b *testing.B) archive.Store {
	endpoint, ak, sk := testminio.Start(b)
	testminio.Bucket(b, endpoint, ak, sk, "kairn")
	store, err := archive.OpenS3(context.Background(), "s3://kairn/bench", archive.S3Options{Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Region: "us-east-1"})
	if err != nil {
		b.Fatal(err)
	}
	return store
}

func benchTrace(b *testing.B, store archive.Store, where string, targetMs float64) {
	dep := benchArchive(b, store)
	id := newTraceID(Pipeline{DisplayTree, SelectSubtree}, dep, t0, t0.Add(24*time.Hour))
	_, decodeMs := benchBaseline(b, store, "")
	benchFetches(b, store, id, 10_001, "trace across 48 windows, 10k observations, "+where, targetMs, decodeMs, "decode the 48 parts whole")
}

// BenchmarkTraceSyntheticArchive is the same fetch on the synthetic archive of rollout-first-pull
// (internal/syntharchive, $KAIRN_BENCH_SPANS, `make bench` 10 M spans: 3 clusters × 48 windows,
// 14k objects and 67k rows a partition): one Deployment's trace across its cluster's 48 windows,
// found among the 144 partitions of the day by the object index. Where the 10k-observation
// archive above has small partitions, this one has an archive's: indexes of 1 MB, parts of 6 MB
// with large dictionaries. The baseline is reading the 48 parts' bytes. From a local directory
// and from MinIO (the archive copied in, ~5 s). Skipped without $KAIRN_BENCH_SPANS ≥ 1 M.
func BenchmarkTraceSyntheticArchive(b *testing.B) {
	spans, _ := strconv.Atoi(os.Getenv("KAIRN_BENCH_SPANS"))
	if spans < 1_000_000 {
		b.Skip("set KAIRN_BENCH_SPANS (make bench: 10000000)")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(GCPercent))
	dir, _, err := syntharchive.Cached(context.Background(), spans, b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	const cluster = "prod-1"
	g, res, ns, name, uid := syntharchive.Deployment(cluster, 2010%syntharchive.Deployments(spans))
	key := ObjectKey{Cluster: cluster, Group: g, Resource: res, Namespace: ns, Name: name, UID: uid}
	start := syntharchive.Start
	id := newTraceID(Pipeline{DisplayTree, SelectSubtree}, key, start, start.Add(24*time.Hour))
	b.Run("local", func(b *testing.B) {
		store, err := archive.OpenLocal(dir)
		if err != nil {
			b.Fatal(err)
		}
		readMs, _ := benchBaseline(b, store, "cluster="+cluster+"/")
		benchFetches(b, store, id, 0, "trace across 48 windows, synthetic 10 M-span archive, local", 100, readMs, "read the 48 parts' bytes")
	})
	b.Run("minio", func(b *testing.B) {
		store := benchMinIO(b)
		if err := syntharchive.CopyTo(context.Background(), dir, store); err != nil {
			b.Fatal(err)
		}
		readMs, _ := benchBaseline(b, store, "cluster="+cluster+"/")
		benchFetches(b, store, id, 0, "trace across 48 windows, synthetic 10 M-span archive, MinIO", 300, readMs, "read the 48 parts' bytes")
	})
}

// benchFetches times fetching trace id (and rendering it as OTLP) in four variants and records
// each p99: "warm" is a long-running server (listing cached for its TTL, object indexes and part
// footers cached); "decode" the same without the trace-rows cache: a trace opened for the first
// time in windows read before (their dictionaries cached, as after opening another trace there);
// "decode-nodict" nor the dictionaries: the first trace opened in those windows; "cold" a new
// server per request: nothing cached. wantSpans > 0 checks the trace's size.
func benchFetches(b *testing.B, store archive.Store, id TraceID, wantSpans int, name string, targetMs, baselineMs float64, baselineName string) {
	ctx := context.Background()
	for _, v := range []struct {
		name string
		cfg  ReaderConfig
		cold bool
	}{{"warm", ReaderConfig{}, false}, {"decode", ReaderConfig{CacheTraceRows: -1}, false},
		{"decode-nodict", ReaderConfig{CacheTraceRows: -1, CacheDictionaryBytes: -1}, false}, {"cold", ReaderConfig{}, true}} {
		b.Run(v.name, func(b *testing.B) {
			srv := New(store, Config{SpanLimit: -1, Reader: v.cfg})
			var bytesRead, requests int64
			spans := 0
			fetch := func() {
				if v.cold {
					srv = New(store, Config{SpanLimit: -1, Reader: v.cfg})
				}
				before, fetches := srv.reader.stats.bytes.Load(), srv.reader.stats.fetches.Load()
				defer func() {
					bytesRead += srv.reader.stats.bytes.Load() - before
					requests += srv.reader.stats.fetches.Load() - fetches
				}()
				t, err := srv.GetTrace(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				chunks, err := ToOTLP(t)
				if err != nil || (wantSpans > 0 && len(t.Spans) != wantSpans) || len(chunks) == 0 {
					b.Fatalf("%d spans, %v", len(t.Spans), err)
				}
				spans = len(t.Spans)
			}
			fetch() // warm up (caches, connections)
			var lat []time.Duration
			bytesRead, requests = 0, 0
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				fetch()
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
			b.ReportMetric(float64(bytesRead)/1024/float64(len(lat)), "KiB-fetched/op")
			b.ReportMetric(float64(requests)/float64(len(lat)), "part-reads/op")
			b.ReportMetric(float64(spans), "spans")
			b.ReportMetric(baselineMs, "baseline-ms")
			b.ReportMetric(load1(), "load1")
			benchrow.Record(benchrow.Row{Name: fmt.Sprintf("%s, %s: p99", name, v.name),
				Value: pct(0.99), Unit: "ms", Baseline: baselineMs, BaselineName: baselineName, Target: targetMs, Max: true,
				Note: fmt.Sprintf("%d spans, p50 %.1f ms, %.1f CPU-ms/fetch, load %.1f", spans, pct(0.50), float64(cpu.Microseconds())/1000/float64(len(lat)), load1())})
		})
	}
}

// benchBaseline times reading the 48 merged parts' bytes (of the partitions under prefix, within
// spans/), and decoding them whole unless prefix is given, median of 5.
func benchBaseline(b *testing.B, store archive.Store, prefix string) (readMs, decodeMs float64) {
	ctx := context.Background()
	pps, err := archive.ListPartitions(ctx, store)
	if err != nil {
		b.Fatal(err)
	}
	var keys []string
	for _, pp := range pps {
		for _, o := range pp.Live {
			if strings.HasPrefix(o.Key, archive.SpansPrefix+prefix) {
				keys = append(keys, o.Key)
			}
		}
	}
	if len(keys) != 48 {
		b.Fatalf("%d parts", len(keys))
	}
	r := NewReader(store, ReaderConfig{})
	var reads, decodes []float64
	for range 5 {
		data := make([][]byte, len(keys))
		start := time.Now()
		if err := r.forPartitions(ctx, make([]archive.Partition, len(keys)), func(ctx context.Context, i int, _ archive.Partition) error {
			data[i], err = r.get(ctx, keys[i])
			return err
		}); err != nil {
			b.Fatal(err)
		}
		reads = append(reads, float64(time.Since(start).Microseconds())/1000)
		if prefix != "" {
			decodes = append(decodes, 0)
			continue
		}
		start = time.Now()
		if err := r.forPartitions(ctx, make([]archive.Partition, len(keys)), func(ctx context.Context, i int, _ archive.Partition) error {
			_, err := parquet.Read[archive.Span](bytes.NewReader(data[i]), int64(len(data[i])))
			return err
		}); err != nil {
			b.Fatal(err)
		}
		decodes = append(decodes, float64(time.Since(start).Microseconds())/1000+reads[len(reads)-1])
	}
	slices.Sort(reads)
	slices.Sort(decodes)
	return reads[2], decodes[2]
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// load1 is the 1-minute load average (Linux), to judge wall-clock numbers on a shared machine.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}
