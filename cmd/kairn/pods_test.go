package main

import (
	"encoding/csv"
	"sort"
	"strings"
	"testing"
	"time"
)

// podTruth reads pod creations, bindings and Started Events straight from the raw audit log
// (whose policy logs bodies for pods and Events).
type podTruth struct {
	namespace, name, scheduler string
	created, bound, firstStart time.Time
}

func podsFromAudit(t *testing.T, auditPath string) map[string]*podTruth {
	pods := map[string]*podTruth{}  // uid → facts
	byName := map[string][]string{} // ns/name → uids in creation order
	type binding struct {
		key, user string
		at        time.Time
	}
	var bindings []binding
	type start struct {
		uid string
		at  time.Time
	}
	var starts []start
	for _, a := range auditLines(t, auditPath) {
		code, _ := get(a, "responseStatus", "code").(float64)
		if getS(a, "stage") != "ResponseComplete" || code < 200 || code >= 300 || getS(a, "verb") != "create" {
			continue
		}
		at := getT(t, a, "requestReceivedTimestamp")
		key := getS(a, "objectRef", "namespace") + "/" + getS(a, "objectRef", "name")
		switch {
		case getS(a, "objectRef", "resource") == "pods" && getS(a, "objectRef", "subresource") == "":
			uid := getS(a, "responseObject", "metadata", "uid")
			name := getS(a, "responseObject", "metadata", "name")
			pods[uid] = &podTruth{namespace: getS(a, "objectRef", "namespace"), name: name, created: at}
			byName[getS(a, "objectRef", "namespace")+"/"+name] = append(byName[getS(a, "objectRef", "namespace")+"/"+name], uid)
		case getS(a, "objectRef", "resource") == "pods" && getS(a, "objectRef", "subresource") == "binding":
			bindings = append(bindings, binding{key, getS(a, "user", "username"), at})
		case getS(a, "objectRef", "resource") == "events" && getS(a, "responseObject", "reason") == "Started":
			starts = append(starts, start{getS(a, "responseObject", "involvedObject", "uid"), at})
		}
	}
	for _, b := range bindings {
		// The pod of that name created last before the binding.
		var pick *podTruth
		for _, uid := range byName[b.key] {
			if p := pods[uid]; !p.created.After(b.at) && (pick == nil || p.created.After(pick.created)) {
				pick = p
			}
		}
		if pick != nil && (pick.bound.IsZero() || b.at.Before(pick.bound)) {
			pick.bound, pick.scheduler = b.at, b.user
		}
	}
	for _, s := range starts {
		if p, ok := pods[s.uid]; ok && (p.firstStart.IsZero() || s.at.Before(p.firstStart)) {
			p.firstStart = s.at
		}
	}
	return pods
}

func fmtTime(at time.Time) string {
	if at.IsZero() {
		return ""
	}
	return at.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func TestPodLatencyReportsMatchAuditLog(t *testing.T) {
	audit, watches := recordingFiles(t)
	truth := podsFromAudit(t, audit)
	var wantSched, wantStart []string
	for _, p := range truth {
		wantSched = append(wantSched, strings.Join([]string{p.namespace, p.name, p.scheduler, fmtTime(p.created), fmtTime(p.bound)}, ","))
		if !p.bound.IsZero() {
			wantStart = append(wantStart, strings.Join([]string{p.namespace, p.name, fmtTime(p.bound), fmtTime(p.firstStart)}, ","))
		}
	}
	if len(wantSched) < 10 || len(wantStart) < 10 {
		t.Fatalf("the recording has %d pods, %d bound: too few to test", len(wantSched), len(wantStart))
	}
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	rows := func(report string, cols ...int) []string {
		recs, err := csv.NewReader(strings.NewReader(kairn(t, "report", report, "--archive", dir, "--format", "csv"))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs[1:] {
			var f []string
			for _, c := range cols {
				f = append(f, r[c])
			}
			out = append(out, strings.Join(f, ","))
		}
		sort.Strings(out)
		return out
	}
	sort.Strings(wantSched)
	sort.Strings(wantStart)
	if got := rows("pod-scheduling-latency", 1, 2, 3, 4, 5); strings.Join(got, "\n") != strings.Join(wantSched, "\n") {
		t.Errorf("pod-scheduling-latency:\n%s\nwant (from the raw audit log):\n%s", firstDiff(strings.Join(got, "\n"), strings.Join(wantSched, "\n")), "")
	}
	if got := rows("pod-startup-latency", 1, 2, 3, 4); strings.Join(got, "\n") != strings.Join(wantStart, "\n") {
		t.Errorf("pod-startup-latency:\n%s", firstDiff(strings.Join(got, "\n"), strings.Join(wantStart, "\n")))
	}
}
