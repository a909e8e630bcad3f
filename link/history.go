package link

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/zeebo/xxh3"
)

// History is what the linker knows of objects from before the facts it is given: the revisions
// earlier windows ended with. With it a window's first revision of an object is diffed against
// the object's previous one, and an object with no revision in the window still has its parents.
type History interface {
	// Before returns the newest known revision of the object older than rv.
	Before(uid, rv string) (Revision, bool)
	// Latest returns the newest known revision of the object.
	Latest(uid string) (Revision, bool)
	// UIDByName returns the uid of the newest object known under the key's name.
	UIDByName(k ObjectKey) (string, bool)
}

// RevisionStore is a History on local disk with a compact in-memory index: per live object its
// uid, and where its last two revisions are in an append-only log. Bodies stay on disk, so memory
// per live object is small and constant (see BenchmarkRevisionStoreMemory). The log is replayed
// on open; a torn tail from a crash is cut off.
type RevisionStore struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	size    int64
	live    map[[16]byte]revEntry // hash of the uid → last two revisions
	names   map[uint64]string     // hash of the name key → newest uid
	garbage int64                 // bytes in the log no entry points at
}

type revPos struct {
	off int64
	n   uint32
	rv  uint64 // resourceVersions are decimal in every etcd-backed apiserver; others order as 0
}

func rvNum(rv string) uint64 {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return n
}

func uidHash(uid string) [16]byte { return xxh3.HashString128(uid).Bytes() }

type revEntry struct {
	cur, prev revPos
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenRevisionStore opens (or creates) the store in dir.
func OpenRevisionStore(dir string) (*RevisionStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &RevisionStore{path: filepath.Join(dir, "revisions.log"), live: map[[16]byte]revEntry{}, names: map[uint64]string{}}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	s.f = f
	if err := s.replay(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *RevisionStore) replay() error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, 1<<62), 1<<20)
	var off int64
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break // end, or a torn header
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil || crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			break // a torn or corrupt tail: everything before it is good
		}
		rev, err := decodeStored(body)
		if err != nil {
			break
		}
		s.index(rev, revPos{off: off, n: uint32(8 + n), rv: rvNum(rev.ResourceVersion)})
		off += int64(8 + n)
	}
	if err := s.f.Truncate(off); err != nil {
		return fmt.Errorf("revision store %s: cut torn tail: %w", s.path, err)
	}
	s.size = off
	return nil
}

func (s *RevisionStore) index(rev Revision, pos revPos) {
	key := uidHash(rev.Object.UID)
	e, ok := s.live[key]
	if ok && e.cur.rv >= pos.rv {
		s.garbage += int64(pos.n)
		return // older than what is known: not kept
	}
	if ok {
		s.garbage += int64(e.prev.n)
		e.prev = e.cur
	}
	e.cur = pos
	s.live[key] = e
	// A decoded revision's strings alias its whole record: the map keeps a copy of its own.
	if h := nameHash(rev.Object); s.names[h] != rev.Object.UID {
		s.names[h] = strings.Clone(rev.Object.UID)
	}
}

// Put records revisions (the last ones of a window). Older revisions than the newest known of an
// object are ignored. Not fsync'd: the store is a cache of what the archive already holds, and a
// lost tail only means a diff against an older revision.
func (s *RevisionStore) Put(revs ...Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rev := range revs {
		if rev.Object.UID == "" {
			continue
		}
		if e, ok := s.live[uidHash(rev.Object.UID)]; ok && e.cur.rv >= rvNum(rev.ResourceVersion) {
			continue
		}
		body, err := EncodeRecord(Record{Revision: &rev})
		if err != nil {
			return err
		}
		buf := make([]byte, 8+len(body))
		binary.LittleEndian.PutUint32(buf[:4], uint32(len(body)))
		binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(body, crcTable))
		copy(buf[8:], body)
		if _, err := s.f.WriteAt(buf, s.size); err != nil {
			return fmt.Errorf("revision store %s: %w", s.path, err)
		}
		s.index(rev, revPos{off: s.size, n: uint32(len(buf)), rv: rvNum(rev.ResourceVersion)})
		s.size += int64(len(buf))
	}
	if s.garbage > 64<<20 && s.garbage > 2*(s.size-s.garbage) {
		return s.compact()
	}
	return nil
}

// Forget drops a deleted object once no later window can need it.
func (s *RevisionStore) Forget(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.live[uidHash(uid)]; ok {
		s.garbage += int64(e.cur.n + e.prev.n)
		delete(s.live, uidHash(uid))
	}
}

func (s *RevisionStore) read(pos revPos) (Revision, bool) {
	if pos.n < 8 {
		return Revision{}, false
	}
	buf := make([]byte, pos.n)
	if _, err := s.f.ReadAt(buf, pos.off); err != nil {
		return Revision{}, false
	}
	rev, err := decodeStored(buf[8:])
	return rev, err == nil
}

// decodeStored decodes a logged revision: the spool's record encoding (the body kept as JSON),
// or JSON of the Revision as logs written before it hold.
func decodeStored(b []byte) (Revision, error) {
	if len(b) > 0 && b[0] == '{' {
		var rev Revision
		err := json.Unmarshal(b, &rev)
		return rev, err
	}
	r, err := DecodeRecord(b)
	if err != nil {
		return Revision{}, err
	}
	if r.Revision == nil {
		return Revision{}, errors.New("revision log: not a revision")
	}
	return *r.Revision, nil
}

func (s *RevisionStore) Before(uid, rv string) (Revision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live[uidHash(uid)]
	if !ok {
		return Revision{}, false
	}
	for _, p := range []revPos{e.cur, e.prev} {
		if p.n > 0 && p.rv < rvNum(rv) {
			return s.read(p)
		}
	}
	return Revision{}, false
}

func (s *RevisionStore) Latest(uid string) (Revision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live[uidHash(uid)]
	if !ok {
		return Revision{}, false
	}
	return s.read(e.cur)
}

func (s *RevisionStore) UIDByName(k ObjectKey) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uid, ok := s.names[nameHash(k)]
	return uid, ok
}

// Len is the number of objects known.
func (s *RevisionStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// compact rewrites the log with only the revisions entries point at, and swaps it in atomically.
func (s *RevisionStore) compact() error {
	tmpPath := s.path + ".compact"
	tmp, err := os.Create(tmpPath)
	if err != nil {
		return err
	}
	var off int64
	moved := make(map[[16]byte]revEntry, len(s.live))
	for uid, e := range s.live {
		var ne revEntry
		for i, p := range []revPos{e.prev, e.cur} {
			if p.n == 0 {
				continue
			}
			buf := make([]byte, p.n)
			if _, err := s.f.ReadAt(buf, p.off); err != nil {
				tmp.Close()
				return err
			}
			if _, err := tmp.Write(buf); err != nil {
				tmp.Close()
				return err
			}
			np := revPos{off: off, n: p.n, rv: p.rv}
			if i == 0 {
				ne.prev = np
			} else {
				ne.cur = np
			}
			off += int64(p.n)
		}
		moved[uid] = ne
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := os.Rename(tmpPath, s.path); err != nil {
		tmp.Close()
		return err
	}
	s.f.Close()
	s.f, s.live, s.size, s.garbage = tmp, moved, off, 0
	return nil
}

// Close closes the log.
func (s *RevisionStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("revision store already closed")
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func nameHash(k ObjectKey) uint64 {
	h := xxh3.New()
	for _, p := range []string{k.Cluster, k.Group, k.Resource, k.Namespace, k.Name} {
		h.WriteString(p)
		h.Write([]byte{0})
	}
	return h.Sum64()
}
