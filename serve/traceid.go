package serve

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// TraceID is the 128-bit id kairn gives a trace. It is stateless: it names the pipeline, the
// object the trace is about and the time range to read, so fetching it needs no registry and
// reads only the windows it covers, and switching pipeline changes only the pipeline byte.
//
//	byte  0      format: 0x6c ('l'; 0x6b 'k' before 2026-12-03, still read)
//	byte  1      pipeline: low nibble the display (tree 1, timeline 2, tracing 3, grouping 4),
//	             high nibble the selector (0 the object's subtree, 1 full tree, 2 ancestors, 3 children)
//	bytes 2..7   the first 48 bits of ObjectHash(cluster, group, resource, namespace, name, uid)
//	byte  8      the cluster's hint, 1..255 (clusterHint); format 0x6b: bits 48..55 of the hash
//	bytes 9..12  start: minutes since the Unix epoch (big endian), a window start
//	bytes 13..15 length in minutes (big endian, at most 2^24-1 ≈ 31 years)
//
// The hint lets a fetch skip the partitions of other clusters (a new server read every
// cluster's object indexes in the range: 144 for a day of 3 clusters where 48 hold the object).
// 48 bits of hash still name one object among a day's: of 700k objects in a cluster's 48
// windows, another shares them with a chance of 2.5e-9.
type TraceID struct {
	Pipeline    Pipeline
	Object      ObjectHash // format 0x6c: its last byte is 0
	ClusterHint byte       // 0: any cluster (format 0x6b)
	Start       time.Time  // inclusive, minute precision
	End         time.Time  // exclusive
}

// newTraceID is the id of key's trace over [start, end) through p.
func newTraceID(p Pipeline, key ObjectKey, start, end time.Time) TraceID {
	h := key.Hash()
	h[len(h)-1] = 0
	return TraceID{Pipeline: p, Object: h, ClusterHint: clusterHint(key.Cluster), Start: start, End: end}
}

// clusterHint is 1 + an FNV-1a hash of cluster modulo 255: never 0 (no hint).
func clusterHint(cluster string) byte {
	h := fnv.New32a()
	h.Write([]byte(cluster))
	return byte(1 + h.Sum32()%255)
}

// inCluster says whether the object may be in cluster.
func (id TraceID) inCluster(cluster string) bool {
	return id.ClusterHint == 0 || clusterHint(cluster) == id.ClusterHint
}

// names says whether the id names the object k.
func (id TraceID) names(k ObjectKey) bool {
	h := k.Hash()
	if id.ClusterHint != 0 {
		return [6]byte(h[:6]) == [6]byte(id.Object[:6]) && id.inCluster(k.Cluster)
	}
	return h == id.Object
}

// hashMask selects the bits of an object_hash value the id holds.
func (id TraceID) hashMask() int64 {
	if id.ClusterHint != 0 {
		return ^int64(0xff)
	}
	return -1
}

// ObjectHash names an object in a trace id: 56 bits of a SHA-256 of its key.
type ObjectHash [7]byte

const (
	traceIDFormat   = 0x6c
	traceIDFormatV1 = 0x6b // no cluster hint: 56 bits of hash
)

const maxLengthMinutes = 1<<24 - 1

// ObjectKey is the identity of an object in the archive.
type ObjectKey struct {
	Cluster, Group, Resource, Namespace, Name, UID string
}

func (k ObjectKey) String() string {
	s := k.Cluster + "/"
	if k.Group != "" {
		s += k.Group + "/"
	}
	s += k.Resource + "/"
	if k.Namespace != "" {
		s += k.Namespace + "/"
	}
	return s + k.Name
}

// Hash is the object's ObjectHash.
func (k ObjectKey) Hash() ObjectHash {
	return hashBytes(archive.ObjectHash(k.Cluster, k.Group, k.Resource, k.Namespace, k.Name, k.UID))
}

// hashBytes is the ObjectHash of archive.ObjectHash's 56 bits.
func hashBytes(h int64) ObjectHash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(h))
	return ObjectHash(b[1:])
}

// value is the hash as archive.ObjectHash returns it (the index's object_hash).
func (h ObjectHash) value() int64 {
	var b [8]byte
	copy(b[1:], h[:])
	return int64(binary.BigEndian.Uint64(b[:]))
}

// Bytes encodes the id as 16 bytes.
func (id TraceID) Bytes() ([16]byte, error) {
	var b [16]byte
	if err := id.Pipeline.validate(); err != nil {
		return b, err
	}
	start := id.Start.Unix() / 60
	end := (id.End.Unix() + 59) / 60
	if id.Start.Unix()%60 != 0 || start < 0 || start > 1<<32-1 {
		return b, fmt.Errorf("trace id: start %s is not a whole minute within 1970..10136", id.Start.UTC().Format(time.RFC3339))
	}
	if end <= start || end-start > maxLengthMinutes {
		return b, fmt.Errorf("trace id: time range %s..%s is empty or longer than %d minutes", id.Start.UTC().Format(time.RFC3339), id.End.UTC().Format(time.RFC3339), maxLengthMinutes)
	}
	b[0] = traceIDFormatV1
	b[1] = byte(id.Pipeline.Display) | byte(id.Pipeline.Selector)<<4
	copy(b[2:9], id.Object[:])
	if id.ClusterHint != 0 {
		b[0], b[8] = traceIDFormat, id.ClusterHint
	}
	binary.BigEndian.PutUint32(b[9:13], uint32(start))
	n := uint32(end - start)
	b[13], b[14], b[15] = byte(n>>16), byte(n>>8), byte(n)
	return b, nil
}

// String is the 32 hex digits Jaeger shows.
func (id TraceID) String() string {
	b, err := id.Bytes()
	if err != nil {
		return "invalid:" + err.Error()
	}
	return hex.EncodeToString(b[:])
}

// WithPipeline is the same trace shown through another pipeline.
func (id TraceID) WithPipeline(p Pipeline) TraceID { id.Pipeline = p; return id }

// ErrBadTraceID is wrapped by every error of ParseTraceID and DecodeTraceID.
var ErrBadTraceID = errors.New("not a kairn trace id")

// DecodeTraceID decodes 16 bytes. A shorter id (Jaeger trims leading zeros of 64-bit ids) or
// one of another format is an error wrapping ErrBadTraceID.
func DecodeTraceID(b []byte) (TraceID, error) {
	if len(b) != 16 {
		return TraceID{}, fmt.Errorf("%w: %d bytes, want 16", ErrBadTraceID, len(b))
	}
	if b[0] != traceIDFormat && b[0] != traceIDFormatV1 {
		return TraceID{}, fmt.Errorf("%w: format byte %#02x, want %#02x", ErrBadTraceID, b[0], traceIDFormat)
	}
	if b[0] == traceIDFormat && b[8] == 0 {
		return TraceID{}, fmt.Errorf("%w: cluster hint 0", ErrBadTraceID)
	}
	p := Pipeline{Display: Display(b[1] & 0x0f), Selector: Selector(b[1] >> 4)}
	if err := p.validate(); err != nil {
		return TraceID{}, fmt.Errorf("%w: %v", ErrBadTraceID, err)
	}
	var id TraceID
	id.Pipeline = p
	copy(id.Object[:], b[2:9])
	if b[0] == traceIDFormat {
		id.Object[6], id.ClusterHint = 0, b[8]
	}
	start := int64(binary.BigEndian.Uint32(b[9:13]))
	n := int64(b[13])<<16 | int64(b[14])<<8 | int64(b[15])
	if n == 0 {
		return TraceID{}, fmt.Errorf("%w: empty time range", ErrBadTraceID)
	}
	id.Start = time.Unix(start*60, 0).UTC()
	id.End = time.Unix((start+n)*60, 0).UTC()
	return id, nil
}

// ParseTraceID parses the 32 hex digits of a trace id.
func ParseTraceID(s string) (TraceID, error) {
	if len(s) != 32 {
		return TraceID{}, fmt.Errorf("%w: %q has %d hex digits, want 32", ErrBadTraceID, truncate(s, 40), len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return TraceID{}, fmt.Errorf("%w: %q is not hex", ErrBadTraceID, truncate(s, 40))
	}
	return DecodeTraceID(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
