// Package archive owns kairn's storage: the versioned Parquet span schema, the Hive-style layout
// of parts in an object store, and the stores themselves (a local directory, S3). It knows
// nothing of Kubernetes clients; it stores and lists span rows.
package archive

import "time"

// SchemaVersion is the version of the archive's layout: the Span rows and the object index. It
// is written into every part's and index file's key/value metadata as kairn.schema.version.
// Changing a column is a deliberate act: bump this, and document the change in
// docs/archive-format.md. 2: the object index gained object_hash (span parts are as in 1). 3:
// the object index gained part_row and part_rows, and names its part (IndexPartKey).
const SchemaVersion = "3"

// Span kinds.
const (
	KindObject = "object" // one per object per window; parent is the owner's object span
	KindAudit  = "audit"  // an apiserver request on the object
	KindEvent  = "event"  // a Kubernetes Event about the object
	KindChange = "change" // an observed revision of the object, with its changed fields
)

// Span is one row of the archive: an object span or an observation span. Columns are flat and
// SQL-first; strings are dictionary-encoded; empty strings and zero times are NULL.
// docs/archive-format.md documents every column.
type Span struct {
	Kind         string `parquet:"kind,dict"`
	TraceID      string `parquet:"trace_id,dict"`
	SpanID       string `parquet:"span_id"`
	ParentSpanID string `parquet:"parent_span_id,optional"`

	Cluster   string `parquet:"cluster,dict"`
	APIGroup  string `parquet:"api_group,optional,dict"`
	Resource  string `parquet:"resource,dict"`
	Namespace string `parquet:"namespace,optional,dict"`
	Name      string `parquet:"name,dict"`
	// uid is not compressed: random hex, which zstd only halves, by Huffman coding whose
	// decoding was a sixth of a trace's first read in its windows (docs/archive-format.md).
	UID        string `parquet:"uid,optional,dict,uncompressed"`
	ObjectKind string `parquet:"object_kind,optional,dict"`

	ParentCluster   string `parquet:"parent_cluster,optional,dict"`
	ParentAPIGroup  string `parquet:"parent_api_group,optional,dict"`
	ParentResource  string `parquet:"parent_resource,optional,dict"`
	ParentNamespace string `parquet:"parent_namespace,optional,dict"`
	ParentKind      string `parquet:"parent_kind,optional,dict"`
	ParentName      string `parquet:"parent_name,optional,dict"`
	ParentUID       string `parquet:"parent_uid,optional,dict"`
	ParentRelation  string `parquet:"parent_relation,optional,dict"`
	// Links are an object span's other relations: non-controller owners, a pod's node, an
	// EndpointSlice's Service, an annotation parent that displaced the owner.
	Links []Link `parquet:"links,list"`

	WindowStart time.Time `parquet:"window_start,timestamp(microsecond)"`
	// start_time is delta-encoded: its PLAIN pages were a fifth of a trace's decoding (zstd
	// finds only short matches in 8-byte times), for 1 % more bytes (docs/archive-format.md).
	StartTime  time.Time `parquet:"start_time,timestamp(microsecond),delta"`
	EndTime    time.Time `parquet:"end_time,timestamp(microsecond)"`
	TimeSource string    `parquet:"time_source,optional,dict"`

	ObservationID string `parquet:"observation_id,optional"`
	AuditID       string `parquet:"audit_id,optional"`
	Stage         string `parquet:"stage,optional,dict"`
	Verb          string `parquet:"verb,optional,dict"`
	Subresource   string `parquet:"subresource,optional,dict"`
	User          string `parquet:"user,optional,dict"`
	UserAgent     string `parquet:"user_agent,optional,dict"`
	StatusCode    int32  `parquet:"status_code,optional"`

	Reason     string `parquet:"reason,optional,dict"`
	Message    string `parquet:"message,optional,dict"`
	EventType  string `parquet:"event_type,optional,dict"`
	Reporter   string `parquet:"reporter,optional,dict"`
	EventCount int32  `parquet:"event_count,optional"`

	ResourceVersion     string        `parquet:"resource_version,optional"`
	PrevResourceVersion string        `parquet:"prev_resource_version,optional"`
	FieldManager        string        `parquet:"field_manager,optional,dict"`
	NoOp                bool          `parquet:"no_op,optional"`
	AuditLink           string        `parquet:"audit_link,optional,dict"`
	RevisionTime        time.Time     `parquet:"revision_time,optional,timestamp(microsecond)"`
	RevisionTimeSource  string        `parquet:"revision_time_source,optional,dict"`
	Changes             []FieldChange `parquet:"changes,list"`
}

// Link is a secondary relation of an object span to another object's span in the same window.
type Link struct {
	Relation  string `parquet:"relation,dict"`
	Cluster   string `parquet:"cluster,dict"`
	APIGroup  string `parquet:"api_group,optional,dict"`
	Resource  string `parquet:"resource,dict"`
	Namespace string `parquet:"namespace,optional,dict"`
	Name      string `parquet:"name"`
	UID       string `parquet:"uid,optional"`
	SpanID    string `parquet:"span_id"`
}

// FieldChange is one changed leaf: a path such as spec.template.spec.containers[0].image and
// its JSON-encoded values before and after (NULL when absent).
type FieldChange struct {
	Path string `parquet:"path,dict"`
	Old  string `parquet:"old,optional"`
	New  string `parquet:"new,optional"`
}

// WindowKey formats a window start the way partitions are named: 20261124T0530.
func WindowKey(start time.Time) string { return start.UTC().Format("20060102T1504") }

// ParseWindowKey is the inverse of WindowKey.
func ParseWindowKey(s string) (time.Time, error) { return time.Parse("20060102T1504", s) }
