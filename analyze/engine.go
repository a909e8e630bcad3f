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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/parquet-go/parquet-go"

	"github.com/kairn-dev/kairn/archive"
)

// Options configure an Engine.
type Options struct {
	// CacheDir holds parts fetched from a remote store. Default: $XDG_CACHE_HOME/kairn/parts.
	CacheDir string
	// Progress, when set, reports fetching in parts: (done, total) of the footers when the Engine
	// opens, then of the parts a statement needs column chunks of, before it runs.
	Progress func(done, total int)
	// ProgressBytes, when set, reports the bytes of a statement's fetch as they arrive.
	ProgressBytes func(done, total int64)
	// Since and Until, when set, keep only the windows that overlap [Since, Until): partitions
	// outside are pruned before anything is fetched.
	Since, Until time.Time
	// Clusters, when set, keeps only these clusters' partitions.
	Clusters []string
	// CacheBytes bounds the local cache of fetched parts (least recently used out first; files
	// an Engine has open are never evicted). 0 means the default (10 GiB); < 0, no bound.
	CacheBytes int64

	fillHoles  byte  // tests: unfetched bytes of cached parts read as this instead of zeros
	wholeBelow int64 // tests: parts up to this size are fetched whole (0: 256 KiB, < 0: none)
}

// Engine is an embedded DuckDB with the archive registered as the view `spans`.
type Engine struct {
	db      *sql.DB
	parts   int
	tmp     string
	remote  *remote // nil for a local archive: DuckDB reads the parts in place
	opening bool
}

// Open registers the archive for querying: the view `spans` over the live parts of every
// partition (merged parts, and parts not merged yet, never both copies), `object_windows` over
// the object index, and `objects`, one row per object with its lifecycle across windows.
//
// Partitions outside opts.Clusters, Since and Until are pruned first, from their keys. A remote
// archive is read through the sparse cache (sparse.go): Open fetches the footers; each statement
// then fetches the column chunks it reads (columns.go) before it runs.
func Open(ctx context.Context, store archive.Store, opts Options) (*Engine, error) {
	e := &Engine{opening: true}
	parts, index, shared, err := archiveFiles(ctx, store, opts)
	if err != nil {
		return nil, err
	}
	spanFiles, err := e.localize(ctx, store, opts, append(parts, index...), len(parts))
	if err != nil {
		e.Close()
		return nil, err
	}
	indexFiles := spanFiles[len(parts):]
	spanFiles = spanFiles[:len(parts)]
	inner, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
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
		e.Close()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	e.db = sql.OpenDB(&connector{Connector: inner, e: e})
	e.db.SetMaxOpenConns(1)
	// Parts never change under a name (a merge writes a new one), so locally their footers are
	// parsed once per Engine, not once per scan: a report scans spans several times, and
	// rollout-first-pull over 144 parts spent 0.2 s of 1.1 s re-reading footers. The sparse
	// mirrors of a remote archive do change: holes are filled before each statement, so DuckDB
	// must not keep what it read of them (its file cache served a filled hole's old bytes).
	setting := "SET parquet_metadata_cache = true"
	if e.remote != nil {
		setting = "SET enable_external_file_cache = false"
	}
	if _, err := e.db.ExecContext(ctx, setting); err != nil {
		e.Close()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
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
	schemas, err := schemaKeys(ctx, slices.Concat(spanFiles, indexFiles))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("register archive %s: %w", store, err)
	}
	for _, stmt := range []string{
		spansView(spanFiles, parts, shared, schemas),
		"CREATE VIEW object_windows AS SELECT * FROM " + readParquet(indexFiles, schemas),
		objectsView,
	} {
		if _, err := e.db.ExecContext(ctx, stmt); err != nil {
			e.Close()
			return nil, fmt.Errorf("register archive %s: %w", store, err)
		}
	}
	e.opening = false
	return e, nil
}

// connector hands out DuckDB connections that fetch what a statement reads before running it.
type connector struct {
	*duckdb.Connector
	e *Engine
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil || c.e.remote == nil {
		return dc, err
	}
	dconn, ok := dc.(*duckdb.Conn)
	if !ok {
		return dc, nil
	}
	return &conn{Conn: dconn, e: c.e}, nil
}

type conn struct {
	*duckdb.Conn
	e *Engine
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.e.fetchFor(ctx, c.Conn, query, args); err != nil {
		return nil, err
	}
	return c.Conn.QueryContext(ctx, query, args)
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.e.fetchFor(ctx, c.Conn, query, args); err != nil {
		return nil, err
	}
	return c.Conn.ExecContext(ctx, query, args)
}

// PrepareContext cannot know the arguments yet; a statement that cannot be planned without
// them fetches every column.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.e.fetchFor(ctx, c.Conn, query, nil); err != nil {
		return nil, err
	}
	return c.Conn.PrepareContext(ctx, query)
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// fetchFor fetches the column chunks query reads that the cache does not hold yet.
func (e *Engine) fetchFor(ctx context.Context, c *duckdb.Conn, query string, args []driver.NamedValue) error {
	if e.remote == nil || e.opening {
		return nil
	}
	scans, all := neededColumns(ctx, c, query, args)
	return e.remote.ensure(ctx, scans, all)
}

// Fetched reports what the Engine fetched from a remote store (zero for a local archive).
func (e *Engine) Fetched() FetchStats {
	if e.remote == nil {
		return FetchStats{}
	}
	return e.remote.stats()
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

// archiveFiles lists the live span parts and the object index files; shared holds the keys of
// parts whose partition has more than one live part (not merged yet, several writers).
func archiveFiles(ctx context.Context, store archive.Store, opts Options) (parts, index []archive.ObjectInfo, shared map[string]bool, err error) {
	partitions, err := archive.ListPartitions(ctx, store)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list %s: %w", store, err)
	}
	objs, err := store.List(ctx, archive.IndexPrefix)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list %s: %w", store, err)
	}
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") {
			index = append(index, o)
		}
	}
	shared = map[string]bool{}
	for _, p := range partitions {
		if len(p.Live) > 1 {
			for _, o := range p.Live {
				shared[o.Key] = true
			}
		}
	}
	parts, index = prune(opts, partitions, index)
	return parts, index, shared, nil
}

// spansView is the view `spans`: merged partitions as they are, and in partitions not merged
// yet, one row per span id, since several writers (collector replicas, a watch leader, a rerun)
// may each hold a copy; the merger combines the copies, the view keeps one.
func spansView(files []string, parts []archive.ObjectInfo, shared map[string]bool, schemas map[string]string) string {
	var alone, together []string
	for i, f := range files {
		if i < len(parts) && shared[parts[i].Key] {
			together = append(together, f)
		} else {
			alone = append(alone, f)
		}
	}
	var selects []string
	if len(alone) > 0 {
		selects = append(selects, "SELECT * FROM "+readParquet(alone, schemas))
	}
	if len(together) > 0 {
		selects = append(selects, `SELECT * EXCLUDE (kairn_copy) FROM (
    SELECT *, row_number() OVER (PARTITION BY cluster, span_id ORDER BY start_time, end_time, observation_id) AS kairn_copy
    FROM `+readParquet(together, schemas)+`) WHERE kairn_copy = 1`)
	}
	return "CREATE VIEW spans AS " + strings.Join(selects, "\nUNION ALL BY NAME\n")
}

// readParquet reads files whose schemas are given: one read_parquet per schema, put together by
// column name. A single read_parquet with union_by_name would do the same, but DuckDB then reads
// every file's schema each time a statement names the view: 55 ms of planning per mention of
// `spans` over 144 parts, and rollout-first-pull mentions it three times. Over files of one
// schema DuckDB reads the first file's and matches the others' columns by name.
func readParquet(files []string, schemas map[string]string) string {
	var order []string
	groups := map[string][]string{}
	for _, f := range files {
		k := schemas[f]
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f)
	}
	if len(order) == 1 {
		return "read_parquet(" + fileList(files) + ")"
	}
	selects := make([]string, len(order))
	for i, k := range order {
		selects[i] = "SELECT * FROM read_parquet(" + fileList(groups[k]) + ")"
	}
	return "(" + strings.Join(selects, "\nUNION ALL BY NAME\n") + ")"
}

// schemaKeys reads the footer of each Parquet file and keys it by its schema: columns, types
// and nesting, in order.
func schemaKeys(ctx context.Context, files []string) (map[string]string, error) {
	keys := make([]string, len(files))
	err := parallel(ctx, len(files), func(i int) (err error) {
		if keys[i], err = schemaKey(files[i]); err != nil {
			return fmt.Errorf("read the schema of %s: %w", files[i], err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	byFile := make(map[string]string, len(files))
	for i, f := range files {
		byFile[f] = keys[i]
	}
	return byFile, nil
}

func schemaKey(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	var pf *parquet.File
	err = archive.Recovered(func() (err error) {
		// A remote part's local mirror holds its footer, not yet its first bytes.
		pf, err = parquet.OpenFile(f, st.Size(), parquet.SkipMagicBytes(true), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
		return err
	})
	if err != nil {
		return "", err
	}
	return pf.Schema().String(), nil
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
	if e.remote != nil {
		e.remote.close()
	}
	if e.tmp != "" {
		os.RemoveAll(e.tmp)
	}
	return err
}

// localize returns local paths for objects: in place for a local archive, else mirrors in the
// sparse cache, with their footers fetched.
func (e *Engine) localize(ctx context.Context, store archive.Store, opts Options, objs []archive.ObjectInfo, nparts int) ([]string, error) {
	if ld, ok := store.(archive.LocalDirer); ok {
		out := make([]string, len(objs))
		for i, p := range objs {
			out[i] = filepath.Join(ld.LocalDir(), filepath.FromSlash(p.Key))
		}
		return out, nil
	}
	root := opts.CacheDir
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		root = filepath.Join(base, "kairn", "parts")
	}
	sum := sha256.Sum256([]byte(store.String()))
	r := &remote{
		store: store, root: root, dir: filepath.Join(root, hex.EncodeToString(sum[:8])),
		limit: opts.CacheBytes, progress: opts.Progress, progressBytes: opts.ProgressBytes, fillHoles: opts.fillHoles,
	}
	if r.limit == 0 {
		r.limit = DefaultCacheBytes
	}
	switch r.wholeBelow = opts.wholeBelow; {
	case r.wholeBelow == 0:
		r.wholeBelow = wholeBelow
	case r.wholeBelow < 0:
		r.wholeBelow = 0
	}
	r.rr, _ = store.(archive.RangeReader)
	e.remote = r
	return r.openAll(ctx, objs, func(i int) int {
		if i < nparts {
			return 0 // spans
		}
		return 1 // object_windows
	})
}
