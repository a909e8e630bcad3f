package link

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// maxValueLen bounds one old/new value in a change; longer values are cut and marked.
const maxValueLen = 1024

// Diff returns the changed leaves between two revisions' bodies, sorted by path.
// metadata.resourceVersion and metadata.managedFields are not changes of the object.
// Lists are compared by index; a subtree that appears or disappears is one change.
func Diff(old, new map[string]any) []FieldChange {
	var out []FieldChange
	diffValue("", old, new, &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func diffValue(path string, a, b any, out *[]FieldChange) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			for k, x := range av {
				p := joinPath(path, k)
				if ignoredPath(p) {
					continue
				}
				y, ok := bv[k]
				if !ok {
					*out = append(*out, FieldChange{Path: p, Old: encodeValue(x)})
					continue
				}
				diffValue(p, x, y, out)
			}
			for k, y := range bv {
				if _, ok := av[k]; ok {
					continue
				}
				p := joinPath(path, k)
				if !ignoredPath(p) {
					*out = append(*out, FieldChange{Path: p, New: encodeValue(y)})
				}
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			for i := 0; i < len(av) || i < len(bv); i++ {
				p := path + "[" + strconv.Itoa(i) + "]"
				switch {
				case i >= len(bv):
					*out = append(*out, FieldChange{Path: p, Old: encodeValue(av[i])})
				case i >= len(av):
					*out = append(*out, FieldChange{Path: p, New: encodeValue(bv[i])})
				default:
					diffValue(p, av[i], bv[i], out)
				}
			}
			return
		}
	default:
		if scalarEqual(a, b) {
			return
		}
	}
	*out = append(*out, FieldChange{Path: path, Old: encodeValue(a), New: encodeValue(b)})
}

func scalarEqual(a, b any) bool {
	switch av := a.(type) {
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case float64:
		bv, ok := b.(float64)
		return ok && av == bv
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case nil:
		return b == nil
	}
	return false
}

func ignoredPath(p string) bool {
	return p == "metadata.resourceVersion" || p == "metadata.managedFields"
}

// joinPath appends a map key; keys that are not plain identifiers (annotations, labels) are
// quoted: metadata.annotations["deployment.kubernetes.io/revision"].
func joinPath(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func encodeValue(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	if len(b) > maxValueLen {
		return strings.ToValidUTF8(string(b[:maxValueLen]), "") + "…"
	}
	return string(b)
}
