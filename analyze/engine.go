// Package analyze owns answering questions over an archive: it registers the archive's span
// parts as a DuckDB view (`spans`), fetching parts from object storage into a bounded local cache
// where DuckDB cannot read them in place, runs library or ad-hoc SQL, and renders results.
package analyze

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kairn-dev/kairn/archive"
)

// Options configure an Engine.
type Options struct {
	// CacheDir holds parts fetched from a remote store. Default: $XDG_CACHE_HOME/kairn/parts.
	CacheDir string
	// Progress, when set, reports fetching (done, total parts).
	Progress func(done, total int)
}

// Engine is an embedded DuckDB with the archive registered as the view `spans`.
type Engine struct {
	db    *sql.DB
	parts int
	tmp   string
}

// Open registers the archive's spans for querying.
func Open(ctx context.Context, store archive.Store, opts Options) (*Engine, error) {
	e := &Engine{}
	files, err := e.localParts(ctx, store, opts)
	if err != nil {
		return nil, err
	}
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		// No network here: never try to fetch an extension; fail at once instead.
		for _, s := range []string{
			"SET autoinstall_known_extensions = false",
			"SET autoload_known_extensions = false",
			"SET TimeZone = 'UTC'",
		} {
			if _, err := execer.ExecContext(ctx, s, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	e.db = sql.OpenDB(connector)
	e.db.SetMaxOpenConns(1)
	if len(files) == 0 {
		// An empty archive still has the schema: query an empty part.
		if e.tmp, err = os.MkdirTemp("", "kairn-empty-"); err != nil {
			return nil, err
		}
		empty, err := archive.EncodeParquet(nil)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(e.tmp, "empty.parquet")
		if err := os.WriteFile(p, empty, 0o644); err != nil {
			return nil, err
		}
		files = []string{p}
	}
	e.parts = len(files)
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	view := fmt.Sprintf("CREATE VIEW spans AS SELECT * FROM read_parquet([%s], hive_partitioning = false, union_by_name = true)", strings.Join(quoted, ", "))
	if _, err := e.db.ExecContext(ctx, view); err != nil {
		e.Close()
		return nil, fmt.Errorf("register archive %s: %w", store, err)
	}
	return e, nil
}

// Parts is the number of Parquet parts behind the view.
func (e *Engine) Parts() int { return e.parts }

// DB exposes the connection for callers that stream results.
func (e *Engine) DB() *sql.DB { return e.db }

func (e *Engine) Close() error {
	var err error
	if e.db != nil {
		err = e.db.Close()
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
	return err
}

// localParts lists the archive's parts as local files, fetching remote ones into the cache.
func (e *Engine) localParts(ctx context.Context, store archive.Store, opts Options) ([]string, error) {
	objs, err := store.List(ctx, archive.SpansPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", store, err)
	}
	var parts []archive.ObjectInfo
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") {
			parts = append(parts, o)
		}
	}
	if ld, ok := store.(archive.LocalDirer); ok {
		out := make([]string, len(parts))
		for i, p := range parts {
			out[i] = filepath.Join(ld.LocalDir(), filepath.FromSlash(p.Key))
		}
		return out, nil
	}
	dir := opts.CacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "kairn", "parts")
	}
	sum := sha256.Sum256([]byte(store.String()))
	dir = filepath.Join(dir, hex.EncodeToString(sum[:8]))
	out := make([]string, 0, len(parts))
	for i, p := range parts {
		local := filepath.Join(dir, filepath.FromSlash(p.Key))
		if fi, err := os.Stat(local); err != nil || fi.Size() != p.Size {
			if err := fetch(ctx, store, p.Key, local); err != nil {
				return nil, err
			}
		}
		out = append(out, local)
		if opts.Progress != nil {
			opts.Progress(i+1, len(parts))
		}
	}
	return out, nil
}

func fetch(ctx context.Context, store archive.Store, key, local string) error {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, rc); err != nil {
		tmp.Close()
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}
