package serve

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Display is how a trace is drawn; the Jaeger UI chooses it through the service name.
type Display uint8

const (
	DisplayTree     Display = 1 // object spans nested by ownership, observations as child spans, short names
	DisplayTimeline Display = 2 // every observation directly under the root object, in time order
	DisplayTracing  Display = 3 // observations folded into logs on their object span (the default)
	DisplayGrouping Display = 4 // under each object, one pseudo-span per source (audit, event, change)
)

// Selector is which objects of the ownership tree a trace shows around the object it is about.
type Selector uint8

const (
	SelectSubtree   Selector = 0 // the object and everything it owns, recursively (no selector)
	SelectFullTree  Selector = 1 // the whole ownership tree, from the root owner down
	SelectAncestors Selector = 2 // the object and its owners up to the root
	SelectChildren  Selector = 3 // the object and what it owns directly
)

var displayNames = map[Display]string{DisplayTree: "tree", DisplayTimeline: "timeline", DisplayTracing: "tracing", DisplayGrouping: "grouping"}

var selectorNames = map[Selector]string{SelectSubtree: "", SelectFullTree: "full tree", SelectAncestors: "ancestors", SelectChildren: "children"}

// Pipeline is a display with a selector: the Jaeger service name, e.g. "tracing [ancestors]".
type Pipeline struct {
	Display  Display
	Selector Selector
}

// DefaultPipeline is used where no service is named.
var DefaultPipeline = Pipeline{Display: DisplayTracing}

func (p Pipeline) validate() error {
	if _, ok := displayNames[p.Display]; !ok {
		return fmt.Errorf("unknown display %d", p.Display)
	}
	if _, ok := selectorNames[p.Selector]; !ok {
		return fmt.Errorf("unknown selector %d", p.Selector)
	}
	return nil
}

// String is the service name: "tree", "tracing [full tree]", …
func (p Pipeline) String() string {
	s := displayNames[p.Display]
	if sel := selectorNames[p.Selector]; sel != "" {
		s += " [" + sel + "]"
	}
	return s
}

// Pipelines lists every service name, the default first.
func Pipelines() []Pipeline {
	var out []Pipeline
	for _, d := range []Display{DisplayTracing, DisplayTree, DisplayTimeline, DisplayGrouping} {
		for _, s := range []Selector{SelectSubtree, SelectFullTree, SelectAncestors, SelectChildren} {
			out = append(out, Pipeline{Display: d, Selector: s})
		}
	}
	return out
}

// ParsePipeline parses a service name: a display, optionally followed by a selector in brackets
// ("tree", "tracing [ancestors]"). The empty name is the default pipeline.
func ParsePipeline(s string) (Pipeline, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultPipeline, nil
	}
	name, sel := s, ""
	if i := strings.IndexByte(s, '['); i >= 0 {
		if !strings.HasSuffix(s, "]") {
			return Pipeline{}, fmt.Errorf("service %q: a selector is written in brackets, e.g. \"tracing [ancestors]\"", s)
		}
		name, sel = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:len(s)-1])
	}
	var p Pipeline
	for d, n := range displayNames {
		if n == name {
			p.Display = d
		}
	}
	if p.Display == 0 {
		return Pipeline{}, fmt.Errorf("unknown service %q: the services are the display pipelines tree, timeline, tracing, grouping, each optionally with [full tree], [ancestors] or [children]", s)
	}
	found := false
	for x, n := range selectorNames {
		if n == sel {
			p.Selector, found = x, true
		}
	}
	if !found {
		return Pipeline{}, fmt.Errorf("unknown selector %q in service %q: use full tree, ancestors or children", sel, s)
	}
	return p, nil
}

// ---- the assembled trace ----

// Span kinds beyond the archive's object/audit/event/change.
const (
	kindSource  = "source"  // grouping: a pseudo-span per source
	kindSummary = "summary" // collapsed levels of a large trace
)

// Trace is an assembled trace: object spans (one per object, stitched across windows) and
// observation spans under them. Pipelines transform it for display.
type Trace struct {
	ID       TraceID
	Focus    string  // span id of the object the trace is about
	Spans    []*Span // any order; Parent refers to another span's ID or is empty at a root
	Warnings []string
}

// Span is one span of a trace.
type Span struct {
	ID, Parent string // 16 hex digits
	Name       string
	Kind       string    // object, audit, event, change, source, summary
	Object     ObjectKey // the object this span is, or is about
	ObjectKind string    // e.g. Pod
	Start, End time.Time
	Tags       []Tag
	Diffs      []string // change: "path: old → new"
	Logs       []Log
	Links      []SpanLink
}

// Tag is a span tag or log field; Value is a string, an int64 or a bool.
type Tag struct {
	Key   string
	Value any
}

// Log is a timed record on a span.
type Log struct {
	Time   time.Time
	Fields []Tag
}

// SpanLink is a secondary relation (node, service, non-controller owner, annotation parent) to
// another object: its span in this trace, or (when the span is not in the rendered trace) the
// trace of the target object over the same time range.
type SpanLink struct {
	Relation   string
	SpanID     string    // the target's object span: in this trace, or of one of its windows
	Target     ObjectKey // the target object
	TargetName string    // "Kind namespace/name", named as object spans are
}

func (t *Trace) clone() *Trace {
	c := *t
	// Three allocations for the whole trace instead of three per span; each span's slices are
	// capped at their length, so a display appending to one reallocates it, never touching
	// its neighbour's.
	c.Spans = make([]*Span, len(t.Spans))
	spans := make([]Span, len(t.Spans))
	nt, nl := 0, 0
	for _, s := range t.Spans {
		nt, nl = nt+len(s.Tags), nl+len(s.Logs)
	}
	tags, logs := make([]Tag, 0, nt), make([]Log, 0, nl)
	for i, s := range t.Spans {
		cs := &spans[i]
		*cs = *s
		if len(s.Tags) > 0 {
			tags = append(tags, s.Tags...)
			cs.Tags = tags[len(tags)-len(s.Tags) : len(tags) : len(tags)]
		}
		if len(s.Logs) > 0 {
			logs = append(logs, s.Logs...)
			cs.Logs = logs[len(logs)-len(s.Logs) : len(logs) : len(logs)]
		}
		c.Spans[i] = cs
	}
	c.Warnings = slices.Clone(t.Warnings)
	return &c
}

func (t *Trace) byID() map[string]*Span {
	m := make(map[string]*Span, len(t.Spans))
	for _, s := range t.Spans {
		m[s.ID] = s
	}
	return m
}

// Apply runs a pipeline over an assembled trace: the selector, then the display. Pure: t is
// not modified.
func Apply(p Pipeline, t *Trace) *Trace {
	t = Select(p.Selector, t)
	switch p.Display {
	case DisplayTree:
		t = Tree(t)
	case DisplayTimeline:
		t = Timeline(t)
	case DisplayGrouping:
		t = Grouping(t)
	default:
		t = Tracing(t)
	}
	t.ID.Pipeline = p
	return t
}

// Select keeps the objects a selector names around t.Focus, with their observations.
func Select(sel Selector, t *Trace) *Trace {
	t = t.clone()
	if sel == SelectFullTree || t.Focus == "" {
		return t
	}
	byID := t.byID()
	children := map[string][]*Span{}
	for _, s := range t.Spans {
		if s.Kind == "object" {
			children[s.Parent] = append(children[s.Parent], s)
		}
	}
	keep := map[string]bool{t.Focus: true}
	switch sel {
	case SelectAncestors:
		for s := byID[t.Focus]; s != nil && s.Parent != "" && !keep[s.Parent]; s = byID[s.Parent] {
			keep[s.Parent] = true
		}
	case SelectChildren:
		for _, c := range children[t.Focus] {
			keep[c.ID] = true
		}
	default: // subtree
		stack := []string{t.Focus}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, c := range children[id] {
				if !keep[c.ID] {
					keep[c.ID] = true
					stack = append(stack, c.ID)
				}
			}
		}
	}
	out := t.Spans[:0]
	for _, s := range t.Spans {
		if keep[s.ID] || (s.Kind != "object" && keep[s.Parent]) {
			out = append(out, s)
		}
	}
	t.Spans = out
	// The kept object nearest the root is the new root.
	for _, s := range t.Spans {
		if s.Kind == "object" && !keep[s.Parent] {
			s.Parent = ""
		}
	}
	return t
}

// Tree is the assembled trace as it is: object spans nested by ownership, observations as
// their child spans.
func Tree(t *Trace) *Trace { return t.clone() }

// Timeline puts every observation directly under the root object span, in time order, each
// named after the object it is about; the other object spans are dropped.
func Timeline(t *Trace) *Trace {
	t = t.clone()
	byID := t.byID()
	var root *Span
	for _, s := range t.Spans {
		if s.Kind == "object" && s.Parent == "" && (root == nil || s.Start.Before(root.Start)) {
			root = s
		}
	}
	if root == nil {
		return t
	}
	out := []*Span{root}
	var obs []*Span
	for _, s := range t.Spans {
		if s.Kind == "object" {
			continue
		}
		if o := byID[s.Parent]; o != nil && o != root {
			s.Name = o.Name + ": " + s.Name
		}
		s.Parent = root.ID
		obs = append(obs, s)
	}
	slices.SortStableFunc(obs, func(a, b *Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	t.Spans = append(out, obs...)
	if len(obs) > 0 {
		root.Start = minTime(root.Start, obs[0].Start)
		for _, o := range obs {
			root.End = maxTime(root.End, o.End)
		}
	}
	return t
}

// Tracing folds every observation into a log on its object span: the log's fields are the
// observation's name, tags and field diffs ("path: old → new"). A failed observation (a request
// refused, a Warning event) stays a span under its object as well as a log, so every display
// counts the same errors: one span each.
func Tracing(t *Trace) *Trace {
	t = t.clone()
	byID := t.byID()
	var out []*Span
	for _, s := range t.Spans {
		if s.Kind == "object" {
			out = append(out, s)
			continue
		}
		o := byID[s.Parent]
		for o != nil && o.Kind != "object" {
			o = byID[o.Parent]
		}
		if o == nil || isError(s) {
			out = append(out, s) // nothing to fold it into, or an error: keep the span
		}
		if o == nil {
			continue
		}
		fields := []Tag{{"event", s.Name}}
		fields = append(fields, s.Tags...)
		for _, d := range s.Diffs {
			fields = append(fields, Tag{"diff", d})
		}
		o.Logs = append(o.Logs, Log{Time: s.Start, Fields: fields})
		o.Start, o.End = minTime(o.Start, s.Start), maxTime(o.End, s.End)
	}
	for _, s := range out {
		slices.SortStableFunc(s.Logs, func(a, b Log) int { return a.Time.Compare(b.Time) })
	}
	t.Spans = out
	return t
}

// isError says whether a span is a failure: a request refused (status ≥ 400), a Warning event.
func isError(s *Span) bool {
	for _, tag := range s.Tags {
		if tag.Key == "error" {
			return tag.Value == true
		}
	}
	return false
}

// Grouping puts one pseudo-span per source (audit, event, change) under each object span, and
// that source's observations of the object under it.
func Grouping(t *Trace) *Trace {
	t = t.clone()
	byID := t.byID()
	groups := map[string]*Span{}
	var added []*Span
	for _, s := range t.Spans {
		o := byID[s.Parent]
		if s.Kind == "object" || s.Kind == kindSource || o == nil || o.Kind != "object" {
			continue
		}
		gid := derivedID(o.ID, "source", s.Kind)
		g := groups[gid]
		if g == nil {
			g = &Span{ID: gid, Parent: o.ID, Kind: kindSource, Object: o.Object, ObjectKind: o.ObjectKind, Start: s.Start, End: s.End,
				Tags: []Tag{{"source", s.Kind}}}
			groups[gid] = g
			added = append(added, g)
		}
		g.Start, g.End = minTime(g.Start, s.Start), maxTime(g.End, s.End)
		s.Parent = gid
	}
	for _, g := range added {
		n := 0
		for _, s := range t.Spans {
			if s.Parent == g.ID {
				n++
			}
		}
		g.Name = fmt.Sprintf("%s (%d)", g.Tags[0].Value, n)
		g.Tags = append(g.Tags, Tag{"count", int64(n)})
	}
	slices.SortFunc(added, func(a, b *Span) int { return cmp.Compare(a.ID, b.ID) })
	t.Spans = append(t.Spans, added...)
	return t
}

// Collapse bounds a trace to limit spans by cutting the tree at the deepest level that fits:
// every span below the cut is folded into one summary span under its ancestor at the cut
// ("1200 spans collapsed: audit×400, event×800"), and the trace says so in its warnings.
// limit ≤ 0 means no limit. When even the roots with one summary each exceed the limit, that is
// what is shown.
func Collapse(t *Trace, limit int) *Trace {
	if limit <= 0 || len(t.Spans) <= limit {
		return t
	}
	t = t.clone()
	depth := depths(t)
	maxDepth := 0
	perDepth := map[int]int{}
	for _, d := range depth {
		maxDepth = max(maxDepth, d)
		perDepth[d]++
	}
	byID := t.byID()
	hasChildren := map[string]bool{}
	for _, s := range t.Spans {
		if byID[s.Parent] != nil {
			hasChildren[s.Parent] = true
		}
	}
	parentsAt := map[int]int{} // spans at a depth that have children
	for id := range hasChildren {
		parentsAt[depth[id]]++
	}
	// cut: spans at depth ≥ cut are folded. kept(cut) = spans above the cut + one summary per
	// span just above it that has children.
	cut, above := 1, 0
	for d := 1; d <= maxDepth; d++ {
		above += perDepth[d-1]
		if above+parentsAt[d-1] <= limit {
			cut = d
		}
	}
	// The ancestor at depth cut-1 of each folded span.
	anc := func(s *Span) *Span {
		for s != nil && depth[s.ID] >= cut {
			s = byID[s.Parent]
		}
		return s
	}
	type group struct {
		sum   *Span
		kinds map[string]int
		n     int
	}
	groups := map[string]*group{}
	var order []string
	var out []*Span
	for _, s := range t.Spans {
		if depth[s.ID] < cut {
			out = append(out, s)
			continue
		}
		a := anc(s)
		if a == nil {
			out = append(out, s)
			continue
		}
		g := groups[a.ID]
		if g == nil {
			g = &group{sum: &Span{ID: derivedID(a.ID, "summary"), Parent: a.ID, Kind: kindSummary, Object: a.Object,
				ObjectKind: a.ObjectKind, Start: s.Start, End: s.End}, kinds: map[string]int{}}
			groups[a.ID] = g
			order = append(order, a.ID)
		}
		g.n++
		g.kinds[s.Kind]++
		g.sum.Start, g.sum.End = minTime(g.sum.Start, s.Start), maxTime(g.sum.End, s.End)
	}
	for _, id := range order {
		g := groups[id]
		var parts []string
		for k, n := range g.kinds {
			parts = append(parts, fmt.Sprintf("%s×%d", k, n))
		}
		slices.Sort(parts)
		g.sum.Name = fmt.Sprintf("%d spans collapsed: %s", g.n, strings.Join(parts, ", "))
		g.sum.Tags = []Tag{{"collapsed", int64(g.n)}}
		out = append(out, g.sum)
	}
	before := len(t.Spans)
	t.Spans = out
	t.Warnings = append(t.Warnings, fmt.Sprintf("trace has %d spans, over the span limit of %d: levels %d and deeper are collapsed into %d summary spans (%d spans shown)",
		before, limit, cut, len(order), len(out)))
	return t
}

func depths(t *Trace) map[string]int {
	byID := t.byID()
	d := make(map[string]int, len(t.Spans))
	var depth func(s *Span, guard int) int
	depth = func(s *Span, guard int) int {
		if v, ok := d[s.ID]; ok {
			return v
		}
		p := byID[s.Parent]
		v := 0
		if p != nil && guard < 10000 {
			v = depth(p, guard+1) + 1
		}
		d[s.ID] = v
		return v
	}
	for _, s := range t.Spans {
		depth(s, 0)
	}
	return d
}

// derivedID is a deterministic span id for a pseudo-span.
func derivedID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
