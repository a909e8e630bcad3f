package collect

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/kairn-dev/kairn/internal/jsonscan"
	"github.com/kairn-dev/kairn/link"
)

// objMeta is what a revision takes from an object: its type and metadata. It is read either from
// a decoded map (metaFromMap) or straight from the JSON (metaFromRaw), with the same result: the
// JSON decoded into a map, then read with type assertions (a value of another type reads as
// absent, the last of duplicate keys wins).
type objMeta struct {
	apiVersion, kind         string
	hasMeta                  bool // metadata is an object
	name, namespace, uid, rv string
	generation               int64
	created, deleted         time.Time
	owners                   []link.OwnerRef
	manager, managerOp       string
	managerTime              time.Time
}

// revisionFromBody turns a decoded Kubernetes object into a revision, stripping managedFields
// (noise for diffs, but its newest entry is kept as the write's fingerprint) and never keeping
// a Secret's data.
func revisionFromBody(cluster string, body map[string]any, from string) (link.Revision, error) {
	rev, err := metaFromMap(body).revision(cluster, from)
	if err != nil {
		return rev, err
	}
	meta := body["metadata"].(map[string]any)
	if _, ok := meta["managedFields"].([]any); ok {
		delete(meta, "managedFields")
	}
	if rev.Object.Group == "" && rev.Kind == "Secret" {
		delete(body, "data")
		delete(body, "stringData")
	}
	rev.Body = body
	return rev, nil
}

// revisionFromRaw is revisionFromBody on the object's JSON (already validated): the body stays
// raw (link decodes it, without managedFields, when it links the revision).
func revisionFromRaw(cluster string, raw []byte, from string) (link.Revision, error) {
	rev, err := metaFromRaw(raw).revision(cluster, from)
	if err != nil {
		return rev, err
	}
	rev.RawBody = bytes.Clone(raw)
	return rev, nil
}

func (m objMeta) revision(cluster, from string) (link.Revision, error) {
	if m.kind == "" || !m.hasMeta {
		return link.Revision{}, fmt.Errorf("object without kind or metadata")
	}
	if m.name == "" {
		return link.Revision{}, fmt.Errorf("%s without metadata.name", m.kind)
	}
	group := link.GroupOf(m.apiVersion)
	return link.Revision{
		Object: link.ObjectKey{
			Cluster:   cluster,
			Group:     group,
			Resource:  link.ResourceFor(group, m.kind),
			Namespace: m.namespace,
			Name:      m.name,
			UID:       m.uid,
		},
		Kind:            m.kind,
		ResourceVersion: m.rv,
		From:            from,
		Created:         m.created,
		DeletionTime:    m.deleted,
		Owners:          m.owners,
		Generation:      m.generation,
		ManagerTime:     m.managerTime,
		Manager:         m.manager,
		ManagerOp:       m.managerOp,
	}, nil
}

func metaFromMap(body map[string]any) objMeta {
	m := objMeta{apiVersion: str(body["apiVersion"]), kind: str(body["kind"])}
	meta, _ := body["metadata"].(map[string]any)
	if meta == nil {
		return m
	}
	m.hasMeta = true
	m.name, m.namespace, m.uid, m.rv = str(meta["name"]), str(meta["namespace"]), str(meta["uid"]), str(meta["resourceVersion"])
	m.created, m.deleted = parseTime(meta["creationTimestamp"]), parseTime(meta["deletionTimestamp"])
	m.owners = ownerRefs(meta["ownerReferences"])
	if g, ok := meta["generation"].(float64); ok {
		m.generation = int64(g)
	}
	if mf, ok := meta["managedFields"].([]any); ok {
		for _, e := range mf {
			em, _ := e.(map[string]any)
			m.newestManager(parseTime(em["time"]), str(em["manager"]), str(em["operation"]))
		}
	}
	return m
}

func (m *objMeta) newestManager(t time.Time, manager, op string) {
	if !t.Before(m.managerTime) {
		m.managerTime, m.manager, m.managerOp = t, manager, op
	}
}

// rawString reads a string value as str does from a decoded map: anything else is "".
func rawString(raw []byte, v int) (string, int, error) {
	if raw[v] == '"' {
		return jsonscan.String(raw, v)
	}
	end, err := jsonscan.SkipValid(raw, v)
	return "", end, err
}

// rawNumber reads a number value as a float64 type assertion does on a decoded map: anything
// else is 0.
func rawNumber(raw []byte, v int) (float64, int, error) {
	end, err := jsonscan.SkipValid(raw, v)
	if err != nil || (raw[v] != '-' && (raw[v] < '0' || raw[v] > '9')) {
		return 0, end, err
	}
	f, _ := strconv.ParseFloat(string(raw[v:end]), 64)
	return f, end, nil
}

func rawTime(raw []byte, v int) (time.Time, int, error) {
	s, end, err := rawString(raw, v)
	return parseTime(s), end, err
}

// metaFromRaw reads objMeta from an object's JSON, validated before (errors read as absent).
func metaFromRaw(raw []byte) objMeta {
	var m objMeta
	jsonscan.Object(raw, 0, func(key []byte, v int) (int, error) {
		if end, ok, err := m.topField(raw, key, v); ok {
			return end, err
		}
		return jsonscan.SkipValid(raw, v)
	})
	return m
}

// bodyTop is the raw values of the top-level members of an object's JSON that objMeta reads
// (the last of duplicates), noted while the object is validated: reading its metadata then
// does not scan the spec and status a second time.
type bodyTop struct {
	read                       bool
	apiVersion, kind, metadata []byte
}

// note keeps the member key (its value raw) if it is one objMeta reads.
func (t *bodyTop) note(key, value []byte) {
	switch string(key) {
	case "apiVersion":
		t.apiVersion = value
	case "kind":
		t.kind = value
	case "metadata":
		t.metadata = value
	}
}

// meta is metaFromRaw of the object: each field is its last member's, in whatever order they
// came (metadata keeps the apiVersion and kind read before it).
func (t *bodyTop) meta() objMeta {
	var m objMeta
	for _, f := range [...]struct {
		key   string
		value []byte
	}{{"metadata", t.metadata}, {"apiVersion", t.apiVersion}, {"kind", t.kind}} {
		if f.value != nil {
			m.topField(f.value, []byte(f.key), 0)
		}
	}
	return m
}

// topField reads the top-level member key (value at v) when it is one objMeta holds, and
// reports whether it was.
func (m *objMeta) topField(raw, key []byte, v int) (end int, ok bool, err error) {
	switch string(key) {
	case "apiVersion":
		m.apiVersion, end, err = rawString(raw, v)
	case "kind":
		m.kind, end, err = rawString(raw, v)
	case "metadata":
		keep := objMeta{apiVersion: m.apiVersion, kind: m.kind}
		if raw[v] != '{' {
			end, err = jsonscan.SkipValid(raw, v)
		} else {
			end, err = keep.readMeta(raw, v)
		}
		*m = keep
	default:
		return 0, false, nil
	}
	return end, true, err
}

func (m *objMeta) readMeta(raw []byte, v int) (int, error) {
	m.hasMeta = true
	return jsonscan.Object(raw, v, func(key []byte, v int) (int, error) {
		var end int
		var err error
		switch string(key) {
		case "name":
			m.name, end, err = rawString(raw, v)
		case "namespace":
			m.namespace, end, err = rawString(raw, v)
		case "uid":
			m.uid, end, err = rawString(raw, v)
		case "resourceVersion":
			m.rv, end, err = rawString(raw, v)
		case "creationTimestamp":
			m.created, end, err = rawTime(raw, v)
		case "deletionTimestamp":
			m.deleted, end, err = rawTime(raw, v)
		case "generation":
			var g float64
			g, end, err = rawNumber(raw, v)
			m.generation = int64(g)
		case "ownerReferences":
			m.owners, end, err = rawOwners(raw, v)
		case "managedFields":
			m.managerTime, m.manager, m.managerOp = time.Time{}, "", ""
			if raw[v] != '[' {
				return jsonscan.SkipValid(raw, v)
			}
			end, err = jsonscan.Array(raw, v, func(e int) (int, error) {
				var t time.Time
				var manager, op string
				end := 0
				var err error
				if raw[e] == '{' {
					end, err = jsonscan.Object(raw, e, func(key []byte, v int) (int, error) {
						var end int
						var err error
						switch string(key) {
						case "time":
							t, end, err = rawTime(raw, v)
						case "manager":
							manager, end, err = rawString(raw, v)
						case "operation":
							op, end, err = rawString(raw, v)
						default:
							end, err = jsonscan.SkipValid(raw, v)
						}
						return end, err
					})
				} else {
					end, err = jsonscan.SkipValid(raw, e)
				}
				m.newestManager(t, manager, op)
				return end, err
			})
		default:
			end, err = jsonscan.SkipValid(raw, v)
		}
		return end, err
	})
}

// rawOwners is ownerRefs on JSON.
func rawOwners(raw []byte, v int) ([]link.OwnerRef, int, error) {
	if raw[v] != '[' {
		end, err := jsonscan.SkipValid(raw, v)
		return nil, end, err
	}
	var out []link.OwnerRef
	n := 0
	end, err := jsonscan.Array(raw, v, func(e int) (int, error) {
		n++
		if raw[e] != '{' {
			return jsonscan.SkipValid(raw, e)
		}
		var apiVersion, kind, name, uid string
		var ctrl bool
		end, err := jsonscan.Object(raw, e, func(key []byte, v int) (int, error) {
			var end int
			var err error
			switch string(key) {
			case "apiVersion":
				apiVersion, end, err = rawString(raw, v)
			case "kind":
				kind, end, err = rawString(raw, v)
			case "name":
				name, end, err = rawString(raw, v)
			case "uid":
				uid, end, err = rawString(raw, v)
			case "controller":
				ctrl = raw[v] == 't'
				end, err = jsonscan.SkipValid(raw, v)
			default:
				end, err = jsonscan.SkipValid(raw, v)
			}
			return end, err
		})
		group := link.GroupOf(apiVersion)
		out = append(out, link.OwnerRef{Group: group, Kind: kind, Resource: link.ResourceFor(group, kind), Name: name, UID: uid, Controller: ctrl})
		return end, err
	})
	if n > 0 && out == nil {
		out = []link.OwnerRef{}
	}
	return out, end, err
}

func ownerRefs(v any) []link.OwnerRef {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	out := make([]link.OwnerRef, 0, len(list))
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m == nil {
			continue
		}
		group := link.GroupOf(str(m["apiVersion"]))
		kind := str(m["kind"])
		ctrl, _ := m["controller"].(bool)
		out = append(out, link.OwnerRef{
			Group: group, Kind: kind, Resource: link.ResourceFor(group, kind),
			Name: str(m["name"]), UID: str(m["uid"]), Controller: ctrl,
		})
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func parseTime(v any) time.Time {
	s, _ := v.(string)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
