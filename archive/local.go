package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kairn-dev/kairn/internal/atomicfile"
)

// Local is a Store on a local directory: the embedded default.
type Local struct {
	root string
}

// OpenLocal opens a directory archive. The directory is created by the first Put, so opening a
// mistyped path to read fails on List instead of leaving an empty directory behind.
func OpenLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("archive %q: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("archive %q: not a directory", dir)
	}
	return &Local{root: abs}, nil
}

func (l *Local) String() string   { return l.root }
func (l *Local) LocalDir() string { return l.root }

func (l *Local) path(key string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(key))
	if key == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	return filepath.Join(l.root, clean), nil
}

// Put writes to a temporary file and renames it into place, so readers never see a partial object.
func (l *Local) Put(_ context.Context, key string, r io.Reader, _ int64) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	created, err := mkdirAll(filepath.Dir(p))
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	if err := writeSynced(tmp, r); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	// The rename, and the directories made for it, must be durable before Put returns: the
	// flusher drops a spool segment once its parts are put.
	for _, dir := range append([]string{filepath.Dir(p)}, created...) {
		if err := atomicfile.SyncDir(dir); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
	}
	return nil
}

// writeSynced copies r into f, syncs and closes it.
func writeSynced(f *os.File, r io.Reader) error {
	_, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// mkdirAll is os.MkdirAll that returns the parents of the directories it created, the ones
// whose entries must be synced.
func mkdirAll(dir string) (parents []string, err error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range missing {
		parents = append(parents, filepath.Dir(d))
	}
	return parents, nil
}

func (l *Local) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotExist)
	}
	return f, err
}

func (l *Local) List(_ context.Context, prefix string) ([]ObjectInfo, error) {
	if _, err := os.Stat(l.root); os.IsNotExist(err) {
		return nil, fmt.Errorf("archive %s does not exist (ingest something into it first)", l.root)
	}
	// Walk only the folder the prefix names, not the whole archive.
	start := l.root
	if i := strings.LastIndex(prefix, "/"); i > 0 {
		start = filepath.Join(l.root, filepath.FromSlash(prefix[:i]))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while listed (a merge replacing parts), or no such folder
		}
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
