package serve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kairn-dev/kairn/archive"
)

// GCPercent is the garbage collector target `kairn serve` runs with (runtime/debug.SetGCPercent),
// and so the one its benchmark measures: rendering a trace allocates a span, its tags and their
// OTLP messages for every row, and at Go's default of 100 the collector took a quarter to a third
// of the CPU of a fetch (BenchmarkTrace48Windows, docs/query-server.md). The server's caches are
// bounded, so the heap stays bounded too: at most about five times what is live.
const GCPercent = 400

// Config configures a Server.
type Config struct {
	Reader ReaderConfig
	// SpanLimit bounds the spans of one rendered trace (default 10,000): above it the deepest
	// levels are collapsed into summary spans and the trace's warnings say so.
	SpanLimit int
	// Timeout bounds one request (default 60s); a request that runs out says so.
	Timeout time.Duration
}

// Server answers trace queries over one archive, for the gRPC and HTTP front ends.
type Server struct {
	reader *Reader
	cfg    Config
}

// New returns a Server reading store.
func New(store archive.Store, cfg Config) *Server {
	if cfg.SpanLimit == 0 {
		cfg.SpanLimit = 10_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	return &Server{reader: NewReader(store, cfg.Reader), cfg: cfg}
}

// ErrBadRequest wraps every error caused by the request itself (bad id, service, tag, time).
var ErrBadRequest = errors.New("bad request")

func badRequest(err error) error { return fmt.Errorf("%w: %w", ErrBadRequest, err) }

func (s *Server) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// timeoutError makes a deadline say what ran out.
func (s *Server) timeoutError(ctx context.Context, what string, err error) error {
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s: gave up after the server's %s request timeout: %w", what, s.cfg.Timeout, context.DeadlineExceeded)
	}
	return err
}

// Services are the display pipelines.
func (s *Server) Services() []string {
	var out []string
	for _, p := range Pipelines() {
		out = append(out, p.String())
	}
	return out
}

// Operations are the clusters; service must be a pipeline.
func (s *Server) Operations(ctx context.Context, service string) ([]string, error) {
	if _, err := ParsePipeline(service); err != nil {
		return nil, badRequest(err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	out, err := s.reader.Clusters(ctx)
	return out, s.timeoutError(ctx, "list clusters", err)
}

// GetTrace reads, assembles and renders the trace id names.
func (s *Server) GetTrace(ctx context.Context, id TraceID) (*Trace, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	t, err := s.reader.Trace(ctx, id)
	if err != nil {
		return nil, s.timeoutError(ctx, "trace "+id.String(), err)
	}
	return Collapse(Apply(id.Pipeline, t), s.cfg.SpanLimit), nil
}

// FindTraceIDs returns the ids of the traces a query matches.
func (s *Server) FindTraceIDs(ctx context.Context, q Query) ([]Found, error) {
	if err := CheckTags(q.Tags); err != nil {
		return nil, badRequest(err)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return nil, badRequest(fmt.Errorf("time range ends (%s) before it starts (%s)", q.End.Format(time.RFC3339), q.Start.Format(time.RFC3339)))
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	found, err := s.reader.Find(ctx, q)
	return found, s.timeoutError(ctx, "search", err)
}

// FindTraces returns the rendered traces a query matches.
func (s *Server) FindTraces(ctx context.Context, q Query) ([]*Trace, error) {
	found, err := s.FindTraceIDs(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []*Trace
	for _, f := range found {
		t, err := s.GetTrace(ctx, f.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
