package link

import (
	"encoding/json"
	"reflect"
	"testing"
)

func rawDiffSeeds(f *testing.F) {
	pod := `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","resourceVersion":"1","labels":{"app":"web","kubernetes.io/service-name":"s"},"annotations":{"kairn.dev/parent":"{\"resource\":\"configmaps\",\"name\":\"c\"}"},"managedFields":[{"manager":"m"}]},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"nginx:1.25","ports":[{"containerPort":80}]}]},"status":{"phase":"Pending","conditions":[{"type":"Ready","status":"False"}]}}`
	pod2 := `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"2","name":"p","labels":{"app":"web"},"managedFields":"x"},"spec":{"nodeName":"n2","containers":[{"name":"c","image":"nginx:1.26","ports":[{"containerPort":80.0}]},{"name":"d"}]},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],"x":null}}`
	f.Add([]byte(pod), []byte(pod2), false)
	f.Add([]byte(pod), []byte(pod), false)
	f.Add([]byte(`{"a":1,"a":{"b":"\u0041"},"data":{"k":"v"}}`), []byte(`{"a":{"b":"A"},"stringData":1,"c":[]}`), true)
	f.Add([]byte(`{"a":"<&>","b":[1,2,3],"c":{}}`), []byte(`{"a":"x","b":[1],"c":{"d":1e3}}`), false)
	f.Add([]byte(`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k1":"dup"}`),
		[]byte(`{"k0":0,"k2":2.0,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":"s","k18":true}`), false)
}

// FuzzRawDiff holds the raw-JSON diff and lookups to the map-based ones on DecodeBody's maps.
func FuzzRawDiff(f *testing.F) {
	rawDiffSeeds(f)
	f.Fuzz(func(t *testing.T, a, b []byte, secret bool) {
		if !json.Valid(a) || !json.Valid(b) || len(a) == 0 || len(b) == 0 || a[0] != '{' || b[0] != '{' {
			return // raw bodies are objects the collector validated, with no leading space
		}
		kind := "Pod"
		if secret {
			kind = "Secret"
		}
		am, err := DecodeBody(a, "", kind)
		if err != nil {
			return // a number out of float64 range: rejected before it gets here
		}
		bm, err := DecodeBody(b, "", kind)
		if err != nil {
			return
		}
		got := rawDiff(a, b, secret)
		want := Diff(am, bm)
		if len(got) == 0 && len(want) == 0 {
			got, want = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s -> %s:\n raw %v\n map %v", a, b, got, want)
		}
		ra := Revision{Object: ObjectKey{}, Kind: kind, RawBody: a}
		ma := Revision{Object: ObjectKey{}, Kind: kind, Body: am}
		for _, path := range [][]string{{"metadata", "annotations", ParentAnnotation}, {"metadata", "labels", "kubernetes.io/service-name"}, {"spec", "nodeName"}, {"a", "b"}} {
			if g, w := bodyString(&ra, path...), bodyString(&ma, path...); g != w {
				t.Fatalf("%s: %v = %q raw, %q map", a, path, g, w)
			}
		}
	})
}
