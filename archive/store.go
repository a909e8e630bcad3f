package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNotExist is returned (wrapped) by Store.Get for a key that is not there.
var ErrNotExist = errors.New("object does not exist")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is the object storage an archive lives in. Keys are slash-separated and relative to
// the archive root, e.g. "spans/cluster=dev/window=20261124T0500/p-0a1b2c.parquet".
//
// Put must be atomic: a reader sees either the whole object or none of it, and putting the same
// key again replaces it (part names are deterministic, so a retried upload never duplicates).
type Store interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	Delete(ctx context.Context, key string) error
	// String names the archive the way a user wrote it (a path or s3://bucket/prefix).
	String() string
}

// LocalDirer is implemented by stores whose objects are plain files, so readers such as DuckDB
// can open them in place instead of through a cache.
type LocalDirer interface {
	LocalDir() string
}

// OpenStore opens an archive named by a local path or an s3://bucket/prefix URL.
func OpenStore(ctx context.Context, location string) (Store, error) {
	if location == "" {
		return nil, errors.New("archive location is empty: give a directory or s3://bucket/prefix")
	}
	if strings.HasPrefix(location, "s3://") {
		return OpenS3(ctx, location, S3Options{})
	}
	if strings.Contains(location, "://") {
		return nil, fmt.Errorf("archive %q: unsupported scheme (use a directory or s3://bucket/prefix)", location)
	}
	return OpenLocal(location)
}
