package link

import (
	"errors"

	"github.com/kairn-dev/kairn/internal/jsonscan"
)

// DecodeBody decodes an object's JSON into the Body of its revision: as encoding/json decodes it
// into a map, then with metadata.managedFields removed when it is a list, and a Secret's data
// and stringData removed (group and kind are the revision's).
func DecodeBody(raw []byte, group, kind string) (map[string]any, error) {
	secret := group == "" && kind == "Secret"
	v, end, err := jsonscan.Any(raw, 0, func(path []string, first byte) bool {
		switch len(path) {
		case 1:
			return secret && (path[0] == "data" || path[0] == "stringData")
		case 2:
			return first == '[' && path[1] == "managedFields" && path[0] == "metadata"
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	if err := jsonscan.End(raw, end); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("object body is not a JSON object")
	}
	return m, nil
}
