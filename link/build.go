package link

import (
	"cmp"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/kairn-dev/kairn/archive"
)

// Config configures span building.
type Config struct {
	// Window is the length of an object span's window; windows are aligned to the epoch.
	Window time.Duration
	// History, when set, holds the revisions earlier batches ended with (nil: the batch is all
	// there is).
	History History
}

// DefaultWindow is the window length kairn uses unless told otherwise.
const DefaultWindow = 30 * time.Minute

// Stats count what linking did, for progress output and tests.
type Stats struct {
	Observations     int // after de-duplication
	Duplicates       int
	Changes          int
	AuditLinkedByRV  int // audit ↔ change by resourceVersion (bodies logged)
	AuditLinkedByFit int // audit ↔ change by time and managedFields (Metadata level)
	// Successful creates whose record names no object (generateName at Request or Metadata
	// level): joined to the object they created, and those left nameless (no created object of
	// their resource fits them in the batch, or the resource is not stored: reviews).
	GeneratedNamesJoined int
	UnjoinedCreates      int
	EventsTimedByAudit   int
	NoOps                int // successful writes that produced no new revision
	ObjectSpans          int
	OwnerOnlySpans       int // object spans made from an ownerReference alone
}

// Add accumulates another batch's stats.
func (s *Stats) Add(o Stats) {
	s.Observations += o.Observations
	s.Duplicates += o.Duplicates
	s.Changes += o.Changes
	s.AuditLinkedByRV += o.AuditLinkedByRV
	s.AuditLinkedByFit += o.AuditLinkedByFit
	s.GeneratedNamesJoined += o.GeneratedNamesJoined
	s.UnjoinedCreates += o.UnjoinedCreates
	s.EventsTimedByAudit += o.EventsTimedByAudit
	s.NoOps += o.NoOps
	s.ObjectSpans += o.ObjectSpans
	s.OwnerOnlySpans += o.OwnerOnlySpans
}

// Batch collects observations and revisions, then links them into span rows. It is the offline
// form of the linker: everything it is given is linked together.
type Batch struct {
	cfg  Config
	obs  [][]Observation // in chunks of obsChunk
	revs []Revision
	last []Revision // the newest revision of each object, after Spans
}

// NewBatch returns an empty batch.
func NewBatch(cfg Config) *Batch {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	return &Batch{cfg: cfg}
}

// Observe adds an observation. They are kept in chunks of fixed size: a batch never copies the
// ones it holds to grow (Spans copies them once, de-duplicated).
func (b *Batch) Observe(o Observation) { *b.grow() = o }

// grow adds a zero observation and returns it, for the caller to fill in.
func (b *Batch) grow() *Observation {
	if n := len(b.obs); n == 0 || len(b.obs[n-1]) == cap(b.obs[n-1]) {
		b.obs = append(b.obs, make([]Observation, 0, obsChunk))
	}
	last := &b.obs[len(b.obs)-1]
	*last = append(*last, Observation{})
	return &(*last)[len(*last)-1]
}

// shrink removes the observation grow added last.
func (b *Batch) shrink() {
	last := &b.obs[len(b.obs)-1]
	(*last)[len(*last)-1] = Observation{}
	*last = (*last)[:len(*last)-1]
}

const obsChunk = 1024

// LastRevisions returns the newest revision of each object the batch saw (after Spans): what a
// History should remember for the next batch.
func (b *Batch) LastRevisions() []Revision { return b.last }

// Revise adds a revision; a raw body stays raw (diffs and parent lookups read it as JSON).
func (b *Batch) Revise(r Revision) {
	if r.Body == nil && len(r.RawBody) > 0 && r.RawBody[0] != '{' {
		r.RawBody = nil // not an object: no body, as DecodeBody would have it
	}
	b.revs = append(b.revs, r)
}

// object is what the linker knows of one object (one uid).
type object struct {
	key     ObjectKey
	kind    string
	revs    []Revision
	created time.Time
}

// Spans links everything in the batch and returns span rows, unsorted.
func (b *Batch) Spans() ([]archive.Span, Stats) {
	var st Stats
	objs := b.objects()
	b.last = b.last[:0]
	for _, o := range sortedObjects(objs) {
		b.last = append(b.last, o.revs[len(o.revs)-1])
	}
	obs := b.changes(objs, dedupe(b.obs, len(b.revs), &st), &st)
	kinds := kindsByResource(objs, obs)
	b.resolveUIDs(objs, obs)
	linkAudits(obs, &st)
	b.timeEvents(obs, &st)
	for i := range obs {
		if obs[i].Kind == "" {
			obs[i].Kind = kinds[obs[i].Object.Group+"/"+obs[i].Object.Resource]
		}
		if obs[i].Kind == "" {
			obs[i].Kind = builtinKind(obs[i].Object.Group, obs[i].Object.Resource)
		}
	}
	st.Observations = len(obs)
	return b.rows(objs, obs, &st), st
}

// objects groups revisions by uid, merges copies of one revision seen by several sources, and
// orders each object's revisions by resourceVersion.
func (b *Batch) objects() map[ObjectKey]*object {
	objs := map[ObjectKey]*object{}
	for _, r := range b.revs {
		if r.Object.UID == "" {
			continue
		}
		o := objs[r.Object]
		if o == nil {
			o = &object{key: r.Object, kind: r.Kind}
			objs[r.Object] = o
		}
		o.revs = append(o.revs, r)
	}
	for _, o := range objs {
		slices.SortStableFunc(o.revs, func(a, b Revision) int {
			switch {
			case a.ResourceVersion == b.ResourceVersion:
				return cmp.Compare(btoi(a.Deleted), btoi(b.Deleted))
			case RVLess(a.ResourceVersion, b.ResourceVersion):
				return -1
			default:
				return 1
			}
		})
		merged := o.revs[:0]
		for _, r := range o.revs {
			// One resourceVersion is one revision, whoever saw it: the watch's DELETED event and
			// the audited delete's response are the same fact.
			if n := len(merged); n > 0 && merged[n-1].ResourceVersion == r.ResourceVersion {
				prev := &merged[n-1]
				prev.Deleted = prev.Deleted || r.Deleted
				if prev.AuditID == "" {
					prev.AuditID = r.AuditID
				}
				if prev.Observed.IsZero() {
					prev.Observed = r.Observed
				}
				continue
			}
			merged = append(merged, r)
		}
		o.revs = merged
		o.created = o.revs[0].Created
	}
	return objs
}

// dedupe concatenates the chunks, dropping repeated observation ids, into a slice with room for
// that many more (the changes, one per revision at most, appended without regrowing it).
func dedupe(chunks [][]Observation, room int, st *Stats) []Observation {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	seen := make(map[string]struct{}, n)
	out := make([]Observation, 0, n+room)
	for _, c := range chunks {
		for i := range c {
			o := &c[i]
			if _, dup := seen[o.ID]; dup {
				st.Duplicates++
				continue
			}
			seen[o.ID] = struct{}{}
			out = append(out, *o)
		}
	}
	return out
}

// changes diffs each object's consecutive revisions into change observations, appended to out.
func (b *Batch) changes(objs map[ObjectKey]*object, out []Observation, st *Stats) []Observation {
	for _, o := range sortedObjects(objs) {
		for i, r := range o.revs {
			var hist *Revision
			if i == 0 {
				hist = b.history(r)
			}
			c := Observation{
				Source:          SourceChange,
				Object:          r.Object,
				Kind:            r.Kind,
				ID:              "change/" + r.Object.UID + "/" + r.ResourceVersion,
				ResourceVersion: r.ResourceVersion,
				Owners:          r.Owners,
				Manager:         r.Manager,
				ManagerOp:       r.ManagerOp,
				ManagerTime:     r.ManagerTime,
				AuditID:         r.AuditID,
			}
			switch {
			case r.Deleted:
				c.Verb = "delete"
				c.Time, c.TimeSource = bestTime(sourced{r.Observed, "observed"}, sourced{r.DeletionTime, "deletionTimestamp"}, sourced{r.ManagerTime, "managedFields"})
				if i > 0 {
					c.PrevResourceVersion = o.revs[i-1].ResourceVersion
					c.Changes = revisionDiff(&o.revs[i-1], &r)
				}
			case i == 0 && hist != nil:
				prev := hist
				c.Verb = "update"
				c.PrevResourceVersion = prev.ResourceVersion
				c.Changes = revisionDiff(prev, &r)
				c.Time, c.TimeSource = bestTime(sourced{r.Observed, "observed"}, sourced{r.ManagerTime, "managedFields"})
				if !r.DeletionTime.IsZero() && prev.DeletionTime.IsZero() {
					// As below: the newest managedFields entry is an earlier writer's.
					c.Verb = "delete-requested"
					if r.Observed.IsZero() {
						c.Time, c.TimeSource = r.DeletionTime, "deletionTimestamp"
					}
				}
			case i == 0:
				// The first revision seen is the creation when its newest write is the creation
				// itself; otherwise the watch started on an object with a history.
				c.Verb = "observe"
				if !r.Created.IsZero() && r.ManagerTime.Sub(r.Created) <= time.Second {
					c.Verb = "create"
				}
				if c.Verb == "create" {
					// The write that created it happened at creationTimestamp (seconds).
					c.ManagerTime = r.Created
					c.Time, c.TimeSource = bestTime(sourced{r.Observed, "observed"}, sourced{r.Created, "creationTimestamp"})
				} else {
					c.Time, c.TimeSource = bestTime(sourced{r.Observed, "observed"}, sourced{r.ManagerTime, "managedFields"}, sourced{r.Created, "creationTimestamp"})
				}
			default:
				prev := o.revs[i-1]
				c.Verb = "update"
				c.PrevResourceVersion = prev.ResourceVersion
				c.Changes = revisionDiff(&prev, &r)
				t, src := bestTime(sourced{r.Observed, "observed"}, sourced{r.ManagerTime, "managedFields"})
				if !r.DeletionTime.IsZero() && prev.DeletionTime.IsZero() {
					// A graceful delete sets deletionTimestamp without a managedFields entry.
					c.Verb = "delete-requested"
					if r.Observed.IsZero() {
						t, src = r.DeletionTime, "deletionTimestamp"
					}
				}
				c.Time, c.TimeSource = t, src
			}
			if c.Time.IsZero() {
				continue // nothing to place it in time by; its neighbours still are
			}
			c.EndTime = c.Time
			c.RevisionTime, c.RevisionTimeSource = c.Time, c.TimeSource
			out = append(out, c)
			st.Changes++
		}
	}
	return out
}

// history returns the object's revision before r from earlier batches, if there is one.
func (b *Batch) history(r Revision) *Revision {
	if b.cfg.History == nil {
		return nil
	}
	if prev, ok := b.cfg.History.Before(r.Object.UID, r.ResourceVersion); ok {
		return &prev
	}
	return nil
}

// resolveUIDs fills in the uid of observations that came without one (Metadata-level audit
// records, Events without involvedObject.uid): the object of that name its lifetime says the
// record is about (lifetimes). A name no object of the batch has is looked up in History.
func (b *Batch) resolveUIDs(objs map[ObjectKey]*object, obs []Observation) {
	l := lifetimes{}
	for _, o := range objs {
		l.add(o.key, o.created, o.revs[0].ResourceVersion)
	}
	l.sort()
	for i := range obs {
		if o := &obs[i]; o.Object.UID != "" && isCreate(o) {
			l.bornBy(o.Object, o.Time)
		}
	}
	l.resolve(len(obs), func(i int) (ObjectKey, string, time.Time, time.Time, string) {
		o := &obs[i]
		verb := o.Verb
		if verb == "create" && !isCreate(o) {
			verb = "" // a failed create created nothing: it is about the object alive then
		}
		return o.Object, verb, o.Time, o.EndTime, o.ID
	}, func(i int, uid string) { obs[i].Object.UID = uid })
	if b.cfg.History == nil {
		return
	}
	for i := range obs {
		if o := &obs[i]; o.Object.UID == "" && o.Object.Name != "" {
			o.Object.UID, _ = b.cfg.History.UIDByName(o.Object)
		}
	}
}

// isCreate reports whether o is the audit record of a successful create of the object itself.
func isCreate(o *Observation) bool {
	return o.Source == SourceAudit && o.Verb == "create" && o.Subresource == "" && o.StatusCode >= 200 && o.StatusCode < 300
}

// linkAudits joins each successful write's audit record with the change it produced: by
// resourceVersion when the audit level logged bodies, otherwise by time and managedFields.
func linkAudits(obs []Observation, st *Stats) {
	changeAt := map[string]int{} // uid/rv -> index of change
	byObject := map[ObjectKey][]int{}
	for i := range obs {
		if obs[i].Source != SourceChange {
			continue
		}
		changeAt[obs[i].Object.UID+"/"+obs[i].ResourceVersion+"/"+changeClass(obs[i].Verb)] = i
		byObject[obs[i].Object] = append(byObject[obs[i].Object], i)
	}
	// Changes joined before (by an earlier link of the same facts: a merge) stay joined.
	linked := map[int]bool{}
	for i := range obs {
		if obs[i].Source == SourceChange && obs[i].AuditID != "" && obs[i].TimeSource == "audit" {
			linked[i] = true
		}
	}
	var audits []int
	for i := range obs {
		a := &obs[i]
		if a.Source != SourceAudit || !isWriteVerb(a.Verb) || a.StatusCode < 200 || a.StatusCode >= 300 {
			continue
		}
		audits = append(audits, i)
	}
	slices.SortFunc(audits, func(x, y int) int { return obs[x].Time.Compare(obs[y].Time) })

	apply := func(ai, ci int, method string) {
		a, c := &obs[ai], &obs[ci]
		linked[ci] = true
		a.AuditLink, c.AuditLink = method, method
		c.Time, c.EndTime, c.TimeSource = a.Time, a.EndTime, "audit"
		c.AuditID, c.User, c.UserAgent, c.StatusCode = a.AuditID, a.User, a.UserAgent, a.StatusCode
		c.Subresource = a.Subresource
		if changeClass(c.Verb) == "update" && (a.Verb == "update" || a.Verb == "patch") {
			c.Verb = a.Verb // a subresource's create (a binding) stays the update it made
		}
		a.ResourceVersion = c.ResourceVersion
		if a.Object.UID == "" {
			a.Object.UID = c.Object.UID
		}
	}
	// Pass 1: resourceVersion, exact.
	rest := audits[:0:0]
	for _, ai := range audits {
		a := &obs[ai]
		if a.ResourceVersion != "" && a.Object.UID != "" {
			verb := changeClass(a.Verb)
			if a.Verb == "deletecollection" {
				verb = "delete"
			}
			ci, ok := changeAt[a.Object.UID+"/"+a.ResourceVersion+"/"+verb]
			// The revision a write produced is what its response shows, whatever a writer that
			// missed the revisions between made of it.
			for _, alt := range []string{"delete-requested", "delete", "update"} {
				if ok || verb == "create" {
					break
				}
				ci, ok = changeAt[a.Object.UID+"/"+a.ResourceVersion+"/"+alt]
			}
			if ok && obs[ci].AuditID == a.AuditID && linked[ci] {
				st.AuditLinkedByRV++
				continue // joined already
			}
			if ok && !linked[ci] && (obs[ci].AuditID == "" || obs[ci].AuditID == a.AuditID) {
				apply(ai, ci, LinkByResourceVersion)
				st.AuditLinkedByRV++
				continue
			}
			// The response shows a revision an earlier write already produced: this write
			// changed nothing.
			_, created := changeAt[a.Object.UID+"/"+a.ResourceVersion+"/create"]
			_, observed := changeAt[a.Object.UID+"/"+a.ResourceVersion+"/observe"]
			if verb == "update" && (linked[ci] || created || observed) {
				a.NoOp = true
				st.NoOps++
				continue
			}
		}
		rest = append(rest, ai)
	}
	// Pass 2: Metadata-level records: an unlinked change of the same object whose write time
	// (managedFields, second precision) falls within the request, from requestReceived
	// truncated to a second after stageTimestamp; a manager matching the user agent first, then
	// the earliest revision. Requests come in the order received, so several writes within a
	// second or two (kwok's status patches) pair in order, instead of each taking the revision
	// nearest in time, which can be the next request's.
	for _, ai := range rest {
		a := &obs[ai]
		if a.Object.UID == "" {
			continue
		}
		lo := a.Time.Truncate(time.Second)
		hi := a.EndTime.Add(time.Second)
		best, bestScore := -1, 2
		for _, ci := range byObject[a.Object] {
			if linked[ci] {
				continue
			}
			c := &obs[ci]
			if !verbFits(a.Verb, a.Subresource, c) {
				continue
			}
			t := c.ManagerTime
			switch {
			case c.Verb == "delete", c.Verb == "delete-requested":
				t = a.Time // order decides; deletionTimestamp includes the grace period
			case a.Subresource == "binding":
				t = a.Time // a binding writes no managedFields entry; only it sets spec.nodeName
			}
			if t.Before(lo) || t.After(hi) {
				continue
			}
			score := 0
			if !managerFits(c.Manager, a.UserAgent) {
				score = 1
			}
			if score < bestScore || (score == bestScore && RVLess(c.ResourceVersion, obs[best].ResourceVersion)) {
				best, bestScore = ci, score
			}
		}
		if best >= 0 {
			apply(ai, best, LinkByFit)
			st.AuditLinkedByFit++
		}
	}
	// Pass 3: creates that name no object.
	for _, p := range generatedNamePairs(obs, rest, linked, st) {
		a, c := &obs[p[0]], &obs[p[1]]
		a.Object.Name, a.Object.UID = c.Object.Name, c.Object.UID
		apply(p[0], p[1], LinkByGeneratedName)
		st.GeneratedNamesJoined++
	}
}

// generatedNamePairs pairs the successful creates among audits that name no object (a
// generateName create at Request or Metadata level: the name is made by the apiserver and only
// the response body, unlogged, carries it) with the unjoined creations of their resource in
// their namespace. A creation fits a request when its creationTimestamp (seconds) falls within
// the request, requestReceived truncated to the second to stageTimestamp, and its field manager,
// where the revision names one, fits the request's user agent. Several creations of one second
// pair in order: creations by resourceVersion (the order etcd committed them) against requests
// by the time they were received, each creation the earliest request that fits it and is not
// taken, as timeEvents pairs Events. It returns [audit, change] index pairs.
func generatedNamePairs(obs []Observation, audits []int, linked map[int]bool, st *Stats) [][2]int {
	type group struct{ audits, creates []int }
	groups := map[ObjectKey]*group{}
	groupOf := func(k ObjectKey) *group {
		k.Name, k.UID = "", ""
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
		}
		return g
	}
	for _, ai := range audits {
		a := &obs[ai]
		if a.Verb == "create" && a.Subresource == "" && a.Object.Name == "" {
			g := groupOf(a.Object)
			g.audits = append(g.audits, ai)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	for ci := range obs {
		c := &obs[ci]
		if c.Source != SourceChange || c.Verb != "create" || linked[ci] || createdAt(c).IsZero() {
			continue
		}
		k := c.Object
		k.Name, k.UID = "", ""
		if g := groups[k]; g != nil {
			g.creates = append(g.creates, ci)
		}
	}
	var pairs [][2]int
	for _, g := range groups {
		slices.SortFunc(g.audits, func(x, y int) int {
			return cmp.Or(obs[x].Time.Compare(obs[y].Time), strings.Compare(obs[x].ID, obs[y].ID))
		})
		slices.SortFunc(g.creates, func(x, y int) int {
			return cmp.Or(compareRV(obs[x].ResourceVersion, obs[y].ResourceVersion), strings.Compare(obs[x].ID, obs[y].ID))
		})
		used := make([]bool, len(g.audits))
		from := 0
		joined := 0
		for _, ci := range g.creates {
			c := &obs[ci]
			t := createdAt(c)
			for from < len(g.audits) && (used[from] || obs[g.audits[from]].EndTime.Before(t)) {
				from++ // ended before this creation, and so before every later one
			}
			for j := from; j < len(g.audits); j++ {
				a := &obs[g.audits[j]]
				if a.Time.Truncate(time.Second).After(t) {
					break
				}
				if used[j] || a.EndTime.Before(t) || (c.Manager != "" && !managerFits(c.Manager, a.UserAgent)) {
					continue
				}
				used[j] = true
				pairs = append(pairs, [2]int{g.audits[j], ci})
				joined++
				break
			}
		}
		st.UnjoinedCreates += len(g.audits) - joined
	}
	// The pairs are applied in a fixed order, whatever order the groups came in.
	slices.SortFunc(pairs, func(x, y [2]int) int { return strings.Compare(obs[x[0]].ID, obs[y[0]].ID) })
	return pairs
}

// createdAt is when the write that created an object happened, to the second: its
// creationTimestamp (a change read back from the archive has it as its own time).
func createdAt(c *Observation) time.Time {
	if !c.ManagerTime.IsZero() {
		return c.ManagerTime
	}
	return c.RevisionTime
}

// compareRV orders resourceVersions as RVLess does.
func compareRV(a, b string) int {
	switch {
	case a == b:
		return 0
	case RVLess(a, b):
		return -1
	case RVLess(b, a):
		return 1
	}
	return 0
}

// How an audit record and a change were joined.
const (
	LinkByResourceVersion = "resourceVersion" // exact: the response body named the revision
	LinkByFit             = "fit"             // Metadata level: by time and managedFields
	// A create that named no object (generateName at Request or Metadata level), joined to the
	// object it created by time, field manager and order; the record takes that object's name.
	LinkByGeneratedName = "generateName"
)

// changeClass is what kind of revision a change is, whatever verb a linked write gave it.
func changeClass(verb string) string {
	switch verb {
	case "create", "observe", "delete", "delete-requested":
		return verb
	}
	return "update"
}

func verbFits(verb, subresource string, c *Observation) bool {
	switch {
	case verb == "create" && subresource == "binding":
		// A pod's binding is an update of the pod: the one that gives it its node.
		return changeClass(c.Verb) == "update" && setsNodeName(c)
	}
	switch verb {
	case "create":
		return c.Verb == "create" && subresource == ""
	case "delete", "deletecollection":
		return c.Verb == "delete" || c.Verb == "delete-requested"
	default:
		// Only a delete sets deletionTimestamp: an update or patch of the object then (a
		// kubelet's status) is not what made the revision that shows it.
		return changeClass(c.Verb) == "update"
	}
}

// setsNodeName reports whether a change gives a pod its node.
func setsNodeName(c *Observation) bool {
	for _, f := range c.Changes {
		if f.Path == "spec.nodeName" && f.Old == "" && f.New != "" {
			return true
		}
	}
	return false
}

// managerFits reports whether a field manager name could have been derived from a user agent:
// by default the manager is the agent's first token ("kube-controller-manager/v1.37 ..."), and
// kubectl names its managers kubectl-<command>.
func managerFits(manager, userAgent string) bool {
	if manager == "" || userAgent == "" {
		return false
	}
	agent := userAgent
	if i := strings.IndexByte(agent, '/'); i >= 0 {
		agent = agent[:i]
	}
	return strings.HasPrefix(manager, agent)
}

// timeEvents replaces an Event's own timestamps with the time the apiserver received its
// creation, where the audit log has it: that is when the reporter acted. Audit records name the
// Event when the reporter chose the name or the body was logged; a Metadata-level record of a
// generateName create has no name, and is paired by order instead: within one namespace, the
// Events' first revisions in resourceVersion order against the unnamed creates in time order,
// where the Event's creation second falls within the request and its field manager fits the
// request's user agent.
func (b *Batch) timeEvents(obs []Observation, st *Stats) {
	named := map[ObjectKey]int{}
	unnamed := map[ObjectKey][]int{} // cluster/namespace → audit indexes
	for i := range obs {
		a := &obs[i]
		if a.Source != SourceAudit || a.Verb != "create" || a.Object.Resource != "events" || a.StatusCode < 200 || a.StatusCode >= 300 {
			continue
		}
		ns := ObjectKey{Cluster: a.Object.Cluster, Namespace: a.Object.Namespace}
		if a.Object.Name == "" {
			unnamed[ns] = append(unnamed[ns], i)
			continue
		}
		ns.Name = a.Object.Name
		named[ns] = i
	}
	setTime := func(e *Observation, a *Observation) {
		e.Time, e.TimeSource = a.Time, "audit"
		if e.EndTime.Before(e.Time) {
			e.EndTime = e.Time
		}
		st.EventsTimedByAudit++
	}
	untimed := map[ObjectKey][]int{}
	for i := range obs {
		e := &obs[i]
		if e.Source != SourceEvent || e.Count > 1 {
			continue
		}
		if ai, ok := named[ObjectKey{Cluster: e.Carrier.Cluster, Namespace: e.Carrier.Namespace, Name: e.Carrier.Name}]; ok {
			setTime(e, &obs[ai])
			continue
		}
		if !e.ManagerTime.IsZero() {
			ns := ObjectKey{Cluster: e.Carrier.Cluster, Namespace: e.Carrier.Namespace}
			untimed[ns] = append(untimed[ns], i)
		}
	}
	for ns, events := range untimed {
		audits := unnamed[ns]
		if len(audits) == 0 {
			continue
		}
		slices.SortFunc(audits, func(x, y int) int { return obs[x].Time.Compare(obs[y].Time) })
		slices.SortFunc(events, func(x, y int) int {
			ex, ey := &obs[x], &obs[y]
			if c := ex.ManagerTime.Compare(ey.ManagerTime); c != 0 {
				return c
			}
			if RVLess(ex.ResourceVersion, ey.ResourceVersion) {
				return -1
			}
			return cmp.Compare(btoi(RVLess(ey.ResourceVersion, ex.ResourceVersion)), 0)
		})
		used := make([]bool, len(audits))
		from := 0
		for _, ei := range events {
			e := &obs[ei]
			for from < len(audits) && (used[from] || obs[audits[from]].EndTime.Add(time.Second).Before(e.ManagerTime)) {
				from++ // too early for this Event and so for every later one
			}
			for j := from; j < len(audits); j++ {
				a := &obs[audits[j]]
				if a.Time.Truncate(time.Second).After(e.ManagerTime) {
					break
				}
				if used[j] || a.EndTime.Add(time.Second).Before(e.ManagerTime) || !managerFits(e.Manager, a.UserAgent) {
					continue
				}
				used[j] = true
				setTime(e, a)
				// The record names the Event it created, so its span goes with the Event.
				a.Object.Name, a.Object.UID = e.Carrier.Name, e.Carrier.UID
				break
			}
		}
	}
}

func kindsByResource(objs map[ObjectKey]*object, obs []Observation) map[string]string {
	kinds := map[string]string{}
	for _, o := range objs {
		kinds[o.key.Group+"/"+o.key.Resource] = o.kind
	}
	for i := range obs {
		if obs[i].Kind != "" {
			kinds[obs[i].Object.Group+"/"+obs[i].Object.Resource] = obs[i].Kind
		}
	}
	return kinds
}

func isWriteVerb(v string) bool {
	switch v {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

func sortedObjects(objs map[ObjectKey]*object) []*object {
	out := make([]*object, 0, len(objs))
	for _, o := range objs {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b *object) int { return strings.Compare(a.key.String()+a.key.UID, b.key.String()+b.key.UID) })
	return out
}

// sourced is a candidate time and where it comes from.
type sourced struct {
	t   time.Time
	src string
}

// bestTime returns the first candidate that is known.
func bestTime(cands ...sourced) (time.Time, string) {
	for _, c := range cands {
		if !c.t.IsZero() {
			return c.t, c.src
		}
	}
	return time.Time{}, ""
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hash64 and hash128 give the deterministic ids every writer agrees on.
// joinZero lays parts out as the hashes read them: each part followed by a 0 byte (in buf when
// it fits, so hashing a span id allocates nothing but the id).
func joinZero(buf []byte, parts []string) []byte {
	for _, p := range parts {
		buf = append(append(buf, p...), 0)
	}
	return buf
}

func hash64(parts ...string) string {
	var arr [256]byte
	s := xxh3.Hash(joinZero(arr[:0], parts))
	var b [8]byte
	for i := range 8 {
		b[i] = byte(s >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}

func hash128(parts ...string) string {
	var arr [256]byte
	b := xxh3.Hash128(joinZero(arr[:0], parts)).Bytes()
	return hex.EncodeToString(b[:])
}
