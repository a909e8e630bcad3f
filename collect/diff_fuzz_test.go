package collect

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/kairn-dev/kairn/internal/jsonscan"
	"github.com/kairn-dev/kairn/link"
)

// differentialSeeds are audit lines from the recording plus the corners where a hand-written
// decoder is most likely to differ from encoding/json.
func differentialSeeds(f *testing.F) {
	f.Add([]byte(goodAudit))
	for _, s := range []string{
		`{"kind":"Event","auditID":"x","verb":"update","objectRef":{"resource":"pods","name":"p"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","uid":"u","resourceVersion":"5","managedFields":[{"manager":"m","time":"2020-01-01T00:00:01Z","fieldsV1":{"f:a":{}}}]}}}`,
		`{"AUDITID":"x","Verb":"create","objectref":{"Resource":"pods"},"objectRef":{"name":"n"},"requestReceivedTimestamp":"2020-01-01T00:00:00Z","responseStatus":{"code":201}}`,
		`{"auditID":"x","verb":"get","objectRef":{"resource":"pods"},"objectRef":null,"requestReceivedTimestamp":null,"stageTimestamp":"2020-01-01T00:00:00Z"}`,
		`{"auditID":"\u0078\ud800","verb":"get","objectRef":{"resource":"p\u00e9"},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":1e400}`,
		`{"auditID":"x","verb":"patch","responseStatus":{"code":200.0},"objectRef":{"resource":"pods"}}`,
		`{"auditID":"x","verb":"patch","responseStatus":{"code":2147483648},"objectRef":{"resource":"pods"}}`,
		`{"auditID":"x","verb":"patch","responseStatus":{"code":-0},"objectRef":{"resource":"pods"},"timestamp":"2020-01-01T00:00:00.5+01:00"}`,
		`{"auditID":"x","verb":5}`,
		`{"kind":"EventList","items":[{"auditID":"a","verb":"get"},7,[1],null]}`,
		`{"kind":"EventList","items":{}}`,
		`{"kind":"EventList","items":null,"items":[]}`,
		`{"auditID":"x","user":{"username":"a"},"user":{"groups":[]},"impersonatedUser":{"username":"b"},"impersonatedUser":null}`,
		"{\"auditID\":\"\xff\xfe\",\"verb\":\"g\\u0065t\"}",
		`{"auditKID":"x","ſtage":"ResponseComplete","verb":"get"} `,
		`{"auditID":"x","verb":"update","requestObject":{"Metadata":{"NAME":"n","resourceVersion":"7"},"metadata":{"name":5}}}`,
		`{"auditID":"x","verb":"update","requestObject":{"metadata":null,"metadata":{"resourceversion":"7"}}}`,
		`{"auditID":"x","verb":"update","objectRef":{"resource":"pods"},"responseStatus":{"code":200},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Pod","metadata":{"name":"p","resourceVersion":"2","managedFields":"x","managedFields":[{"time":5},7,{"manager":"a","time":"2020-01-01T00:00:00Z"},{"manager":"b"}],"ownerReferences":[1,{}],"generation":2.7},"kind":"Pod","metadata":{"name":"q","resourceVersion":"3","generation":"1","managedFields":[{"manager":"m"}],"managedFields":"s","ownerReferences":[null]}}}`,
		`{"auditID":"x","verb":"create","objectRef":{"resource":"secrets"},"responseStatus":{"code":201},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","resourceVersion":"1"},"data":{"a":"b"}}}`,
		`{"auditID":"x","verb":"create","objectRef":{"resource":"configmaps"},"responseStatus":{"code":201},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","resourceVersion":"1"},"data":{"a":"b"},"stringData":1}}`,
		`{"auditID":"x","verb":"patch","objectRef":{"resource":"deployments","name":"d","subresource":"scale"},"responseStatus":{"code":200},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"d","uid":"u","resourceVersion":"9"}}}`,
		`{"auditID":"x","verb":"create","objectRef":{"resource":"events","namespace":"n"},"responseStatus":{"code":201},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Event","apiVersion":"events.k8s.io/v1","metadata":{"name":"e1","namespace":"n","uid":"eu","resourceVersion":"4","creationTimestamp":"2020-01-01T00:00:00Z","managedFields":[{"manager":"a","time":"2020-01-01T00:00:02Z"},{"manager":"b","time":"2020-01-01T00:00:01Z"}]},"regarding":{"apiVersion":"apps/v1","kind":"Deployment","namespace":"n","name":"d","uid":"du"},"involvedObject":{"name":"wrong"},"note":"scaled","message":"wrong","reason":"ScalingReplicaSet","type":"Normal","reportingController":"deployment-controller","eventTime":"2020-01-01T00:00:00.123456Z","deprecatedCount":3,"series":{"count":5,"lastObservedTime":"2020-01-01T00:01:00.5Z"}}}`,
		`{"auditID":"x","verb":"patch","objectRef":{"resource":"events","namespace":"n","name":"e2"},"responseStatus":{"code":200},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Event","metadata":{"name":"e2","uid":7,"resourceVersion":"9"},"metadata":{"n\u0061me":"e3","resourceVersion":"10"},"involvedObject":null,"involvedObject":{"kind":"Pod","name":"p","name":"q","uid":["u"]},"source":{"component":"kubelet","component":null},"source":{"component":"sched"},"count":"2","count":2.9,"lastTimestamp":"2020-01-01T00:00:03Z","firstTimestamp":"bad","series":null,"type":5,"apiVersion":"v1"}}`,
		`{"auditID":"x","verb":"create","objectRef":{"resource":"events"},"responseStatus":{"code":201},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"apiVersion":"events.k8s.io/v1","metadata":{"name":"e4","managedFields":[7,{"time":"2020-01-01T00:00:01Z","manager":"m"},{"manager":"late"}]},"regarding":{"kind":"Node","name":"n1"},"series":{},"deprecatedCount":-1e300,"deprecatedLastTimestamp":"2020-01-01T00:00:04+02:00","reportingComponent":"x","apiVersion":"v1","apiVersion":"events.k8s.io/v1"}}`,
		`{"auditID":"x","verb":"create","objectRef":{"resource":"events"},"responseStatus":{"code":201},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Event","metadata":null,"involvedObject":{"name":"p"}}}`,
		`{"auditID":"x","verb":"create","objectRef":{"resource":"events"},"responseStatus":{"code":201},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":{"kind":"Event","metadata":{},"involvedObject":{"name":"p"},"source":"kubelet","count":1e10,"series":{"count":"9","lastObservedTime":5}}}`,
		`{"auditID":"x","verb":"create","objectRef":{"resource":"events"},"responseStatus":{"code":201},"stageTimestamp":"2020-01-01T00:00:00Z","responseObject":"Event"}`,
		`null`, `"x"`, `[]`, `{"a":1}x`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":"\x"}`, `{"a":tru}`,
	} {
		f.Add([]byte(s))
	}
	if fh, err := os.Open("../testdata/recording/audit.log.gz"); err == nil {
		defer fh.Close()
		zr, _ := gzip.NewReader(fh)
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<24)
		for n := 0; sc.Scan(); n++ {
			if n%40 == 0 {
				f.Add(bytes.Clone(sc.Bytes()))
			}
		}
	}
}

// FuzzAuditDecoderDifferential holds decodeAuditEvent to json.Unmarshal into the same struct:
// the same inputs rejected, the same fields decoded, the same facts made.
func FuzzAuditDecoderDifferential(f *testing.F) {
	differentialSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got, want auditEvent
		items, gotErr := decodeAuditEvent(raw, &got, &interner{})
		wantErr := json.Unmarshal(raw, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: decodeAuditEvent error %v, encoding/json error %v", raw, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		// The response body: raw here, decoded there.
		if len(got.response) > 0 {
			v, _, err := jsonscan.Any(got.response, 0, nil)
			if err != nil {
				t.Fatalf("%q: response body kept but does not decode: %v", raw, err)
			}
			got.ResponseObject = v
			// What validation noted of its top level reads as a second scan of it does.
			if got.response[0] == '{' && (!got.responseTop.read || !reflect.DeepEqual(got.responseTop.meta(), metaFromRaw(got.response))) {
				t.Fatalf("%q: metadata noted while validating %+v, read from the body %+v", raw, got.responseTop.meta(), metaFromRaw(got.response))
			}
		}
		got.response, got.responseTop = nil, bodyTop{}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n decodeAuditEvent %+v\n encoding/json    %+v", raw, got, want)
		}
		// The facts, with the body decoded lazily (fieldsV1 left out) on one side.
		var lazy auditEvent
		decodeAuditEvent(raw, &lazy, nil)
		gf, gerr := auditFacts("c", &lazy)
		wf, werr := auditFacts("c", &want)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%q: facts error %v, want %v", raw, gerr, werr)
		}
		if gf.rev != nil && gf.rev.RawBody != nil {
			// The raw body is decoded when the revision is linked.
			body, err := link.DecodeBody(gf.rev.RawBody, gf.rev.Object.Group, gf.rev.Kind)
			if err != nil {
				t.Fatalf("%s: raw body does not decode: %v", short(raw), err)
			}
			gf.rev.Body, gf.rev.RawBody = body, nil
		}
		if !reflect.DeepEqual(gf.obs, wf.obs) || !reflect.DeepEqual(gf.event, wf.event) || !reflect.DeepEqual(gf.rev, wf.rev) {
			t.Fatalf("%s:\n facts %+v %+v\n want  %+v %+v", short(raw), gf.obs, gf.rev, wf.obs, wf.rev)
		}
		if len(want.RequestObject) > 0 {
			n, rv := requestMeta(want.RequestObject)
			wn, wrv := requestMetaStdlib(want.RequestObject)
			if n != wn || rv != wrv {
				t.Fatalf("%q: requestMeta %q %q, encoding/json %q %q", want.RequestObject, n, rv, wn, wrv)
			}
		}
		if got.Kind == "EventList" {
			var list auditList
			lerr := json.Unmarshal(raw, &list)
			gl, gerr := listItems(items)
			if (gerr == nil) != (lerr == nil) {
				t.Fatalf("%q: items error %v, encoding/json %v", raw, gerr, lerr)
			}
			if lerr == nil {
				if len(gl) != len(list.Items) {
					t.Fatalf("%q: %d items, encoding/json %d", raw, len(gl), len(list.Items))
				}
				for i := range gl {
					if !bytes.Equal(gl[i], list.Items[i]) {
						t.Fatalf("%q: item %d %q, encoding/json %q", raw, i, gl[i], list.Items[i])
					}
				}
			}
		}
	})
}

// FuzzWatchBodyDifferential holds the watch decoder's body decode to json.Unmarshal into a map.
func FuzzWatchBodyDifferential(f *testing.F) {
	differentialSeeds(f)
	f.Add([]byte(`{"type":"ADDED","object":{"kind":"Pod","metadata":{"managedFields":[{"fieldsV1":{"f:x":1e999}}]}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want map[string]any
		wantErr := json.Unmarshal(raw, &want)
		got, gotErr := decodeBody(raw)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: decodeBody error %v, encoding/json error %v", raw, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		full, _, _ := jsonscan.Any(raw, 0, nil)
		if m, _ := full.(map[string]any); !reflect.DeepEqual(m, want) {
			t.Fatalf("%q:\n jsonscan      %#v\n encoding/json %#v", raw, full, want)
		}
		if (got == nil) != (want == nil) {
			t.Fatalf("%q: nil map %v, encoding/json %v", raw, got == nil, want == nil)
		}
	})
}

func short(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// requestMetaStdlib is requestMeta as it was, with encoding/json.
func requestMetaStdlib(raw json.RawMessage) (name, resourceVersion string) {
	if len(raw) == 0 || raw[0] != '{' {
		return "", ""
	}
	var m struct {
		Metadata struct {
			Name            string `json:"name"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return "", ""
	}
	return m.Metadata.Name, m.Metadata.ResourceVersion
}
