package serve

import (
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// jaegerWarnings is the span attribute jaeger-query (v2) reads span warnings from.
const jaegerWarnings = "@jaeger@warnings"

// spanTags are a span's tags as shown: its own, its diffs, its links.
func spanTags(s *Span) []Tag {
	tags := slices.Clone(s.Tags)
	for _, d := range s.Diffs {
		tags = append(tags, Tag{"diff", d})
	}
	for _, l := range s.Links {
		tags = append(tags, Tag{"link." + l.Relation, l.SpanID})
	}
	return tags
}

// sortedSpans orders spans by start time, parents before children where times tie.
func sortedSpans(t *Trace) []*Span {
	spans := slices.Clone(t.Spans)
	depth := depths(t)
	slices.SortStableFunc(spans, func(a, b *Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return depth[a.ID] - depth[b.ID]
	})
	return spans
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
	var attrs attrSlab
	var out []*tracepb.TracesData
	var cur *tracepb.ScopeSpans
	for i, s := range sortedSpans(t) {
		if i%OTLPChunkSpans == 0 {
			cur = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "kairn"}}
			out = append(out, &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
				Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", t.ID.Pipeline.String())}},
				ScopeSpans: []*tracepb.ScopeSpans{cur},
			}}})
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
		tags := spanTags(s)
		ps.Attributes = make([]*commonpb.KeyValue, 0, len(tags)+1) // +1: warnings on roots
		for _, tag := range tags {
			ps.Attributes = append(ps.Attributes, attrs.tag(tag))
			if tag.Key == "error" && tag.Value == true {
				ps.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
			}
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

// ToUI renders a trace in Jaeger's UI JSON.
func ToUI(t *Trace) UITrace {
	tid := t.ID.String()
	byID := t.byID()
	out := UITrace{TraceID: tid, Spans: []UISpan{}, Warnings: t.Warnings,
		Processes: map[string]UIProcess{"p1": {ServiceName: t.ID.Pipeline.String(), Tags: []UIKeyValue{}}}}
	for _, s := range sortedSpans(t) {
		us := UISpan{TraceID: tid, SpanID: s.ID, OperationName: s.Name, References: []UIReference{},
			StartTime: unixMicro(s.Start), Duration: unixMicro(maxTime(s.End, s.Start)) - unixMicro(s.Start),
			Tags: []UIKeyValue{}, Logs: []UILog{}, ProcessID: "p1"}
		if p := byID[s.Parent]; p != nil {
			us.References = append(us.References, UIReference{RefType: "CHILD_OF", TraceID: tid, SpanID: p.ID})
		}
		for _, tag := range spanTags(s) {
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
