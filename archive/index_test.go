package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// randomIndexRows are index rows with every optional column sometimes empty (NULL), repeated
// and unique strings, and times down to the microsecond.
func randomIndexRows(n int, seed uint64) []IndexRow {
	r := rand.New(rand.NewPCG(seed, 1))
	maybe := func(s string) string {
		if r.IntN(4) == 0 {
			return ""
		}
		return s
	}
	at := func() time.Time {
		return time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(48 * time.Hour))).Truncate(time.Microsecond))
	}
	rows := make([]IndexRow, n)
	for i := range rows {
		rows[i] = IndexRow{
			Cluster: fmt.Sprintf("c%d", r.IntN(3)), APIGroup: maybe("apps"), Resource: []string{"pods", "deployments", "replicasets"}[r.IntN(3)],
			Namespace: maybe(fmt.Sprintf("ns-%d", r.IntN(20))), Name: fmt.Sprintf("obj-%d", r.IntN(n)), UID: maybe(fmt.Sprintf("uid-%d-%d", i, r.Uint64())),
			ObjectKind: maybe("Pod"), WindowStart: at().Truncate(30 * time.Minute), FirstSeen: at(), LastSeen: at(),
			TraceID: fmt.Sprintf("%016x", r.Uint64()), SpanID: fmt.Sprintf("%016x", r.Uint64()), ParentUID: maybe(fmt.Sprintf("p-%d", r.IntN(50))),
			ObjectHash: r.Int64N(1 << 56),
		}
		if r.IntN(2) == 0 {
			rows[i].CreatedAt = at()
		}
		if r.IntN(5) == 0 {
			rows[i].DeletedAt = at()
		}
	}
	return rows
}

// encodeWith writes rows with parquet-go's writer and opts: layouts EncodeIndex does not make
// (other page sizes and versions, row groups, older or newer schemas).
func encodeWith[T any](t testing.TB, rows []T, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeIndexMatchesRead(t *testing.T) {
	// indexPlus is a newer writer's index with a column this reader does not know.
	type indexPlus struct {
		IndexRow
		Extra string `parquet:"extra,optional"`
	}
	plus := func(rows []IndexRow) []byte {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[indexPlus](&buf)
		for _, r := range rows {
			if _, err := w.Write([]indexPlus{{r, "x"}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	small, big := randomIndexRows(201, 1), randomIndexRows(50_000, 2)
	mustEncode := func(rows []IndexRow) []byte {
		data, err := EncodeIndex(rows)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for name, c := range map[string]struct {
		data []byte
		rows []IndexRow
	}{
		"empty":        {mustEncode(nil), nil},
		"small":        {mustEncode(small), small},
		"big":          {mustEncode(big), big},
		"small pages":  {encodeWith(t, big, parquet.PageBufferSize(4096)), big},
		"row groups":   {encodeWith(t, big, parquet.PageBufferSize(8192), parquet.MaxRowsPerRowGroup(7000)), big},
		"extra column": {plus(small), small},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeIndex(c.data)
			if err != nil {
				t.Fatal(err)
			}
			want, err := parquet.Read[IndexRow](bytes.NewReader(c.data), int64(len(c.data)))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.rows) || !reflect.DeepEqual(got, want) {
				for i := range min(len(got), len(want)) {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Fatalf("row %d of %d:\n got %+v\nwant %+v", i, len(want), got[i], want[i])
					}
				}
				t.Fatalf("%d rows, parquet.Read %d, written %d", len(got), len(want), len(c.rows))
			}
			// And what was written, by an independent path (times are UTC either way).
			for i := range c.rows {
				if !reflect.DeepEqual(got[i], c.rows[i]) {
					t.Fatalf("row %d:\n got %+v\nwrote %+v", i, got[i], c.rows[i])
				}
			}
		})
	}
}

func TestDecodeIndexRejectsDamage(t *testing.T) {
	data, err := EncodeIndex(randomIndexRows(2000, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, []byte("PAR1"), []byte("not parquet at all"), data[:len(data)/2], append(append([]byte(nil), data[:100]...), bytes.Repeat([]byte{0xff}, len(data)-100)...)} {
		if _, err := DecodeIndex(bad); err == nil {
			t.Errorf("%d damaged bytes decoded without an error", len(bad))
		}
	}
}

// addIndexSeeds seeds a fuzzer of index decoding with indexes of 0, 3 and 300 rows.
func addIndexSeeds(f *testing.F) {
	for _, n := range []int{0, 3, 300} {
		rows := randomIndexRows(n, uint64(n))
		data, err := EncodeIndex(rows)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		for i := range rows { // a merged partition's index: its rows placed in the part it names
			rows[i].PartRow, rows[i].PartRows = int64(i*3), 3
		}
		if data, err = encodeIndex(rows, parquet.KeyValueMetadata(IndexPartKey, "merged-x.parquet")); err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzDecodeIndex: damaged index bytes are an error, never a panic.
func FuzzDecodeIndex(f *testing.F) {
	addIndexSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := DecodeIndex(data)
		if err == nil && len(rows) > len(data) {
			t.Fatalf("%d rows from %d bytes", len(rows), len(data))
		}
	})
}

func TestReadPartRejectsDamage(t *testing.T) {
	ctx := t.Context()
	store, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, err := EncodeParquet([]Span{{Kind: KindObject, SpanID: "s", Cluster: "c", Resource: "pods", Name: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	// A footer length far beyond the file: parquet-go would size a buffer by it.
	hugeFooter := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(hugeFooter[len(hugeFooter)-8:], 1<<31)
	for name, data := range map[string][]byte{
		"garbage": []byte("not a parquet file"), "truncated": good[:len(good)/2], "huge footer": hugeFooter,
		"overwritten": append(append([]byte(nil), good[:len(good)-40]...), append(bytes.Repeat([]byte{0x7f}, 32), good[len(good)-8:]...)...),
	} {
		key := PartKey("c", time.Unix(0, 0), name)
		if err := store.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPart(ctx, store, key); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: ReadPart = %v, want an error naming %s", name, err, key)
		}
	}
	key := PartKey("c", time.Unix(0, 0), "good")
	store.Put(ctx, key, bytes.NewReader(good), int64(len(good)))
	if rows, err := ReadPart(ctx, store, key); err != nil || len(rows) != 1 {
		t.Fatalf("good part: %d rows, %v", len(rows), err)
	}
}

// TestObjectHash: the documented hash (archive-format.md), computed here from its definition,
// and the index's object_hash column written from each row's key.
func TestObjectHash(t *testing.T) {
	sum := sha256.Sum256([]byte("kairn-object\x00c1\x00apps\x00deployments\x00ns\x00web\x00u-1"))
	want := int64(0)
	for _, b := range sum[:7] {
		want = want<<8 | int64(b)
	}
	if got := ObjectHash("c1", "apps", "deployments", "ns", "web", "u-1"); got != want {
		t.Fatalf("ObjectHash = %x, want %x", got, want)
	}
	if ObjectHash("c1", "", "apps/deployments", "ns", "web", "u-1") == want {
		t.Error("the key's fields are not kept apart")
	}
	w := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	spans := []Span{
		{Kind: KindObject, SpanID: "a", TraceID: "t1", Cluster: "c1", APIGroup: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "u-1", WindowStart: w, StartTime: w, EndTime: w},
		{Kind: KindObject, SpanID: "b", TraceID: "t2", Cluster: "c1", Resource: "nodes", Name: "n1", WindowStart: w, StartTime: w, EndTime: w},
	}
	data, err := EncodeIndex(BuildIndex(spans))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeObjectTraces(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Hashes) != 2 || got.Hashes[0] != want || got.Hashes[1] != ObjectHash("c1", "", "nodes", "", "n1", "") ||
		got.TraceIDs[got.Traces[0]] != "t1" {
		t.Errorf("object traces %+v: want object_hash %x and trace_id t1", got, want)
	}
}
