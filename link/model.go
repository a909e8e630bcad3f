// Package link owns kairn's span model: observations (raw facts from audit, Events and watched
// object revisions), object keys, and how they are joined into object spans — identity,
// ownership, audit ↔ change correlation and Event timing. It knows nothing of where the facts
// came from (collect) or how spans are stored (archive), beyond the archive's row type.
package link

import (
	"strconv"
	"strings"
	"time"
)

// Source says where an observation came from.
type Source string

const (
	SourceAudit  Source = "audit"  // an apiserver audit event at its final stage
	SourceEvent  Source = "event"  // a revision of a core/v1 or events.k8s.io/v1 Event
	SourceChange Source = "change" // an object revision, with its diff against the previous one
)

// ObjectKey identifies a Kubernetes object. UID tells re-creations under one name apart; it may
// be empty where a source does not know it (a Metadata-level audit record of a failed write).
type ObjectKey struct {
	Cluster   string
	Group     string
	Resource  string
	Namespace string
	Name      string
	UID       string
}

// NameKey is the key without the uid: what a name-based lookup can know.
func (k ObjectKey) NameKey() ObjectKey { k.UID = ""; return k }

func (k ObjectKey) String() string {
	var b strings.Builder
	b.WriteString(k.Cluster)
	b.WriteByte('/')
	if k.Group != "" {
		b.WriteString(k.Resource + "." + k.Group)
	} else {
		b.WriteString(k.Resource)
	}
	if k.Namespace != "" {
		b.WriteString("/" + k.Namespace)
	}
	b.WriteString("/" + k.Name)
	return b.String()
}

// OwnerRef is one ownerReference, resolved to a resource.
type OwnerRef struct {
	Group      string
	Kind       string
	Resource   string
	Name       string
	UID        string
	Controller bool
}

// FieldChange is one changed leaf of an object, as a path and its JSON-encoded old and new values
// ("" for absent).
type FieldChange struct {
	Path string
	Old  string
	New  string
}

// Observation is one raw fact about one object.
type Observation struct {
	Source Source
	Object ObjectKey
	Kind   string // the object's kind, e.g. "Deployment", when known

	// Time is the best known time of the fact; TimeSource says where it came from
	// ("audit", "eventTime", "firstTimestamp", "lastTimestamp", "managedFields",
	// "creationTimestamp", "deletionTimestamp"), so readers know its precision.
	Time       time.Time
	EndTime    time.Time
	TimeSource string

	// ID is stable across sources and replicas: audit ID + stage, Event uid + resourceVersion,
	// object uid + resourceVersion. Duplicates of one ID are one fact.
	ID string

	// Audit, and the write that produced a change when linked.
	AuditID     string
	Stage       string
	Verb        string // for changes: create, update or delete
	Subresource string
	User        string
	UserAgent   string
	StatusCode  int32
	NoOp        bool   // a successful write that produced no new revision
	AuditLink   string // how an audit record and a change were joined: LinkByResourceVersion or LinkByFit

	// A change's own time, before a linked audit record's replaced Time: what a later join
	// (a merge) starts from again.
	RevisionTime       time.Time
	RevisionTimeSource string

	// Events. Carrier is the Event object itself (its namespace, name and uid), which is how an
	// audited Event creation is matched to the fact it reports.
	Carrier   ObjectKey
	Reason    string
	Message   string
	EventType string
	Reporter  string
	Count     int32

	// Revisions. ResourceVersion is the object's after the fact; PrevResourceVersion the one
	// before (a change's previous revision, or the revision an audited write was based on).
	ResourceVersion     string
	PrevResourceVersion string
	Changes             []FieldChange
	Owners              []OwnerRef

	// Managed-fields hint of a revision: which manager wrote it, how, and when (second
	// precision). Used to correlate Metadata-level audit records with revisions.
	Manager     string
	ManagerOp   string
	ManagerTime time.Time
}

// RVLess orders resourceVersions. They are opaque to clients, but etcd-backed apiservers hand out
// decimal integers; compare numerically when both are, else as strings.
func RVLess(a, b string) bool {
	ai, aerr := strconv.ParseUint(a, 10, 64)
	bi, berr := strconv.ParseUint(b, 10, 64)
	if aerr == nil && berr == nil {
		return ai < bi
	}
	return a < b
}

// Revision is one observed state of an object: from a watch, or from the response body of an
// audited write. The linker orders an object's revisions and diffs consecutive ones into change
// observations.
type Revision struct {
	Object          ObjectKey
	Kind            string
	ResourceVersion string
	Deleted         bool      // the watch reported the object gone
	Observed        time.Time // when a collector saw it, if the source says (zero for plain files)
	From            string    // "watch", "audit" or "admission"
	AuditID         string    // the audited write whose response carried this revision

	Created      time.Time // metadata.creationTimestamp
	DeletionTime time.Time // metadata.deletionTimestamp
	Generation   int64
	Owners       []OwnerRef

	// The newest managedFields entry: who wrote this revision, how, and when.
	Manager     string
	ManagerOp   string
	ManagerTime time.Time

	// Body is the object with managedFields removed (and Secret data never present).
	Body map[string]any
	// RawBody, when Body is nil, is the object's JSON as a collector read it (validated, with
	// managedFields): it goes to the spool as is, and is decoded into Body once, when a Batch
	// is given the revision (DecodeBody).
	RawBody []byte `json:"-"`
}
