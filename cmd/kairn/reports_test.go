package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

type recording struct {
	name           string
	audit          string
	watches        []string
	archive        string
	auditEvents    []obj
	finalStageOnly []obj // one audit event per request: its final stage
}

// recordings ingests both bundled recordings (full audit and watches) into temporary archives.
func recordings(t *testing.T) []*recording {
	t.Helper()
	var out []*recording
	for _, r := range []struct {
		name  string
		files func(testing.TB) (string, []string)
	}{{"recording", recordingFiles}, {"daemonset", daemonsetFiles}} {
		audit, watches := r.files(t)
		rec := &recording{name: r.name, audit: audit, watches: watches, archive: t.TempDir()}
		kairn(t, ingestArgs(rec.archive, audit, watches)...)
		rec.auditEvents = auditLines(t, audit)
		for _, a := range rec.auditEvents {
			if s := getS(a, "stage"); s == "ResponseComplete" || s == "Panic" {
				rec.finalStageOnly = append(rec.finalStageOnly, a)
			}
		}
		out = append(out, rec)
	}
	return out
}

// report runs `kairn report NAME` as CSV and returns its rows as maps by column name.
func report(t *testing.T, archive, name string) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(kairn(t, "report", name, "--archive", archive, "--format", "csv"))).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, c := range recs[0] {
			m[c] = r[i]
		}
		rows = append(rows, m)
	}
	return rows
}

func code(a obj) int { c, _ := get(a, "responseStatus", "code").(float64); return int(c) }

func num(m any, path ...string) int64 { f, _ := get(m, path...).(float64); return int64(f) }

func userOf(a obj) string {
	if u := getS(a, "impersonatedUser", "username"); u != "" {
		return u
	}
	return getS(a, "user", "username")
}

// quantileCont is DuckDB's quantile_cont: linear interpolation between the closest ranks.
func quantileCont(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := math.Floor(pos)
	hi := math.Ceil(pos)
	return sorted[int(lo)] + (pos-lo)*(sorted[int(hi)]-sorted[int(lo)])
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// sameNumber compares a printed number with the expected one rounded to 3 decimals.
func sameNumber(printed string, want float64) bool {
	got, err := strconv.ParseFloat(printed, 64)
	return err == nil && math.Abs(got-round3(want)) < 1e-9
}

// DaemonSet pods are owned directly by the DaemonSet: the new recording's two DaemonSet rollouts
// and its Deployment rollout, against the same ground truth as the first recording.
func TestRolloutFirstPullDaemonSets(t *testing.T) {
	audit, watches := daemonsetFiles(t)
	truth := groundTruth(t, audit, watches)
	kinds := map[string]int{}
	for _, r := range truth {
		if r.firstPull.IsZero() {
			t.Errorf("ground truth: rollout %+v has no pull", r)
		}
		kinds[r.kind]++
	}
	if kinds["DaemonSet"] != 2 || kinds["Deployment"] != 1 || len(truth) != 3 {
		t.Fatalf("testdata/daemonset documents 2 DaemonSet rollouts and 1 Deployment rollout; ground truth %+v", truth)
	}
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	compareToTruth(t, truth, parseReport(t, kairn(t, "report", "rollout-first-pull", "--archive", dir, "--format", "csv")), time.Microsecond)
}

// The summary, from the ground truth's latencies (µs exact), per cluster and per namespace.
func TestRolloutFirstPullSummaryMatchesGroundTruth(t *testing.T) {
	for _, rec := range recordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			truth := groundTruth(t, rec.audit, rec.watches)
			type group struct {
				rollouts int
				lat      []float64
			}
			groups := map[string]*group{}
			add := func(key string, r truthRow) {
				if groups[key] == nil {
					groups[key] = &group{}
				}
				g := groups[key]
				g.rollouts++
				if !r.firstPull.IsZero() {
					g.lat = append(g.lat, float64(r.firstPull.Sub(r.upgradeAt).Microseconds())/1e6)
				}
			}
			for _, r := range truth {
				add("cluster,rec,", r)
				add("namespace,rec,"+r.namespace, r)
			}
			rows := report(t, rec.archive, "rollout-first-pull-summary")
			if len(rows) != len(groups) {
				t.Errorf("%d summary rows, want %d: %v", len(rows), len(groups), rows)
			}
			for _, row := range rows {
				key := row["scope"] + "," + row["cluster"] + "," + row["namespace"]
				g := groups[key]
				if g == nil {
					t.Errorf("unexpected summary row %v", row)
					continue
				}
				sort.Float64s(g.lat)
				if row["rollouts"] != itoa(g.rollouts) || row["pulled"] != itoa(len(g.lat)) {
					t.Errorf("%s: rollouts,pulled = %s,%s, want %d,%d", key, row["rollouts"], row["pulled"], g.rollouts, len(g.lat))
				}
				for col, q := range map[string]float64{"p50_seconds": 0.5, "p90_seconds": 0.9, "p99_seconds": 0.99, "max_seconds": 1} {
					if !sameNumber(row[col], quantileCont(g.lat, q)) {
						t.Errorf("%s: %s = %s, want %.3f (latencies %v)", key, col, row[col], quantileCont(g.lat, q), g.lat)
					}
				}
				t.Logf("%s: %d rollouts, p50 %s p90 %s p99 %s max %s", key, g.rollouts, row["p50_seconds"], row["p90_seconds"], row["p99_seconds"], row["max_seconds"])
			}
		})
	}
}

// workloadWrite is a successful audited write on an apps workload or a pod, with its response body.
type workloadWrite struct {
	at                        time.Time
	verb, resource, sub, user string
	uid, ns, name, kind       string
	body                      obj
}

func workloadWrites(t *testing.T, events []obj) []workloadWrite {
	var out []workloadWrite
	for _, a := range events {
		res := getS(a, "objectRef", "resource")
		verb := getS(a, "verb")
		apps := getS(a, "objectRef", "apiGroup") == "apps" &&
			(res == "deployments" || res == "replicasets" || res == "statefulsets" || res == "daemonsets")
		pods := getS(a, "objectRef", "apiGroup") == "" && res == "pods"
		if getS(a, "stage") != "ResponseComplete" || code(a) < 200 || code(a) >= 300 || !(apps || pods) {
			continue
		}
		if verb != "create" && verb != "update" && verb != "patch" && verb != "delete" {
			continue
		}
		body, _ := get(a, "responseObject").(obj)
		if body == nil {
			t.Fatalf("the recording's audit policy must log bodies for %s writes", res)
		}
		if getS(body, "kind") == "Status" { // e.g. a delete answered with a Status: no object
			continue
		}
		name := getS(a, "objectRef", "name")
		if name == "" { // a create with generateName: the response names it
			name = getS(body, "metadata", "name")
		}
		out = append(out, workloadWrite{
			at: getT(t, a, "requestReceivedTimestamp"), verb: verb, resource: res, sub: getS(a, "objectRef", "subresource"),
			user: userOf(a), uid: getS(body, "metadata", "uid"), ns: getS(a, "objectRef", "namespace"),
			name: name, kind: getS(body, "kind"), body: body,
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// rollout-duration against the workloads' full status, read from every audited write's response
// body (the controllers' status updates included), with the definition spelled out on the objects.
func TestRolloutDurationMatchesAuditLog(t *testing.T) {
	for _, rec := range recordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			type rollout struct {
				ns, kind, name, uid string
				gen                 int64
				at, done            time.Time
			}
			var rollouts []*rollout
			lastTemplate := map[string]string{}
			var states []workloadWrite // responses showing the whole workload (not Scale)
			for _, w := range workloadWrites(t, rec.auditEvents) {
				if w.resource == "pods" || w.resource == "replicasets" || w.kind == "Scale" {
					continue
				}
				states = append(states, w)
				if w.sub != "" {
					continue
				}
				tmpl, _ := json.Marshal(get(w.body, "spec", "template"))
				if prev, ok := lastTemplate[w.uid]; ok && prev != string(tmpl) && (w.verb == "update" || w.verb == "patch") {
					rollouts = append(rollouts, &rollout{ns: w.ns, kind: w.kind, name: w.name, uid: w.uid,
						gen: num(w.body, "metadata", "generation"), at: w.at})
				}
				lastTemplate[w.uid] = string(tmpl)
			}
			done := func(kind string, o obj, gen int64) bool {
				st := func(f string) int64 { return num(o, "status", f) }
				replicas := int64(1)
				if r, ok := get(o, "spec", "replicas").(float64); ok {
					replicas = int64(r)
				}
				if st("observedGeneration") < gen {
					return false
				}
				switch kind {
				case "Deployment":
					return st("updatedReplicas") == replicas && st("replicas") == replicas && st("readyReplicas") == replicas &&
						st("availableReplicas") == replicas && st("unavailableReplicas") == 0 && st("terminatingReplicas") == 0
				case "StatefulSet":
					return getS(o, "status", "currentRevision") == getS(o, "status", "updateRevision") &&
						st("updatedReplicas") == replicas && st("replicas") == replicas && st("readyReplicas") == replicas &&
						st("availableReplicas") == replicas
				case "DaemonSet":
					d := st("desiredNumberScheduled")
					return st("updatedNumberScheduled") == d && st("currentNumberScheduled") == d && st("numberReady") == d &&
						st("numberAvailable") == d && st("numberUnavailable") == 0
				}
				t.Fatalf("kind %s", kind)
				return false
			}
			for i, r := range rollouts {
				var next time.Time
				for _, n := range rollouts[i+1:] {
					if n.uid == r.uid {
						next = n.at
						break
					}
				}
				for _, s := range states {
					if s.uid == r.uid && s.at.After(r.at) && (next.IsZero() || s.at.Before(next)) && done(r.kind, s.body, r.gen) {
						r.done = s.at
						break
					}
				}
			}
			var want []string
			completed := 0
			for _, r := range rollouts {
				want = append(want, strings.Join([]string{r.ns, r.kind, r.name, fmtTime(r.at), fmtTime(r.done)}, ","))
				if !r.done.IsZero() {
					completed++
				}
			}
			if completed == 0 || completed != len(rollouts) {
				t.Errorf("ground truth: %d of %d rollouts complete; every rollout of the recordings was waited for", completed, len(rollouts))
			}
			var got []string
			var longest float64
			for _, row := range report(t, rec.archive, "rollout-duration") {
				got = append(got, strings.Join([]string{row["namespace"], row["kind"], row["name"], row["upgrade_at"], row["completed_at"]}, ","))
				if row["completed_at"] != "" {
					up, _ := time.Parse(time.RFC3339Nano, row["upgrade_at"])
					c, _ := time.Parse(time.RFC3339Nano, row["completed_at"])
					if !sameNumber(row["duration_seconds"], float64(c.Sub(up).Microseconds())/1e6) {
						t.Errorf("duration_seconds %s for %v", row["duration_seconds"], row)
					}
					longest = max(longest, c.Sub(up).Seconds())
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rollout-duration:\n%s\nwant (from the audit log's response bodies):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			t.Logf("%d rollouts, all completed, longest %.3f s", len(rollouts), longest)
		})
	}
}

// controller-reconcile-latency from the audit log's response bodies: owners' desired-state changes
// (template, replicas, creation) and the first non-status write on an object they own.
func TestControllerReconcileLatencyMatchesAuditLog(t *testing.T) {
	for _, rec := range recordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			type trigger struct {
				ns, kind, name, uid, what, user string
				at                              time.Time
			}
			var triggers []*trigger
			lastTemplate, lastReplicas := map[string]string{}, map[string]string{}
			type childWrite struct {
				owner, kind, name, verb, user string
				at                            time.Time
			}
			var children []childWrite
			lastBody := map[string]string{} // child uid → body without status and bookkeeping
			strip := func(o obj) string {
				c := obj{}
				for k, v := range o {
					c[k] = v
				}
				delete(c, "status")
				if md, ok := c["metadata"].(obj); ok {
					m := obj{}
					for k, v := range md {
						m[k] = v
					}
					delete(m, "resourceVersion")
					delete(m, "managedFields")
					c["metadata"] = m
				}
				b, _ := json.Marshal(c)
				return string(b)
			}
			for _, w := range workloadWrites(t, rec.auditEvents) {
				// A child write: on a ReplicaSet or pod itself, by its controller owner's uid.
				if (w.resource == "pods" || w.resource == "replicasets") && w.kind != "Scale" {
					owner := ""
					for _, ref := range asList(get(w.body, "metadata", "ownerReferences")) {
						if c, _ := get(ref, "controller").(bool); c {
							owner = getS(ref, "uid")
						}
					}
					s := strip(w.body)
					changed := w.verb == "create" || w.verb == "delete" || lastBody[w.uid] != s
					lastBody[w.uid] = s
					if w.sub == "" && owner != "" && changed {
						children = append(children, childWrite{owner, w.kind, w.name, w.verb, w.user, w.at})
					}
				}
				if w.resource == "pods" || (w.sub != "" && w.sub != "scale") {
					continue
				}
				// An owner write: creation, template or replicas change.
				replicas, _ := json.Marshal(get(w.body, "spec", "replicas"))
				tmpl := lastTemplate[w.uid]
				if w.kind != "Scale" {
					b, _ := json.Marshal(get(w.body, "spec", "template"))
					tmpl = string(b)
				}
				what := ""
				switch {
				case w.verb == "create":
					what = "create"
				case w.verb == "delete":
				case tmpl != lastTemplate[w.uid]:
					what = "template"
				case string(replicas) != lastReplicas[w.uid]:
					what = "replicas"
				}
				lastTemplate[w.uid], lastReplicas[w.uid] = tmpl, string(replicas)
				if what != "" {
					kind := w.kind
					if kind == "Scale" {
						kind = map[string]string{"deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet"}[w.resource]
					}
					triggers = append(triggers, &trigger{w.ns, kind, w.name, w.uid, what, w.user, w.at})
				}
			}
			want := map[string]string{}
			for i, tr := range triggers {
				var next time.Time
				for _, n := range triggers[i+1:] {
					if n.uid == tr.uid {
						next = n.at
						break
					}
				}
				reaction := ",,,,"
				for _, c := range children { // sorted by time
					if c.owner == tr.uid && c.at.After(tr.at) && (next.IsZero() || c.at.Before(next)) {
						reaction = strings.Join([]string{c.user, c.kind, c.name, c.verb, fmtTime(c.at)}, ",")
						break
					}
				}
				key := strings.Join([]string{tr.ns, tr.kind, tr.name, tr.what, reaction}, ",")
				want[key] = tr.user + "," + fmtTime(tr.at)
			}
			got := map[string]string{}
			reacted := 0
			var latencies []float64
			for _, row := range report(t, rec.archive, "controller-reconcile-latency") {
				action := row["action"]
				if action == "delete-requested" {
					action = "delete"
				}
				key := strings.Join([]string{row["namespace"], row["owner_kind"], row["owner"], row["trigger"],
					row["controller"], row["child_kind"], row["child"], action, row["reacted_at"]}, ",")
				if _, dup := got[key]; dup {
					t.Errorf("duplicate row %v", row)
				}
				got[key] = row["trigger_user"] + "," + row["trigger_at"]
				if row["reacted_at"] != "" {
					reacted++
					tr, _ := time.Parse(time.RFC3339Nano, row["trigger_at"])
					re, _ := time.Parse(time.RFC3339Nano, row["reacted_at"])
					latencies = append(latencies, re.Sub(tr).Seconds())
				}
			}
			for key, w := range want {
				g, ok := got[key]
				switch {
				case !ok:
					t.Errorf("missing: %s (trigger %s)", key, w)
				case g != w:
					t.Errorf("%s: trigger user,time %s, want %s", key, g, w)
				}
			}
			for key, g := range got {
				if _, ok := want[key]; !ok {
					t.Errorf("unexpected row: %s (trigger %s)", key, g)
				}
			}
			sort.Float64s(latencies)
			if reacted < 5 {
				t.Errorf("only %d triggers with a reaction", reacted)
			}
			t.Logf("%d triggers, %d with a controller write; latency max %.3f s", len(want), reacted, latencies[len(latencies)-1])
		})
	}
}

// top-writers: every audited write request counted per user, user agent and resource.
func TestTopWritersMatchesAuditLog(t *testing.T) {
	for _, rec := range recordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			type group struct {
				n        map[string]int
				failed   int
				conflict int
				lat      []float64
			}
			groups := map[string]*group{}
			for _, a := range rec.finalStageOnly {
				verb := getS(a, "verb")
				if verb != "create" && verb != "update" && verb != "patch" && verb != "delete" && verb != "deletecollection" {
					continue
				}
				key := strings.Join([]string{userOf(a), getS(a, "userAgent"), getS(a, "objectRef", "apiGroup"),
					getS(a, "objectRef", "resource"), getS(a, "objectRef", "subresource")}, "\x00")
				g := groups[key]
				if g == nil {
					g = &group{n: map[string]int{}}
					groups[key] = g
				}
				if verb == "deletecollection" {
					verb = "delete"
				}
				g.n[verb]++
				g.n["all"]++
				if code(a) >= 400 {
					g.failed++
				}
				if code(a) == 409 {
					g.conflict++
				}
				g.lat = append(g.lat, float64(getT(t, a, "stageTimestamp").Sub(getT(t, a, "requestReceivedTimestamp")).Microseconds()))
			}
			rows := report(t, rec.archive, "top-writers")
			if len(rows) != len(groups) {
				t.Errorf("%d rows, want %d groups", len(rows), len(groups))
			}
			total := 0
			for i, row := range rows {
				key := strings.Join([]string{row["user"], row["user_agent"], row["api_group"], row["resource"], row["subresource"]}, "\x00")
				g := groups[key]
				if g == nil {
					t.Errorf("unexpected row %v", row)
					continue
				}
				sort.Float64s(g.lat)
				total += g.n["all"]
				wantCounts := []int{g.n["all"], g.n["create"], g.n["update"], g.n["patch"], g.n["delete"], g.failed, g.conflict}
				for j, col := range []string{"writes", "creates", "updates", "patches", "deletes", "failed", "conflicts"} {
					if row[col] != itoa(wantCounts[j]) {
						t.Errorf("%q: %s = %s, want %d", key, col, row[col], wantCounts[j])
					}
				}
				// (in µs, then to ms, as the query does, so that halves round alike)
				if p50, mx := quantileCont(g.lat, 0.5)/1e3, g.lat[len(g.lat)-1]/1e3; !sameNumber(row["p50_ms"], p50) || !sameNumber(row["max_ms"], mx) {
					t.Errorf("%q: p50_ms,max_ms = %s,%s, want %.3f,%.3f", key, row["p50_ms"], row["max_ms"], p50, mx)
				}
				if i > 0 {
					if prev, _ := strconv.Atoi(rows[i-1]["writes"]); prev < g.n["all"] {
						t.Errorf("not sorted by writes: %v before %v", rows[i-1], row)
					}
				}
			}
			t.Logf("%d writers×resources, %d writes", len(groups), total)
		})
	}
}

// slowest-requests: the 100 slowest non-streaming requests of the audit log, in order.
func TestSlowestRequestsMatchAuditLog(t *testing.T) {
	streaming := map[string]bool{"exec": true, "attach": true, "portforward": true, "proxy": true, "log": true}
	for _, rec := range recordings(t) {
		t.Run(rec.name, func(t *testing.T) {
			type req struct {
				id       string
				received time.Time
				us       int64
			}
			var all []req
			for _, a := range rec.finalStageOnly {
				if getS(a, "verb") == "watch" || streaming[getS(a, "objectRef", "subresource")] {
					continue
				}
				rcv := getT(t, a, "requestReceivedTimestamp")
				all = append(all, req{getS(a, "auditID"), rcv, getT(t, a, "stageTimestamp").Sub(rcv).Microseconds()})
			}
			sort.Slice(all, func(i, j int) bool {
				a, b := all[i], all[j]
				if a.us != b.us {
					return a.us > b.us
				}
				if !a.received.Equal(b.received) {
					return a.received.Before(b.received)
				}
				return a.id < b.id
			})
			if len(all) < 100 {
				t.Fatalf("only %d requests", len(all))
			}
			var want, got []string
			for i, r := range all[:100] {
				want = append(want, strings.Join([]string{itoa(i + 1), r.id, fmtTime(r.received)}, ","))
			}
			for i, row := range report(t, rec.archive, "slowest-requests") {
				got = append(got, strings.Join([]string{row["rank"], row["audit_id"], row["received_at"]}, ","))
				if i < len(all) && !sameNumber(row["latency_ms"], float64(all[i].us)/1e3) {
					t.Errorf("rank %s: latency_ms %s, want %.3f", row["rank"], row["latency_ms"], float64(all[i].us)/1e3)
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("slowest-requests:\n%s", firstDiff(strings.Join(got, "\n"), strings.Join(want, "\n")))
			}
			t.Logf("%d requests; slowest %.3f ms, 100th %.3f ms", len(all), float64(all[0].us)/1e3, float64(all[99].us)/1e3)
		})
	}
}
