package serve

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/rle"
)

var errPanicked = errors.New("panicked")

// hybridValues reads values at positions (increasing) through hybridInt32.
func hybridValues(b []byte, positions []int) ([]int32, error) {
	h, err := newHybridInt32(b)
	if err != nil {
		return nil, err
	}
	out := make([]int32, 0, len(positions))
	for _, i := range positions {
		v, err := h.at(i)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// TestHybridInt32 reads indexes parquet-go encoded (runs, bit-packed groups, widths 0 to 20)
// at every position and at sparse ones, against the values encoded.
func TestHybridInt32(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, width := range []int{0, 1, 3, 8, 13, 20} {
		for _, shape := range []string{"runs", "random", "mixed"} {
			n := 1 + rnd.IntN(5000)
			want := make([]int32, n)
			for i := range want {
				switch {
				case width == 0:
				case shape == "runs":
					want[i] = int32(i / 100 % (1 << width))
				case shape == "random":
					want[i] = rnd.Int32N(1 << width)
				case i%300 < 150:
					want[i] = 1<<width - 1
				default:
					want[i] = rnd.Int32N(1 << width)
				}
			}
			enc, err := new(rle.DictionaryEncoding).EncodeInt32(nil, want)
			if err != nil {
				t.Fatal(err)
			}
			all := make([]int, n)
			for i := range all {
				all[i] = i
			}
			var sparse []int
			for i := rnd.IntN(50); i < n; i += 1 + rnd.IntN(700) {
				sparse = append(sparse, i)
			}
			for _, positions := range [][]int{all, sparse} {
				got, err := hybridValues(enc, positions)
				if err != nil {
					t.Fatalf("width %d %s: %v", width, shape, err)
				}
				for k, i := range positions {
					if got[k] != want[i] {
						t.Fatalf("width %d %s: value %d = %d, want %d", width, shape, i, got[k], want[i])
					}
				}
			}
			if n > 1000 {
				if _, err := hybridValues(enc, []int{n - 1, 0}); err == nil && width > 0 && shape == "mixed" {
					t.Errorf("width %d %s: value 0 read after value %d (another run) without error", width, shape, n-1)
				}
			}
			if _, err := hybridValues(enc, []int{n + 8}); err == nil {
				t.Errorf("width %d %s: a value past the runs read without error", width, shape)
			}
		}
	}
}

// FuzzHybridInt32 holds hybridInt32 to parquet-go's decoder: on any bytes it decodes, every
// value it returns is the same; on any bytes at all, no panic.
func FuzzHybridInt32(f *testing.F) {
	for _, vals := range [][]int32{{0}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1}} {
		enc, err := new(rle.DictionaryEncoding).EncodeInt32(nil, vals)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc, uint16(1))
	}
	f.Add([]byte{32, 3, 0xff, 0xff, 0xff, 0xff}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, step uint16) {
		b = b[:len(b):len(b)] // parquet-go reads a bit-packed run past the slice into its capacity
		if len(b) == 0 || hugeRuns(b[1:], int(b[0])) {
			return // parquet-go would allocate them all
		}
		want, werr := func() (v []int32, err error) {
			defer func() {
				if recover() != nil {
					err = errPanicked
				}
			}()
			return new(rle.DictionaryEncoding).DecodeInt32(nil, b)
		}()
		var positions []int
		for i := 0; i < min(len(want)+16, 1<<16); i += 1 + int(step%64) {
			positions = append(positions, i)
		}
		got, err := hybridValues(b, positions)
		if werr != nil {
			return
		}
		for k, v := range got {
			if i := positions[k]; i < len(want) && v != want[i] {
				t.Fatalf("value %d = %d, parquet-go decodes %d", i, v, want[i])
			}
		}
		if err != nil && len(got) < len(positions) && positions[len(got)] < len(want) {
			t.Fatalf("value %d: %v, parquet-go decodes %d values", positions[len(got)], err, len(want))
		}
	})
}

// hugeRuns says whether runs of the hybrid encoding declare over a million values.
func hugeRuns(b []byte, width int) bool {
	total := uint64(0)
	for len(b) > 0 {
		h, n := binary.Uvarint(b)
		if n <= 0 {
			return false
		}
		b = b[n:]
		if h&1 == 1 {
			total += h >> 1 * 8
			b = b[min(len(b), int(min(h>>1, 1<<20))*width):]
		} else {
			total += h >> 1
			if h>>1 > 0 {
				b = b[min(len(b), (width+7)/8):]
			}
		}
		if total > 1<<20 {
			return true
		}
	}
	return false
}
