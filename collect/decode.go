package collect

import (
	"fmt"
	"strconv"

	"github.com/kairn-dev/kairn/internal/jsonscan"
)

// decodeAuditEvent fills ev from one audit event in a single validating pass (internal/jsonscan),
// decoding only the fields kairn reads: the response body is validated and kept raw (ev.response)
// until a revision needs it, and the request body is kept raw. It accepts and rejects what
// json.Unmarshal(raw, ev) does, and decodes the same values (field names matched
// case-insensitively, the last of duplicate keys wins, nested structs merged, null leaves a field
// as it is); FuzzAuditDecoderDifferential holds it to that. items is the raw value of an
// "items" member (an EventList's), which encoding/json would skip here.
func decodeAuditEvent(raw []byte, ev *auditEvent, in *interner) (items []byte, err error) {
	i := jsonscan.WS(raw, 0)
	if i < len(raw) && raw[i] == 'n' {
		end, err := jsonscan.Skip(raw, i, false)
		if err != nil {
			return nil, err
		}
		return nil, jsonscan.End(raw, end)
	}
	if i >= len(raw) || raw[i] != '{' {
		if _, err := jsonscan.Skip(raw, i, false); err != nil {
			return nil, err
		}
		return nil, typeErr("", raw[i:], "collect.auditEvent")
	}
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	end, err := jsonscan.Object(raw, i, func(key []byte, v int) (int, error) {
		switch fieldOf(key, auditFields) {
		case fKind:
			return in.stringField(raw, v, &ev.Kind, "kind", keep)
		case fAPIVersion:
			return in.stringField(raw, v, &ev.APIVersion, "apiVersion", keep)
		case fLevel:
			return in.stringField(raw, v, &ev.Level, "level", keep)
		case fAuditID:
			return stringField(raw, v, &ev.AuditID, "auditID", keep)
		case fStage:
			return in.stringField(raw, v, &ev.Stage, "stage", keep)
		case fRequestURI:
			return stringField(raw, v, &ev.RequestURI, "requestURI", keep)
		case fVerb:
			return in.stringField(raw, v, &ev.Verb, "verb", keep)
		case fUserAgent:
			return in.stringField(raw, v, &ev.UserAgent, "userAgent", keep)
		case fUser:
			return userField(raw, v, &ev.User.Username, "user", "user.username", keep, in)
		case fImpersonatedUser:
			if raw[v] == 'n' {
				end, err := jsonscan.Skip(raw, v, false)
				ev.ImpersonatedUser = nil
				return end, err
			}
			if ev.ImpersonatedUser == nil {
				ev.ImpersonatedUser = &struct {
					Username string `json:"username"`
				}{}
			}
			return userField(raw, v, &ev.ImpersonatedUser.Username, "impersonatedUser", "impersonatedUser.username", keep, in)
		case fObjectRef:
			return objectRefField(raw, v, ev, keep, in)
		case fResponseStatus:
			return responseStatusField(raw, v, ev, keep)
		case fRequestObject:
			end, err := jsonscan.Skip(raw, v, false)
			if err == nil {
				ev.RequestObject = raw[v:end]
			}
			return end, err
		case fResponseObject:
			end, err := skipResponse(raw, v, &ev.responseTop)
			if err == jsonscan.RangeError {
				keep(fmt.Errorf("json: cannot unmarshal number into Go struct field auditEvent.responseObject of type float64"))
				return jsonscan.Skip(raw, v, false)
			}
			if err == nil {
				ev.ResponseObject, ev.response = nil, raw[v:end]
			}
			return end, err
		case fRequestReceivedTimestamp:
			return timeField(raw, v, &ev.RequestReceivedTimestamp, keep)
		case fStageTimestamp:
			return timeField(raw, v, &ev.StageTimestamp, keep)
		case fTimestamp:
			return timeField(raw, v, &ev.Timestamp, keep)
		case fItems:
			end, err := jsonscan.Skip(raw, v, false)
			if err == nil {
				items = raw[v:end]
			}
			return end, err
		}
		return jsonscan.Skip(raw, v, false)
	})
	if err != nil {
		return nil, err
	}
	if err := jsonscan.End(raw, end); err != nil {
		return nil, err
	}
	return items, firstErr
}

// skipResponse is Skip(raw, v, true) of the response body, noting in top what of an object's
// top level its metadata is read from.
func skipResponse(raw []byte, v int, top *bodyTop) (int, error) {
	*top = bodyTop{}
	if raw[v] != '{' {
		return jsonscan.Skip(raw, v, true)
	}
	end, err := jsonscan.Object(raw, v, func(key []byte, w int) (int, error) {
		end, err := jsonscan.Skip(raw, w, true)
		if err == nil {
			top.note(key, raw[w:end])
		}
		return end, err
	})
	top.read = err == nil
	return end, err
}

// listItems returns the raw items of an EventList's "items" value, as encoding/json decodes it
// into []json.RawMessage.
func listItems(raw []byte) ([][]byte, error) {
	if len(raw) == 0 || raw[0] == 'n' {
		return nil, nil
	}
	var out [][]byte
	_, err := jsonscan.Array(raw, 0, func(v int) (int, error) {
		end, err := jsonscan.Skip(raw, v, false)
		if err == nil {
			out = append(out, raw[v:end])
		}
		return end, err
	})
	if jsonscan.IsNotObject(err) {
		return nil, typeErr("items", raw, "[]json.RawMessage")
	}
	return out, err
}

func dropFieldSets(path []string, _ byte) bool {
	return len(path) == 3 && path[2] == "fieldsV1" && path[1] == "managedFields" && path[0] == "metadata"
}

// decodeBody decodes a watched object as json.Unmarshal into a map[string]any does (a JSON null
// is a nil map), leaving out the managedFields' fieldsV1 sets.
func decodeBody(raw []byte) (map[string]any, error) {
	v, end, err := jsonscan.Any(raw, 0, dropFieldSets)
	if err == jsonscan.RangeError {
		return nil, fmt.Errorf("json: cannot unmarshal number into Go value of type float64")
	}
	if err != nil {
		return nil, err
	}
	if err := jsonscan.End(raw, end); err != nil {
		return nil, err
	}
	switch m := v.(type) {
	case map[string]any:
		return m, nil
	case nil:
		return nil, nil
	}
	return nil, typeErr("", raw, "map[string]interface {}")
}

type field int

const (
	fNone field = iota
	fKind
	fAPIVersion
	fLevel
	fAuditID
	fStage
	fRequestURI
	fVerb
	fUser
	fImpersonatedUser
	fUserAgent
	fObjectRef
	fResponseStatus
	fRequestObject
	fResponseObject
	fRequestReceivedTimestamp
	fStageTimestamp
	fTimestamp
	fItems
	// objectRef
	fResource
	fNamespace
	fName
	fUID
	fAPIGroup
	fResourceVersion
	fSubresource
	// responseStatus
	fCode
	fReason
	fMessage
	// user
	fUsername
	fMetadata
)

type fieldName struct {
	name   string // as in the json tag
	folded string // encoding/json's fold of it
	f      field
}

// fieldSet holds a struct's field names by length, so a key is compared with the one to three
// names of its length (a scan of every name was 7 % of decoding an audit event).
type fieldSet struct{ byLen [32][]fieldName }

func fields(pairs ...any) *fieldSet {
	fs := &fieldSet{}
	for i := 0; i < len(pairs); i += 2 {
		n := pairs[i].(string)
		f := fieldName{n, string(jsonscan.AppendFold(nil, []byte(n))), pairs[i+1].(field)}
		fs.byLen[len(n)] = append(fs.byLen[len(n)], f) // the fold of an ASCII name is as long
	}
	return fs
}

var (
	auditFields = fields("kind", fKind, "apiVersion", fAPIVersion, "level", fLevel, "auditID", fAuditID, "stage", fStage,
		"requestURI", fRequestURI, "verb", fVerb, "user", fUser, "impersonatedUser", fImpersonatedUser, "userAgent", fUserAgent,
		"objectRef", fObjectRef, "responseStatus", fResponseStatus, "requestObject", fRequestObject,
		"responseObject", fResponseObject, "requestReceivedTimestamp", fRequestReceivedTimestamp,
		"stageTimestamp", fStageTimestamp, "timestamp", fTimestamp, "items", fItems)
	objectRefFields = fields("resource", fResource, "namespace", fNamespace, "name", fName, "uid", fUID, "apiGroup", fAPIGroup,
		"apiVersion", fAPIVersion, "resourceVersion", fResourceVersion, "subresource", fSubresource)
	statusFields   = fields("code", fCode, "reason", fReason, "message", fMessage)
	userFields     = fields("username", fUsername)
	metadataFields = fields("metadata", fMetadata)
)

// fieldOf matches a key to a field as encoding/json does: the exact name, else the same fold.
func fieldOf(key []byte, fs *fieldSet) field {
	if len(key) < len(fs.byLen) {
		for _, f := range fs.byLen[len(key)] {
			if string(key) == f.name {
				return f.f
			}
		}
	}
	var buf [64]byte
	folded := jsonscan.AppendFold(buf[:0], key) // may be shorter than key: non-ASCII folds to ASCII
	if len(folded) < len(fs.byLen) {
		for _, f := range fs.byLen[len(folded)] {
			if string(folded) == f.folded {
				return f.f
			}
		}
	}
	return fNone
}

func typeErr(field string, raw []byte, goType string) error {
	what := "object"
	if len(raw) > 0 {
		switch raw[0] {
		case '"':
			what = "string"
		case '[':
			what = "array"
		case 't', 'f':
			what = "bool"
		case 'n':
			what = "null"
		case '{':
			what = "object"
		default:
			what = "number"
		}
	}
	if field == "" {
		return fmt.Errorf("json: cannot unmarshal %s into Go value of type %s", what, goType)
	}
	return fmt.Errorf("field %q has a JSON %s, want %s", field, what, goType)
}

// stringField decodes a string member: null leaves it, anything but a string is a type error.
func stringField(raw []byte, v int, dst *string, name string, keep func(error)) (int, error) {
	switch raw[v] {
	case '"':
		s, end, err := jsonscan.String(raw, v)
		if err == nil {
			*dst = s
		}
		return end, err
	case 'n':
		return jsonscan.Skip(raw, v, false)
	}
	end, err := jsonscan.Skip(raw, v, false)
	if err == nil {
		keep(typeErr(name, raw[v:end], "string"))
	}
	return end, err
}

// interner hands out one copy of the strings many audit events repeat (verbs, stages, user
// agents, users, resources, namespaces): fewer allocations per event, and observations that
// share their strings. One per reader; bounded.
type interner struct{ m map[string]string }

const maxInterned = 8192

// stringField is stringField with the value interned (a nil interner interns nothing).
func (in *interner) stringField(raw []byte, v int, dst *string, name string, keep func(error)) (int, error) {
	if in == nil || raw[v] != '"' {
		return stringField(raw, v, dst, name, keep)
	}
	b, end, err := jsonscan.KeyBytes(raw, v)
	if err != nil {
		return end, err
	}
	if s, ok := in.m[string(b)]; ok {
		*dst = s
		return end, nil
	}
	s := string(b)
	if in.m == nil {
		in.m = map[string]string{}
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	*dst = s
	return end, nil
}

func notStruct(raw []byte, v int, name, goType string, keep func(error)) (int, error) {
	end, err := jsonscan.Skip(raw, v, false)
	if err == nil && raw[v] != 'n' {
		keep(typeErr(name, raw[v:end], goType))
	}
	return end, err
}

// userField decodes a user struct; name and usernameName are what errors call it and its username
// (constants: a name built per event was an allocation per event).
func userField(raw []byte, v int, username *string, name, usernameName string, keep func(error), in *interner) (int, error) {
	if raw[v] != '{' {
		return notStruct(raw, v, name, "struct", keep)
	}
	return jsonscan.Object(raw, v, func(key []byte, w int) (int, error) {
		if fieldOf(key, userFields) == fUsername {
			return in.stringField(raw, w, username, usernameName, keep)
		}
		return jsonscan.Skip(raw, w, false)
	})
}

func objectRefField(raw []byte, v int, ev *auditEvent, keep func(error), in *interner) (int, error) {
	if raw[v] == 'n' {
		ev.ObjectRef = nil
		return jsonscan.Skip(raw, v, false)
	}
	if raw[v] != '{' {
		return notStruct(raw, v, "objectRef", "struct", keep)
	}
	if ev.ObjectRef == nil {
		ev.ObjectRef = &objectRef{}
	}
	r := ev.ObjectRef
	return jsonscan.Object(raw, v, func(key []byte, w int) (int, error) {
		var dst *string
		var name string // what an error calls the field
		shared := true  // values many events share: interned
		switch fieldOf(key, objectRefFields) {
		case fResource:
			dst, name = &r.Resource, "objectRef.resource"
		case fNamespace:
			dst, name = &r.Namespace, "objectRef.namespace"
		case fName:
			dst, name, shared = &r.Name, "objectRef.name", false
		case fUID:
			dst, name, shared = &r.UID, "objectRef.uid", false
		case fAPIGroup:
			dst, name = &r.APIGroup, "objectRef.apiGroup"
		case fAPIVersion:
			dst, name = &r.APIVersion, "objectRef.apiVersion"
		case fResourceVersion:
			dst, name, shared = &r.ResourceVersion, "objectRef.resourceVersion", false
		case fSubresource:
			dst, name = &r.Subresource, "objectRef.subresource"
		default:
			return jsonscan.Skip(raw, w, false)
		}
		if shared {
			return in.stringField(raw, w, dst, name, keep)
		}
		return stringField(raw, w, dst, name, keep)
	})
}

func responseStatusField(raw []byte, v int, ev *auditEvent, keep func(error)) (int, error) {
	if raw[v] == 'n' {
		ev.ResponseStatus = nil
		return jsonscan.Skip(raw, v, false)
	}
	if raw[v] != '{' {
		return notStruct(raw, v, "responseStatus", "struct", keep)
	}
	if ev.ResponseStatus == nil {
		ev.ResponseStatus = &responseStatus{}
	}
	st := ev.ResponseStatus
	return jsonscan.Object(raw, v, func(key []byte, w int) (int, error) {
		switch fieldOf(key, statusFields) {
		case fCode:
			end, err := jsonscan.Skip(raw, w, false)
			if err != nil || raw[w] == 'n' {
				return end, err
			}
			n, perr := strconv.ParseInt(string(raw[w:end]), 10, 64)
			if c := raw[w]; (c != '-' && (c < '0' || c > '9')) || perr != nil || n != int64(int32(n)) {
				keep(typeErr("responseStatus.code", raw[w:end], "int32"))
				return end, nil
			}
			st.Code = int32(n)
			return end, nil
		case fReason:
			return stringField(raw, w, &st.Reason, "responseStatus.reason", keep)
		case fMessage:
			return stringField(raw, w, &st.Message, "responseStatus.message", keep)
		}
		return jsonscan.Skip(raw, w, false)
	})
}

func timeField(raw []byte, v int, dst interface{ UnmarshalJSON([]byte) error }, keep func(error)) (int, error) {
	end, err := jsonscan.Skip(raw, v, false)
	if err != nil {
		return end, err
	}
	if err := dst.UnmarshalJSON(raw[v:end]); err != nil {
		keep(err)
	}
	return end, nil
}
