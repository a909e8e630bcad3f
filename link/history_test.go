package link

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/internal/benchrow"
)

func TestRevisionStoreKeepsTwoNewestAndSurvivesATornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenRevisionStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(uid, rv, image string) Revision {
		return Revision{Object: ObjectKey{Cluster: "c", Resource: "pods", Namespace: "n", Name: "p-" + uid, UID: uid}, ResourceVersion: rv,
			Body: map[string]any{"spec": map[string]any{"image": image}}}
	}
	if err := s.Put(mk("a", "5", "v5"), mk("a", "9", "v9"), mk("a", "7", "v7-late"), mk("b", "3", "b3")); err != nil {
		t.Fatal(err)
	}
	if r, ok := s.Before("a", "10"); !ok || r.ResourceVersion != "9" {
		t.Errorf("Before(a, 10) = %v %v", r.ResourceVersion, ok)
	}
	if r, ok := s.Before("a", "9"); !ok || r.ResourceVersion != "5" || bodyOf(&r)["spec"].(map[string]any)["image"] != "v5" {
		t.Errorf("Before(a, 9) = %+v %v (a late older revision must not displace newer ones)", r, ok)
	}
	if uid, ok := s.UIDByName(ObjectKey{Cluster: "c", Resource: "pods", Namespace: "n", Name: "p-b"}); !ok || uid != "b" {
		t.Errorf("UIDByName = %q %v", uid, ok)
	}
	s.Close()
	// A crash mid-write leaves a torn record: reopening keeps everything before it.
	p := filepath.Join(dir, "revisions.log")
	fi, _ := os.Stat(p)
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3})
	f.Close()
	s, err = OpenRevisionStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, ok := s.Latest("b"); !ok || r.ResourceVersion != "3" {
		t.Errorf("after reopen: Latest(b) = %v %v", r.ResourceVersion, ok)
	}
	if fi2, _ := os.Stat(p); fi2.Size() != fi.Size() {
		t.Errorf("torn tail not cut: %d → %d bytes", fi.Size(), fi2.Size())
	}
}

// BenchmarkRevisionStoreMemory measures the heap the store's index holds per live object, at
// 100k and 1M objects shaped like a workload cluster (pods named after ReplicaSets, uids, decimal
// resourceVersions). Target: ≤ 300 bytes per live object.
func BenchmarkRevisionStoreMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			for range b.N {
				s, err := OpenRevisionStore(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				body := map[string]any{"spec": map[string]any{"nodeName": "node-1", "containers": []any{map[string]any{"name": "app", "image": "nginx:1.27"}}}}
				batch := make([]Revision, 0, 1000)
				for i := range n {
					ns := fmt.Sprintf("team-%03d", i%200)
					batch = append(batch, Revision{
						Object: ObjectKey{Cluster: "prod-eu-1", Resource: "pods", Namespace: ns,
							Name: fmt.Sprintf("web-%08x-%05x", i/3, i), UID: fmt.Sprintf("%08x-4d3d-4a06-9ce2-%012x", i, i*7919)},
						Kind: "Pod", ResourceVersion: fmt.Sprint(1_000_000 + i), Created: time.Unix(1_700_000_000, 0), Body: body,
					})
					if len(batch) == cap(batch) {
						if err := s.Put(batch...); err != nil {
							b.Fatal(err)
						}
						batch = batch[:0]
					}
				}
				s.Put(batch...)
				runtime.GC()
				runtime.ReadMemStats(&after)
				perObject := float64(after.HeapAlloc-before.HeapAlloc) / float64(s.Len())
				b.ReportMetric(perObject, "bytes/object")
				benchrow.Record(benchrow.Row{Name: fmt.Sprintf("memory per live object (%d objects)", n), Value: perObject,
					Unit: "B", Target: 300, Max: true, Note: "RevisionStore heap growth / objects"})
				s.Close()
			}
		})
	}
}
