package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Partition is one cluster × window of the archive.
type Partition struct {
	Cluster string
	Window  time.Time
}

// Prefix is the partition's key prefix under spans/.
func (p Partition) Prefix() string {
	return fmt.Sprintf("%scluster=%s/window=%s/", SpansPrefix, p.Cluster, WindowKey(p.Window))
}

func (p Partition) String() string { return p.Cluster + "/" + WindowKey(p.Window) }

// manifestName is the per-partition file that makes a merge atomic for readers: it names the
// merged parts that are live and the parts they replace. Readers read every part the manifest
// does not list as replaced, and merged parts only when the manifest lists them as live. So a
// crash before the manifest is written leaves the old parts in force, and one after it leaves
// the merged part in force; deleting the replaced parts is only clean-up.
const manifestName = "_manifest.json"

// mergedPrefix starts the name of every merged part.
const mergedPrefix = "merged-"

type manifest struct {
	Live     []string `json:"live"`
	Replaces []string `json:"replaces"`
}

// PartitionParts is what a reader needs of one partition.
type PartitionParts struct {
	Partition Partition
	Live      []ObjectInfo // the parts to read, sorted by key
	Replaced  []ObjectInfo // parts a merge has replaced, not yet deleted
	Unmerged  int          // live parts not written by a merge
}

// ListPartitions lists the archive's partitions with their live parts.
func ListPartitions(ctx context.Context, store Store) ([]PartitionParts, error) {
	return listPartitions(ctx, store, SpansPrefix)
}

// ListPartition lists one partition's parts.
func ListPartition(ctx context.Context, store Store, p Partition) (PartitionParts, error) {
	pps, err := listPartitions(ctx, store, p.Prefix())
	if err != nil || len(pps) == 0 {
		return PartitionParts{Partition: p}, err
	}
	return pps[0], nil
}

func listPartitions(ctx context.Context, store Store, prefix string) ([]PartitionParts, error) {
	objs, err := store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	byDir := map[string][]ObjectInfo{}
	var dirs []string
	for _, o := range objs {
		dir := path.Dir(o.Key) + "/"
		if _, ok := byDir[dir]; !ok {
			dirs = append(dirs, dir)
		}
		byDir[dir] = append(byDir[dir], o)
	}
	sort.Strings(dirs)
	var out []PartitionParts
	for _, dir := range dirs {
		p, ok := parsePartition(dir)
		if !ok {
			continue // not a partition directory; never ours to read
		}
		pp := PartitionParts{Partition: p}
		var m manifest
		files := byDir[dir]
		for _, o := range files {
			if path.Base(o.Key) == manifestName {
				if m, err = readManifest(ctx, store, o.Key); err != nil {
					return nil, err
				}
			}
		}
		replaced := toSet(m.Replaces)
		live := toSet(m.Live)
		for _, o := range files {
			name := path.Base(o.Key)
			switch {
			case !strings.HasSuffix(name, ".parquet"):
			case replaced[name]:
				pp.Replaced = append(pp.Replaced, o)
			case strings.HasPrefix(name, mergedPrefix) && !live[name]:
				// A merge that crashed before its manifest: not in force; the next merge redoes it.
				pp.Replaced = append(pp.Replaced, o)
			default:
				pp.Live = append(pp.Live, o)
				if !strings.HasPrefix(name, mergedPrefix) {
					pp.Unmerged++
				}
			}
		}
		out = append(out, pp)
	}
	return out, nil
}

func parsePartition(dir string) (Partition, bool) {
	rest, ok := strings.CutPrefix(dir, SpansPrefix+"cluster=")
	if !ok {
		return Partition{}, false
	}
	cluster, rest, ok := strings.Cut(rest, "/window=")
	if !ok {
		return Partition{}, false
	}
	w, err := ParseWindowKey(strings.TrimSuffix(rest, "/"))
	if err != nil || cluster == "" {
		return Partition{}, false
	}
	return Partition{Cluster: cluster, Window: w}, true
}

func readManifest(ctx context.Context, store Store, key string) (manifest, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return manifest{}, err
	}
	defer rc.Close()
	var m manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return manifest{}, fmt.Errorf("%s: bad manifest: %w", key, err)
	}
	return m, nil
}

func toSet(list []string) map[string]bool {
	s := make(map[string]bool, len(list))
	for _, x := range list {
		s[x] = true
	}
	return s
}

// ReadAll reads one whole object.
func ReadAll(ctx context.Context, store Store, key string) ([]byte, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Of a known size (a local file, an S3 body), read in one piece, not through io.ReadAll's
	// growing buffer (a third of the query server's CPU reading 144 object indexes of 1 MB).
	size := int64(-1)
	switch f := rc.(type) {
	case interface{ Stat() (os.FileInfo, error) }:
		if st, serr := f.Stat(); serr == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
	case interface{ Size() int64 }:
		size = f.Size()
	}
	var data []byte
	if size >= 0 && size < 1<<31 {
		data = make([]byte, size)
		if _, err = io.ReadFull(rc, data); err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		return data, nil
	}
	if data, err = io.ReadAll(rc); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return data, nil
}

// ReadPart reads every row of one part.
func ReadPart(ctx context.Context, store Store, key string) ([]Span, error) {
	data, err := ReadAll(ctx, store, key)
	if err != nil {
		return nil, err
	}
	rows, err := decodeWhole(data, func(data []byte) ([]Span, error) {
		return parquet.Read[Span](bytes.NewReader(data), int64(len(data)))
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return rows, nil
}

// checkFooter checks a whole Parquet file's trailer before parquet-go sizes a buffer by it: a
// damaged footer length made it allocate gigabytes for a file of kilobytes.
func checkFooter(data []byte) error {
	n := len(data)
	if n < 12 || string(data[:4]) != "PAR1" || string(data[n-4:]) != "PAR1" {
		return fmt.Errorf("not a Parquet file (%d bytes without the PAR1 marks)", n)
	}
	if footer := int64(binary.LittleEndian.Uint32(data[n-8:])); footer > int64(n-12) {
		return fmt.Errorf("footer of %d bytes in a %d-byte file", footer, n)
	}
	return nil
}

// decodeWhole runs decode over a whole Parquet file in memory, once its trailer checks out, with
// the decoder's panics recovered.
func decodeWhole[T any](data []byte, decode func([]byte) (T, error)) (out T, err error) {
	err = Recovered(func() error {
		if err := checkFooter(data); err != nil {
			return err
		}
		out, err = decode(data)
		return err
	})
	return out, err
}

// Recovered runs a Parquet decode and turns a panic of the decoder into an error. parquet-go
// panics on some damaged files (FuzzDecodeIndex found a page index length out of range in
// OpenFile); a damaged file must fail its own read, not take the process down.
func Recovered(decode func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("damaged Parquet: %v", p)
		}
	}()
	return decode()
}

// MergeResult says what a partition merge did.
type MergeResult struct {
	Partition Partition
	PartsIn   int
	RowsIn    int
	RowsOut   int
	Key       string // the merged part ("" when there was nothing to do)
	Skipped   bool   // already merged, nothing new
}

// MergePartition reads the partition's live parts, lets stitch combine their rows, and writes
// the result as one sorted part plus the object index of the partition, then switches readers
// to it atomically through the manifest and deletes what it replaced. Idempotent: a partition
// with one merged part and nothing new is left alone, and a crashed merge is redone.
func MergePartition(ctx context.Context, store Store, pp PartitionParts, stitch func([]Span) []Span) (MergeResult, error) {
	res := MergeResult{Partition: pp.Partition, PartsIn: len(pp.Live)}
	if pp.Unmerged == 0 && len(pp.Live) <= 1 {
		res.Skipped = true
		return res, deleteAll(ctx, store, pp.Replaced)
	}
	var rows []Span
	for _, p := range pp.Live {
		part, err := ReadPart(ctx, store, p.Key)
		if err != nil {
			return res, err
		}
		rows = append(rows, part...)
	}
	res.RowsIn = len(rows)
	merged := stitch(rows)
	res.RowsOut = len(merged)
	data, err := EncodeParquet(merged)
	if err != nil {
		return res, err
	}
	name := mergedPrefix + contentHash(merged) + ".parquet"
	res.Key = pp.Partition.Prefix() + name
	if err := store.Put(ctx, res.Key, bytes.NewReader(data), int64(len(data))); err != nil {
		return res, err
	}
	if err := WriteIndex(ctx, store, pp.Partition, name, merged); err != nil {
		return res, err
	}
	m := manifest{Live: []string{name}}
	for _, o := range append(append([]ObjectInfo(nil), pp.Live...), pp.Replaced...) {
		if n := path.Base(o.Key); n != name {
			m.Replaces = append(m.Replaces, n)
		}
	}
	sort.Strings(m.Replaces)
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := store.Put(ctx, pp.Partition.Prefix()+manifestName, bytes.NewReader(mb), int64(len(mb))); err != nil {
		return res, err
	}
	var old []ObjectInfo
	for _, o := range append(pp.Live, pp.Replaced...) {
		if o.Key != res.Key {
			old = append(old, o)
		}
	}
	return res, deleteAll(ctx, store, old)
}

func deleteAll(ctx context.Context, store Store, objs []ObjectInfo) error {
	var errs []error
	for _, o := range objs {
		if err := store.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeletePartition removes a partition's spans, manifest and object index: retention.
func DeletePartition(ctx context.Context, store Store, p Partition) error {
	objs, err := store.List(ctx, p.Prefix())
	if err != nil {
		return err
	}
	objs = append(objs, ObjectInfo{Key: IndexKey(p)})
	// The manifest goes last, so a crash midway leaves a partition that still reads consistently.
	sort.SliceStable(objs, func(i, j int) bool { return path.Base(objs[j].Key) == manifestName })
	return deleteAll(ctx, store, objs)
}
