package serve

import (
	"slices"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// causalRows: a Deployment write (audited, µs) creates a ReplicaSet whose create is known only
// to the second (before the write's µs), which creates a pod (whole second), bound by the
// scheduler (audited), whose nodeName change is again whole-second; one request on the pod fails.
func causalRows() (TraceID, []archive.Span) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	obj := func(id, parent, res, group, kind, name, uid string) archive.Span {
		return archive.Span{Kind: archive.KindObject, SpanID: id, ParentSpanID: parent, Cluster: "c", APIGroup: group, Resource: res,
			Namespace: "ns", Name: name, UID: uid, ObjectKind: kind, WindowStart: t0, StartTime: t0, EndTime: t0}
	}
	ob := func(id, parent, kind, verb, rv, source string, at time.Duration) archive.Span {
		return archive.Span{Kind: kind, SpanID: id, ParentSpanID: parent, Cluster: "c", Verb: verb, ResourceVersion: rv,
			TimeSource: source, WindowStart: t0, StartTime: t0.Add(at), EndTime: t0.Add(at)}
	}
	audit := ob("00000000000000a1", "000000000000000d", archive.KindAudit, "update", "100", "audit", 500*time.Millisecond)
	audit.AuditID, audit.AuditLink, audit.StatusCode, audit.Resource = "A", "resourceVersion", 200, "deployments"
	change := ob("00000000000000c1", "000000000000000d", archive.KindChange, "update", "100", "audit", 500*time.Millisecond)
	change.AuditID, change.AuditLink = "A", "resourceVersion"
	change.Changes = []archive.FieldChange{{Path: "spec.replicas", Old: "1", New: "2"}}
	binding := ob("00000000000000a2", "000000000000000b", archive.KindAudit, "create", "104", "audit", 700*time.Millisecond)
	binding.StatusCode, binding.Resource, binding.Subresource = 201, "pods", "binding"
	failed := ob("00000000000000a3", "000000000000000b", archive.KindAudit, "update", "", "audit", 800*time.Millisecond)
	failed.StatusCode, failed.Resource = 409, "pods"
	rows := []archive.Span{
		obj("000000000000000d", "", "deployments", "apps", "Deployment", "web", "dddddddd"),
		obj("000000000000000e", "000000000000000d", "replicasets", "apps", "", "web-5f", "eeeeeeee"),
		obj("000000000000000b", "000000000000000e", "pods", "", "Pod", "web-5f-x", "bbbbbbbb"),
		obj("00000000000000f0", "", "events", "", "Event", "web.1", "ffffffff"),
		audit, change,
		ob("00000000000000c2", "000000000000000e", archive.KindChange, "create", "101", "managedFields", 0),
		ob("00000000000000c3", "000000000000000b", archive.KindChange, "create", "103", "creationTimestamp", 0),
		binding,
		ob("00000000000000c4", "000000000000000b", archive.KindChange, "update", "105", "managedFields", 0),
		failed,
		ob("00000000000000c5", "00000000000000f0", archive.KindAudit, "create", "", "audit", 0),
	}
	id := newTraceID(Pipeline{Display: DisplayTree}, spanKey(&rows[0]), t0, t0.Add(30*time.Minute))
	return id, rows
}

func TestDisplayTimesAreCausal(t *testing.T) {
	id, rows := causalRows()
	tr := Assemble(id, rows)
	t0 := rows[0].StartTime
	byID := tr.byID()
	want := map[string]time.Duration{ // independent of the code: the write at .5, +1 µs per effect
		"00000000000000c1": 500 * time.Millisecond,
		"00000000000000c2": 500*time.Millisecond + time.Microsecond,
		"00000000000000c3": 500*time.Millisecond + 2*time.Microsecond,
		"00000000000000a2": 700 * time.Millisecond,
		"00000000000000c4": 700*time.Millisecond + time.Microsecond,
		"00000000000000a3": 800 * time.Millisecond,
	}
	for sid, d := range want {
		s := byID[sid]
		if s == nil {
			t.Errorf("span %s missing", sid)
			continue
		}
		if got := s.Start.Sub(t0); got != d {
			t.Errorf("%s %q at +%s, want +%s", sid, s.Name, got, d)
		}
	}
	if byID["00000000000000a1"] != nil {
		t.Error("the audit linked to its change is shown twice")
	}
	if j := byID["00000000000000c1"]; j == nil || j.Name != "audit update deployments" || !slices.Equal(j.Diffs, []string{"spec.replicas: 1 → 2"}) {
		t.Errorf("joined span %+v", j)
	}
	if byID["00000000000000f0"] != nil || byID["00000000000000c5"] != nil {
		t.Error("the Event object or its audit is in the trace")
	}
	if k := byID["000000000000000e"].ObjectKind; k != "ReplicaSet" {
		t.Errorf("kind from the scheme %q", k)
	}
	for _, p := range Pipelines() {
		checkInsideParents(t, p.String(), Apply(p, tr))
	}
}

func checkInsideParents(t *testing.T, name string, tr *Trace) {
	t.Helper()
	byID := tr.byID()
	for _, s := range tr.Spans {
		if p := byID[s.Parent]; p != nil && (s.Start.Before(p.Start) || maxTime(s.End, s.Start).After(p.End)) {
			t.Errorf("%s: %q [%s, %s] outside its parent %q [%s, %s]", name, s.Name, s.Start, s.End, p.Name, p.Start, p.End)
		}
	}
}

func TestSameErrorsAndOrderInEveryDisplay(t *testing.T) {
	id, rows := causalRows()
	tr := Assemble(id, rows)
	var order []string
	for _, d := range []Display{DisplayTree, DisplayTimeline, DisplayTracing, DisplayGrouping} {
		got := Apply(Pipeline{Display: d}, tr)
		ui := ToUI(got)
		errs := 0
		var objects []string
		for _, s := range ui.Spans {
			n := 0
			for _, kv := range s.Tags {
				if kv.Key == "error" {
					n++
				}
			}
			if n > 1 {
				t.Errorf("display %d: %q has %d error tags", d, s.OperationName, n)
			}
			errs += n
			for _, kv := range s.Tags {
				if kv.Key == "kairn.kind" && kv.Value == "object" {
					objects = append(objects, s.SpanID)
				}
			}
		}
		if errs != 1 {
			t.Errorf("display %d: %d errors, want the one failed request", d, errs)
		}
		chunks, err := ToOTLP(got)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			for _, rs := range c.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					for _, s := range ss.Spans {
						for _, a := range s.Attributes {
							if a.Key == "error" {
								t.Errorf("display %d: OTLP span %q has an error attribute besides its status", d, s.Name)
							}
						}
					}
				}
			}
		}
		if d == DisplayTimeline {
			continue // one object span
		}
		if order == nil {
			order = objects
		} else if !slices.Equal(order, objects) {
			t.Errorf("display %d orders objects %v, tree %v", d, objects, order)
		}
	}
}

func TestLinksAndRepeatedNames(t *testing.T) {
	id, rows := causalRows()
	node := archive.Link{Relation: "node", Cluster: "c", Resource: "nodes", Name: "n1", UID: "nnnn", SpanID: "00000000000000aa"}
	rows[2].Links = []archive.Link{node}
	again := rows[2] // the pod re-created under its name
	again.SpanID, again.UID, again.Links = "000000000000001b", "12345678", nil
	rows = append(rows, again)
	tr := Assemble(id, rows)
	byID := tr.byID()
	if n := byID["000000000000000b"].Name; n != "Pod ns/web-5f-x ·bbbbbb" {
		t.Errorf("first pod named %q", n)
	}
	if n := byID["000000000000001b"].Name; n != "Pod ns/web-5f-x ·123456" {
		t.Errorf("re-created pod named %q", n)
	}
	ui := ToUI(tr)
	want := newTraceID(id.Pipeline, ObjectKey{Cluster: "c", Resource: "nodes", Name: "n1", UID: "nnnn"}, id.Start, id.End).String()
	for _, s := range ui.Spans {
		if s.SpanID != "000000000000000b" {
			continue
		}
		refs, tags := 0, map[string]any{}
		for _, r := range s.References {
			if r.RefType == "FOLLOWS_FROM" && r.TraceID == want && r.SpanID == node.SpanID {
				refs++
			}
		}
		for _, kv := range s.Tags {
			tags[kv.Key] = kv.Value
		}
		if refs != 1 || tags["link.node"] != "Node n1" || tags["link.node.trace_id"] != want {
			t.Errorf("pod's link to its node: %d references, tags %v", refs, tags)
		}
		if ui.Processes[s.ProcessID].ServiceName != "Pod" {
			t.Errorf("pod's service %q", ui.Processes[s.ProcessID].ServiceName)
		}
	}
}
