package archive

import (
	"fmt"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// checkTable holds t to rows, field by field (the expectation is the rows written, not another
// decoder).
func checkTable(t *testing.T, name string, got *IndexTable, rows []IndexRow, v1 bool) {
	t.Helper()
	if got.Len() != len(rows) || len(got.Hashes) != len(rows) || len(got.Traces) != len(rows) {
		t.Fatalf("%s: %d objects, %d hashes, %d traces; wrote %d", name, got.Len(), len(got.Hashes), len(got.Traces), len(rows))
	}
	nanos := func(v time.Time) int64 {
		if v.IsZero() {
			return NoTime
		}
		return v.UnixNano()
	}
	for i, r := range rows {
		hash := r.ObjectHash
		if v1 {
			hash = ObjectHash(r.Cluster, r.APIGroup, r.Resource, r.Namespace, r.Name, r.UID)
		}
		for c, want := range [IndexStrings]string{r.Cluster, r.APIGroup, r.Resource, r.Namespace, r.Name, r.UID, r.ObjectKind} {
			if s := string(got.Str(got.Strings[c][i])); s != want {
				t.Fatalf("%s: row %d: string column %d is %q, wrote %q", name, i, c, s, want)
			}
		}
		for c, want := range [IndexTimes]time.Time{r.WindowStart, r.FirstSeen, r.LastSeen, r.CreatedAt, r.DeletedAt} {
			if got.Times[c][i] != nanos(want) {
				t.Fatalf("%s: row %d: time column %d is %d, wrote %v", name, i, c, got.Times[c][i], want)
			}
		}
		root := r.ParentUID == "" && r.TraceID != "" && r.SpanID != ""
		if got.Root[i] != root || got.Hashes[i] != hash || got.TraceIDs[got.Traces[i]] != r.TraceID {
			t.Fatalf("%s: row %d: root %v hash %x trace %q; wrote root %v hash %x trace %q", name, i,
				got.Root[i], got.Hashes[i], got.TraceIDs[got.Traces[i]], root, hash, r.TraceID)
		}
	}
}

func TestIndexTable(t *testing.T) {
	big := randomIndexRows(30_000, 11)
	for i := range big {
		big[i].TraceID = fmt.Sprintf("trace-%d", i%500)
		if i%7 == 0 {
			big[i].SpanID = "" // no root without a span
		}
	}
	written, err := EncodeIndex(big)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := EncodeIndex(nil)
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, "NewIndexTable", NewIndexTable(big), big, false)
	for name, c := range map[string]struct {
		data []byte
		rows []IndexRow
	}{
		"empty":       {empty, nil},
		"EncodeIndex": {written, big},
		"row groups":  {encodeWith(t, big, parquet.PageBufferSize(8192), parquet.MaxRowsPerRowGroup(7000)), big},
		// Dictionaries that overflow to PLAIN pages part-way through a chunk.
		"dictionary overflow": {encodeWith(t, big, parquet.PageBufferSize(4096), parquet.DictionaryMaxBytes(1024)), big},
		"pages v1":            {encodeWith(t, big, parquet.PageBufferSize(4096), parquet.DataPageVersion(1)), big},
	} {
		got, err := DecodeIndexTable(c.data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkTable(t, name, got, c.rows, false)
	}
	// A version 1 index (no object_hash): hashes computed from the keys.
	type v1Row struct {
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
	small := big[:300]
	var v1 []v1Row
	for _, r := range small {
		v1 = append(v1, v1Row{r.Cluster, r.APIGroup, r.Resource, r.Namespace, r.Name, r.UID, r.ObjectKind, r.WindowStart, r.FirstSeen, r.LastSeen, r.CreatedAt, r.DeletedAt, r.TraceID, r.SpanID, r.ParentUID})
	}
	got, err := DecodeIndexTable(encodeWith(t, v1))
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, "version 1", got, small, true)
}

// FuzzDecodeIndexTable: damaged index bytes are an error, never a panic or a table whose
// numbers point outside it.
func FuzzDecodeIndexTable(f *testing.F) {
	addIndexSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeIndexTable(data)
		if err != nil {
			return
		}
		if got.Len() > len(data) || len(got.Hashes) != got.Len() || len(got.Traces) != got.Len() {
			t.Fatalf("%d objects, %d hashes, %d traces from %d bytes", got.Len(), len(got.Hashes), len(got.Traces), len(data))
		}
		if got.Part != "" && (len(got.PartRow) != got.Len() || len(got.PartRows) != got.Len()) {
			t.Fatalf("%d objects, %d and %d part rows", got.Len(), len(got.PartRow), len(got.PartRows))
		}
		if len(got.TraceIDs) > 0 {
			if rs, ok := got.RowsOf(map[string]bool{got.TraceIDs[0]: true}); ok {
				for _, r := range rs {
					if r.Start < 0 || r.End <= r.Start {
						t.Fatalf("rows %v", r)
					}
				}
			}
		}
		for c := range got.Strings {
			for _, n := range got.Strings[c] {
				if int(n) >= len(got.Ends) {
					t.Fatalf("string number %d of %d", n, len(got.Ends))
				}
				_ = got.Str(n)
			}
		}
	})
}
