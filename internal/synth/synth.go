// Package synth generates synthetic control-plane traffic shaped on kairn's recordings of a real
// control plane (testdata/recording, testdata/daemonset; the numbers are in shape.go): audit
// events as the apiserver logs them (JSON lines, or webhook EventList bodies) and the watch
// streams of the same objects and Events. Deployments are created and rolled out (image
// changes) through the real controller chain — Deployment → ReplicaSet → Pods → binding →
// kubelet Events → status updates → old pods deleted — with the user agents, Event reasons,
// object bodies (managedFields included) and 409 conflicts the recordings show, and
// Metadata-level background traffic (gets, lists, watches, writes outside the workload chain)
// in the recordings' proportion. It scales by objects, rollouts, rate, clusters and duration, and
// is deterministic: the same Config gives the same bytes. It knows its ground truth (Rollouts).
package synth

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Config scales the traffic. Zero fields take the defaults in brackets.
type Config struct {
	Seed        uint64
	Clusters    int           // [1] clusters, named c0, c1, …; each gets its own stream
	Namespaces  int           // [4] per cluster
	Deployments int           // [8] per cluster, spread over the namespaces
	Replicas    int           // [2] pods per Deployment
	Rollouts    int           // [2] image rollouts per Deployment after its creation
	Nodes       int           // [2] per cluster
	Start       time.Time     // [2026-11-24T06:00:00Z]
	Duration    time.Duration // [10m] the span the rollouts are spread over
	// MetadataPerBody is the Metadata-level events per RequestResponse event [shape.go's
	// MetadataPerBody, from the recordings]; negative: none.
	MetadataPerBody float64
	// EventsPerSecond, when set, adds Metadata-level events until the stream has at least this
	// rate (per cluster) over Duration.
	EventsPerSecond float64
	// EventList > 0 writes the audit stream as webhook EventList bodies of that many events,
	// one per line, instead of one Event per line.
	EventList int
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Clusters, 1)
	def(&c.Namespaces, 4)
	def(&c.Deployments, 8)
	def(&c.Replicas, 2)
	def(&c.Nodes, 2)
	if c.Rollouts < 0 {
		c.Rollouts = 0
	} else if c.Rollouts == 0 {
		c.Rollouts = 2
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Minute
	}
	if c.MetadataPerBody == 0 {
		c.MetadataPerBody = MetadataPerBody
	}
	return c
}

// Rollout is one rollout the generator made: what `kairn report rollout-first-pull` should find.
type Rollout struct {
	Cluster, Namespace, Kind, Name string
	UpgradeAt                      time.Time // the audited write's requestReceivedTimestamp
	FirstPullAt                    time.Time // the first Pulling Event's audited creation
}

// Cluster is one cluster's traffic.
type Cluster struct {
	Name       string
	Audit      []byte            // audit.k8s.io/v1 Events, one JSON document per line
	Watch      map[string][]byte // resource → `kubectl get R -A --watch --output-watch-events -o json`
	Rollouts   []Rollout         // rollouts (not creations), in time order
	Events     int               // audit events in Audit
	BodyEvents int               // of them at RequestResponse level
	Objects    int               // distinct objects written (Deployments, ReplicaSets, Pods, Events)
}

// Generate makes every cluster's traffic.
func Generate(cfg Config) []Cluster {
	cfg = cfg.withDefaults()
	out := make([]Cluster, cfg.Clusters)
	for i := range out {
		out[i] = generateCluster(cfg, i)
	}
	return out
}

type line struct {
	t   time.Time
	seq int
	b   []byte
}

type gen struct {
	cfg      Config
	rng      *rand.Rand
	cluster  string
	rv       int
	seq      int
	audit    []line
	watch    map[string][]line
	bodies   int
	objects  int
	rollouts []Rollout
}

type deployment struct {
	ns, name, uid, app string
	body               map[string]any
	version            int // index into the image's version list
	revision           int
	rs                 *replicaSet
	replicas           int
	container, repo    string
	versions           []string
}

type replicaSet struct {
	name, uid string
	body      map[string]any
	pods      []*pod
}

type pod struct {
	name, uid, node, ip string
	body                map[string]any
}

// images are what Deployments run; each rollout moves to the next version.
var images = []struct {
	container, repo string
	versions        []string
}{
	{"nginx", "nginx", []string{"1.25", "1.26", "1.27", "1.28", "1.29"}},
	{"httpd", "httpd", []string{"2.4.58", "2.4.59", "2.4.60", "2.4.61", "2.4.62"}},
	{"postgres", "postgres", []string{"16.1", "16.2", "16.3", "16.4", "16.5"}},
	{"fluent-bit", "fluent/fluent-bit", []string{"3.0", "3.1", "3.2", "3.3", "3.4"}},
	{"redis", "redis", []string{"7.2.4", "7.2.5", "7.4.0", "7.4.1", "7.4.2"}},
}

func generateCluster(cfg Config, idx int) Cluster {
	g := &gen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(idx)+1)), cluster: "c" + strconv.Itoa(idx),
		rv: 1000, watch: map[string][]line{}}
	deps := make([]*deployment, cfg.Deployments)
	for i := range deps {
		im := images[i%len(images)]
		deps[i] = &deployment{
			ns: "ns-" + strconv.Itoa(i%cfg.Namespaces), name: fmt.Sprintf("%s-%d", im.container, i),
			uid: g.uid(), replicas: cfg.Replicas, container: im.container, repo: im.repo, versions: im.versions,
		}
		deps[i].app = deps[i].name
	}
	// Creations in the first tenth of the duration, rollouts spread evenly over the rest, with
	// jitter, so Deployments roll out concurrently as in step 5 of the recording.
	type step struct {
		t time.Time
		d *deployment
		n int
	}
	var steps []step
	createSpan := cfg.Duration / 10
	for i, d := range deps {
		t0 := cfg.Start.Add(time.Duration(float64(createSpan) * float64(i) / float64(len(deps))))
		steps = append(steps, step{t0, d, 0})
		gap := (cfg.Duration - createSpan) / time.Duration(cfg.Rollouts+1)
		for r := 1; r <= cfg.Rollouts; r++ {
			jitter := time.Duration(g.rng.Float64() * float64(gap) / 2)
			steps = append(steps, step{cfg.Start.Add(createSpan + time.Duration(r)*gap + jitter), d, r})
		}
	}
	slices.SortStableFunc(steps, func(a, b step) int { return a.t.Compare(b.t) })
	for _, s := range steps {
		g.rollout(s.d, s.t, s.n == 0)
	}
	nMeta := int(math.Round(float64(g.bodies) * cfg.MetadataPerBody))
	if cfg.MetadataPerBody < 0 {
		nMeta = 0
	}
	if want := int(cfg.EventsPerSecond*cfg.Duration.Seconds()) - g.bodies; want > nMeta {
		nMeta = want
	}
	for range nMeta {
		g.metadataEvent(cfg.Start.Add(time.Duration(g.rng.Float64() * float64(cfg.Duration))))
	}
	c := Cluster{Name: g.cluster, Rollouts: g.rollouts, Events: len(g.audit), BodyEvents: g.bodies, Objects: g.objects}
	c.Audit = g.encodeAudit()
	c.Watch = map[string][]byte{}
	for res, ls := range g.watch {
		c.Watch[res] = joinLines(ls)
	}
	return c
}

func sortLines(ls []line) {
	slices.SortFunc(ls, func(a, b line) int { return cmp.Or(a.t.Compare(b.t), cmp.Compare(a.seq, b.seq)) })
}

func joinLines(ls []line) []byte {
	sortLines(ls)
	n := 0
	for _, l := range ls {
		n += len(l.b) + 1
	}
	out := make([]byte, 0, n)
	for _, l := range ls {
		out = append(append(out, l.b...), '\n')
	}
	return out
}

func (g *gen) encodeAudit() []byte {
	if g.cfg.EventList <= 0 {
		return joinLines(g.audit)
	}
	sortLines(g.audit)
	var buf bytes.Buffer
	for i := 0; i < len(g.audit); i += g.cfg.EventList {
		buf.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`)
		for j, l := range g.audit[i:min(i+g.cfg.EventList, len(g.audit))] {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.Write(l.b)
		}
		buf.WriteString("]}\n")
	}
	return buf.Bytes()
}

// ---- ids and times

const nameChars = "bcdfghjklmnpqrstvwxz2456789"

func (g *gen) suffix(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = nameChars[g.rng.IntN(len(nameChars))]
	}
	return string(b)
}

func (g *gen) uid() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&0xffffffffffff)
}

func (g *gen) nextRV() string { g.rv++; return strconv.Itoa(g.rv) }

func ts(t time.Time) string   { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
func secs(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (g *gen) ms(lo, hi float64) time.Duration {
	return time.Duration((lo + g.rng.Float64()*(hi-lo)) * float64(time.Millisecond))
}

// ---- audit events

type userInfo struct {
	Username string              `json:"username"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

type objectRef struct {
	Resource        string `json:"resource,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	APIGroup        string `json:"apiGroup,omitempty"`
	APIVersion      string `json:"apiVersion,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Subresource     string `json:"subresource,omitempty"`
}

type status struct {
	Metadata struct{} `json:"metadata"`
	Status   string   `json:"status,omitempty"`
	Message  string   `json:"message,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Details  any      `json:"details,omitempty"`
	Code     int      `json:"code"`
}

type auditEvent struct {
	Kind                     string            `json:"kind"`
	APIVersion               string            `json:"apiVersion"`
	Level                    string            `json:"level"`
	AuditID                  string            `json:"auditID"`
	Stage                    string            `json:"stage"`
	RequestURI               string            `json:"requestURI"`
	Verb                     string            `json:"verb"`
	User                     userInfo          `json:"user"`
	SourceIPs                []string          `json:"sourceIPs"`
	UserAgent                string            `json:"userAgent"`
	ObjectRef                *objectRef        `json:"objectRef,omitempty"`
	ResponseStatus           status            `json:"responseStatus"`
	RequestObject            any               `json:"requestObject,omitempty"`
	ResponseObject           any               `json:"responseObject,omitempty"`
	RequestReceivedTimestamp string            `json:"requestReceivedTimestamp"`
	StageTimestamp           string            `json:"stageTimestamp"`
	Annotations              map[string]string `json:"annotations"`
}

// actor is who makes a request: user and user agent as the apiserver logs them.
type actor struct {
	user userInfo
	ua   string
}

func controller(name string) actor {
	sa := "system:serviceaccount:kube-system:" + name
	return actor{userInfo{Username: sa, UID: "5e1f" + fmt.Sprintf("%04x", len(name)) + "-0000-4000-8000-00000000c0de",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
		Extra:  map[string][]string{"authentication.kubernetes.io/credential-id": {"JTI=" + name}}}, uaController + name}
}

var (
	admin = actor{userInfo{Username: "kubernetes-admin", Groups: []string{"system:masters", "system:authenticated"},
		Extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"X509SHA256=048a3b93520ede06fb6dededfd3c36369270ca25218b56e2068b2adc9233e02f"}}}, uaKubectl}
	scheduler = actor{userInfo{Username: "system:kube-scheduler", Groups: []string{"system:authenticated"},
		Extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"X509SHA256=8c1b4e0d0a3f5f7b2e6f5d1c9a7e3b2d4c6a8e0f1b3d5c7e9a0b2c4d6e8f0a1b"}}}, uaScheduler}
	kwok = actor{userInfo{Username: "kwok-controller", Groups: []string{"system:masters", "system:authenticated"},
		Extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"X509SHA256=00b0629bacebcf7fd361a873157e3c63236d6321b916dd8538a48014aee383f1"}}}, uaKwok}
	apiserver = actor{userInfo{Username: "system:apiserver", UID: "dc54764b-c315-43c5-98f3-c3bf00e0b994",
		Groups: []string{"system:authenticated", "system:masters"}}, uaAPIServer}
	controllerManager = actor{userInfo{Username: "system:kube-controller-manager", Groups: []string{"system:authenticated"},
		Extra: map[string][]string{"authentication.kubernetes.io/credential-id": {"X509SHA256=640950948159fbac2329c1c96a1f1671c7fea72f323a4be816668891fda13c96"}}}, uaController + "generic"}
	deployCtl = controller("deployment-controller")
	rsCtl     = controller("replicaset-controller")
)

// request is one audited request at RequestResponse level (body != nil) or Metadata level.
type request struct {
	at       time.Time
	who      actor
	verb     string
	ref      objectRef
	uri      string
	code     int
	reqBody  any
	respBody any
	stage    string
}

func (g *gen) emit(r request) {
	g.seq++
	st := status{Code: r.code}
	if r.code >= 400 {
		st.Status = "Failure"
		switch r.code {
		case 409:
			st.Reason = "Conflict"
			st.Message = fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", r.ref.Resource, r.ref.Name)
		case 404:
			st.Reason = "NotFound"
			st.Message = fmt.Sprintf("%s %q not found", r.ref.Resource, r.ref.Name)
		}
		st.Details = map[string]string{"name": r.ref.Name, "kind": r.ref.Resource}
		if r.respBody != nil {
			r.respBody = map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
				"message": st.Message, "reason": st.Reason, "details": st.Details, "code": r.code}
		}
	}
	level := "Metadata"
	if r.respBody != nil || r.reqBody != nil {
		level = "RequestResponse"
		g.bodies++
	}
	stage := r.stage
	if stage == "" {
		stage = "ResponseComplete"
	}
	ref := r.ref
	if ref.APIVersion == "" {
		ref.APIVersion = "v1"
	}
	reason := ""
	if g.rng.IntN(3) > 0 {
		reason = "RBAC: allowed by ClusterRoleBinding \"system:controller:" + r.who.user.Username + "\" of ClusterRole \"system:controller\" to ServiceAccount"
	}
	ev := auditEvent{
		Kind: "Event", APIVersion: "audit.k8s.io/v1", Level: level, AuditID: g.uid(), Stage: stage,
		RequestURI: r.uri, Verb: r.verb, User: r.who.user, SourceIPs: []string{"127.0.0.1"}, UserAgent: r.who.ua,
		ObjectRef: &ref, ResponseStatus: st, RequestObject: r.reqBody, ResponseObject: r.respBody,
		RequestReceivedTimestamp: ts(r.at), StageTimestamp: ts(r.at.Add(g.ms(1, 18))),
		Annotations: map[string]string{"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	g.audit = append(g.audit, line{r.at, g.seq, b})
}

func (g *gen) watchEvent(resource, typ string, at time.Time, obj map[string]any) {
	g.seq++
	b, err := json.Marshal(map[string]any{"type": typ, "object": obj})
	if err != nil {
		panic(err)
	}
	g.watch[resource] = append(g.watch[resource], line{at, g.seq, b})
}

func uri(group, ns, resource, name, sub string) string {
	s := "/api/v1"
	if group != "" {
		s = "/apis/" + group + "/v1"
	}
	if ns != "" {
		s += "/namespaces/" + ns
	}
	s += "/" + resource
	if name != "" {
		s += "/" + name
	}
	if sub != "" {
		s += "/" + sub
	}
	return s
}

// write audits a write of an object with its body and shows it to the watch.
func (g *gen) write(at time.Time, who actor, verb, group, resource, sub string, body map[string]any, req any, code int, watchType string) {
	meta := body["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	ref := objectRef{Resource: resource, Namespace: ns, Name: name, APIGroup: group, Subresource: sub}
	u := uri(group, ns, resource, name, sub)
	if verb == "create" && sub == "" {
		u = uri(group, ns, resource, "", "")
	}
	r := request{at: at, who: who, verb: verb, ref: ref, uri: u, code: code, reqBody: req, respBody: body}
	if code >= 400 {
		r.respBody = map[string]any{}
	}
	g.emit(r)
	if code < 400 && watchType != "" {
		g.watchEvent(resource, watchType, at.Add(g.ms(1, 5)), body)
	}
}
