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
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kairn-dev/kairn/archive"
)

// Options configure an Engine.
type Options struct {
	// CacheDir holds parts fetched from a remote store. Default: $XDG_CACHE_HOME/kairn/parts.
	CacheDir string
	// Progress, when set, reports fetching (done, total parts).
	Progress func(done, total int)
	// Since and Until, when set, keep only the windows that overlap [Since, Until): partitions
	// outside are pruned before anything is fetched.
	Since, Until time.Time
	// Clusters, when set, keeps only these clusters' partitions.
	Clusters []string
	// CacheBytes bounds the local cache of fetched parts (least recently used out first).
	// 0 means the default (10 GiB).
	CacheBytes int64
}

// Engine is an embedded DuckDB with the archive registered as the view `spans`.
type Engine struct {
	db    *sql.DB
	parts int
	tmp   string
}

// Open registers the archive for querying: the view `spans` over the live parts of every
// partition (merged parts, and parts not merged yet, never both copies), `object_windows` over
// the object index, and `objects`, one row per object with its lifecycle across windows.
func Open(ctx context.Context, store archive.Store, opts Options) (*Engine, error) {
	e := &Engine{}
	parts, index, err := archiveFiles(ctx, store)
	if err != nil {
		return nil, err
	}
	spanFiles, err := e.localize(ctx, store, opts, append(parts, index...))
	if err != nil {
		return nil, err
	}
	indexFiles := spanFiles[len(parts):]
	spanFiles = spanFiles[:len(parts)]
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
	e.parts = len(spanFiles)
	if len(spanFiles) == 0 {
		// An empty archive still has the schema: query an empty part.
		if spanFiles, err = e.emptyFile("spans.parquet", func() ([]byte, error) { return archive.EncodeParquet(nil) }); err != nil {
			e.Close()
			return nil, err
		}
	}
	if len(indexFiles) == 0 {
		if indexFiles, err = e.emptyFile("index.parquet", func() ([]byte, error) { return archive.EncodeIndex(nil) }); err != nil {
			e.Close()
			return nil, err
		}
	}
	for _, stmt := range []string{
		"CREATE VIEW spans AS SELECT * FROM read_parquet(" + fileList(spanFiles) + ", union_by_name = true)",
		"CREATE VIEW object_windows AS SELECT * FROM read_parquet(" + fileList(indexFiles) + ", union_by_name = true)",
		objectsView,
	} {
		if _, err := e.db.ExecContext(ctx, stmt); err != nil {
			e.Close()
			return nil, fmt.Errorf("register archive %s: %w", store, err)
		}
	}
	return e, nil
}

// objectsView stitches each object's windows into one lifecycle. previous_uid is the uid the
// same name had before: a re-creation.
const objectsView = `CREATE VIEW objects AS
SELECT cluster, api_group, resource, namespace, name, uid,
       any_value(object_kind) AS object_kind,
       min(first_seen) AS first_seen, max(last_seen) AS last_seen,
       min(created_at) AS created_at, max(deleted_at) AS deleted_at,
       list(window_start ORDER BY window_start) AS windows,
       any_value(trace_id) AS trace_id,
       lag(uid) OVER (PARTITION BY cluster, api_group, resource, namespace, name ORDER BY min(first_seen)) AS previous_uid
FROM object_windows
GROUP BY cluster, api_group, resource, namespace, name, uid`

func fileList(files []string) string {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func (e *Engine) emptyFile(name string, encode func() ([]byte, error)) ([]string, error) {
	if e.tmp == "" {
		var err error
		if e.tmp, err = os.MkdirTemp("", "kairn-empty-"); err != nil {
			return nil, err
		}
	}
	data, err := encode()
	if err != nil {
		return nil, err
	}
	p := filepath.Join(e.tmp, name)
	return []string{p}, os.WriteFile(p, data, 0o644)
}

// archiveFiles lists the live span parts and the object index files.
func archiveFiles(ctx context.Context, store archive.Store) (parts, index []archive.ObjectInfo, err error) {
	partitions, err := archive.ListPartitions(ctx, store)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", store, err)
	}
	for _, p := range partitions {
		parts = append(parts, p.Live...)
	}
	objs, err := store.List(ctx, archive.IndexPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", store, err)
	}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") {
			index = append(index, o)
		}
	}
	return parts, index, nil
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

// localize returns local paths for objects: in place for a local archive, else fetched into
// the cache (by key and size, so an unchanged part is fetched once).
func (e *Engine) localize(ctx context.Context, store archive.Store, opts Options, objs []archive.ObjectInfo) ([]string, error) {
	if ld, ok := store.(archive.LocalDirer); ok {
		out := make([]string, len(objs))
		for i, p := range objs {
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
	out := make([]string, 0, len(objs))
	for i, p := range objs {
		local := filepath.Join(dir, filepath.FromSlash(p.Key))
		if fi, err := os.Stat(local); err != nil || fi.Size() != p.Size {
			if err := fetch(ctx, store, p.Key, local); err != nil {
				return nil, err
			}
		}
		out = append(out, local)
		if opts.Progress != nil {
			opts.Progress(i+1, len(objs))
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
