package collect

import (
	"fmt"
	"time"

	"github.com/kairn-dev/kairn/link"
)

// revisionFromBody turns a decoded Kubernetes object into a revision, stripping managedFields
// (noise for diffs, but its newest entry is kept as the write's fingerprint) and never keeping
// a Secret's data.
func revisionFromBody(cluster string, body map[string]any, from string) (link.Revision, error) {
	apiVersion, _ := body["apiVersion"].(string)
	kind, _ := body["kind"].(string)
	meta, _ := body["metadata"].(map[string]any)
	if kind == "" || meta == nil {
		return link.Revision{}, fmt.Errorf("object without kind or metadata")
	}
	name, _ := meta["name"].(string)
	if name == "" {
		return link.Revision{}, fmt.Errorf("%s without metadata.name", kind)
	}
	group := link.GroupOf(apiVersion)
	rev := link.Revision{
		Object: link.ObjectKey{
			Cluster:   cluster,
			Group:     group,
			Resource:  link.ResourceFor(group, kind),
			Namespace: str(meta["namespace"]),
			Name:      name,
			UID:       str(meta["uid"]),
		},
		Kind:            kind,
		ResourceVersion: str(meta["resourceVersion"]),
		From:            from,
		Created:         parseTime(meta["creationTimestamp"]),
		DeletionTime:    parseTime(meta["deletionTimestamp"]),
		Owners:          ownerRefs(meta["ownerReferences"]),
	}
	if g, ok := meta["generation"].(float64); ok {
		rev.Generation = int64(g)
	}
	if mf, ok := meta["managedFields"].([]any); ok {
		for _, e := range mf {
			m, _ := e.(map[string]any)
			t := parseTime(m["time"])
			if !t.Before(rev.ManagerTime) {
				rev.ManagerTime, rev.Manager, rev.ManagerOp = t, str(m["manager"]), str(m["operation"])
			}
		}
		delete(meta, "managedFields")
	}
	if group == "" && kind == "Secret" {
		delete(body, "data")
		delete(body, "stringData")
	}
	rev.Body = body
	return rev, nil
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
