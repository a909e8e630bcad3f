package link

import (
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// A write whose audit record (10:29:59.9) and watched revision (managedFields 10:30:00) landed in
// different windows is joined by both partitions' merges; and a fact two writers placed in
// different windows is kept once, in the window of its most precise copy.
func TestMergeJoinsAcrossWindows(t *testing.T) {
	w1 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	w2 := w1.Add(30 * time.Minute)
	key := ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "d1"}
	obj := func(w time.Time) archive.Span {
		return archive.Span{Kind: archive.KindObject, SpanID: ObjectSpanID(key, w), Cluster: "c", APIGroup: "apps", Resource: "deployments",
			Namespace: "ns", Name: "web", UID: "d1", WindowStart: w, StartTime: w, EndTime: w}
	}
	row := func(kind, id string, w, at time.Time) archive.Span {
		return archive.Span{Kind: kind, SpanID: hash64("obs", id), ParentSpanID: ObjectSpanID(key, w), ObservationID: id,
			Cluster: "c", APIGroup: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "d1",
			WindowStart: w, StartTime: at, EndTime: at}
	}
	audit := row(archive.KindAudit, "audit/A/ResponseComplete", w1, w2.Add(-100*time.Millisecond))
	audit.AuditID, audit.Verb, audit.StatusCode, audit.User, audit.UserAgent = "A", "patch", 200, "alice", "kubectl/v1.32"
	audit.EndTime = audit.StartTime.Add(20 * time.Millisecond)
	change := row(archive.KindChange, "change/d1/20", w2, w2)
	change.Verb, change.TimeSource, change.ResourceVersion, change.FieldManager = "update", "managedFields", "20", "kubectl-set"
	change.RevisionTime, change.RevisionTimeSource = w2, "managedFields"
	// The same Event seen by two writers: timed by its audited creation in w1, by firstTimestamp in w2.
	eventAudited := row(archive.KindEvent, "event/e1/7", w1, w2.Add(-300*time.Millisecond))
	eventAudited.TimeSource, eventAudited.Reason = "audit", "ScalingReplicaSet"
	eventOwn := row(archive.KindEvent, "event/e1/7", w2, w2)
	eventOwn.TimeSource, eventOwn.Reason = "firstTimestamp", "ScalingReplicaSet"

	part1 := []archive.Span{obj(w1), audit, eventAudited}
	part2 := []archive.Span{obj(w2), change, eventOwn}
	merged1 := MergeRows(part1, part2)
	merged2 := MergeRows(part2, part1)

	find := func(rows []archive.Span, id string) *archive.Span {
		for i := range rows {
			if rows[i].ObservationID == id {
				return &rows[i]
			}
		}
		return nil
	}
	if a := find(merged1, audit.ObservationID); a == nil || a.ResourceVersion != "20" || a.AuditLink != LinkByFit {
		t.Errorf("audit in the first window not joined to the change in the second: %+v", a)
	}
	if c := find(merged2, change.ObservationID); c == nil || c.User != "alice" || c.AuditID != "A" || !c.StartTime.Equal(audit.StartTime) {
		t.Errorf("change in the second window not joined to the audit in the first: %+v", c)
	}
	e1, e2 := find(merged1, "event/e1/7"), find(merged2, "event/e1/7")
	if e1 == nil || e2 != nil || e1.TimeSource != "audit" {
		t.Errorf("the Event must be kept once, in the window of its audited copy: first %v, second %v", e1, e2)
	}
}
