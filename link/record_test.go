package link

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func sampleRecords() []Record {
	t := time.Date(2026, 11, 24, 6, 10, 1, 170062000, time.UTC)
	key := ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "shop", Name: "web", UID: "u1"}
	owners := []OwnerRef{{Group: "apps", Kind: "ReplicaSet", Resource: "replicasets", Name: "web-1", UID: "u0", Controller: true}}
	return []Record{
		{Observation: &Observation{Source: SourceAudit, Object: key, Kind: "Deployment", Time: t, EndTime: t.Add(time.Millisecond),
			TimeSource: "audit", ID: "audit/a/ResponseComplete", AuditID: "a", Stage: "ResponseComplete", Verb: "patch",
			Subresource: "status", User: "alice", UserAgent: "kubectl", StatusCode: -409, NoOp: true, AuditLink: "rv",
			RevisionTime: t.Add(-time.Second), RevisionTimeSource: "managedFields", Carrier: key, Reason: "Conflict",
			Message: "mé\x00ssage", EventType: "Warning", Reporter: "kubelet", Count: 3, ResourceVersion: "5",
			PrevResourceVersion: "4", Changes: []FieldChange{{Path: "spec.replicas", Old: "2", New: "3"}, {Path: "x"}},
			Owners: owners, Manager: "kubectl-set", ManagerOp: "Update", ManagerTime: t.Truncate(time.Second)}},
		{Observation: &Observation{Source: SourceEvent, Changes: []FieldChange{}, Owners: []OwnerRef{}}},
		{Revision: &Revision{Object: key, Kind: "Deployment", ResourceVersion: "5", Deleted: true, Observed: t, From: "audit",
			AuditID: "a", Created: t.Add(-time.Hour), DeletionTime: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Generation: -7,
			Owners: owners, Manager: "m", ManagerOp: "Apply", ManagerTime: t, RawBody: []byte(`{"kind":"Deployment"}`)}},
		{Revision: &Revision{Object: key, Created: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)}},
	}
}

// TestRecordRoundTrip: every field survives the spool encoding.
func TestRecordRoundTrip(t *testing.T) {
	for i, r := range sampleRecords() {
		b, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("record %d:\n got  %+v %+v\n want %+v %+v", i, got.Observation, got.Revision, r.Observation, r.Revision)
		}
		for n := range b {
			if _, err := DecodeRecord(b[:n]); err == nil && n > 0 {
				t.Errorf("record %d cut at %d of %d bytes decodes", i, n, len(b))
			}
		}
		checkAddRecord(t, b)
		for n := range b {
			checkAddRecord(t, b[:n])
		}
	}
	// A revision with a decoded body spools it as JSON, decoded again when linked.
	rev := Revision{Object: ObjectKey{UID: "u"}, Kind: "Pod", Body: map[string]any{"spec": map[string]any{"nodeName": "n"}}}
	b, _ := EncodeRecord(Record{Revision: &rev})
	got, err := DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := DecodeBody(got.Revision.RawBody, "", "Pod")
	if !reflect.DeepEqual(body, rev.Body) {
		t.Errorf("body %v, want %v", body, rev.Body)
	}
	// A spool of the earlier JSON encoding still replays.
	old, _ := json.Marshal(Record{Observation: &Observation{ID: "x", Time: time.Unix(5, 0).UTC()}})
	if r, err := DecodeRecord(old); err != nil || r.Observation.ID != "x" {
		t.Errorf("JSON record: %v %+v", err, r)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		b, _ := EncodeRecord(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAddRecord(t, b)
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if (r.Observation == nil) == (r.Revision == nil) {
			t.Fatal("decoded record holds neither or both")
		}
		if _, err := EncodeRecord(r); err != nil {
			t.Fatal(err)
		}
	})
}

// checkAddRecord: AddRecord fills a batch as Add(DecodeRecord) does, after a record that is
// already there, and leaves it as it was when the record does not decode.
func checkAddRecord(t *testing.T, b []byte) {
	t.Helper()
	seed, _ := EncodeRecord(sampleRecords()[0])
	want, got := NewBatch(Config{}), NewBatch(Config{})
	for _, batch := range []*Batch{want, got} {
		if err := batch.AddRecord(seed); err != nil {
			t.Fatal(err)
		}
	}
	r, decodeErr := DecodeRecord(b)
	if decodeErr == nil {
		want.Add(r)
	}
	if err := got.AddRecord(b); (err == nil) != (decodeErr == nil) {
		t.Fatalf("AddRecord(%q) = %v, DecodeRecord: %v", b, err, decodeErr)
	}
	if !reflect.DeepEqual(got.obs, want.obs) || !reflect.DeepEqual(got.revs, want.revs) {
		t.Errorf("AddRecord(%q) gives\n %+v %+v\nwant\n %+v %+v", b, got.obs, got.revs, want.obs, want.revs)
	}
}
