package analyze

import (
	"context"
	"testing"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/internal/syntharchive"
)

// synthArchive returns a local directory holding the synthetic archive of about spans rows
// (internal/syntharchive): small scales in a test temporary directory, large ones generated
// once into the cache ($KAIRN_BENCH_CACHE, else ~/.cache/kairn/bench).
func synthArchive(tb testing.TB, spans int) (dir string, rows int64) {
	tb.Helper()
	ctx := context.Background()
	if spans >= 200_000 {
		dir, rows, err := syntharchive.Cached(ctx, spans, tb.Logf)
		if err != nil {
			tb.Fatal(err)
		}
		return dir, rows
	}
	dir = tb.TempDir()
	store, err := archive.OpenLocal(dir)
	if err != nil {
		tb.Fatal(err)
	}
	if rows, err = syntharchive.Write(ctx, store, spans); err != nil {
		tb.Fatal(err)
	}
	return dir, rows
}
