package link

import (
	"bytes"
	"sort"
	"strconv"
	"unsafe"

	"github.com/kairn-dev/kairn/internal/jsonscan"
)

// A revision's body may stay the JSON a collector read (RawBody) all the way through linking:
// diffs and parent lookups read it directly, decoding only the parts that differ. Everything
// here gives what the map-based functions give on DecodeBody's result (FuzzRawDiff holds it).

// revisionDiff diffs two revisions' bodies, raw when both are raw.
func revisionDiff(a, b *Revision) []FieldChange {
	if a.Body == nil && b.Body == nil {
		return rawDiff(a.RawBody, b.RawBody, b.Object.Group == "" && b.Kind == "Secret")
	}
	return Diff(bodyOf(a), bodyOf(b))
}

// bodyOf is a revision's body as a map.
func bodyOf(r *Revision) map[string]any {
	if r.Body == nil && r.RawBody != nil {
		m, _ := DecodeBody(r.RawBody, r.Object.Group, r.Kind)
		return m
	}
	return r.Body
}

// rawDiff is Diff(DecodeBody(old), DecodeBody(new)) on the JSON (nil: no body, an empty object).
func rawDiff(old, new []byte, secret bool) []FieldChange {
	if old == nil {
		old = []byte("{}")
	}
	if new == nil {
		new = []byte("{}")
	}
	var out []FieldChange
	d := rawDiffer{secret: secret, out: &out}
	d.value("", old, new, true)
	sortChanges(out)
	return out
}

type rawDiffer struct {
	secret bool
	out    *[]FieldChange
}

type member struct {
	key string
	val []byte
}

// members lists an object's members, the last of duplicate keys winning (in the place of the
// first: order does not matter, the changes are sorted).
//
// Keys alias raw, as values do (or the key's unescaped copy, which nothing else holds): a body is
// never modified while it is diffed, and this saves an allocation per key, ~2 % of an ingest.
func members(raw []byte) []member {
	ms := make([]member, 0, 8) // most objects have fewer members: no regrowing from one
	var idx map[string]int
	jsonscan.Object(raw, 0, func(key []byte, v int) (int, error) {
		end, err := jsonscan.SkipValid(raw, v)
		if err != nil {
			return 0, err
		}
		k := unsafe.String(unsafe.SliceData(key), len(key))
		if len(ms) >= 16 && idx == nil {
			idx = make(map[string]int, 2*len(ms))
			for i, m := range ms {
				idx[m.key] = i
			}
		}
		if idx != nil {
			if i, ok := idx[k]; ok {
				ms[i].val = raw[v:end]
				return end, nil
			}
			idx[k] = len(ms)
		} else {
			for i := range ms {
				if ms[i].key == k {
					ms[i].val = raw[v:end]
					return end, nil
				}
			}
		}
		ms = append(ms, member{k, raw[v:end]})
		return end, nil
	})
	return ms
}

func find(ms []member, k string) ([]byte, bool) {
	for _, m := range ms {
		if m.key == k {
			return m.val, true
		}
	}
	return nil, false
}

func elements(raw []byte) [][]byte {
	var out [][]byte
	jsonscan.Array(raw, 0, func(v int) (int, error) {
		end, err := jsonscan.SkipValid(raw, v)
		if err != nil {
			return 0, err
		}
		out = append(out, raw[v:end])
		return end, nil
	})
	return out
}

// dropped is DecodeBody's removal of a Secret's data at the top.
func (d *rawDiffer) dropped(top bool, k string) bool {
	return top && d.secret && (k == "data" || k == "stringData")
}

func (d *rawDiffer) value(path string, a, b []byte, top bool) {
	if bytes.Equal(a, b) {
		return
	}
	switch {
	case a[0] == '{' && b[0] == '{':
		am, bm := members(a), members(b)
		var bidx map[string][]byte
		if len(bm) > 16 {
			bidx = make(map[string][]byte, len(bm))
			for _, m := range bm {
				bidx[m.key] = m.val
			}
		}
		lookup := func(ms []member, idx map[string][]byte, k string) ([]byte, bool) {
			if idx != nil {
				v, ok := idx[k]
				return v, ok
			}
			return find(ms, k)
		}
		for _, m := range am {
			if d.dropped(top, m.key) {
				continue
			}
			p := joinPath(path, m.key)
			if ignoredPath(p) {
				continue
			}
			y, ok := lookup(bm, bidx, m.key)
			if !ok {
				*d.out = append(*d.out, FieldChange{Path: p, Old: encodeRaw(p, m.val)})
				continue
			}
			d.value(p, m.val, y, false)
		}
		var aidx map[string][]byte
		if len(am) > 16 {
			aidx = make(map[string][]byte, len(am))
			for _, m := range am {
				aidx[m.key] = m.val
			}
		}
		for _, m := range bm {
			if d.dropped(top, m.key) {
				continue
			}
			if _, ok := lookup(am, aidx, m.key); ok {
				continue
			}
			p := joinPath(path, m.key)
			if !ignoredPath(p) {
				*d.out = append(*d.out, FieldChange{Path: p, New: encodeRaw(p, m.val)})
			}
		}
		return
	case a[0] == '[' && b[0] == '[':
		av, bv := elements(a), elements(b)
		for i := 0; i < len(av) || i < len(bv); i++ {
			p := path + "[" + strconv.Itoa(i) + "]"
			switch {
			case i >= len(bv):
				*d.out = append(*d.out, FieldChange{Path: p, Old: encodeRaw(p, av[i])})
			case i >= len(av):
				*d.out = append(*d.out, FieldChange{Path: p, New: encodeRaw(p, bv[i])})
			default:
				d.value(p, av[i], bv[i], false)
			}
		}
		return
	case a[0] != '{' && a[0] != '[' && b[0] != '{' && b[0] != '[':
		if scalarEqual(decodeRaw(a), decodeRaw(b)) {
			return
		}
	}
	*d.out = append(*d.out, FieldChange{Path: path, Old: encodeRaw(path, a), New: encodeRaw(path, b)})
}

func decodeRaw(raw []byte) any {
	v, _, _ := jsonscan.Any(raw, 0, nil)
	return v
}

// encodeRaw is encodeValue of the value at path as DecodeBody decodes it: a whole metadata
// without its managedFields list.
func encodeRaw(path string, raw []byte) string {
	if path != "metadata" {
		return encodeValue(decodeRaw(raw))
	}
	v, _, _ := jsonscan.Any(raw, 0, func(p []string, first byte) bool {
		return len(p) == 1 && p[0] == "managedFields" && first == '['
	})
	return encodeValue(v)
}

// rawString returns the string at a path of object keys (the last of duplicates at each level),
// "" when something on the way is absent or of another type.
func rawString(raw []byte, keys ...string) string {
	for _, k := range keys {
		if len(raw) == 0 || raw[0] != '{' {
			return ""
		}
		var found []byte
		jsonscan.Object(raw, 0, func(key []byte, v int) (int, error) {
			end, err := jsonscan.SkipValid(raw, v)
			if err == nil && string(key) == k {
				found = raw[v:end]
			}
			return end, err
		})
		raw = found
	}
	if len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	s, _, _ := jsonscan.String(raw, 0)
	return s
}

// bodyString reads a string at a path of a revision's body, raw or decoded.
func bodyString(r *Revision, keys ...string) string {
	if r.Body == nil && r.RawBody != nil {
		return rawString(r.RawBody, keys...)
	}
	var v any = r.Body
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

func sortChanges(out []FieldChange) {
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
}
