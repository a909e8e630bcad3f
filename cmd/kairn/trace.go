package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/link"
	"github.com/kairn-dev/kairn/serve"
)

// runTrace prints one object's trace as an indented tree, for a quick look without Jaeger: the
// same trace `kairn serve` gives the Jaeger UI, through the same display pipeline.
func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trace", "RESOURCE NAME [-n NAMESPACE] [--cluster C] [--uid UID] [--pipeline tracing] [--since T] [--until T] [--archive DIR|s3://...]", stderr)
	archiveFlag := fs.String("archive", defaultArchive, "archive to read: a directory or s3://bucket/prefix")
	var namespace string
	fs.StringVar(&namespace, "namespace", "", "the object's namespace (empty: any, or a cluster-scoped object)")
	fs.StringVar(&namespace, "n", "", "shorthand for --namespace")
	cluster := fs.String("cluster", "", "the object's cluster (empty: any)")
	uid := fs.String("uid", "", "pick one of several objects that had the name")
	pipelineFlag := fs.String("pipeline", serve.DefaultPipeline.String(), "display pipeline, as the Jaeger UI's service: tracing, tree, timeline, grouping, each optionally with [full tree], [ancestors] or [children]")
	sinceFlag := fs.String("since", "", "only objects seen from this time (RFC 3339, 2006-01-02[T15:04], or an offset from now: -24h, -7d)")
	untilFlag := fs.String("until", "", "only objects seen up to this time (same forms)")
	window := fs.Duration("window", link.DefaultWindow, "window length the archive was written with")
	wide := fs.Bool("wide", false, "print long diffs and messages whole (default: cut at 160 characters)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return usageErr("give a resource and a name, e.g. `kairn trace deployment web -n shop` (have %q)", rest)
	}
	pipeline, err := serve.ParsePipeline(*pipelineFlag)
	if err != nil {
		return usageErr("--pipeline: %v", err)
	}
	since, err := parseTimeFlag("since", *sinceFlag)
	if err != nil {
		return err
	}
	until, err := parseTimeFlag("until", *untilFlag)
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return usageErr("--since %s is not before --until %s", *sinceFlag, *untilFlag)
	}
	store, err := archive.OpenStore(ctx, *archiveFlag)
	if err != nil {
		return err
	}
	srv := serve.New(store, serve.Config{Reader: serve.ReaderConfig{Window: *window}, SpanLimit: -1})
	found, err := findObject(ctx, srv, objectQuery{
		resource: rest[0], name: rest[1], namespace: namespace, cluster: *cluster, uid: *uid,
		pipeline: pipeline, since: since, until: until,
	})
	if err != nil {
		return err
	}
	if len(found) > 1 {
		fmt.Fprintf(stderr, "kairn trace: %d objects had this name; showing the newest (uid %s); --uid picks another: %s\n",
			len(found), found[0].Object.UID, strings.Join(uids(found[1:]), ", "))
	}
	t, err := srv.GetTrace(ctx, found[0].ID)
	if err != nil {
		return err
	}
	width := 160
	if *wide {
		width = 0
	}
	printTrace(stdout, t, width)
	return nil
}

type objectQuery struct {
	resource, name, namespace, cluster, uid string
	pipeline                                serve.Pipeline
	since, until                            time.Time
}

// findObject finds the traces of the object a user named the way kubectl lets them: a resource
// (plural, singular, short name or Kind, optionally resource.group) and a name. Several
// incarnations of the name come newest first; names in several namespaces or clusters are an
// error that lists them, since picking one would show the wrong story.
func findObject(ctx context.Context, srv *serve.Server, q objectQuery) ([]serve.Found, error) {
	resource, group, hasGroup := strings.Cut(strings.ToLower(q.resource), ".")
	var tried []string
	for _, r := range resourceCandidates(resource) {
		tags := map[string]string{"resource": r, "name": q.name}
		for k, v := range map[string]string{"namespace": q.namespace, "cluster": q.cluster, "uid": q.uid} {
			if v != "" {
				tags[k] = v
			}
		}
		if hasGroup {
			tags["group"] = group
		}
		found, err := srv.FindTraceIDs(ctx, serve.Query{Pipeline: q.pipeline, Cluster: q.cluster, Tags: tags, Start: q.since, End: q.until, Limit: 100})
		if err != nil {
			return nil, err
		}
		tried = append(tried, r)
		if len(found) == 0 {
			continue
		}
		places := map[string]bool{}
		for _, f := range found {
			places[f.Object.Cluster+"/"+f.Object.Group+"/"+f.Object.Namespace] = true
		}
		if len(places) > 1 {
			var names []string
			for _, f := range found {
				names = append(names, fmt.Sprintf("%s (uid %s)", f.Object, f.Object.UID))
			}
			slices.Sort(names)
			return nil, usageErr("%s %s names several objects; pick one with -n, --cluster or --uid:\n  %s", q.resource, q.name, strings.Join(slices.Compact(names), "\n  "))
		}
		return found, nil
	}
	where := ""
	if q.namespace != "" {
		where = " in namespace " + q.namespace
	}
	if q.cluster != "" {
		where += " in cluster " + q.cluster
	}
	return nil, fmt.Errorf("no %s named %q%s in the archive (looked for resource %s%s)", q.resource, q.name, where, strings.Join(tried, ", "), rangeNote(q.since, q.until))
}

func rangeNote(since, until time.Time) string {
	switch {
	case since.IsZero() && until.IsZero():
		return ""
	case until.IsZero():
		return " since " + since.Format(time.RFC3339)
	case since.IsZero():
		return " until " + until.Format(time.RFC3339)
	}
	return " between " + since.Format(time.RFC3339) + " and " + until.Format(time.RFC3339)
}

// shortNames are kubectl's short names for the built-in resources kairn's traces are mostly about.
var shortNames = map[string]string{
	"deploy": "deployments", "rs": "replicasets", "sts": "statefulsets", "ds": "daemonsets", "po": "pods",
	"svc": "services", "no": "nodes", "ns": "namespaces", "cm": "configmaps", "ep": "endpoints", "cj": "cronjobs",
	"pvc": "persistentvolumeclaims", "pv": "persistentvolumes", "sa": "serviceaccounts", "ing": "ingresses",
	"hpa": "horizontalpodautoscalers", "pdb": "poddisruptionbudgets", "ev": "events", "crd": "customresourcedefinitions",
}

// resourceCandidates are the resource names a user's word may mean, most likely first.
func resourceCandidates(word string) []string {
	out := []string{word}
	if r, ok := shortNames[word]; ok {
		out = append([]string{r}, out...)
	}
	if plural := link.ResourceFor("", word); plural != word {
		out = append(out, plural)
	}
	return slices.Compact(out)
}

func uids(found []serve.Found) []string {
	var out []string
	for _, f := range found {
		out = append(out, f.Object.UID)
	}
	return out
}

// printTrace writes a trace as an indented tree: each span, then its logs and child spans in
// time order, so the story reads top to bottom; changes show their field diffs.
// Lines longer than width (0: no limit) are cut: an object's status as one JSON value would
// otherwise bury the story.
func printTrace(w io.Writer, t *serve.Trace, width int) {
	children := map[string][]*serve.Span{}
	ids := map[string]bool{}
	for _, s := range t.Spans {
		ids[s.ID] = true
	}
	var roots []*serve.Span
	for _, s := range t.Spans {
		if s.Parent == "" || !ids[s.Parent] {
			roots = append(roots, s)
		} else {
			children[s.Parent] = append(children[s.Parent], s)
		}
	}
	if len(roots) == 0 {
		fmt.Fprintln(w, "(empty trace)")
		return
	}
	byTime := func(a, b *serve.Span) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	}
	slices.SortStableFunc(roots, byTime)
	day := roots[0].Start.UTC().Format("2006-01-02")
	fmt.Fprintf(w, "trace %s (%s, times UTC on %s)\n", t.ID, t.ID.Pipeline, day)
	for _, warn := range t.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	p := tracePrinter{w: w, width: width, day: day, children: children, byTime: byTime}
	for _, r := range roots {
		p.span(r, 0)
	}
}

type tracePrinter struct {
	w        io.Writer
	width    int
	day      string
	children map[string][]*serve.Span
	byTime   func(a, b *serve.Span) int
}

// clock is a time of day to the microsecond, with the date where it is not the trace's first day.
func (p tracePrinter) clock(t time.Time) string {
	t = t.UTC()
	if d := t.Format("2006-01-02"); d != p.day {
		return d + " " + t.Format("15:04:05.000000")
	}
	return t.Format("15:04:05.000000")
}

func (p tracePrinter) span(s *serve.Span, depth int) {
	indent := strings.Repeat("  ", depth)
	p.line(fmt.Sprintf("%s%s  %s → %s%s", indent, s.Name, p.clock(s.Start), p.clock(s.End), spanDetail(s)))
	for _, d := range s.Diffs {
		p.line(indent + "      " + d)
	}
	// Logs and child spans, merged in time order.
	kids := slices.Clone(p.children[s.ID])
	slices.SortStableFunc(kids, p.byTime)
	logs := slices.Clone(s.Logs)
	slices.SortStableFunc(logs, func(a, b serve.Log) int { return a.Time.Compare(b.Time) })
	for len(kids) > 0 || len(logs) > 0 {
		if len(logs) > 0 && (len(kids) == 0 || !kids[0].Start.Before(logs[0].Time)) {
			p.log(logs[0], depth+1)
			logs = logs[1:]
			continue
		}
		p.span(kids[0], depth+1)
		kids = kids[1:]
	}
}

func (p tracePrinter) log(l serve.Log, depth int) {
	indent := strings.Repeat("  ", depth)
	var name string
	var diffs []string
	var tags []serve.Tag
	for _, f := range l.Fields {
		switch f.Key {
		case "event":
			name = fmt.Sprint(f.Value)
		case "diff":
			diffs = append(diffs, fmt.Sprint(f.Value))
		default:
			tags = append(tags, f)
		}
	}
	p.line(fmt.Sprintf("%s%s  %s%s", indent, p.clock(l.Time), name, detail(tags)))
	for _, d := range diffs {
		p.line(indent + "    " + d)
	}
}

func (p tracePrinter) line(s string) {
	if r := []rune(s); p.width > 0 && len(r) > p.width {
		s = string(r[:p.width-1]) + "…"
	}
	fmt.Fprintln(p.w, s)
}

func spanDetail(s *serve.Span) string {
	if s.Kind == archive.KindObject {
		for _, t := range s.Tags {
			if t.Key == "uid" && t.Value != "" {
				return fmt.Sprintf("  uid %v", t.Value)
			}
		}
		return ""
	}
	return detail(s.Tags)
}

// detail is the part of an observation's tags a person reads first: who, what came back, why.
func detail(tags []serve.Tag) string {
	get := func(k string) string {
		for _, t := range tags {
			if t.Key == k {
				return fmt.Sprint(t.Value)
			}
		}
		return ""
	}
	var parts []string
	if u := get("user"); u != "" {
		parts = append(parts, "by "+u)
	}
	if c := get("status_code"); c != "" && !strings.HasPrefix(c, "2") {
		parts = append(parts, "→ "+c)
	}
	if get("no_op") == "true" {
		parts = append(parts, "(no change)")
	}
	if m := get("message"); m != "" {
		parts = append(parts, fmt.Sprintf("%q", m))
	}
	if len(parts) == 0 {
		return ""
	}
	return "  " + strings.Join(parts, " ")
}
