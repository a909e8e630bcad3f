package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
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

// object-churn against the raw files: creates from the audit log's successful create requests,
// deletes from the watch streams' DELETED events, re-created names from names created twice.
func TestObjectChurnMatchesRawFiles(t *testing.T) {
	audit, watches := recordingFiles(t)
	type group struct{ creates, deletes, recreated int }
	want := map[string]*group{}
	at := func(res, ns string) *group {
		k := res + "," + ns
		if want[k] == nil {
			want[k] = &group{}
		}
		return want[k]
	}
	workload := map[string]bool{"pods": true, "deployments": true, "replicasets": true, "statefulsets": true}
	scenario := map[string]bool{"shop": true, "blog": true}
	uidsOfName := map[string]map[string]bool{}
	for _, a := range auditLines(t, audit) {
		code, _ := get(a, "responseStatus", "code").(float64)
		res, ns := getS(a, "objectRef", "resource"), getS(a, "objectRef", "namespace")
		if getS(a, "stage") != "ResponseComplete" || getS(a, "verb") != "create" || code < 200 || code >= 300 ||
			!workload[res] || !scenario[ns] || getS(a, "objectRef", "subresource") != "" {
			continue
		}
		at(res, ns).creates++
		name := res + "/" + ns + "/" + getS(a, "responseObject", "metadata", "name")
		if uidsOfName[name] == nil {
			uidsOfName[name] = map[string]bool{}
		}
		uidsOfName[name][getS(a, "responseObject", "metadata", "uid")] = true
	}
	for name, uids := range uidsOfName {
		if len(uids) > 1 {
			parts := strings.SplitN(name, "/", 3)
			at(parts[0], parts[1]).recreated++
		}
	}
	for _, w := range watches {
		dec := json.NewDecoder(bytes.NewReader(gunzipFile(t, w)))
		for {
			var ev struct {
				Type   string `json:"type"`
				Object obj    `json:"object"`
			}
			if dec.Decode(&ev) != nil {
				break
			}
			o := ev.Object
			res := map[string]string{"Pod": "pods", "Deployment": "deployments", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets"}[getS(o, "kind")]
			if ev.Type == "DELETED" && res != "" && scenario[getS(o, "metadata", "namespace")] {
				at(res, getS(o, "metadata", "namespace")).deletes++
			}
		}
	}
	if g := want["pods,blog"]; g == nil || g.creates == 0 || g.deletes == 0 || g.recreated == 0 {
		t.Fatalf("the recording's blog pods should be created, deleted and re-created (StatefulSet upgrade): %+v", g)
	}
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	recs, err := csv.NewReader(strings.NewReader(kairn(t, "report", "object-churn", "--archive", dir, "--format", "csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs[1:] {
		if workload[r[2]] && scenario[r[3]] {
			got[r[2]+","+r[3]] = strings.Join(r[4:7], ",")
		}
	}
	for k, g := range want {
		if w := strings.Join([]string{itoa(g.creates), itoa(g.deletes), itoa(g.recreated)}, ","); got[k] != w {
			t.Errorf("%s: creates,deletes,recreated = %q, want %q (from the raw files)", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("report groups %v, want %d groups", got, len(want))
	}
}
