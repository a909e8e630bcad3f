package main

// TestTraceFidelity is issue 27's "own fidelity test": it ingests the bundled recordings (at
// three audit levels), serves them, walks every root trace of the recording's time range in every
// display pipeline, and checks what a person reading the trace would be told against the truth
// read from the raw inputs (the RequestResponse audit log and the watch streams), parsed here
// with the standard library only. Nothing of kairn's own code computes an expected value.
//
// Run it alone (needs the DuckDB cgo build, cached; about a minute):
//
//	go test -count=1 -run TestTraceFidelity -v ./cmd/kairn/
//
// It logs a table of violations per category (the numbering 1–8) and recording, and the
// first few examples of each, and fails if any count is above zero.
//
// How each category is judged (all "truth" from raw files; "display" = what serve returned):
//
//  1. children before owners: every span with a CHILD_OF parent lies within [parent.start,
//     parent.end] (Jaeger's clock-skew rule), for every span of every pipeline; a CHILD_OF to a
//     span that is not in the trace counts too, and so does a log outside its span.
//  2. effects before causes: every observation (span or log) gets a key from the raw data: an
//     audited write the resourceVersion of its response body (a pods/binding the revision where
//     the pod's spec.nodeName was first set), a watched change its own resourceVersion, an Event
//     its own resourceVersion (only when Event and object revisions come from one etcd counter,
//     judged from the watch files: their resourceVersions never collide). Within one object
//     (the object the raw data says the observation is about), display order (time, then position)
//     must follow that key, the audited write before the change it produced. Two audited writes
//     received in one order and committed in the other (concurrent requests) are not counted.
//     An observation naming both a write (audit_id) and a revision shows the revision that write
//     produced. And no successful observation is displayed before the object's creation (its create
//     request's requestReceivedTimestamp, else creationTimestamp).
//  3. delete-requested: the change that first sets metadata.deletionTimestamp (raw watch) carries
//     the audit ID / user of the `delete` request whose response has that resourceVersion, and is
//     not displayed before that request was received.
//  4. every successful create of a persisted object (the response body has a uid; Events
//     excluded, see 6) is displayed on the object span of the uid it created, at every audit level
//     (truth from the RequestResponse log, which has the same audit IDs); no object span has an
//     empty name.
//  5. every audited write whose raw bodies name the uid it concerned (response metadata.uid, a
//     Status's details.uid, a Binding's metadata.uid) is displayed on that uid's object span, not
//     on another incarnation or object (the re-created StatefulSet pods are the case that
//     matters). Likewise a watched change (its revision names its uid) and an Event (its raw
//     involvedObject.uid) on another object's span.
//  6. search lists objects: no root of the search is an Event, has an empty name (a collection),
//     or has an empty kind.
//  7. readable: (a) every span's service is its object's kind (or cluster/kind), never a pipeline
//     name; (b) no span has a tag key twice; (c) the number of failed requests (raw code ≥ 400)
//     and Warning Events (raw type) shown with error=true equals the number shown, in every
//     pipeline (object spans' own error tags are not counted), and Jaeger's own error count (spans
//     with error=true) is the same in every pipeline; (d) fetching a trace twice, from the server
//     that searched and from a fresh one, gives identical JSON; (e) object span names are unique
//     within a trace; (f) an object has the same span name in tree, tracing and grouping; (g) an
//     audited write and its change are not shown as two separate spans (or two logs) with the
//     same audit_id; (h) an object's child objects come in the same order in every pipeline.
//  8. links: every Pod span whose raw revisions have spec.nodeName, and every EndpointSlice span
//     with a kubernetes.io/service-name label, has a reference to the target's object span (in
//     the same trace, or another trace id whose trace holds the target), or a tag whose value
//     names the target and carries such a trace id. Targets kairn never saw are not counted.
//
// Everything is judged on kairn's own HTTP JSON API. What Jaeger adds on its way to the UI (for
// one, the error tag it derives from an OTLP span status, which doubles an `error` attribute: the
// UI's "Duplicate tag" warning of issue 27) is only visible through a real Jaeger, in the e2e
// tests, not here.
//
// What cannot be judged from the inputs is not counted: the timeline pipeline's object of an
// observation (it is only in the span name) for 4 and 5; records without bodies (reads, failed
// requests, Metadata-only resources) for 5.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- truth from the raw inputs ----

type fidAudit struct {
	id, verb, resource, sub, ns, name, user string
	code                                    int
	received, completed                     time.Time
	uid                                     string // the object it concerned, from bodies ("" if unknown)
	rv                                      int64  // resourceVersion the write produced (0 if unknown)
}

type fidRev struct {
	rv         int64
	typ        string
	deletion   bool
	nodeName   string
	managedMax time.Time
}

type fidObject struct {
	uid, kind, ns, name string
	created             time.Time // creationTimestamp (whole seconds)
	createAudit         string    // auditID of the create that made it
	revs                []fidRev
	nodeName            string // any revision's spec.nodeName (pods)
	serviceName         string // kubernetes.io/service-name label (EndpointSlices)
}

type fidEvent struct {
	uid, typ, involved string
	rvs                map[int64]bool
}

type fidTruth struct {
	audits      map[string]*fidAudit
	objects     map[string]*fidObject // by uid
	events      map[string]*fidEvent  // by Event uid
	byName      map[string][]string   // kind/ns/name → uids
	writeOfRV   map[string]string     // uid/rv → auditID of the write that produced it
	sharedRV    bool                  // Event and object resourceVersions from one counter
	start, end  time.Time
	deleteAudit map[string]string // uid → auditID of the delete that set deletionTimestamp
	deleteRV    map[string]int64  // uid → first resourceVersion with deletionTimestamp
}

func fidParseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return v.UTC()
}

func fidRV(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }

func fidTruthOf(t *testing.T, auditPath string, watches []string) *fidTruth {
	tr := &fidTruth{audits: map[string]*fidAudit{}, objects: map[string]*fidObject{}, events: map[string]*fidEvent{},
		byName: map[string][]string{}, writeOfRV: map[string]string{}, deleteAudit: map[string]string{}, deleteRV: map[string]int64{}}
	// Watches: every revision of every object, kept as kubectl printed them.
	objRVs, evRVs := map[int64]bool{}, map[int64]bool{}
	for _, w := range watches {
		dec := json.NewDecoder(bytes.NewReader(gunzipFile(t, w)))
		for {
			var doc struct {
				Type   string `json:"type"`
				Object obj    `json:"object"`
			}
			if err := dec.Decode(&doc); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", w, err)
			}
			o := doc.Object
			uid, rv := getS(o, "metadata", "uid"), fidRV(getS(o, "metadata", "resourceVersion"))
			if getS(o, "kind") == "Event" {
				e := tr.events[uid]
				if e == nil {
					e = &fidEvent{uid: uid, rvs: map[int64]bool{}}
					tr.events[uid] = e
				}
				e.typ = getS(o, "type")
				e.involved = getS(o, "involvedObject", "uid")
				if e.involved == "" {
					e.involved = getS(o, "regarding", "uid") // events.k8s.io/v1
				}
				e.rvs[rv] = true
				evRVs[rv] = true
				continue
			}
			ob := tr.objects[uid]
			if ob == nil {
				ob = &fidObject{uid: uid, kind: getS(o, "kind"), ns: getS(o, "metadata", "namespace"), name: getS(o, "metadata", "name"),
					created: fidParseTime(getS(o, "metadata", "creationTimestamp"))}
				tr.objects[uid] = ob
				k := ob.kind + "/" + ob.ns + "/" + ob.name
				tr.byName[k] = append(tr.byName[k], uid)
			}
			r := fidRev{rv: rv, typ: doc.Type, deletion: getS(o, "metadata", "deletionTimestamp") != "", nodeName: getS(o, "spec", "nodeName")}
			ob.revs = append(ob.revs, r)
			if r.nodeName != "" {
				ob.nodeName = r.nodeName
			}
			if ob.kind == "EndpointSlice" {
				if s := getS(o, "metadata", "labels", "kubernetes.io/service-name"); s != "" {
					ob.serviceName = s
				}
			}
			objRVs[rv] = true
		}
	}
	tr.sharedRV = len(evRVs) > 0
	for rv := range evRVs {
		if objRVs[rv] {
			tr.sharedRV = false // two counters: Event and object revisions cannot be compared
			break
		}
	}
	for _, ob := range tr.objects {
		sort.Slice(ob.revs, func(i, j int) bool { return ob.revs[i].rv < ob.revs[j].rv })
	}
	// The full-body audit log: what each request was, and which object it concerned.
	for _, a := range auditLines(t, auditPath) {
		if st := getS(a, "stage"); st != "ResponseComplete" && st != "Panic" {
			continue
		}
		code, _ := get(a, "responseStatus", "code").(float64)
		au := &fidAudit{id: getS(a, "auditID"), verb: getS(a, "verb"), resource: getS(a, "objectRef", "resource"),
			sub: getS(a, "objectRef", "subresource"), ns: getS(a, "objectRef", "namespace"), name: getS(a, "objectRef", "name"),
			user: getS(a, "user", "username"), code: int(code),
			received: fidParseTime(getS(a, "requestReceivedTimestamp")), completed: fidParseTime(getS(a, "stageTimestamp"))}
		if tr.start.IsZero() || au.received.Before(tr.start) {
			tr.start = au.received
		}
		if au.completed.After(tr.end) {
			tr.end = au.completed
		}
		tr.audits[au.id] = au
		switch au.verb {
		case "create", "update", "patch", "delete":
		default:
			continue
		}
		ro := get(a, "responseObject")
		rk := getS(ro, "kind")
		switch {
		case rk == "Status":
			au.uid = getS(ro, "details", "uid")
		case rk != "" && !strings.HasSuffix(rk, "List"):
			au.uid = getS(ro, "metadata", "uid")
			au.rv = fidRV(getS(ro, "metadata", "resourceVersion"))
		}
		if au.uid == "" && au.sub == "binding" {
			au.uid = getS(a, "requestObject", "metadata", "uid") // the scheduler names the pod's uid
		}
		if au.uid == "" {
			au.uid = getS(a, "objectRef", "uid")
		}
		if au.code >= 300 {
			au.uid, au.rv = "", 0 // a failed write concerned no revision
		}
		if au.verb == "create" && au.sub == "" && au.uid != "" && rk != "Status" {
			if ob := tr.objects[au.uid]; ob != nil {
				ob.createAudit = au.id
			} else if au.resource != "events" {
				// created but never watched: still an object a trace must show
				ob = &fidObject{uid: au.uid, kind: rk, ns: getS(ro, "metadata", "namespace"), name: getS(ro, "metadata", "name"),
					created: fidParseTime(getS(ro, "metadata", "creationTimestamp")), createAudit: au.id}
				tr.objects[au.uid] = ob
				k := ob.kind + "/" + ob.ns + "/" + ob.name
				tr.byName[k] = append(tr.byName[k], au.uid)
			}
		}
	}
	// A binding produced the revision where spec.nodeName was first set.
	for _, au := range tr.audits {
		if au.sub == "binding" && au.uid != "" && au.code < 300 {
			if ob := tr.objects[au.uid]; ob != nil {
				for _, r := range ob.revs {
					if r.nodeName != "" {
						au.rv = r.rv
						break
					}
				}
			}
		}
		if au.uid != "" && au.rv != 0 {
			tr.writeOfRV[fmt.Sprint(au.uid, "/", au.rv)] = au.id
		}
	}
	// The delete that set deletionTimestamp: its response is the revision that first has it.
	for uid, ob := range tr.objects {
		for _, r := range ob.revs {
			if r.deletion {
				tr.deleteRV[uid] = r.rv
				if id := tr.writeOfRV[fmt.Sprint(uid, "/", r.rv)]; id != "" && tr.audits[id].verb == "delete" {
					tr.deleteAudit[uid] = id
				}
				break
			}
		}
	}
	return tr
}

// createdAt is the earliest a thing can have happened to the object.
func (tr *fidTruth) createdAt(uid string) time.Time {
	ob := tr.objects[uid]
	if ob == nil {
		return time.Time{}
	}
	if a := tr.audits[ob.createAudit]; a != nil {
		return a.received
	}
	return ob.created
}

// ---- the served traces ----

type fidLog struct {
	ts   int64
	tags map[string]string
}

type fidSpan struct {
	idx                int
	id, parent, name   string
	service            string
	start, dur         int64
	tags               map[string]string
	dupTags            []string
	refs               [][2]string // traceID, spanID of every reference
	logs               []fidLog
	object             *fidSpan // nearest object span (itself for an object span)
	isObject, isPseudo bool
}

type fidTrace struct {
	id, pipeline string
	raw          []byte
	spans        []*fidSpan
	byID         map[string]*fidSpan
	root         *fidSpan
}

func fidParse(t *testing.T, body []byte, pipeline string) []*fidTrace {
	var env struct {
		Data []struct {
			TraceID string `json:"traceID"`
			Spans   []struct {
				SpanID        string `json:"spanID"`
				OperationName string `json:"operationName"`
				References    []struct {
					RefType string `json:"refType"`
					TraceID string `json:"traceID"`
					SpanID  string `json:"spanID"`
				} `json:"references"`
				StartTime int64 `json:"startTime"`
				Duration  int64 `json:"duration"`
				Tags      []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
				Logs []struct {
					Timestamp int64 `json:"timestamp"`
					Fields    []struct {
						Key   string `json:"key"`
						Value any    `json:"value"`
					} `json:"fields"`
				} `json:"logs"`
				ProcessID string `json:"processID"`
				Process   *struct {
					ServiceName string `json:"serviceName"`
				} `json:"process"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("bad trace JSON: %v\n%.300s", err, body)
	}
	var out []*fidTrace
	for _, d := range env.Data {
		tr := &fidTrace{id: d.TraceID, pipeline: pipeline, byID: map[string]*fidSpan{}}
		for i, s := range d.Spans {
			sp := &fidSpan{idx: i, id: s.SpanID, name: s.OperationName, start: s.StartTime, dur: s.Duration, tags: map[string]string{}}
			if p, ok := d.Processes[s.ProcessID]; ok {
				sp.service = p.ServiceName
			}
			if s.Process != nil {
				sp.service = s.Process.ServiceName
			}
			for _, r := range s.References {
				sp.refs = append(sp.refs, [2]string{r.TraceID, r.SpanID})
				if r.RefType == "CHILD_OF" && sp.parent == "" && (r.TraceID == "" || r.TraceID == d.TraceID) {
					sp.parent = r.SpanID
				}
			}
			for _, tg := range s.Tags {
				v := fmt.Sprint(tg.Value)
				if prev, dup := sp.tags[tg.Key]; dup {
					if prev == v {
						sp.dupTags = append(sp.dupTags, tg.Key+"="+v)
					} else {
						sp.dupTags = append(sp.dupTags, tg.Key)
					}
				}
				sp.tags[tg.Key] = v
			}
			for _, l := range s.Logs {
				fl := fidLog{ts: l.Timestamp, tags: map[string]string{}}
				for _, f := range l.Fields {
					fl.tags[f.Key] = fmt.Sprint(f.Value)
				}
				sp.logs = append(sp.logs, fl)
			}
			sp.isObject = sp.tags["kairn.kind"] == "object"
			tr.spans = append(tr.spans, sp)
			tr.byID[sp.id] = sp
		}
		for _, sp := range tr.spans {
			for p, n := sp, 0; p != nil && n < 1000; p, n = tr.byID[p.parent], n+1 {
				if p.isObject {
					sp.object = p
					break
				}
				if p.parent == "" {
					break
				}
			}
			if sp.parent == "" && tr.root == nil {
				tr.root = sp
			}
		}
		out = append(out, tr)
	}
	return out
}

// fidObs is one observation as displayed: a span, or a log on a span (tracing).
type fidObs struct {
	tr    *fidTrace
	span  *fidSpan
	log   int // -1: the span itself
	time  int64
	order int
	tags  map[string]string
	name  string
}

func obsKind(tags map[string]string) string {
	switch k := tags["kairn.kind"]; k {
	case "audit", "event", "change":
		return k
	}
	if id := tags["observation_id"]; id != "" {
		return strings.SplitN(id, "/", 2)[0]
	}
	return ""
}

func (tr *fidTrace) observations() []*fidObs {
	var out []*fidObs
	n := 0
	for _, sp := range tr.spans {
		if !sp.isObject && obsKind(sp.tags) != "" {
			out = append(out, &fidObs{tr: tr, span: sp, log: -1, time: sp.start, order: n, tags: sp.tags, name: sp.name})
			n++
		}
		for i, l := range sp.logs {
			if obsKind(l.tags) != "" {
				out = append(out, &fidObs{tr: tr, span: sp, log: i, time: l.ts, order: n, tags: l.tags, name: l.tags["event"]})
				n++
			}
		}
	}
	return out
}

// objectUID is the uid of the object span the observation is displayed on ("" in timeline,
// where observations hang off the root whatever their object).
func (o *fidObs) objectUID() string {
	if o.tr.pipeline == "timeline" {
		return ""
	}
	if o.span.isObject {
		return o.span.tags["uid"]
	}
	if o.span.object != nil {
		return o.span.object.tags["uid"]
	}
	return ""
}

func (o *fidObs) String() string {
	s := fmt.Sprintf("%s %s %q @%s", o.tr.pipeline, o.tr.id, o.name, time.UnixMicro(o.time).UTC().Format("15:04:05.000000"))
	if o.span.object != nil {
		s += " on " + o.span.object.name
	}
	if rv := o.tags["resource_version"]; rv != "" {
		s += " rv=" + rv
	}
	return s
}

// ---- checks ----

var fidCategories = []string{
	"1 children before owners",
	"2 effects before causes",
	"3 delete-requested writer/time",
	"4 create not on its object / nameless",
	"5 record on wrong incarnation",
	"6 search lists non-objects",
	"7 readability",
	"8 links not rendered",
}

type fidResult struct {
	counts   [8]int
	labels   map[string]int      // "cat label" → count
	examples map[string][]string // "cat label" → the first few
}

// add counts one violation of category cat, of the kind label.
func (r *fidResult) add(cat int, label, format string, args ...any) {
	if r.labels == nil {
		r.labels, r.examples = map[string]int{}, map[string][]string{}
	}
	r.counts[cat-1]++
	k := fmt.Sprintf("%d %s", cat, label)
	r.labels[k]++
	if len(r.examples[k]) < 3 {
		r.examples[k] = append(r.examples[k], fmt.Sprintf(format, args...))
	}
}

// estimate records a miss of a join the archive marks as an estimate: shown in the table under
// its label, not counted as a violation.
func (r *fidResult) estimate(label, format string, args ...any) {
	if r.labels == nil {
		r.labels, r.examples = map[string]int{}, map[string][]string{}
	}
	k := "(estimate) " + label
	r.labels[k]++
	if len(r.examples[k]) < 3 {
		r.examples[k] = append(r.examples[k], fmt.Sprintf(format, args...))
	}
}

var fidPipelines = []string{"tracing", "tree", "timeline", "grouping"}

func fidIsPipeline(s string) bool {
	base := strings.TrimSpace(strings.SplitN(s, "[", 2)[0])
	for _, p := range fidPipelines {
		if base == p {
			return true
		}
	}
	return false
}

func maskPipeline(id string) string {
	if len(id) < 4 {
		return id
	}
	return id[:2] + id[4:]
}

// obsTruth: what the raw data says an observation is: its object, its key for ordering, and the
// exact time of the request behind it where there is one.
type obsFacts struct {
	uid        string
	rv         int64
	sub        int // 0 an audited write, 1 what it caused
	exact      time.Time
	failed     bool // a failed request or a Warning Event
	successful bool
	audit      *fidAudit
}

func (tr *fidTruth) facts(o *fidObs) obsFacts {
	var f obsFacts
	kind := obsKind(o.tags)
	oid := strings.Split(o.tags["observation_id"], "/")
	switch kind {
	case "audit":
		a := tr.audits[o.tags["audit_id"]]
		if a == nil && len(oid) > 1 {
			a = tr.audits[oid[1]]
		}
		if a == nil {
			return f
		}
		f.audit, f.uid, f.rv, f.exact, f.failed, f.successful = a, a.uid, a.rv, a.received, a.code >= 400, a.code < 400
	case "change":
		if len(oid) == 3 {
			f.uid, f.rv = oid[1], fidRV(oid[2])
		} else {
			f.uid, f.rv = o.objectUID(), fidRV(o.tags["resource_version"])
		}
		f.sub, f.successful = 1, true
		if id := tr.writeOfRV[fmt.Sprint(f.uid, "/", f.rv)]; id != "" {
			f.exact = tr.audits[id].received
		}
	case "event":
		if len(oid) == 3 {
			if e := tr.events[oid[1]]; e != nil {
				f.uid, f.failed = e.involved, e.typ == "Warning"
				if tr.sharedRV && e.rvs[fidRV(oid[2])] {
					f.rv = fidRV(oid[2])
				}
				if id := tr.writeOfRV[fmt.Sprint(oid[1], "/", oid[2])]; id != "" {
					f.exact = tr.audits[id].received // the Event's audited create or update
				}
			}
		}
		f.sub, f.successful = 1, true
	}
	return f
}

func fidCheck(t *testing.T, tr *fidTruth, traces map[string][]*fidTrace, twice map[string]bool, res *fidResult) {
	// 6: the search lists objects (every pipeline's search; a root counted once).
	seen6 := map[string]bool{}
	for _, p := range fidPipelines {
		for _, x := range traces[p] {
			r := x.root
			if r == nil || seen6[r.tags["uid"]+"/"+r.tags["namespace"]+"/"+r.tags["name"]+"/"+r.tags["resource"]] {
				continue
			}
			seen6[r.tags["uid"]+"/"+r.tags["namespace"]+"/"+r.tags["name"]+"/"+r.tags["resource"]] = true
			fidRoot(tr, x, res)
		}
	}
	fidCheckRest(t, tr, traces, twice, res, map[string]map[string]bool{})
}

// fidRoot judges one search result's root (category 6).
func fidRoot(tr *fidTruth, x *fidTrace, res *fidResult) {
	r := x.root
	res6 := ""
	switch {
	case r.tags["resource"] == "events" || r.tags["kind"] == "Event" || tr.events[r.tags["uid"]] != nil:
		res6 = "Event object"
	case r.tags["name"] == "":
		res6 = "nameless/collection"
	case r.tags["kind"] == "":
		res6 = "kindless"
	}
	if res6 != "" {
		res.add(6, res6, "%s root %q (%s)", res6, r.name, x.id)
	}
}

func fidCheckRest(t *testing.T, tr *fidTruth, traces map[string][]*fidTrace, twice map[string]bool, res *fidResult, traceOf map[string]map[string]bool) {
	// Where each object is displayed as a root's trace, per pipeline (for links).
	for _, p := range fidPipelines {
		for _, x := range traces[p] {
			for _, s := range x.spans {
				if s.isObject {
					if traceOf[s.tags["uid"]] == nil {
						traceOf[s.tags["uid"]] = map[string]bool{}
					}
					traceOf[s.tags["uid"]][maskPipeline(x.id)] = true
				}
			}
		}
	}
	onObject := map[string]map[string]map[string]bool{} // pipeline → audit ID → uids it is displayed on
	errCount := map[string]map[string][3]int{}          // root → pipeline → [observations flagged, failed shown, error spans]
	names := map[string]map[string]string{}             // uid → pipeline → span name
	siblings := map[string]map[string]string{}          // object → pipeline → its child objects in display order
	for _, p := range fidPipelines {
		onObject[p] = map[string]map[string]bool{}
		for _, x := range traces[p] {
			if !twice[x.pipeline+"/"+x.id] {
				res.add(7, "7d not deterministic", "%s %s: two fetches differ", p, x.id)
			}
			objNames := map[string]int{}
			for _, s := range x.spans {
				// 1
				if s.parent != "" {
					par := x.byID[s.parent]
					if par == nil {
						res.add(1, "parent missing", "%s %s: %q has a parent %s not in the trace", p, x.id, s.name, s.parent)
					} else if s.start < par.start || s.start+s.dur > par.start+par.dur {
						res.add(1, "outside parent", "%s %s: %q [%s +%dµs] outside its parent %q [%s +%dµs]", p, x.id, s.name,
							time.UnixMicro(s.start).UTC().Format("15:04:05.000000"), s.dur, par.name,
							time.UnixMicro(par.start).UTC().Format("15:04:05.000000"), par.dur)
					}
				}
				// 7a
				kind := ""
				if s.object != nil {
					kind = s.object.tags["kind"]
				}
				if p == "timeline" && !s.isObject {
					// timeline hangs every observation off the root: its object is the one the
					// raw data says it is about (unknown: only the pipeline-name rule applies)
					kind = ""
					if ob := tr.objects[tr.facts(&fidObs{tr: x, span: s, log: -1, tags: s.tags}).uid]; ob != nil {
						kind = ob.kind
					}
				}
				if fidIsPipeline(s.service) || (kind != "" && s.service != kind && !strings.HasSuffix(s.service, "/"+kind)) || s.service == "" {
					res.add(7, "7a service not the kind", "%s %s: span %q has service %q, its object's kind is %q", p, x.id, s.name, s.service, kind)
				}
				// 7b
				for _, k := range s.dupTags {
					lbl := "7b duplicate tag key"
					if strings.Contains(k, "=") {
						lbl = "7b duplicate tag key and value (Jaeger UI warns)"
					}
					res.add(7, lbl, "%s %s: span %q has tag %q twice", p, x.id, s.name, k)
				}
				if s.isObject {
					objNames[s.name]++
					if s.tags["name"] == "" {
						res.add(4, "nameless object span", "%s %s: object span %q without a name", p, x.id, s.name)
					}
					if p != "timeline" {
						u := s.tags["uid"]
						if names[u] == nil {
							names[u] = map[string]string{}
						}
						names[u][p] = s.name
					}
				}
			}
			// 1: a log outside its span's bar
			for _, s := range x.spans {
				for _, l := range s.logs {
					if l.ts < s.start || l.ts > s.start+s.dur {
						res.add(1, "log outside its span", "%s %s: log %q at %s outside %q [%s +%dµs]", p, x.id, l.tags["event"],
							time.UnixMicro(l.ts).UTC().Format("15:04:05.000000"), s.name, time.UnixMicro(s.start).UTC().Format("15:04:05.000000"), s.dur)
						break
					}
				}
			}
			// 7h: the order of an object's child objects, recorded for comparison across pipelines
			if p != "timeline" {
				kids := map[string][]*fidSpan{}
				for _, s := range x.spans {
					if s.isObject && s.parent != "" {
						if par := x.byID[s.parent]; par != nil && par.object != nil {
							k := par.object.tags["uid"] + "/" + par.object.tags["name"]
							kids[k] = append(kids[k], s)
						}
					}
				}
				for k, l := range kids {
					sort.SliceStable(l, func(i, j int) bool {
						if l[i].start != l[j].start {
							return l[i].start < l[j].start
						}
						return l[i].idx < l[j].idx
					})
					var seq []string
					for _, s := range l {
						seq = append(seq, s.tags["uid"]+"/"+s.tags["name"])
					}
					if siblings[k] == nil {
						siblings[k] = map[string]string{}
					}
					siblings[k][p] = strings.Join(seq, " ")
				}
			}
			// 7e
			for n, c := range objNames {
				if c > 1 {
					res.add(7, "7e object names repeat", "%s %s: %d object spans named %q", p, x.id, c, n)
				}
			}
			obs := x.observations()
			// 7g: an audited write and its change as two rows
			kinds := map[string]map[string]int{}
			flagged, failed := 0, 0
			byUID := map[string][]*fidObs{}
			for _, o := range obs {
				k := obsKind(o.tags)
				if id := o.tags["audit_id"]; id != "" {
					if kinds[id] == nil {
						kinds[id] = map[string]int{}
					}
					kinds[id][k]++
					if u := o.objectUID(); u != "" && k == "audit" {
						if onObject[p][id] == nil {
							onObject[p][id] = map[string]bool{}
						}
						onObject[p][id][u] = true
					}
				}
				f := tr.facts(o)
				if f.failed {
					failed++
				}
				if o.tags["error"] == "true" {
					flagged++
				}
				if f.uid != "" {
					byUID[f.uid] = append(byUID[f.uid], o)
				}
				// 2: the revision an observation shows is the one its write produced
				if a := tr.audits[o.tags["audit_id"]]; a != nil && a.rv != 0 {
					shown := fidRV(o.tags["resource_version"])
					if oid := strings.Split(o.tags["observation_id"], "/"); len(oid) == 3 && oid[0] == "change" {
						shown = fidRV(oid[2])
					}
					// A join by fit (Metadata and Request level: time and field manager, no body
					// names the revision) is documented as an estimate (docs/linking.md): its
					// misses are listed and counted, not failed. Joins that claim certainty
					// (resourceVersion, generateName) must be right.
					if shown != 0 && shown != a.rv && o.tags["audit_link"] == "fit" {
						res.estimate("2 fit join shows another write's revision",
							"%s: resourceVersion %d shown as caused by %s %s (%s), which produced %d",
							o, shown, a.verb, strings.TrimSuffix(a.resource+"/"+a.sub, "/"), a.id, a.rv)
					} else if shown != 0 && shown != a.rv {
						res.add(2, "revision linked to the wrong write", "%s: resourceVersion %d shown as caused by %s %s (%s), which produced %d",
							o, shown, a.verb, strings.TrimSuffix(a.resource+"/"+a.sub, "/"), a.id, a.rv)
					}
				}
				// 5: a watched change (its revision names its uid) and an Event (its raw
				// involvedObject.uid) on another object's span
				if u := o.objectUID(); u != "" && f.uid != "" && u != f.uid && (k == "change" || k == "event") {
					res.add(5, k+" on other uid", "%s: about %s, shown on %s", o, f.uid, u)
				}
			}
			for id, m := range kinds {
				if m["audit"] > 0 && m["change"] > 0 {
					res.add(7, "7g write and change as two rows", "%s %s: audit %s shown as %d audit + %d change rows", p, x.id, id, m["audit"], m["change"])
				}
			}
			errSpans := 0 // what Jaeger's UI counts as the trace's errors
			for _, s := range x.spans {
				if s.tags["error"] == "true" {
					errSpans++
				}
			}
			if x.root != nil {
				ru := x.root.tags["uid"] + "/" + x.root.tags["kind"] + "/" + x.root.tags["namespace"] + "/" + x.root.tags["name"]
				if errCount[ru] == nil {
					errCount[ru] = map[string][3]int{}
				}
				errCount[ru][p] = [3]int{flagged, failed, errSpans}
			}
			// 2, 3 per object of the raw data
			for uid, list := range byUID {
				sort.SliceStable(list, func(i, j int) bool {
					if list[i].time != list[j].time {
						return list[i].time < list[j].time
					}
					return list[i].order < list[j].order
				})
				created := tr.createdAt(uid)
				facts := make([]obsFacts, len(list))
				for i, o := range list {
					facts[i] = tr.facts(o)
				}
				for j, o := range list {
					fj := facts[j]
					if fj.successful && !created.IsZero() && o.time < created.UnixMicro() {
						res.add(2, "before creation", "%s: shown before its object's creation at %s", o, created.Format("15:04:05.000000"))
						continue
					}
					if fj.rv == 0 {
						continue
					}
					for i := 0; i < j; i++ {
						fi := facts[i]
						if fi.rv == 0 || (fi.rv < fj.rv) || (fi.rv == fj.rv && fi.sub <= fj.sub) {
							continue
						}
						if list[i].time == o.time && fi.rv == fj.rv {
							continue // one write and its change at one time
						}
						if !fi.exact.IsZero() && !fj.exact.IsZero() && !fi.exact.After(fj.exact) {
							continue // concurrent requests, shown in the order they were received
						}
						res.add(2, "out of resourceVersion order", "%s (rv %d) shown after %s (rv %d)", o, fj.rv, list[i], fi.rv)
						break
					}
				}
				// 3: whatever shows the revision that set deletionTimestamp (the change, the
				// delete's audit record, or one span for both) names the delete and is not early.
				if drv := tr.deleteRV[uid]; drv != 0 {
					del := tr.audits[tr.deleteAudit[uid]]
					var found []*fidObs
					for i, o := range list {
						if facts[i].rv == drv {
							found = append(found, o)
						}
					}
					shown := false // the object's own story is in this trace
					for _, s := range x.spans {
						shown = shown || (s.isObject && s.tags["uid"] == uid)
					}
					for _, o := range list {
						shown = shown || (p == "timeline" && obsKind(o.tags) == "change")
					}
					if del == nil || !shown {
						// no audited delete produced that revision (watch-only data), or only a
						// stray record of the object landed in this trace (4/5 count that)
					} else if len(found) == 0 {
						res.add(3, "not shown", "%s %s: nothing shows the revision that set deletionTimestamp on %s (rv %d)", p, x.id, uid, drv)
					} else {
						for _, o := range found {
							if id := o.tags["audit_id"]; (id != "" && id != del.id) || (id == "" && o.tags["user"] != del.user) {
								res.add(3, "wrong writer", "%s: attributed to %s/%s, but %s's delete (%s) set it", o, o.tags["user"], o.tags["audit_id"], del.user, del.id)
								break
							} else if o.time < del.received.UnixMicro() {
								res.add(3, "before the delete", "%s: shown before the delete request at %s", o, del.received.Format("15:04:05.000000"))
								break
							}
						}
					}
				}
			}
			// 8
			if p == "timeline" {
				continue
			}
			for _, s := range x.spans {
				if !s.isObject {
					continue
				}
				ob := tr.objects[s.tags["uid"]]
				if ob == nil {
					continue
				}
				var target *fidObject
				switch {
				case ob.kind == "Pod" && ob.nodeName != "":
					for _, u := range tr.byName["Node//"+ob.nodeName] {
						target = tr.objects[u]
					}
				case ob.kind == "EndpointSlice" && ob.serviceName != "":
					for _, u := range tr.byName["Service/"+ob.ns+"/"+ob.serviceName] {
						target = tr.objects[u]
					}
				}
				if target == nil || len(traceOf[target.uid]) == 0 {
					continue
				}
				// Nested under the target (an EndpointSlice its Service owns) is the relation shown.
				ok := false
				if ps := x.byID[s.parent]; ps != nil && ps.isObject && ps.tags["uid"] == target.uid {
					ok = true
				}
				for _, r := range s.refs {
					if ts := x.byID[r[1]]; (r[0] == "" || r[0] == x.id) && ts != nil && ts.isObject && ts.tags["uid"] == target.uid && r[1] != s.parent {
						ok = true
					}
					if r[0] != "" && r[0] != x.id && traceOf[target.uid][maskPipeline(r[0])] {
						ok = true
					}
				}
				named, traced := false, false // tags naming the target and carrying its trace id
				for _, v := range s.tags {
					named = named || strings.Contains(v, target.name)
					for id := range traceOf[target.uid] {
						traced = traced || containsTrace(v, id)
					}
				}
				ok = ok || (named && traced)
				if !ok {
					var got []string // what it does carry, to say why it does not lead there
					for _, r := range s.refs {
						if r[1] != s.parent {
							got = append(got, "ref "+r[0]+"/"+r[1])
						}
					}
					for k, v := range s.tags {
						if strings.HasPrefix(k, "link") {
							got = append(got, fmt.Sprintf("%s=%q", k, v))
						}
					}
					sort.Strings(got)
					want := keys(traceOf[target.uid])
					res.add(8, "no link", "%s %s: %q has no followable link to %s %s/%s (its trace: %v; the span has %v)", p, x.id, s.name,
						target.kind, target.ns, target.name, want, got)
				}
			}
		}
	}
	// 7c: the same, right, error count in every pipeline
	for ru, m := range errCount {
		ui := map[int][]string{}
		for _, p := range fidPipelines {
			c, ok := m[p]
			if !ok {
				continue
			}
			if c[0] != c[1] {
				res.add(7, "7c error marks ≠ failures shown", "%s trace of %s: %d observations marked error, %d failed requests/Warning events shown", p, ru, c[0], c[1])
			}
			ui[c[2]] = append(ui[c[2]], p)
		}
		if len(ui) > 1 {
			var parts []string
			for n, ps := range ui {
				parts = append(parts, fmt.Sprintf("%s: %d", strings.Join(ps, ","), n))
			}
			sort.Strings(parts)
			res.add(7, "7c error spans differ between pipelines", "trace of %s: error spans (Jaeger's error count) %s", ru, strings.Join(parts, "; "))
		}
	}
	// 7h: siblings in the same order in every pipeline
	for k, m := range siblings {
		if uniqueVals(m) > 1 {
			var ps []string
			for p, v := range m {
				ps = append(ps, p+": "+v)
			}
			sort.Strings(ps)
			res.add(7, "7h sibling order differs", "children of %s: %s", k, strings.Join(ps, " | "))
		}
	}
	// 7f: one naming rule
	for u, m := range names {
		if len(m) > 1 {
			var ns []string
			for p, n := range m {
				ns = append(ns, p+"="+strconvQuote(n))
			}
			sort.Strings(ns)
			if ns0 := uniqueVals(m); ns0 > 1 {
				res.add(7, "7f naming differs", "object %s named differently: %s", u, strings.Join(ns, " "))
			}
		}
	}
	// 4, 5: records on their objects (structure only: tree, tracing, grouping)
	for _, p := range []string{"tree", "tracing", "grouping"} {
		if len(traces[p]) == 0 {
			continue
		}
		for id, a := range tr.audits {
			if a.uid == "" || a.resource == "events" {
				continue
			}
			on := onObject[p][id]
			if a.verb == "create" && a.sub == "" && tr.objects[a.uid] != nil && tr.objects[a.uid].createAudit == id {
				if !on[a.uid] {
					lbl := "create not on its object"
					if len(on) == 0 {
						lbl = "create not shown"
					}
					res.add(4, lbl, "%s: create %s %s/%s (%s, by %s) not on the span of %s (on %v)", p, a.resource, a.ns, a.name, id, a.user, a.uid, keys(on))
				}
				continue
			}
			for u := range on {
				if u != a.uid {
					res.add(5, "other uid", "%s: %s %s %s/%s (%s) at %s shown on %s, it concerned %s", p, a.verb, a.resource, a.ns, a.name, id,
						a.received.Format("15:04:05.000000"), u, a.uid)
				}
			}
		}
	}
}

func containsTrace(v, id string) bool {
	for i := 0; i+32 <= len(v); i++ {
		if maskPipeline(strings.ToLower(v[i:i+32])) == id {
			return true
		}
	}
	return false
}

func strconvQuote(s string) string { return strconv.Quote(s) }

func uniqueVals(m map[string]string) int {
	u := map[string]bool{}
	for _, v := range m {
		u[v] = true
	}
	return len(u)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- audit-level variants of a recording ----

// requestLevel rewrites an audit log as if its policy were Request where it was RequestResponse:
// the request body is kept, the response body dropped.
func requestLevel(t testing.TB, path string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	enc := json.NewEncoder(zw)
	for _, a := range auditLines(t, path) {
		delete(a, "responseObject")
		if a["level"] == "RequestResponse" {
			a["level"] = "Request"
		}
		if err := enc.Encode(a); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	out := filepath.Join(t.TempDir(), "audit-request.log.gz")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func fidGet(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %d %.300s", u, resp.StatusCode, b)
	}
	return b, err
}

// fidWalk searches every pipeline over the whole range and fetches every root trace twice: from
// the server that answered the search, and from a second server on the same archive that has
// cached nothing (so an order that depends on map iteration or cache state shows).
func fidWalk(t *testing.T, base, base2 string, start, end time.Time) (map[string][]*fidTrace, map[string]bool) {
	traces := map[string][]*fidTrace{}
	twice := map[string]bool{}
	var mu sync.Mutex
	for _, p := range fidPipelines {
		q := url.Values{"service": {p}, "start": {fmt.Sprint(start.UnixMicro())}, "end": {fmt.Sprint(end.UnixMicro())}, "limit": {"100000"}}
		body, err := fidGet(base + "/api/traces?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		found := fidParse(t, body, p)
		if len(found) == 0 {
			t.Fatalf("search of %s found no traces", p)
		}
		fetched := make([]*fidTrace, len(found))
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for i, f := range found {
			wg.Add(1)
			sem <- struct{}{}
			go func(i int, id string) {
				defer wg.Done()
				defer func() { <-sem }()
				b1, err1 := fidGet(base + "/api/traces/" + id)
				b2, err2 := fidGet(base2 + "/api/traces/" + id)
				mu.Lock()
				defer mu.Unlock()
				if err1 != nil || err2 != nil {
					t.Errorf("fetch %s: %v %v", id, err1, err2)
					return
				}
				twice[p+"/"+id] = bytes.Equal(b1, b2)
				ts := fidParse(t, b1, p)
				if len(ts) == 1 {
					ts[0].raw = b1
					fetched[i] = ts[0]
				}
			}(i, f.id)
		}
		wg.Wait()
		for _, f := range fetched {
			if f != nil {
				traces[p] = append(traces[p], f)
			}
		}
	}
	return traces, twice
}

func TestTraceFidelity(t *testing.T) {
	recAudit, recWatches := recordingFiles(t)
	dsAudit, dsWatches := daemonsetFiles(t)
	type variant struct {
		name, audit string
		watches     []string
		truth       *fidTruth
	}
	recTruth := fidTruthOf(t, recAudit, recWatches)
	dsTruth := fidTruthOf(t, dsAudit, dsWatches)
	for _, tr := range []*fidTruth{recTruth, dsTruth} {
		// Events' resourceVersions come from the objects' etcd counter here (they never
		// collide), so category 2 orders Events among the object's revisions too.
		if !tr.sharedRV {
			t.Logf("Event and object resourceVersions collide: Events are left out of category 2's order")
		}
	}
	variants := []variant{
		{"recording/RequestResponse", recAudit, recWatches, recTruth},
		{"recording/Request", requestLevel(t, recAudit), recWatches, recTruth},
		{"recording/Metadata", stripBodies(t, recAudit), recWatches, recTruth},
		{"daemonset/RequestResponse", dsAudit, dsWatches, dsTruth},
		{"daemonset/Metadata", stripBodies(t, dsAudit), dsWatches, dsTruth},
	}
	results := make([]fidResult, len(variants))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for i, v := range variants {
		t.Run(strings.ReplaceAll(v.name, "/", "_"), func(t *testing.T) {
			dir := t.TempDir()
			kairn(t, ingestArgs(dir, v.audit, v.watches)...)
			kairn(t, "merge", "--archive", dir, "--open")
			_, httpAddr, _ := startServe(t, dir)
			_, httpAddr2, _ := startServe(t, dir)
			start := v.truth.start.Truncate(time.Hour)
			end := v.truth.end.Truncate(time.Hour).Add(time.Hour)
			traces, twice := fidWalk(t, "http://"+httpAddr, "http://"+httpAddr2, start, end)
			fidCheck(t, v.truth, traces, twice, &results[i])
			// The harness must see the story at all, or every count above is vacuous.
			for _, p := range fidPipelines {
				spans, objects, obs := 0, map[string]bool{}, 0
				for _, x := range traces[p] {
					spans += len(x.spans)
					obs += len(x.observations())
					for _, s := range x.spans {
						if s.isObject {
							objects[s.tags["uid"]] = true
						}
					}
				}
				t.Logf("%s: %d roots, %d spans, %d objects, %d observations", p, len(traces[p]), spans, len(objects), obs)
				if obs < len(v.truth.writeOfRV)/2 || (p != "timeline" && len(objects) < len(v.truth.objects)/4) {
					t.Errorf("%s: the walk saw %d observations and %d objects of the %d writes and %d objects in the raw data: the JSON's shape changed?",
						p, obs, len(objects), len(v.truth.writeOfRV), len(v.truth.objects))
				}
			}
		})
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n%-40s", "category")
	for _, v := range variants {
		fmt.Fprintf(&tbl, " %26s", v.name)
	}
	total := 0
	for c, name := range fidCategories {
		fmt.Fprintf(&tbl, "\n%-40s", name)
		for i := range variants {
			fmt.Fprintf(&tbl, " %26d", results[i].counts[c])
			total += results[i].counts[c]
		}
	}
	t.Log(tbl.String())
	all := map[string]bool{}
	for i := range variants {
		for k := range results[i].labels {
			all[k] = true
		}
	}
	lbls := keys(all)
	tbl.Reset()
	fmt.Fprintf(&tbl, "\nby kind:")
	for _, k := range lbls {
		fmt.Fprintf(&tbl, "\n%-40s", k)
		for i := range variants {
			fmt.Fprintf(&tbl, " %26d", results[i].labels[k])
		}
	}
	t.Log(tbl.String())
	for _, k := range lbls {
		for i, v := range variants {
			for _, e := range results[i].examples[k] {
				t.Logf("[%s] %s: %s", k, v.name, e)
			}
		}
	}
	for c, name := range fidCategories {
		n := 0
		for i := range variants {
			n += results[i].counts[c]
		}
		if n > 0 {
			t.Errorf("category %s: %d violations", name, n)
		}
	}
	_ = total
}

// ---- the checks themselves: a hand-made faithful trace passes, and each kind of lie is caught ----

type hmSpan struct {
	id, parent, name, service string
	start, dur                int64
	tags                      [][2]string
	refs                      [][2]string // traceID, spanID (besides CHILD_OF parent)
	logs                      []hmLog
}

type hmLog struct {
	ts     int64
	fields [][2]string
}

func hmJSON(traceID string, spans []*hmSpan) []byte {
	type kv struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	type ref struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	type span struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []ref  `json:"references"`
		StartTime     int64  `json:"startTime"`
		Duration      int64  `json:"duration"`
		Tags          []kv   `json:"tags"`
		Logs          []any  `json:"logs"`
		ProcessID     string `json:"processID"`
	}
	procs := map[string]map[string]string{}
	var out []span
	for _, s := range spans {
		sp := span{TraceID: traceID, SpanID: s.id, OperationName: s.name, StartTime: s.start, Duration: s.dur, ProcessID: "p-" + s.service}
		procs["p-"+s.service] = map[string]string{"serviceName": s.service}
		if s.parent != "" {
			sp.References = append(sp.References, ref{"CHILD_OF", traceID, s.parent})
		}
		for _, r := range s.refs {
			sp.References = append(sp.References, ref{"FOLLOWS_FROM", r[0], r[1]})
		}
		for _, t := range s.tags {
			sp.Tags = append(sp.Tags, kv{t[0], "string", t[1]})
		}
		for _, l := range s.logs {
			var fs []kv
			for _, f := range l.fields {
				fs = append(fs, kv{f[0], "string", f[1]})
			}
			sp.Logs = append(sp.Logs, map[string]any{"timestamp": l.ts, "fields": fs})
		}
		out = append(out, sp)
	}
	b, _ := json.Marshal(map[string]any{"data": []any{map[string]any{"traceID": traceID, "spans": out, "processes": procs}}})
	return b
}

func TestTraceFidelityChecks(t *testing.T) {
	T := time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return T.Add(time.Duration(n) * time.Millisecond) }
	us := func(n int) int64 { return ms(n).UnixMicro() }
	truth := func() *fidTruth {
		tr := &fidTruth{audits: map[string]*fidAudit{}, objects: map[string]*fidObject{}, events: map[string]*fidEvent{},
			byName: map[string][]string{}, writeOfRV: map[string]string{}, deleteAudit: map[string]string{}, deleteRV: map[string]int64{},
			sharedRV: true, start: T, end: ms(1000)}
		tr.objects["n1"] = &fidObject{uid: "n1", kind: "Node", name: "node-1", created: T.Add(-time.Hour)}
		tr.objects["u1"] = &fidObject{uid: "u1", kind: "Pod", ns: "ns", name: "p-1", created: ms(100).Truncate(time.Second), createAudit: "a1", nodeName: "node-1",
			revs: []fidRev{{rv: 10}, {rv: 11, nodeName: "node-1"}, {rv: 12, deletion: true}}}
		tr.byName["Node//node-1"], tr.byName["Pod/ns/p-1"] = []string{"n1"}, []string{"u1"}
		for _, a := range []*fidAudit{
			{id: "a1", verb: "create", resource: "pods", ns: "ns", name: "", user: "rs", code: 201, received: ms(100), uid: "u1", rv: 10},
			{id: "a2", verb: "create", resource: "pods", sub: "binding", ns: "ns", name: "p-1", user: "sched", code: 201, received: ms(200), uid: "u1", rv: 11},
			{id: "a3", verb: "delete", resource: "pods", ns: "ns", name: "p-1", user: "rs", code: 200, received: ms(300), uid: "u1", rv: 12},
			{id: "a4", verb: "get", resource: "pods", ns: "ns", name: "p-1", user: "x", code: 404, received: ms(60)},
		} {
			a.completed = a.received.Add(time.Millisecond)
			tr.audits[a.id] = a
			if a.rv != 0 {
				tr.writeOfRV[fmt.Sprint(a.uid, "/", a.rv)] = a.id
			}
		}
		tr.deleteRV["u1"], tr.deleteAudit["u1"] = 12, "a3"
		tr.events["e1"] = &fidEvent{uid: "e1", typ: "Warning", involved: "u1", rvs: map[int64]bool{13: true}}
		return tr
	}
	const nodeTrace, podTrace = "6c00aaaaaaaaaaaa01000000000001e0", "6c00bbbbbbbbbbbb01000000000001e0"
	obj := func(id, kind, ns, name, uid string, start, dur int64) *hmSpan {
		return &hmSpan{id: id, name: strings.TrimSpace(kind + " " + ns + "/" + name), service: kind, start: start, dur: dur,
			tags: [][2]string{{"kairn.kind", "object"}, {"kind", kind}, {"namespace", ns}, {"name", name}, {"uid", uid}}}
	}
	write := func(id, parent, kind, audit, user, rv string, at int) *hmSpan {
		return &hmSpan{id: id, parent: parent, name: "audit " + audit, service: kind, start: us(at), dur: 1000,
			tags: [][2]string{{"kairn.kind", "audit"}, {"audit_id", audit}, {"user", user}, {"resource_version", rv}, {"observation_id", "audit/" + audit + "/ResponseComplete"}}}
	}
	// scene builds the faithful story; mutate changes one thing in it.
	type scene struct {
		node, pod []*hmSpan
		extra     map[string][]*hmSpan // more root traces
		twice     bool
		tweak     func(pipeline string, spans []*hmSpan) // one pipeline's copy only
	}
	faithful := func() *scene {
		pod := obj("p", "Pod", "ns", "p-1", "u1", us(50), 400_000)
		pod.tags = append(pod.tags, [2]string{"link.node", "Node node-1 " + nodeTrace})
		ev := &hmSpan{id: "e", parent: "p", name: "event Failed", service: "Pod", start: us(350), dur: 0,
			tags: [][2]string{{"kairn.kind", "event"}, {"observation_id", "event/e1/13"}, {"error", "true"}}}
		get := write("g", "p", "Pod", "a4", "x", "", 60)
		get.tags = append(get.tags, [2]string{"error", "true"})
		return &scene{
			node: []*hmSpan{obj("n", "Node", "", "node-1", "n1", us(0), 1_000_000)},
			pod: []*hmSpan{pod, get, write("w1", "p", "Pod", "a1", "rs", "10", 100), write("w2", "p", "Pod", "a2", "sched", "11", 200),
				write("w3", "p", "Pod", "a3", "rs", "12", 300), ev},
			extra: map[string][]*hmSpan{}, twice: true,
		}
	}
	find := func(spans []*hmSpan, id string) *hmSpan {
		for _, s := range spans {
			if s.id == id {
				return s
			}
		}
		t.Fatalf("no span %s", id)
		return nil
	}
	run := func(sc *scene) *fidResult {
		traces := map[string][]*fidTrace{}
		twice := map[string]bool{}
		for _, p := range []string{"tracing", "tree"} {
			nib := map[string]string{"tracing": "03", "tree": "01"}[p]
			add := func(id string, spans []*hmSpan) {
				id = id[:2] + nib + id[4:]
				var cp []*hmSpan
				for _, s := range spans {
					c := *s
					c.tags = append([][2]string(nil), s.tags...)
					cp = append(cp, &c)
				}
				spans = cp
				if sc.tweak != nil {
					sc.tweak(p, spans)
				}
				traces[p] = append(traces[p], fidParse(t, hmJSON(id, spans), p)...)
				twice[p+"/"+id] = sc.twice
			}
			add(nodeTrace, sc.node)
			add(podTrace, sc.pod)
			for id, spans := range sc.extra {
				add(id, spans)
			}
		}
		res := &fidResult{}
		fidCheck(t, truth(), traces, twice, res)
		return res
	}
	if res := run(faithful()); res.counts != [8]int{} {
		t.Fatalf("a faithful trace is reported: %v %v", res.labels, res.examples)
	}
	for _, c := range []struct {
		cat    int
		label  string
		mutate func(sc *scene)
	}{
		{1, "outside parent", func(sc *scene) { find(sc.pod, "w1").start = us(40) }},
		{2, "out of resourceVersion order", func(sc *scene) { find(sc.pod, "e").start = us(250) }},
		{2, "before creation", func(sc *scene) { find(sc.pod, "w2").start = us(90) }},
		{3, "wrong writer", func(sc *scene) {
			sc.pod = append(sc.pod, &hmSpan{id: "c", parent: "p", name: "change delete-requested", service: "Pod", start: us(300), dur: 1,
				tags: [][2]string{{"kairn.kind", "change"}, {"observation_id", "change/u1/12"}, {"user", "kwok"}, {"audit_id", "a9"}}})
		}},
		{3, "before the delete", func(sc *scene) {
			sc.pod = append(sc.pod, &hmSpan{id: "c", parent: "p", name: "change delete-requested", service: "Pod", start: us(280), dur: 1,
				tags: [][2]string{{"kairn.kind", "change"}, {"observation_id", "change/u1/12"}, {"user", "rs"}, {"audit_id", "a3"}}})
		}},
		{4, "create not shown", func(sc *scene) {
			w := find(sc.pod, "w1")
			w.id, w.parent = "w1x", "x"
			sc.extra["6c00cccccccccccc01000000000001e0"] = []*hmSpan{obj("x", "Pod", "ns", "", "", us(100), 2000), w}
			sc.pod = append(sc.pod[:2], sc.pod[3:]...)
		}},
		{4, "nameless object span", func(sc *scene) {
			sc.extra["6c00cccccccccccc01000000000001e0"] = []*hmSpan{obj("x", "Pod", "ns", "", "", us(100), 2000)}
		}},
		{5, "other uid", func(sc *scene) {
			w := find(sc.pod, "w3")
			w.parent = "n"
			sc.node = append(sc.node, w)
			sc.pod = sc.pod[:4]
			sc.pod = append(sc.pod, find(faithful().pod, "e"))
		}},
		{6, "Event object", func(sc *scene) {
			o := obj("x", "Event", "ns", "p-1.123", "e1", us(100), 2000)
			o.tags = append(o.tags, [2]string{"resource", "events"})
			sc.extra["6c00cccccccccccc01000000000001e0"] = []*hmSpan{o}
		}},
		{6, "kindless", func(sc *scene) {
			sc.extra["6c00cccccccccccc01000000000001e0"] = []*hmSpan{obj("x", "", "ns", "sa", "s1", us(100), 2000)}
		}},
		{7, "7a service not the kind", func(sc *scene) { find(sc.pod, "w2").service = "tree" }},
		{7, "7b duplicate tag key and value (Jaeger UI warns)", func(sc *scene) {
			g := find(sc.pod, "g")
			g.tags = append(g.tags, [2]string{"error", "true"})
		}},
		{7, "7c error marks ≠ failures shown", func(sc *scene) {
			g := find(sc.pod, "g")
			g.tags = g.tags[:len(g.tags)-1]
		}},
		{7, "7d not deterministic", func(sc *scene) { sc.twice = false }},
		{7, "7e object names repeat", func(sc *scene) {
			sc.pod = append(sc.pod, obj("p2", "Pod", "ns", "p-1", "u2", us(100), 1000))
			sc.pod[len(sc.pod)-1].parent = "p"
		}},
		{7, "7g write and change as two rows", func(sc *scene) {
			sc.pod = append(sc.pod, &hmSpan{id: "c", parent: "p", name: "change create", service: "Pod", start: us(100), dur: 1,
				tags: [][2]string{{"kairn.kind", "change"}, {"observation_id", "change/u1/10"}, {"user", "rs"}, {"audit_id", "a1"}}})
		}},
		{8, "no link", func(sc *scene) { p := find(sc.pod, "p"); p.tags = p.tags[:len(p.tags)-1] }},
		{8, "no link", func(sc *scene) { // a reference to a trace that is not the target's
			p := find(sc.pod, "p")
			p.tags = p.tags[:len(p.tags)-1]
			p.refs = [][2]string{{"6c00dddddddddddd01000000000001e0", "n"}}
		}},
		{1, "log outside its span", func(sc *scene) {
			find(sc.pod, "p").logs = []hmLog{{ts: us(900), fields: [][2]string{{"event", "change update"}}}}
		}},
		{2, "revision linked to the wrong write", func(sc *scene) {
			sc.pod = append(sc.pod, &hmSpan{id: "c", parent: "p", name: "change update", service: "Pod", start: us(200), dur: 1,
				tags: [][2]string{{"kairn.kind", "change"}, {"observation_id", "change/u1/11"}, {"audit_id", "a1"}}})
		}},
		{5, "change on other uid", func(sc *scene) {
			sc.node = append(sc.node, &hmSpan{id: "c", parent: "n", name: "change update", service: "Node", start: us(500), dur: 1,
				tags: [][2]string{{"kairn.kind", "change"}, {"observation_id", "change/u1/11"}}})
		}},
		{5, "event on other uid", func(sc *scene) {
			e := find(sc.pod, "e")
			e.parent = "n"
			sc.node = append(sc.node, e)
			sc.pod = sc.pod[:5]
		}},
		{6, "nameless/collection", func(sc *scene) {
			sc.extra["6c00cccccccccccc01000000000001e0"] = []*hmSpan{obj("x", "Pod", "ns", "", "", us(100), 2000)}
		}},
		{7, "7b duplicate tag key", func(sc *scene) {
			w := find(sc.pod, "w3")
			w.tags = append(w.tags, [2]string{"diff", "a: 1 → 2"}, [2]string{"diff", "b: 1 → 2"})
		}},
		{7, "7c error spans differ between pipelines", func(sc *scene) {
			sc.tweak = func(p string, spans []*hmSpan) {
				if p == "tracing" && len(spans) > 1 {
					spans[len(spans)-1].tags = append(spans[len(spans)-1].tags, [2]string{"extra", "x"})
					for _, s := range spans {
						if s.id == "g" { // the failed get as a log, not an error span
							s.tags = s.tags[:len(s.tags)-1]
							s.tags = append(s.tags, [2]string{"kairn.kind", "x"})
						}
					}
				}
			}
		}},
		{7, "7f naming differs", func(sc *scene) {
			sc.tweak = func(p string, spans []*hmSpan) {
				if p == "tree" && spans[0].id == "p" {
					spans[0].name = "Pod …-1"
				}
			}
		}},
		{7, "7h sibling order differs", func(sc *scene) {
			sc.pod = append(sc.pod, obj("q1", "Pod", "ns", "q-1", "q1", us(100), 1000), obj("q2", "Pod", "ns", "q-2", "q2", us(100), 1000))
			sc.pod[len(sc.pod)-1].parent, sc.pod[len(sc.pod)-2].parent = "p", "p"
			sc.tweak = func(p string, spans []*hmSpan) {
				if p == "tree" && spans[0].id == "p" {
					n := len(spans)
					spans[n-1], spans[n-2] = spans[n-2], spans[n-1]
				}
			}
		}},
	} {
		sc := faithful()
		c.mutate(sc)
		res := run(sc)
		if res.labels[fmt.Sprintf("%d %s", c.cat, c.label)] == 0 {
			t.Errorf("category %d %q not caught: %v", c.cat, c.label, res.labels)
		}
	}
}
