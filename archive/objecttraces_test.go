package archive

import (
	"errors"
	"fmt"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestDecodeObjectTraces: each row's object_hash and trace id as written, in the layouts an
// index may have: several pages and row groups, trace_id plain (as EncodeIndex writes it) or
// dictionary-encoded, and an index of schema version 1 (ErrNoColumn).
func TestDecodeObjectTraces(t *testing.T) {
	rows := randomIndexRows(30_000, 7)
	for i := range rows {
		rows[i].TraceID = fmt.Sprintf("trace-%d", i%997) // a tree's objects share their trace
	}
	type dictTrace struct {
		TraceID    string `parquet:"trace_id,dict"`
		ObjectHash int64  `parquet:"object_hash"`
	}
	var dictRows []dictTrace
	for _, r := range rows {
		dictRows = append(dictRows, dictTrace{r.TraceID, r.ObjectHash})
	}
	dict := encodeWith(t, dictRows, parquet.PageBufferSize(4096), parquet.MaxRowsPerRowGroup(7000))
	written, err := EncodeIndex(rows)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"EncodeIndex": written,
		"row groups":  encodeWith(t, rows, parquet.PageBufferSize(8192), parquet.MaxRowsPerRowGroup(7000)),
		"dictionary":  dict,
	} {
		got, err := DecodeObjectTraces(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.Hashes) != len(rows) || len(got.Traces) != len(rows) || len(got.TraceIDs) != 997 {
			t.Fatalf("%s: %d hashes, %d traces, %d trace ids; wrote %d rows of 997 traces", name, len(got.Hashes), len(got.Traces), len(got.TraceIDs), len(rows))
		}
		for i, r := range rows {
			if got.Hashes[i] != r.ObjectHash || got.TraceIDs[got.Traces[i]] != r.TraceID {
				t.Fatalf("%s: row %d: %x %q, wrote %x %q", name, i, got.Hashes[i], got.TraceIDs[got.Traces[i]], r.ObjectHash, r.TraceID)
			}
		}
		if ts := got.TracesOf(rows[5].ObjectHash, -1); len(ts) != 1 || !ts[rows[5].TraceID] {
			t.Errorf("%s: TracesOf(row 5) = %v, want %s", name, ts, rows[5].TraceID)
		}
		if ts := got.TracesOf(rows[5].ObjectHash&^0xff|0x5a, ^int64(0xff)); len(ts) != 1 || !ts[rows[5].TraceID] {
			t.Errorf("%s: TracesOf(row 5's first 48 bits) = %v, want %s", name, ts, rows[5].TraceID)
		}
	}
	v1 := encodeWith(t, []struct {
		TraceID string `parquet:"trace_id"`
	}{})
	if _, err := DecodeObjectTraces(v1); !errors.Is(err, ErrNoColumn) {
		t.Errorf("version 1 index: %v, want ErrNoColumn", err)
	}
}

func FuzzDecodeObjectTraces(f *testing.F) {
	addIndexSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeObjectTraces(data)
		if err == nil && (len(got.Hashes) != len(got.Traces) || len(got.Hashes) > len(data)) {
			t.Fatalf("%d hashes, %d traces from %d bytes", len(got.Hashes), len(got.Traces), len(data))
		}
		if err == nil {
			for _, n := range got.Traces {
				if n < 0 || int(n) >= len(got.TraceIDs) {
					t.Fatalf("trace number %d of %d", n, len(got.TraceIDs))
				}
			}
		}
	})
}
