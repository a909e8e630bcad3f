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

// A change one writer saw first (a guess: "create", no previous revision, not joined) and another
// writer saw joined to its audited write keeps the join whole when merged: user and all, as a
// run that saw everything gives (TestIngestSurvivesKill9 found a resumed ingest losing the user).
func TestMergeGuessTakesTheJoin(t *testing.T) {
	w := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	at := w.Add(5*time.Minute + 312106*time.Microsecond)
	key := ObjectKey{Cluster: "c", Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "d1"}
	obj := archive.Span{Kind: archive.KindObject, SpanID: ObjectSpanID(key, w), Cluster: "c", APIGroup: "apps", Resource: "deployments",
		Namespace: "ns", Name: "web", UID: "d1", WindowStart: w, StartTime: w, EndTime: at}
	row := func(kind, id string) archive.Span {
		return archive.Span{Kind: kind, SpanID: hash64("obs", id), ParentSpanID: obj.SpanID, ObservationID: id,
			Cluster: "c", APIGroup: "apps", Resource: "deployments", Namespace: "ns", Name: "web", UID: "d1", WindowStart: w}
	}
	audit := row(archive.KindAudit, "audit/A/ResponseComplete")
	audit.StartTime, audit.EndTime, audit.TimeSource = at, at.Add(9*time.Millisecond), "audit"
	audit.AuditID, audit.Verb, audit.StatusCode, audit.User, audit.UserAgent, audit.ResourceVersion, audit.AuditLink = "A", "update", 200, "system:serviceaccount:kube-system:deployment-controller", "kcm", "430", LinkByResourceVersion
	knowing := row(archive.KindChange, "change/d1/430")
	knowing.StartTime, knowing.EndTime, knowing.TimeSource = audit.StartTime, audit.EndTime, "audit"
	knowing.Verb, knowing.ResourceVersion, knowing.PrevResourceVersion, knowing.AuditLink = "update", "430", "412", LinkByResourceVersion
	knowing.AuditID, knowing.User, knowing.UserAgent, knowing.StatusCode = "A", audit.User, "kcm", 200
	knowing.RevisionTime, knowing.RevisionTimeSource = at.Truncate(time.Second), "managedFields"
	guess := row(archive.KindChange, "change/d1/430")
	guess.StartTime, guess.EndTime, guess.TimeSource = at.Truncate(time.Second), at.Truncate(time.Second), "managedFields"
	guess.Verb, guess.ResourceVersion, guess.AuditID = "observe", "430", "A"
	guess.RevisionTime, guess.RevisionTimeSource = guess.StartTime, "managedFields"

	for _, order := range [][]archive.Span{{obj, audit, guess, knowing}, {obj, audit, knowing, guess}} {
		var c *archive.Span
		for _, r := range MergeRows(append([]archive.Span(nil), order...), nil) {
			if r.ObservationID == "change/d1/430" {
				c = &r
			}
		}
		if c == nil || c.User != audit.User || c.AuditID != "A" || c.Verb != "update" || c.PrevResourceVersion != "412" || !c.StartTime.Equal(at) || c.AuditLink != LinkByResourceVersion {
			t.Errorf("merged change %+v, want it joined to audit A by %s", c, audit.User)
		}
	}
}
