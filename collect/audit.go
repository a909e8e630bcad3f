package collect

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/internal/jsonscan"
	"github.com/kairn-dev/kairn/link"
)

// auditEvent is the subset of audit.k8s.io/v1 (and v1beta1) Event that kairn reads.
type auditEvent struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Level      string `json:"level"`
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	UserAgent      string          `json:"userAgent"`
	ObjectRef      *objectRef      `json:"objectRef"`
	ResponseStatus *responseStatus `json:"responseStatus"`
	// The response body is the revision the write produced. decodeAuditEvent validates it and
	// keeps it raw (response) until a revision needs it; json.Unmarshal (the reference the fuzz
	// test compares with) decodes it into ResponseObject. Of the request only the metadata of
	// writes is read, later.
	RequestObject            json.RawMessage `json:"requestObject"`
	ResponseObject           any             `json:"responseObject"`
	response                 []byte
	responseTop              bodyTop   // what metadata reading needs of response, found as it was validated
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time `json:"stageTimestamp"`
	Timestamp                time.Time `json:"timestamp"` // v1beta1
}

type objectRef struct {
	Resource        string `json:"resource"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	UID             string `json:"uid"`
	APIGroup        string `json:"apiGroup"`
	APIVersion      string `json:"apiVersion"`
	ResourceVersion string `json:"resourceVersion"`
	Subresource     string `json:"subresource"`
}

type responseStatus struct {
	Code    int32  `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// auditList is an EventList as the audit webhook posts it.
type auditList struct {
	Kind  string            `json:"kind"`
	Items []json.RawMessage `json:"items"`
}

// isFinalStage reports whether an audit stage is the last one a request produces. Requests that
// stream (watch) also produce ResponseStarted; RequestReceived is a duplicate of the final record.
func isFinalStage(stage string) bool {
	return stage == "" || stage == "ResponseComplete" || stage == "Panic"
}

// facts is what one audit record yields: its own observation, the revision its response body
// shows (if any), and the Event it created or updated (if it was an Event write with a body).
type facts struct {
	obs   link.Observation
	rev   *link.Revision
	event *link.Observation
}

// errSkip marks a well-formed record that carries nothing kairn archives (a RequestReceived
// stage, a non-resource URL).
var errSkip = errors.New("skipped")

// auditFacts converts one audit event into its observation and, when the audit level logged the
// response body of a successful write, the object revision that write produced.
func auditFacts(cluster string, ev *auditEvent) (facts, error) {
	if ev.AuditID == "" {
		return facts{}, errors.New("audit event without auditID")
	}
	if ev.Verb == "" {
		return facts{}, errors.New("audit event without verb")
	}
	if !isFinalStage(ev.Stage) || ev.ObjectRef == nil || ev.ObjectRef.Resource == "" {
		return facts{}, errSkip
	}
	ref := ev.ObjectRef
	received := ev.RequestReceivedTimestamp
	if received.IsZero() {
		received = ev.Timestamp
	}
	if received.IsZero() {
		received = ev.StageTimestamp
	}
	if received.IsZero() {
		return facts{}, errors.New("audit event without any timestamp")
	}
	end := ev.StageTimestamp
	if end.IsZero() {
		end = received
	}
	user := ev.User.Username
	if ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username != "" {
		user = ev.ImpersonatedUser.Username
	}
	obs := link.Observation{
		Source: link.SourceAudit,
		Object: link.ObjectKey{
			Cluster: cluster, Group: ref.APIGroup, Resource: ref.Resource,
			Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID,
		},
		Time:                received.UTC(),
		EndTime:             end.UTC(),
		TimeSource:          "audit",
		ID:                  "audit/" + ev.AuditID + "/" + ev.Stage,
		AuditID:             ev.AuditID,
		Stage:               ev.Stage,
		Verb:                ev.Verb,
		Subresource:         ref.Subresource,
		User:                user,
		UserAgent:           ev.UserAgent,
		PrevResourceVersion: ref.ResourceVersion,
	}
	if ev.ResponseStatus != nil {
		obs.StatusCode = ev.ResponseStatus.Code
		obs.Reason = ev.ResponseStatus.Reason
		obs.Message = ev.ResponseStatus.Message
	}
	var requestName string
	if isWrite(ev.Verb) && len(ev.RequestObject) > 0 {
		var rv string
		if requestName, rv = requestMeta(ev.RequestObject); rv != "" {
			obs.PrevResourceVersion = rv
		}
	}

	var rev *link.Revision
	success := obs.StatusCode >= 200 && obs.StatusCode < 300
	// Anything but a JSON object (a bare string from pods/log, say) is no revision.
	if success && isWrite(ev.Verb) && ref.Resource == "events" {
		if e, ok := ev.responseEvent(); ok {
			// An Event is a fact about another object, not an object kairn traces: the response
			// names it (creates use generateName) and carries the fact itself.
			if obs.Object.Name == "" {
				obs.Object.Name = e.meta.name
			}
			if obs.Object.UID == "" {
				obs.Object.UID = e.meta.uid
			}
			obs.ResourceVersion = e.meta.rv
			f := facts{obs: obs}
			if o, ok := e.observation(cluster); ok {
				f.event = &o
			}
			return f, nil
		}
	} else if m, ok := ev.responseMeta(); ok && success && isWrite(ev.Verb) && ref.Resource != "secrets" {
		// Subresources such as scale or binding answer with another kind; only a body of the
		// object's own kind is a revision of it. Its body stays raw until it is linked.
		if r, err := m.revision(cluster, "audit"); err == nil && r.Object.Resource == ref.Resource && r.ResourceVersion != "" {
			if body, ok := ev.ResponseObject.(map[string]any); ok {
				r, _ = revisionFromBody(cluster, body, "audit")
			} else {
				r.RawBody = bytes.Clone(ev.response)
			}
			r.AuditID = ev.AuditID
			rev = &r
			obs.ResourceVersion = r.ResourceVersion
			if obs.Object.Name == "" {
				obs.Object.Name = r.Object.Name
			}
			if obs.Object.UID == "" {
				obs.Object.UID = r.Object.UID
			}
			if obs.Kind == "" {
				obs.Kind = r.Kind
			}
		} else if rv, uid := m.subresourceResult(ref.Name, ref.UID); rv != "" {
			// A scale answer is the object's Scale at the revision the write produced: not a
			// revision, but it names the revision, so the audit links to it exactly.
			obs.ResourceVersion = rv
			if obs.Object.UID == "" {
				obs.Object.UID = uid
			}
		}
	}
	if obs.Object.Name == "" && ev.Verb == "create" {
		// Metadata-level creates do not carry the generated name; the request body may.
		obs.Object.Name = requestName
	}
	return facts{obs: obs, rev: rev}, nil
}

// responseEvent reads an Event from the response body, when it is an object: from the raw JSON,
// or from ResponseObject when that was decoded instead.
func (ev *auditEvent) responseEvent() (eventFields, bool) {
	if body, ok := ev.ResponseObject.(map[string]any); ok {
		return eventFromMap(body), true
	}
	if len(ev.response) == 0 || ev.response[0] != '{' {
		return eventFields{}, false
	}
	return eventFromRaw(ev.response), true
}

// responseMeta reads the type and metadata of the response body, when it is an object: from the
// raw JSON, or from ResponseObject when that was decoded instead.
func (ev *auditEvent) responseMeta() (objMeta, bool) {
	if body, ok := ev.ResponseObject.(map[string]any); ok {
		return metaFromMap(body), true
	}
	if len(ev.response) == 0 || ev.response[0] != '{' {
		return objMeta{}, false
	}
	if ev.responseTop.read {
		return ev.responseTop.meta(), true
	}
	return metaFromRaw(ev.response), true
}

// subresourceResult reads the resourceVersion and uid a subresource's answer (a Scale) gives for
// the object it was written through: only when the body names that object.
func (m objMeta) subresourceResult(name, uid string) (rv, bodyUID string) {
	if !m.hasMeta || m.name != name {
		return "", ""
	}
	if m.uid == "" || (uid != "" && uid != m.uid) {
		return "", ""
	}
	return m.rv, m.uid
}

func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// requestMeta reads the name and resourceVersion a request body carries. Patch bodies may be
// JSON arrays (JSON patch): no metadata, and no error.
func requestMeta(raw json.RawMessage) (name, resourceVersion string) {
	if len(raw) == 0 || raw[0] != '{' {
		return "", ""
	}
	// json.Unmarshal into struct{Metadata struct{Name, ResourceVersion string}}, in one scan
	// of the (already validated) body: keys matched case-insensitively, any type error gives
	// nothing.
	var bad error
	keep := func(err error) {
		if bad == nil {
			bad = err
		}
	}
	_, err := jsonscan.Object(raw, 0, func(key []byte, v int) (int, error) {
		if fieldOf(key, metadataFields) != fMetadata {
			return jsonscan.SkipValid(raw, v)
		}
		if raw[v] != '{' {
			return notStruct(raw, v, "metadata", "struct", keep)
		}
		return jsonscan.Object(raw, v, func(key []byte, w int) (int, error) {
			switch fieldOf(key, objectRefFields) {
			case fName:
				return stringField(raw, w, &name, "name", keep)
			case fResourceVersion:
				return stringField(raw, w, &resourceVersion, "resourceVersion", keep)
			}
			return jsonscan.SkipValid(raw, w)
		})
	})
	if err != nil || bad != nil {
		return "", ""
	}
	return name, resourceVersion
}

// admissionReview is the AdmissionReview shape some audit forwarders (kube-audit-rest) log.
type admissionReview struct {
	Request *struct {
		UID      string `json:"uid"`
		Resource struct {
			Group    string `json:"group"`
			Resource string `json:"resource"`
		} `json:"resource"`
		SubResource string `json:"subResource"`
		Name        string `json:"name"`
		Namespace   string `json:"namespace"`
		Operation   string `json:"operation"`
		UserInfo    struct {
			Username string `json:"username"`
		} `json:"userInfo"`
		Object    map[string]any `json:"object"`
		OldObject map[string]any `json:"oldObject"`
	} `json:"request"`
}

// admissionFacts converts an AdmissionReview request. It carries no timestamps of its own, so the
// time is the newest managedFields time of the object (second precision), else its creation.
func admissionFacts(cluster string, ar *admissionReview) (facts, error) {
	req := ar.Request
	if req == nil || req.UID == "" {
		return facts{}, errors.New("AdmissionReview without request.uid")
	}
	obs := link.Observation{
		Source: link.SourceAudit,
		Object: link.ObjectKey{
			Cluster: cluster, Group: req.Resource.Group, Resource: req.Resource.Resource,
			Namespace: req.Namespace, Name: req.Name,
		},
		ID:          "admission/" + req.UID,
		AuditID:     req.UID,
		Stage:       "Admission",
		Verb:        admissionVerb(req.Operation),
		Subresource: req.SubResource,
		User:        req.UserInfo.Username,
	}
	var rev *link.Revision
	if req.Object != nil && req.Resource.Resource != "secrets" {
		if r, err := revisionFromBody(cluster, req.Object, "admission"); err == nil {
			if obs.Object.Name == "" {
				obs.Object.Name = r.Object.Name
			}
			obs.Object.UID = r.Object.UID
			obs.Kind = r.Kind
			obs.Time, obs.TimeSource = r.ManagerTime, "managedFields"
			if obs.Time.IsZero() {
				obs.Time, obs.TimeSource = r.Created, "creationTimestamp"
			}
			if r.ResourceVersion != "" {
				rev = &r
			}
		}
	}
	if obs.Object.Name == "" {
		return facts{}, errSkip // a review (SelfSubjectAccessReview, …) is about no stored object
	}
	if obs.Time.IsZero() {
		return facts{}, errors.New("AdmissionReview without any time (no managedFields or creationTimestamp on its object)")
	}
	obs.EndTime = obs.Time
	return facts{obs: obs, rev: rev}, nil
}

func admissionVerb(op string) string {
	switch op {
	case "CONNECT":
		return "connect"
	default:
		return strings.ToLower(op)
	}
}
