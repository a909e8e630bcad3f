package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// With 1-minute windows every rollout's chain (write → ReplicaSet → pods → pulls → status)
// crosses window boundaries. After merge the report is still exact, and each object's story is
// one lifecycle in the object index.
func TestMergeAcrossWindowBoundaries(t *testing.T) {
	audit, watches := recordingFiles(t)
	truth := groundTruth(t, audit, watches)
	dir := t.TempDir()
	kairn(t, append(ingestArgs(dir, audit, watches), "--window", "1m")...)
	kairn(t, "merge", "--quiet", "--archive", dir, "--window", "1m", "--grace", "0s")

	windows := kairn(t, "sql", "--archive", dir, "--format", "csv", `SELECT count(DISTINCT window_start) FROM spans`)
	if n := strings.TrimSpace(strings.Split(windows, "\n")[1]); n < "3" {
		t.Fatalf("the recording covers %s one-minute windows; want several", n)
	}
	// At least one rollout's pods are created in a later window than the write that started it.
	straddle := kairn(t, "sql", "--archive", dir, "--format", "csv", `
		SELECT count(*) FROM spans d JOIN spans p ON p.kind = 'change' AND p.resource = 'replicasets' AND p.verb = 'create'
		    AND p.parent_uid = d.uid AND p.window_start > d.window_start
		WHERE d.kind = 'change' AND d.resource = 'deployments' AND d.verb <> 'create'`)
	if strings.TrimSpace(strings.Split(straddle, "\n")[1]) == "0" {
		t.Log("no ReplicaSet creation fell in a later window than its Deployment write (timing of this recording)")
	}
	compareToTruth(t, truth, parseReport(t, kairn(t, "report", "rollout-first-pull", "--archive", dir, "--format", "csv")), time.Microsecond)

	// Each Deployment is one object with one lifecycle: created when the audit log says, and
	// seen in a sorted list of distinct windows, all within its first and last sighting.
	created := map[string]time.Time{}
	for _, a := range auditLines(t, audit) {
		if getS(a, "stage") == "ResponseComplete" && getS(a, "verb") == "create" && getS(a, "objectRef", "resource") == "deployments" && getS(a, "objectRef", "subresource") == "" {
			if code, _ := get(a, "responseStatus", "code").(float64); code == 201 {
				created[getS(a, "objectRef", "namespace")+"/"+getS(a, "objectRef", "name")] = getT(t, a, "requestReceivedTimestamp")
			}
		}
	}
	out := kairn(t, "sql", "--archive", dir, "--format", "csv", `
		SELECT namespace || '/' || name, count(*) OVER (PARTITION BY namespace, name), created_at, len(windows),
		       len(list_distinct(windows)) = len(windows) AND list_sort(windows) = windows
		         AND date_trunc('minute', first_seen) = windows[1] AND date_trunc('minute', last_seen) = windows[-1]
		FROM objects WHERE resource = 'deployments' AND uid IS NOT NULL`)
	recs, _ := csv.NewReader(strings.NewReader(out)).ReadAll()
	if len(recs)-1 != len(created) {
		t.Fatalf("objects has %d Deployments, the audit log created %d:\n%s", len(recs)-1, len(created), out)
	}
	multi := 0
	for _, r := range recs[1:] {
		want, ok := created[r[0]]
		at, _ := time.Parse(time.RFC3339Nano, r[2])
		if !ok || r[1] != "1" || !at.Equal(want) {
			t.Errorf("%s: %s lifecycle rows, created %s, want one row created %s", r[0], r[1], r[2], want)
		}
		if r[4] != "true" {
			t.Errorf("%s: windows do not make one lifecycle: %v", r[0], r)
		}
		if r[3] != "1" {
			multi++
		}
	}
	if multi == 0 {
		t.Error("no Deployment's story crosses a window boundary: the test proves nothing")
	}
}

// shuffledCopy writes the records of a recording file in a random order: audit lines, or the
// values of a watch stream one per line.
func shuffledCopy(t *testing.T, path string, rng *rand.Rand) string {
	var values [][]byte
	if strings.Contains(path, "audit") {
		sc := bufio.NewScanner(bytes.NewReader(gunzipFile(t, path)))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			values = append(values, bytes.Clone(sc.Bytes()))
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(gunzipFile(t, path)))
		for {
			var v json.RawMessage
			if err := dec.Decode(&v); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			values = append(values, v)
		}
	}
	rng.Shuffle(len(values), func(i, j int) { values[i], values[j] = values[j], values[i] })
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, v := range values {
		zw.Write(append(v, '\n'))
	}
	zw.Close()
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// The same inputs, shuffled and split over several writers that each see only part of the
// story, give the same answers once merged.
func TestMergeArrivalOrderDoesNotMatter(t *testing.T) {
	audit, watches := recordingFiles(t)
	answers := func(dir string) map[string]string {
		kairn(t, "merge", "--quiet", "--archive", dir, "--open")
		out := map[string]string{}
		for _, r := range []string{"rollout-first-pull", "conflicts"} {
			out[r] = kairn(t, "report", r, "--archive", dir, "--format", "csv")
		}
		out["counts"] = kairn(t, "sql", "--archive", dir, "--format", "csv",
			`SELECT kind, resource, count(*), count(DISTINCT observation_id), count(DISTINCT span_id) FROM spans GROUP BY ALL ORDER BY ALL`)
		out["changes"] = kairn(t, "sql", "--archive", dir, "--format", "csv",
			`SELECT observation_id, start_time, time_source, user, audit_id, verb, prev_resource_version, changes FROM spans WHERE kind = 'change' ORDER BY ALL`)
		out["events"] = kairn(t, "sql", "--archive", dir, "--format", "csv",
			`SELECT observation_id, start_time, time_source, parent_span_id, trace_id FROM spans WHERE kind = 'event' ORDER BY ALL`)
		out["tree"] = kairn(t, "sql", "--archive", dir, "--format", "csv",
			`SELECT span_id, parent_span_id, trace_id, parent_relation, links FROM spans WHERE kind = 'object' ORDER BY ALL`)
		return out
	}
	straight := t.TempDir()
	kairn(t, ingestArgs(straight, audit, watches)...)
	want := answers(straight)

	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		dir := t.TempDir()
		files := append([]string{audit}, watches...)
		rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		// Writers: the audit log alone, and the watch streams split in two groups.
		var groups [3][]string
		for i, f := range files {
			groups[i%3] = append(groups[i%3], shuffledCopy(t, f, rng))
		}
		for _, g := range groups {
			args := []string{"ingest", "--quiet", "--cluster", "rec", "--archive", dir}
			for _, f := range g {
				flag := "--watch"
				if strings.Contains(filepath.Base(f), "audit") {
					flag = "--audit"
				}
				args = append(args, flag, f)
			}
			kairn(t, args...)
		}
		got := answers(dir)
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("seed %d: %s differs after a shuffled, split ingest and merge:\n%s", seed, k, firstDiff(got[k], want[k]))
			}
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + itoa(i) + ":\n got  " + a + "\n want " + b + "\n(" + itoa(len(g)) + " vs " + itoa(len(w)) + " lines)"
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestMergeRetention(t *testing.T) {
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	kairn(t, append(ingestArgs(dir, audit, watches), "--window", "1m")...)
	before := kairn(t, "sql", "--archive", dir, "--format", "csv", `SELECT count(DISTINCT window_start) FROM spans`)
	// The recording is minutes old: a retention of a century keeps everything, one of a second
	// deletes everything.
	kairn(t, "merge", "--quiet", "--archive", dir, "--window", "1m", "--grace", "0s", "--retain", "36500d")
	if got := kairn(t, "sql", "--archive", dir, "--format", "csv", `SELECT count(DISTINCT window_start) FROM spans`); got != before {
		t.Errorf("--retain 36500d changed the archive: %s → %s", before, got)
	}
	kairn(t, "merge", "--quiet", "--archive", dir, "--window", "1m", "--retain", "1s")
	if got := kairn(t, "sql", "--archive", dir, "--format", "csv", `SELECT count(*) FROM spans`); strings.TrimSpace(got) != "count_star()\n0" {
		t.Errorf("--retain 1s left rows: %s", got)
	}
}

func TestMergeEveryStaysUpWithMetrics(t *testing.T) {
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"merge", "--archive", dir, "--every", "200ms", "--metrics-addr", addr, "--log-format", "json"}, io.Discard, &stderr)
	}()
	var metrics string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if metrics = string(b); strings.Contains(metrics, `kairn_merge_runs_total{result="success"} 2`) {
				break
			}
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(metrics, `kairn_merge_runs_total{result="success"} 2`) || !strings.Contains(metrics, "kairn_merge_last_success_timestamp_seconds") {
		t.Fatalf("metrics:\n%s", metrics)
	}
	// The first pass merged every (closed) partition; the second found nothing new.
	manifests, _ := filepath.Glob(filepath.Join(dir, "spans", "*", "*", "_manifest.json"))
	partitions, _ := filepath.Glob(filepath.Join(dir, "spans", "*", "*"))
	if len(manifests) == 0 || len(manifests) != len(partitions) {
		t.Errorf("%d manifests for %d partitions", len(manifests), len(partitions))
	}
	if !strings.Contains(stderr.String(), `"msg":"merge pass done"`) {
		t.Errorf("no JSON log lines:\n%s", stderr.String())
	}
}

// The deployment the Helm chart makes: the leader's watches in one writer, the audit webhook's
// batches split over two replicas (blocks of 20 events, alternately). Once merged, every library
// report answers as one writer does.
func TestMergeWatchLeaderAndWebhookReplicas(t *testing.T) {
	audit, watches := recordingFiles(t)
	straight := t.TempDir()
	kairn(t, ingestArgs(straight, audit, watches)...)
	kairn(t, "merge", "--quiet", "--archive", straight, "--open")

	var halves [2]bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(gunzipFile(t, audit)))
	sc.Buffer(nil, 64<<20)
	for i := 0; sc.Scan(); i++ {
		halves[(i/20)%2].Write(append(sc.Bytes(), '\n'))
	}
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, "", watches)...)
	for i := range halves {
		p := filepath.Join(t.TempDir(), "audit-replica-"+strconv.Itoa(i)+".log")
		os.WriteFile(p, halves[i].Bytes(), 0o644)
		kairn(t, ingestArgs(dir, p, nil)...)
	}
	kairn(t, "merge", "--quiet", "--archive", dir, "--open")
	for _, r := range strings.Fields(reportNames(t)) {
		got, want := kairn(t, "report", r, "--archive", dir, "--format", "csv"), kairn(t, "report", r, "--archive", straight, "--format", "csv")
		if got != want {
			t.Errorf("report %s differs from one writer:\n%s", r, firstDiff(got, want))
		}
	}
}

func reportNames(t *testing.T) string {
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(kairn(t, "report", "--list")), "\n") {
		names = append(names, strings.Fields(l)[0])
	}
	return strings.Join(names, " ")
}

// Before a merge, a window written by several writers holds copies of the same spans; the view
// `spans` keeps one of each, so reports over open windows do not count twice.
func TestSpansViewKeepsOneCopyBeforeMerge(t *testing.T) {
	audit, watches := recordingFiles(t)
	one := t.TempDir()
	kairn(t, ingestArgs(one, audit, watches)...)
	two := t.TempDir()
	kairn(t, ingestArgs(two, audit, watches)...)
	kairn(t, ingestArgs(two, audit, nil)...) // a second writer: the audit log's spans again, other parts
	parts, _ := filepath.Glob(filepath.Join(two, "spans", "*", "*", "*.parquet"))
	onesParts, _ := filepath.Glob(filepath.Join(one, "spans", "*", "*", "*.parquet"))
	if len(parts) <= len(onesParts) {
		t.Fatalf("the second writer added no parts (%d vs %d)", len(parts), len(onesParts))
	}
	counts := `SELECT kind, count(*), count(DISTINCT span_id) FROM spans GROUP BY ALL ORDER BY ALL`
	// Observations compare with one writer; object spans do not yet (a writer that saw an object
	// only by name has its own object span until merge gives it the uid).
	facts := `SELECT kind, count(*) FROM spans WHERE kind <> 'object' GROUP BY ALL ORDER BY ALL`
	got := kairn(t, "sql", "--archive", two, "--format", "csv", "-c", counts)
	for _, line := range strings.Split(strings.TrimSpace(got), "\n")[1:] {
		f := strings.Split(line, ",")
		if f[1] != f[2] {
			t.Errorf("%s spans: %s rows for %s span ids", f[0], f[1], f[2])
		}
	}
	if got, want := kairn(t, "sql", "--archive", two, "--format", "csv", "-c", facts), kairn(t, "sql", "--archive", one, "--format", "csv", "-c", facts); got != want {
		t.Errorf("observations with two writers:\n%s\nwith one:\n%s", got, want)
	}
	if got, want := kairn(t, "report", "rollout-first-pull", "--archive", two, "--format", "csv"),
		kairn(t, "report", "rollout-first-pull", "--archive", one, "--format", "csv"); got != want {
		t.Errorf("rollout-first-pull before merge, two writers:\n%s", firstDiff(got, want))
	}
}
