package serve

import (
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// manyTagged is a flat trace of n spans, each with string, int and bool tags and a log: more
// attributes than one of ToOTLP's allocation blocks holds.
func manyTagged(n int) *Trace {
	tr := &Trace{ID: TraceID{Pipeline: DefaultPipeline, Start: t0, End: t0.Add(time.Hour)}}
	for i := range n {
		s := &Span{ID: fmt.Sprintf("%016x", i+1), Name: fmt.Sprintf("span %d", i), Kind: "audit",
			Start: t0.Add(time.Duration(i) * time.Millisecond), End: t0.Add(time.Duration(i+1) * time.Millisecond),
			Tags: []Tag{{"k.str", fmt.Sprintf("v-%d", i)}, {"k.int", int64(i)}, {"k.bool", i%2 == 0}, {"k.other", fmt.Sprintf("w-%d", i)}},
			Logs: []Log{{Time: t0, Fields: []Tag{{"event", "e"}, {"f", fmt.Sprintf("l-%d", i)}}}}}
		if i > 0 {
			s.Parent = "0000000000000001"
		}
		tr.Spans = append(tr.Spans, s)
	}
	return tr
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	}
	return fmt.Sprintf("unexpected %T", v.Value)
}

// TestOTLPAttributesAreTheSpansTags: every rendered span carries exactly its own tags and log
// fields, in order, with their types, across many spans (so across ToOTLP's attribute blocks).
func TestOTLPAttributesAreTheSpansTags(t *testing.T) {
	tr := manyTagged(300)
	want := map[string]*Span{}
	for _, s := range tr.Spans {
		want[s.ID] = s
	}
	chunks, err := ToOTLP(tr)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, td := range chunks {
		for _, ss := range td.ResourceSpans[0].ScopeSpans {
			for _, ps := range ss.Spans {
				s := want[hex.EncodeToString(ps.SpanId)]
				if s == nil {
					t.Fatalf("span %x not in the trace", ps.SpanId)
				}
				seen++
				if len(ps.Attributes) != len(s.Tags) {
					t.Fatalf("span %s: %d attributes, want %d", s.ID, len(ps.Attributes), len(s.Tags))
				}
				for i, tag := range s.Tags {
					if kv := ps.Attributes[i]; kv.Key != tag.Key || anyValue(kv.Value) != tag.Value {
						t.Errorf("span %s attribute %d: %s=%v, want %s=%v", s.ID, i, kv.Key, anyValue(kv.Value), tag.Key, tag.Value)
					}
				}
				if len(ps.Events) != 1 || ps.Events[0].Name != "e" || len(ps.Events[0].Attributes) != 1 ||
					anyValue(ps.Events[0].Attributes[0].Value) != s.Logs[0].Fields[1].Value {
					t.Errorf("span %s: events %v, want one named e with f=%v", s.ID, ps.Events, s.Logs[0].Fields[1].Value)
				}
			}
		}
	}
	if seen != len(tr.Spans) {
		t.Errorf("%d spans rendered, want %d", seen, len(tr.Spans))
	}
}

// TestCloneIsIndependent: a display may append to a cloned span's tags or logs; that touches
// neither the original trace nor the clone's other spans.
func TestCloneIsIndependent(t *testing.T) {
	tr := manyTagged(3)
	c := tr.clone()
	c.Spans[0].Tags = append(c.Spans[0].Tags, Tag{"added", "x"})
	c.Spans[0].Logs = append(c.Spans[0].Logs, Log{Time: t0})
	c.Spans[1].Tags[0].Value = "changed"
	if got := c.Spans[1].Tags[0].Key; got != "k.str" {
		t.Errorf("span 1's first tag is %q after appending to span 0's", got)
	}
	if len(c.Spans[1].Logs) != 1 || c.Spans[1].Logs[0].Fields[1].Value != "l-1" {
		t.Errorf("span 1's logs %v after appending to span 0's", c.Spans[1].Logs)
	}
	if len(tr.Spans[0].Tags) != 4 || len(tr.Spans[0].Logs) != 1 || tr.Spans[1].Tags[0].Value != "v-1" {
		t.Error("clone changed the original trace")
	}
}
