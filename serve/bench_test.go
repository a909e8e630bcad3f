package serve

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
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
		if _, err := archive.MergePartition(ctx, store, pp, func(s []archive.Span) []archive.Span { return s }); err != nil {
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
// (pipeline tree: every observation is a span) and reports p50 and p99 latency. Targets: p99 ≤
// 100 ms from a local archive, ≤ 300 ms from MinIO.
func BenchmarkTrace48Windows(b *testing.B) {
	b.Run("local", func(b *testing.B) {
		store, err := archive.OpenLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		benchTrace(b, store)
	})
	b.Run("minio", func(b *testing.B) {
		endpoint, ak, sk := testminio.Start(b)
		testminio.Bucket(b, endpoint, ak, sk, "kairn")
		store, err := archive.OpenS3(context.Background(), "s3://kairn/bench", archive.S3Options{Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Region: "us-east-1"})
		if err != nil {
			b.Fatal(err)
		}
		benchTrace(b, store)
	})
}

func benchTrace(b *testing.B, store archive.Store) {
	dep := benchArchive(b, store)
	srv := New(store, Config{SpanLimit: -1})
	ctx := context.Background()
	id := TraceID{Pipeline: Pipeline{DisplayTree, SelectSubtree}, Object: dep.Hash(), Start: t0, End: t0.Add(24 * time.Hour)}
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		t, err := srv.GetTrace(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		chunks, err := ToOTLP(t)
		if err != nil || len(t.Spans) != 10_001 || len(chunks) == 0 {
			b.Fatalf("%d spans, %v", len(t.Spans), err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
