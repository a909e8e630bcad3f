package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/collect"
	"github.com/kairn-dev/kairn/internal/synth"
	"github.com/kairn-dev/kairn/link"
)

// conflictTruth finds, in the raw audit log, every 409 on an update or patch and the write that
// won: the successful write on the same object whose response is the first revision after the
// loser's base resourceVersion.
func conflictTruth(t *testing.T, auditPath string) []string {
	type write struct {
		key, user string
		at        time.Time
		rv        uint64
	}
	var wins []write
	type loss struct {
		key, user, base string
		at              time.Time
	}
	var losses []loss
	for _, a := range auditLines(t, auditPath) {
		if getS(a, "stage") != "ResponseComplete" {
			continue
		}
		key := strings.Join([]string{getS(a, "objectRef", "namespace"), getS(a, "objectRef", "resource"), getS(a, "objectRef", "name")}, ",")
		user := getS(a, "user", "username")
		if imp := getS(a, "impersonatedUser", "username"); imp != "" {
			user = imp
		}
		code, _ := get(a, "responseStatus", "code").(float64)
		verb := getS(a, "verb")
		switch {
		case code == 409 && (verb == "update" || verb == "patch"):
			base := getS(a, "requestObject", "metadata", "resourceVersion")
			if base == "" {
				base = getS(a, "objectRef", "resourceVersion")
			}
			losses = append(losses, loss{key, user, base, getT(t, a, "requestReceivedTimestamp")})
		case code >= 200 && code < 300 && getS(a, "responseObject", "metadata", "resourceVersion") != "" && getS(a, "objectRef", "subresource") != "scale":
			rv, _ := strconv.ParseUint(getS(a, "responseObject", "metadata", "resourceVersion"), 10, 64)
			wins = append(wins, write{key, user, getT(t, a, "requestReceivedTimestamp"), rv})
		}
	}
	sort.Slice(wins, func(i, j int) bool { return wins[i].rv < wins[j].rv })
	var out []string
	for _, l := range losses {
		base, _ := strconv.ParseUint(l.base, 10, 64)
		winner := ""
		for _, w := range wins {
			if w.key == l.key && w.rv > base {
				winner = w.user + "@" + w.at.Format(time.RFC3339Nano)
				break
			}
		}
		out = append(out, l.key+","+l.user+"@"+l.at.Format(time.RFC3339Nano)+","+winner+","+l.base)
	}
	sort.Strings(out)
	return out
}

func TestConflictsReportMatchesAuditLog(t *testing.T) {
	audit, watches := recordingFiles(t)
	want := conflictTruth(t, audit)
	if len(want) == 0 {
		t.Fatal("the recording holds no 409 Conflict")
	}
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	out := kairn(t, "report", "conflicts", "--archive", dir, "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.Join(recs[0], ","); h != "cluster,namespace,resource,name,loser_user,loser_at,winner_user,winner_at,base_resource_version" {
		t.Fatalf("header %q", h)
	}
	var got []string
	for _, r := range recs[1:] {
		norm := func(s string) string { // the report prints microseconds; RFC3339Nano trims zeros
			if s == "" {
				return ""
			}
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatalf("time %q: %v", s, err)
			}
			return ts.Format(time.RFC3339Nano)
		}
		winner := ""
		if r[6] != "" {
			winner = r[6] + "@" + norm(r[7])
		}
		got = append(got, strings.Join([]string{r[1], r[2], r[3]}, ",")+","+r[4]+"@"+norm(r[5])+","+winner+","+r[8])
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("conflicts:\n%s\nwant (from the raw audit log):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLinksMatchRecording checks owner, node and Service links against the raw watch streams.
func TestLinksMatchRecording(t *testing.T) {
	audit, watches := recordingFiles(t)
	type podFacts struct{ owner, node string }
	pods := map[string]podFacts{}
	slices := map[string]string{}     // endpointslice uid → service name
	annotated := map[string]string{}  // deployment uid → ConfigMap uid its kairn.dev/parent names
	configMaps := map[string]string{} // namespace/name → uid
	var annotations []obj
	for _, w := range watches {
		for _, o := range watchObjects(t, w) {
			uid := getS(o, "metadata", "uid")
			switch getS(o, "kind") {
			case "Pod":
				f := pods[uid]
				for _, ref := range asList(get(o, "metadata", "ownerReferences")) {
					if c, _ := get(ref, "controller").(bool); c {
						f.owner = getS(ref, "uid")
					}
				}
				if n := getS(o, "spec", "nodeName"); n != "" {
					f.node = n
				}
				pods[uid] = f
			case "ConfigMap":
				configMaps[getS(o, "metadata", "namespace")+"/"+getS(o, "metadata", "name")] = uid
			case "Deployment":
				if a, _ := get(o, "metadata", "annotations", "kairn.dev/parent").(string); a != "" {
					var ref obj
					if err := json.Unmarshal([]byte(a), &ref); err != nil {
						t.Fatal(err)
					}
					ref["uid"] = uid
					annotations = append(annotations, ref)
				}
			case "EndpointSlice":
				if svc, _ := get(o, "metadata", "labels", "kubernetes.io/service-name").(string); svc != "" {
					slices[uid] = svc
				}
			}
		}
	}
	for _, ref := range annotations {
		annotated[ref["uid"].(string)] = configMaps[getS(ref, "namespace")+"/"+getS(ref, "name")]
	}
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	ann := kairn(t, "sql", "--archive", dir, "--format", "csv", `
		SELECT DISTINCT uid, parent_relation, parent_uid FROM spans WHERE kind = 'object' AND resource = 'deployments' AND parent_relation IS NOT NULL`)
	recs, _ := csv.NewReader(strings.NewReader(ann)).ReadAll()
	found := 0
	for _, r := range recs[1:] {
		if want, ok := annotated[r[0]]; ok {
			found++
			if r[1] != "annotation" || r[2] != want || want == "" {
				t.Errorf("deployment %s: parent %s %s, want the annotated ConfigMap %s", r[0], r[1], r[2], want)
			}
		}
	}
	if found != len(annotated) || found == 0 {
		t.Errorf("annotation links: %d of %d deployments checked (recording has %v)", found, len(annotated), annotations)
	}
	out := kairn(t, "sql", "--archive", dir, "--format", "csv", `
		SELECT DISTINCT resource, uid, coalesce(parent_uid, ''), coalesce(parent_name, ''),
		       coalesce(list_extract(list_filter(links, l -> l.relation = 'node'), 1).name, '')
		FROM spans WHERE kind = 'object' AND resource IN ('pods', 'endpointslices') AND uid IS NOT NULL`)
	recs, _ = csv.NewReader(strings.NewReader(out)).ReadAll()
	checkedPods, checkedSlices := 0, 0
	for _, r := range recs[1:] {
		switch r[0] {
		case "pods":
			want, ok := pods[r[1]]
			if !ok {
				continue
			}
			checkedPods++
			if r[2] != want.owner || (want.node != "" && r[4] != want.node) {
				t.Errorf("pod %s: parent %s node %q, want parent %s node %q", r[1], r[2], r[4], want.owner, want.node)
			}
		case "endpointslices":
			if svc, ok := slices[r[1]]; ok {
				checkedSlices++
				if r[3] != svc {
					t.Errorf("endpointslice %s: parent %q, want Service %q", r[1], r[3], svc)
				}
			}
		}
	}
	if checkedPods != len(pods) || checkedPods == 0 {
		t.Errorf("checked %d of %d pods", checkedPods, len(pods))
	}
	if len(slices) > 0 && checkedSlices != len(slices) {
		t.Errorf("checked %d of %d EndpointSlices", checkedSlices, len(slices))
	}
}

// TestLinkedRowsInArchiveOrder: a linked batch's rows are already in the order parts are written
// in (archive.CompareSpans within each cluster's window), so writing them sorts nothing. Checked
// on the bundled recording and on generated traffic, each linked as one batch of many windows.
func TestLinkedRowsInArchiveOrder(t *testing.T) {
	audit, watches := recordingFiles(t)
	generated := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(generated, synth.Generate(benchConfig)[0].Audit, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string][]string{"recording": append([]string{audit}, watches...), "generated": {generated}} {
		batch := link.NewBatch(link.Config{Window: link.DefaultWindow})
		for i, f := range files {
			read := collect.ReadWatchFile
			if i == 0 {
				read = collect.ReadAuditFile
			}
			if _, err := read(f, collect.FileOptions{Cluster: "c"}, batchSink{batch}); err != nil {
				t.Fatal(err)
			}
		}
		rows, _ := batch.Spans()
		type group struct {
			cluster string
			window  time.Time
		}
		last := map[group]*archive.Span{}
		out := 0
		for i := range rows {
			r := &rows[i]
			g := group{r.Cluster, r.WindowStart}
			if prev := last[g]; prev != nil && archive.CompareSpans(prev, r) > 0 {
				out++
			}
			last[g] = r
		}
		if out > 0 || len(last) < 2 {
			t.Errorf("%s: %d of %d rows out of archive order (%d windows)", name, out, len(rows), len(last))
		}
	}
}
