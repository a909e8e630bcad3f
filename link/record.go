package link

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"
)

// Record is one fact as it is spooled between collection and linking: an observation or a
// revision.
type Record struct {
	Observation *Observation `json:"o,omitempty"`
	Revision    *Revision    `json:"r,omitempty"`
}

// Time is when the fact happened, as well as it is known: what decides its window.
func (r Record) Time() time.Time {
	switch {
	case r.Observation != nil:
		return r.Observation.Time
	case r.Revision != nil:
		v := r.Revision
		t, _ := bestTime(sourced{v.Observed, ""}, sourced{v.ManagerTime, ""}, sourced{v.DeletionTime, ""}, sourced{v.Created, ""})
		return t
	}
	return time.Time{}
}

// The spool encoding is binary: a tag byte (recObservation, recRevision), then every field in a
// fixed order (strings and byte strings length-prefixed, integers as varints, times as seconds
// and nanoseconds, UTC), and for a revision its body as the JSON the collector read. A spool is
// written and read by the same build, but records of the earlier JSON encoding (they start with
// '{') still decode, so a spool left by an older version is replayed after an upgrade.
const (
	recObservation = 1
	recRevision    = 2

	bodyNone = 0
	bodyRaw  = 1 // RawBody: the object's JSON as read
)

// EncodeRecord and DecodeRecord are the spool encoding.
func EncodeRecord(r Record) ([]byte, error) { return AppendRecord(nil, r) }

// AppendRecord appends the encoding of r to dst (many records can share one buffer).
func AppendRecord(dst []byte, r Record) ([]byte, error) {
	e := enc{b: dst}
	switch {
	case r.Observation != nil && r.Revision == nil:
		if dst == nil {
			e.b = make([]byte, 0, 512)
		}
		e.byte(recObservation)
		e.observation(r.Observation)
	case r.Revision != nil && r.Observation == nil:
		v := r.Revision
		body := v.RawBody
		if body == nil && v.Body != nil {
			b, err := json.Marshal(v.Body)
			if err != nil {
				return nil, fmt.Errorf("spool record: %w", err)
			}
			body = b
		}
		if dst == nil {
			e.b = make([]byte, 0, 256+len(body))
		}
		e.byte(recRevision)
		e.revision(v)
		if body == nil {
			e.byte(bodyNone)
		} else {
			e.byte(bodyRaw)
			e.bytes(body)
		}
	default:
		return nil, errors.New("spool record holds neither or both of an observation and a revision")
	}
	return e.b, nil
}

// DecodeRecord decodes a spooled record. The record's strings and bodies alias b, which must not
// change afterwards.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &r); err != nil {
			return r, fmt.Errorf("spooled record: %w", err)
		}
		if (r.Observation == nil) == (r.Revision == nil) {
			return r, fmt.Errorf("spooled record holds %s", "neither or both of an observation and a revision")
		}
		return r, nil
	}
	d := dec{b: b}
	switch d.byte() {
	case recObservation:
		r.Observation = new(Observation)
		d.observation(r.Observation)
	case recRevision:
		r.Revision = new(Revision)
		d.revisionRecord(r.Revision)
	default:
		d.fail()
	}
	if err := d.end(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// AddRecord decodes a spooled record into the batch, as Add(DecodeRecord(rec)) would; an
// observation is decoded in place, without the copy. Its strings and bodies alias rec, which must
// not change afterwards.
func (b *Batch) AddRecord(rec []byte) error {
	if len(rec) == 0 || rec[0] != recObservation {
		r, err := DecodeRecord(rec)
		if err == nil {
			b.Add(r)
		}
		return err
	}
	d := dec{b: rec, i: 1}
	d.observation(b.grow())
	if err := d.end(); err != nil {
		b.shrink()
		return err
	}
	return nil
}

type enc struct{ b []byte }

func (e *enc) byte(c byte)    { e.b = append(e.b, c) }
func (e *enc) uint(u uint64)  { e.b = binary.AppendUvarint(e.b, u) }
func (e *enc) int(i int64)    { e.b = binary.AppendVarint(e.b, i) }
func (e *enc) str(s string)   { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(p []byte) { e.uint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *enc) bool(v bool)    { e.b = append(e.b, btob(v)) }
func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.byte(0)
		return
	}
	e.byte(1)
	e.int(t.Unix())
	e.uint(uint64(t.Nanosecond()))
}

func btob(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func (e *enc) key(k ObjectKey) {
	e.str(k.Cluster)
	e.str(k.Group)
	e.str(k.Resource)
	e.str(k.Namespace)
	e.str(k.Name)
	e.str(k.UID)
}

func (e *enc) owners(os []OwnerRef) {
	if os == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(os)) + 1)
	for _, o := range os {
		e.str(o.Group)
		e.str(o.Kind)
		e.str(o.Resource)
		e.str(o.Name)
		e.str(o.UID)
		e.bool(o.Controller)
	}
}

func (e *enc) observation(o *Observation) {
	e.str(string(o.Source))
	e.key(o.Object)
	e.str(o.Kind)
	e.time(o.Time)
	e.time(o.EndTime)
	e.str(o.TimeSource)
	e.str(o.ID)
	e.str(o.AuditID)
	e.str(o.Stage)
	e.str(o.Verb)
	e.str(o.Subresource)
	e.str(o.User)
	e.str(o.UserAgent)
	e.int(int64(o.StatusCode))
	e.bool(o.NoOp)
	e.str(o.AuditLink)
	e.time(o.RevisionTime)
	e.str(o.RevisionTimeSource)
	e.key(o.Carrier)
	e.str(o.Reason)
	e.str(o.Message)
	e.str(o.EventType)
	e.str(o.Reporter)
	e.int(int64(o.Count))
	e.str(o.ResourceVersion)
	e.str(o.PrevResourceVersion)
	if o.Changes == nil {
		e.uint(0)
	} else {
		e.uint(uint64(len(o.Changes)) + 1)
		for _, c := range o.Changes {
			e.str(c.Path)
			e.str(c.Old)
			e.str(c.New)
		}
	}
	e.owners(o.Owners)
	e.str(o.Manager)
	e.str(o.ManagerOp)
	e.time(o.ManagerTime)
}

func (e *enc) revision(v *Revision) {
	e.key(v.Object)
	e.str(v.Kind)
	e.str(v.ResourceVersion)
	e.bool(v.Deleted)
	e.time(v.Observed)
	e.str(v.From)
	e.str(v.AuditID)
	e.time(v.Created)
	e.time(v.DeletionTime)
	e.int(v.Generation)
	e.owners(v.Owners)
	e.str(v.Manager)
	e.str(v.ManagerOp)
	e.time(v.ManagerTime)
}

type dec struct {
	b   []byte
	i   int
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errors.New("spooled record: truncated or corrupt")
	}
	d.i = len(d.b)
}

func (d *dec) byte() byte {
	if d.i >= len(d.b) {
		d.fail()
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

func (d *dec) uint() uint64 {
	u, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.i += n
	return u
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.i += n
	return v
}

func (d *dec) bytes() []byte {
	n := d.uint()
	if n > uint64(len(d.b)-d.i) {
		d.fail()
		return nil
	}
	p := d.b[d.i : d.i+int(n) : d.i+int(n)]
	d.i += int(n)
	return p
}

// str aliases the record's bytes instead of copying them, which saves an allocation per
// string; the strings live as long as the record's bytes (RawBody aliases them already).
func (d *dec) str() string {
	p := d.bytes()
	if len(p) == 0 {
		return ""
	}
	return unsafe.String(&p[0], len(p))
}
func (d *dec) bool() bool { return d.byte() == 1 }

func (d *dec) int32() int32 {
	v := d.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
	}
	return int32(v)
}

func (d *dec) time() time.Time {
	if d.byte() == 0 {
		return time.Time{}
	}
	s := d.int()
	ns := d.uint()
	if ns >= 1e9 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(s, int64(ns)).UTC()
}

func (d *dec) key() ObjectKey {
	return ObjectKey{Cluster: d.str(), Group: d.str(), Resource: d.str(), Namespace: d.str(), Name: d.str(), UID: d.str()}
}

// count reads a slice length (+1, 0 for nil), bounded by the bytes left (every element takes at
// least one).
func (d *dec) count() (int, bool) {
	n := d.uint()
	if n == 0 {
		return 0, false
	}
	if n-1 > uint64(len(d.b)-d.i) {
		d.fail()
		return 0, false
	}
	return int(n - 1), true
}

func (d *dec) owners() []OwnerRef {
	n, ok := d.count()
	if !ok {
		return nil
	}
	out := make([]OwnerRef, n)
	for i := range out {
		out[i] = OwnerRef{Group: d.str(), Kind: d.str(), Resource: d.str(), Name: d.str(), UID: d.str(), Controller: d.bool()}
	}
	return out
}

func (d *dec) observation(o *Observation) {
	o.Source = Source(d.str())
	o.Object = d.key()
	o.Kind = d.str()
	o.Time = d.time()
	o.EndTime = d.time()
	o.TimeSource = d.str()
	o.ID = d.str()
	o.AuditID = d.str()
	o.Stage = d.str()
	o.Verb = d.str()
	o.Subresource = d.str()
	o.User = d.str()
	o.UserAgent = d.str()
	o.StatusCode = d.int32()
	o.NoOp = d.bool()
	o.AuditLink = d.str()
	o.RevisionTime = d.time()
	o.RevisionTimeSource = d.str()
	o.Carrier = d.key()
	o.Reason = d.str()
	o.Message = d.str()
	o.EventType = d.str()
	o.Reporter = d.str()
	o.Count = d.int32()
	o.ResourceVersion = d.str()
	o.PrevResourceVersion = d.str()
	if n, ok := d.count(); ok {
		o.Changes = make([]FieldChange, n)
		for i := range o.Changes {
			o.Changes[i] = FieldChange{Path: d.str(), Old: d.str(), New: d.str()}
		}
	}
	o.Owners = d.owners()
	o.Manager = d.str()
	o.ManagerOp = d.str()
	o.ManagerTime = d.time()
}

// revisionRecord decodes a revision record: the revision, then its body.
func (d *dec) revisionRecord(v *Revision) {
	d.revision(v)
	switch d.byte() {
	case bodyNone:
	case bodyRaw:
		v.RawBody = d.bytes()
	default:
		d.fail()
	}
}

// end checks that the record was decoded whole.
func (d *dec) end() error {
	if d.err == nil && d.i != len(d.b) {
		d.fail()
	}
	return d.err
}

func (d *dec) revision(v *Revision) {
	v.Object = d.key()
	v.Kind = d.str()
	v.ResourceVersion = d.str()
	v.Deleted = d.bool()
	v.Observed = d.time()
	v.From = d.str()
	v.AuditID = d.str()
	v.Created = d.time()
	v.DeletionTime = d.time()
	v.Generation = d.int()
	v.Owners = d.owners()
	v.Manager = d.str()
	v.ManagerOp = d.str()
	v.ManagerTime = d.time()
}

// Add hands a decoded record to the batch.
func (b *Batch) Add(r Record) {
	if r.Observation != nil {
		b.Observe(*r.Observation)
	} else if r.Revision != nil {
		b.Revise(*r.Revision)
	}
}
