package serve

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// jaegerWarnings is the span attribute jaeger-query (v2) reads span warnings from.
const jaegerWarnings = "@jaeger@warnings"

// spanTags are a span's tags as shown: its own, its diffs, its links (the target's name, and
// the target's trace id where the target is not in this trace). errorAsTag leaves out the
// error tag where the format says so otherwise (OTLP's status): Jaeger would show both.
func spanTags(t *Trace, s *Span, inTrace map[string]*Span, errorAsTag bool) []Tag {
	tags := make([]Tag, 0, len(s.Tags)+len(s.Diffs)+2*len(s.Links))
	for _, tag := range s.Tags {
		if errorAsTag || tag.Key != "error" {
			tags = append(tags, tag)
		}
	}
	for _, d := range s.Diffs {
		tags = append(tags, diffTag(d))
	}
	for _, l := range s.Links {
		tags = append(tags, Tag{"link." + l.Relation, l.TargetName})
		if inTrace[l.SpanID] == nil {
			tags = append(tags, Tag{"link." + l.Relation + ".trace_id", linkTraceID(t, l).String()})
		}
	}
	return tags
}

// diffTag is a field diff as a tag keyed by its path ("diff.spec.replicas" = "2 → 3"): a span's
// tag keys are unique (OTLP requires it of attributes, and Jaeger UI lists repeated keys as one
// tag's several values), while a change usually touches several fields.
func diffTag(d string) Tag {
	path, change, ok := strings.Cut(d, ": ")
	if !ok {
		return Tag{"diff", d}
	}
	return Tag{"diff." + path, change}
}

// linkTraceID is the trace of a link's target outside this trace: the target object's, through
// the same pipeline, over the same time range (stateless, like every kairn trace id).
func linkTraceID(t *Trace, l SpanLink) TraceID {
	return newTraceID(t.ID.Pipeline, l.Target, t.ID.Start, t.ID.End)
}

// followable says whether a link is rendered as a reference Jaeger UI can follow. jaeger-ui takes
// a span's first reference as its parent, so a root span gets no reference into its own trace
// (it would be drawn under the link's target); a reference to another trace is drawn as a link
// to it.
func followable(s *Span, l SpanLink, inTrace map[string]*Span) bool {
	return s.Parent != "" || inTrace[l.SpanID] == nil
}

// sortedSpans orders spans by start time, then parents before children, then by name and id:
// the same order of siblings in every display.
func sortedSpans(t *Trace) []*Span {
	spans := slices.Clone(t.Spans)
	depth := depths(t)
	slices.SortStableFunc(spans, func(a, b *Span) int {
		return cmp.Or(a.Start.Compare(b.Start), depth[a.ID]-depth[b.ID], cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return spans
}

// services names each span's Jaeger service: its object's kind ("Pod"), or "cluster/kind" when
// the trace shows objects of several clusters, so the UI colours and counts spans by kind. The
// pipeline stays the search's service (GetServices) and is a tag of every service.
type services struct{ clusters bool }

func newServices(t *Trace) services {
	cluster := ""
	for _, s := range t.Spans {
		if cluster == "" {
			cluster = s.Object.Cluster
		} else if s.Object.Cluster != "" && s.Object.Cluster != cluster {
			return services{clusters: true}
		}
	}
	return services{}
}

func (v services) of(s *Span) string {
	kind := s.ObjectKind
	if kind == "" {
		kind = s.Object.Resource
	}
	if v.clusters {
		return s.Object.Cluster + "/" + kind
	}
	return kind
}

// ---- OTLP, for the gRPC storage API ----

// OTLPChunkSpans is how many spans go into one streamed TracesData message (jaeger-query
// stitches the chunks of a trace back together), which keeps each message far below gRPC's
// default 4 MiB limit.
const OTLPChunkSpans = 1000

// ToOTLP renders a trace as OTLP TracesData messages of at most OTLPChunkSpans spans each. The
// trace's warnings go on its root spans as Jaeger's warnings attribute.
func ToOTLP(t *Trace) ([]*tracepb.TracesData, error) {
	tid, err := t.ID.Bytes()
	if err != nil {
		return nil, err
	}
	byID := t.byID()
	svc := newServices(t)
	pipeline := t.ID.Pipeline.String()
	var attrs attrSlab
	var out []*tracepb.TracesData
	var scopes map[string]*tracepb.ScopeSpans // this chunk's, by service
	for i, s := range sortedSpans(t) {
		if i%OTLPChunkSpans == 0 {
			out = append(out, &tracepb.TracesData{})
			scopes = map[string]*tracepb.ScopeSpans{}
		}
		service := svc.of(s)
		cur := scopes[service]
		if cur == nil {
			cur = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "kairn"}}
			scopes[service] = cur
			td := out[len(out)-1]
			td.ResourceSpans = append(td.ResourceSpans, &tracepb.ResourceSpans{
				Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", service), strKV("kairn.pipeline", pipeline)}},
				ScopeSpans: []*tracepb.ScopeSpans{cur},
			})
		}
		sid, err := spanIDBytes(s.ID)
		if err != nil {
			return nil, err
		}
		ps := &tracepb.Span{
			TraceId: tid[:], SpanId: sid, Name: s.Name, Kind: tracepb.Span_SPAN_KIND_INTERNAL,
			StartTimeUnixNano: unixNano(s.Start), EndTimeUnixNano: unixNano(maxTime(s.End, s.Start)),
		}
		if p := byID[s.Parent]; p != nil {
			if ps.ParentSpanId, err = spanIDBytes(p.ID); err != nil {
				return nil, err
			}
		}
		tags := spanTags(t, s, byID, false)
		ps.Attributes = make([]*commonpb.KeyValue, 0, len(tags)+1) // +1: warnings on roots
		for _, tag := range tags {
			ps.Attributes = append(ps.Attributes, attrs.tag(tag))
		}
		if isError(s) {
			ps.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
		}
		for _, l := range s.Links {
			if !followable(s, l, byID) {
				continue
			}
			lid, err := spanIDBytes(l.SpanID)
			if err != nil {
				return nil, err
			}
			ltid := tid
			if byID[l.SpanID] == nil {
				if ltid, err = linkTraceID(t, l).Bytes(); err != nil {
					return nil, err
				}
			}
			ps.Links = append(ps.Links, &tracepb.Span_Link{TraceId: ltid[:], SpanId: lid,
				Attributes: []*commonpb.KeyValue{attrs.str("relation", l.Relation), attrs.str("target", l.TargetName)}})
		}
		for _, l := range s.Logs {
			ev := &tracepb.Span_Event{TimeUnixNano: unixNano(l.Time)}
			for _, f := range l.Fields {
				if f.Key == "event" && ev.Name == "" {
					ev.Name, _ = f.Value.(string)
					continue
				}
				ev.Attributes = append(ev.Attributes, attrs.tag(f))
			}
			ps.Events = append(ps.Events, ev)
		}
		if s.Parent == "" && len(t.Warnings) > 0 {
			var vals []*commonpb.AnyValue
			for _, w := range t.Warnings {
				vals = append(vals, &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: w}})
			}
			ps.Attributes = append(ps.Attributes, &commonpb.KeyValue{Key: jaegerWarnings,
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vals}}}})
		}
		cur.Spans = append(cur.Spans, ps)
	}
	return out, nil
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

func spanIDBytes(id string) ([]byte, error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 8 {
		return nil, fmt.Errorf("bad span id %q in the archive", id)
	}
	return b, nil
}

func strKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// attrSlab allocates a trace's string attributes in blocks: a trace has ~10 per span, three
// small messages each, and allocating them one by one was half of rendering it.
// Blocks start small and double up to 1,024 attributes, so a small trace allocates little.
type attrSlab struct {
	kvs   []commonpb.KeyValue
	anys  []commonpb.AnyValue
	strs  []commonpb.AnyValue_StringValue
	block int
}

func (a *attrSlab) str(k, v string) *commonpb.KeyValue {
	if len(a.kvs) == 0 {
		a.block = min(max(2*a.block, 64), 1024)
		a.kvs = make([]commonpb.KeyValue, a.block)
		a.anys = make([]commonpb.AnyValue, a.block)
		a.strs = make([]commonpb.AnyValue_StringValue, a.block)
	}
	kv, av, sv := &a.kvs[0], &a.anys[0], &a.strs[0]
	a.kvs, a.anys, a.strs = a.kvs[1:], a.anys[1:], a.strs[1:]
	sv.StringValue = v
	av.Value = sv
	kv.Key, kv.Value = k, av
	return kv
}

func (a *attrSlab) tag(t Tag) *commonpb.KeyValue {
	switch v := t.Value.(type) {
	case int64:
		return &commonpb.KeyValue{Key: t.Key, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
	case bool:
		return &commonpb.KeyValue{Key: t.Key, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
	case string: // most tags: not through fmt
		return a.str(t.Key, v)
	default:
		return a.str(t.Key, fmt.Sprint(v))
	}
}

// ---- Jaeger's UI JSON, for the HTTP API ----

// UITrace is a trace in the JSON shape of Jaeger's HTTP API (jaeger-query's uimodel).
type UITrace struct {
	TraceID   string               `json:"traceID"`
	Spans     []UISpan             `json:"spans"`
	Processes map[string]UIProcess `json:"processes"`
	Warnings  []string             `json:"warnings"`
}

// UISpan is a span of a UITrace.
type UISpan struct {
	TraceID       string        `json:"traceID"`
	SpanID        string        `json:"spanID"`
	OperationName string        `json:"operationName"`
	References    []UIReference `json:"references"`
	StartTime     uint64        `json:"startTime"` // µs since the epoch
	Duration      uint64        `json:"duration"`  // µs
	Tags          []UIKeyValue  `json:"tags"`
	Logs          []UILog       `json:"logs"`
	ProcessID     string        `json:"processID"`
	Warnings      []string      `json:"warnings"`
}

// UIReference is a span reference.
type UIReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// UIKeyValue is a tag or log field.
type UIKeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// UILog is a span log.
type UILog struct {
	Timestamp uint64       `json:"timestamp"`
	Fields    []UIKeyValue `json:"fields"`
}

// UIProcess is the process (service) of spans.
type UIProcess struct {
	ServiceName string       `json:"serviceName"`
	Tags        []UIKeyValue `json:"tags"`
}

// ToUI renders a trace in Jaeger's UI JSON: one process per service (services.of).
func ToUI(t *Trace) UITrace {
	tid := t.ID.String()
	byID := t.byID()
	svc := newServices(t)
	out := UITrace{TraceID: tid, Spans: []UISpan{}, Warnings: t.Warnings, Processes: map[string]UIProcess{}}
	processOf := map[string]string{}
	for _, s := range sortedSpans(t) {
		service := svc.of(s)
		pid := processOf[service]
		if pid == "" {
			pid = "p" + strconv.Itoa(len(processOf)+1)
			processOf[service] = pid
			out.Processes[pid] = UIProcess{ServiceName: service, Tags: []UIKeyValue{}}
		}
		us := UISpan{TraceID: tid, SpanID: s.ID, OperationName: s.Name, References: []UIReference{},
			StartTime: unixMicro(s.Start), Duration: unixMicro(maxTime(s.End, s.Start)) - unixMicro(s.Start),
			Tags: []UIKeyValue{}, Logs: []UILog{}, ProcessID: pid}
		if p := byID[s.Parent]; p != nil {
			us.References = append(us.References, UIReference{RefType: "CHILD_OF", TraceID: tid, SpanID: p.ID})
		}
		for _, l := range s.Links {
			if !followable(s, l, byID) {
				continue
			}
			ref := UIReference{RefType: "FOLLOWS_FROM", TraceID: tid, SpanID: l.SpanID}
			if byID[l.SpanID] == nil {
				ref.TraceID = linkTraceID(t, l).String()
			}
			us.References = append(us.References, ref)
		}
		for _, tag := range spanTags(t, s, byID, true) {
			us.Tags = append(us.Tags, uiKV(tag))
		}
		for _, l := range s.Logs {
			ul := UILog{Timestamp: unixMicro(l.Time), Fields: []UIKeyValue{}}
			for _, f := range l.Fields {
				ul.Fields = append(ul.Fields, uiKV(f))
			}
			us.Logs = append(us.Logs, ul)
		}
		out.Spans = append(out.Spans, us)
	}
	return out
}

func unixMicro(t time.Time) uint64 {
	if t.IsZero() || t.UnixMicro() < 0 {
		return 0
	}
	return uint64(t.UnixMicro())
}

func uiKV(t Tag) UIKeyValue {
	switch v := t.Value.(type) {
	case int64:
		return UIKeyValue{Key: t.Key, Type: "int64", Value: v}
	case bool:
		return UIKeyValue{Key: t.Key, Type: "bool", Value: v}
	case string:
		return UIKeyValue{Key: t.Key, Type: "string", Value: v}
	default:
		return UIKeyValue{Key: t.Key, Type: "string", Value: fmt.Sprint(v)}
	}
}
