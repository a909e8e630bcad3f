package serve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/kairn-dev/kairn/serve/internal/storagev2"
)

// RegisterGRPC registers Jaeger's remote storage v2 TraceReader and DependencyReader on g.
func (s *Server) RegisterGRPC(g *grpc.Server) {
	storagev2.RegisterTraceReaderServer(g, &traceReader{s: s})
	storagev2.RegisterDependencyReaderServer(g, dependencyReader{})
}

type traceReader struct {
	storagev2.UnimplementedTraceReaderServer
	s *Server
}

// grpcError maps errors to gRPC status codes: the caller's mistakes are InvalidArgument.
func grpcError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrBadTraceID):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrTooLarge):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func sendTrace(t *Trace, send func(*tracepb.TracesData) error) error {
	chunks, err := ToOTLP(t)
	if err != nil {
		return grpcError(err)
	}
	for _, c := range chunks {
		if err := send(c); err != nil {
			return err
		}
	}
	return nil
}

func (r *traceReader) GetTraces(req *storagev2.GetTracesRequest, stream grpc.ServerStreamingServer[tracepb.TracesData]) error {
	for _, q := range req.GetQuery() {
		id, err := DecodeTraceID(q.GetTraceId())
		if err != nil {
			return grpcError(err)
		}
		t, err := r.s.GetTrace(stream.Context(), id)
		if errors.Is(err, ErrNotFound) {
			continue // Jaeger expects no data for a trace that is not there
		}
		if err != nil {
			return grpcError(err)
		}
		if err := sendTrace(t, stream.Send); err != nil {
			return err
		}
	}
	return nil
}

func (r *traceReader) GetServices(context.Context, *storagev2.GetServicesRequest) (*storagev2.GetServicesResponse, error) {
	return &storagev2.GetServicesResponse{Services: r.s.Services()}, nil
}

func (r *traceReader) GetOperations(ctx context.Context, req *storagev2.GetOperationsRequest) (*storagev2.GetOperationsResponse, error) {
	ops, err := r.s.Operations(ctx, req.GetService())
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &storagev2.GetOperationsResponse{}
	for _, o := range ops {
		resp.Operations = append(resp.Operations, &storagev2.Operation{Name: o})
	}
	return resp, nil
}

// queryOf translates Jaeger's search parameters: service = pipeline, operation = cluster,
// attributes = search tags.
func queryOf(p *storagev2.TraceQueryParameters) (Query, error) {
	if p == nil {
		return Query{}, badRequest(errors.New("no query"))
	}
	pl, err := ParsePipeline(p.GetServiceName())
	if err != nil {
		return Query{}, badRequest(err)
	}
	q := Query{Pipeline: pl, Cluster: p.GetOperationName(), Tags: map[string]string{}, Limit: int(p.GetSearchDepth())}
	if q.Cluster == "all" {
		q.Cluster = ""
	}
	for _, kv := range p.GetAttributes() {
		v, ok := kv.GetValue().GetValue().(*storagev2.AnyValue_StringValue)
		if !ok {
			return Query{}, badRequest(fmt.Errorf("search tag %q: only string values can be searched", kv.GetKey()))
		}
		q.Tags[kv.GetKey()] = v.StringValue
	}
	if ts := p.GetStartTimeMin(); ts != nil {
		q.Start = ts.AsTime()
	}
	if ts := p.GetStartTimeMax(); ts != nil {
		q.End = ts.AsTime()
	}
	return q, nil
}

func (r *traceReader) FindTraces(req *storagev2.FindTracesRequest, stream grpc.ServerStreamingServer[tracepb.TracesData]) error {
	q, err := queryOf(req.GetQuery())
	if err != nil {
		return grpcError(err)
	}
	traces, err := r.s.FindTraces(stream.Context(), q)
	if err != nil {
		return grpcError(err)
	}
	for _, t := range traces {
		if err := sendTrace(t, stream.Send); err != nil {
			return err
		}
	}
	return nil
}

func (r *traceReader) FindTraceIDs(ctx context.Context, req *storagev2.FindTracesRequest) (*storagev2.FindTraceIDsResponse, error) {
	q, err := queryOf(req.GetQuery())
	if err != nil {
		return nil, grpcError(err)
	}
	found, err := r.s.FindTraceIDs(ctx, q)
	if err != nil {
		return nil, grpcError(err)
	}
	resp := &storagev2.FindTraceIDsResponse{}
	for _, f := range found {
		b, err := f.ID.Bytes()
		if err != nil {
			return nil, grpcError(err)
		}
		resp.TraceIds = append(resp.TraceIds, &storagev2.FoundTraceID{TraceId: b[:], Start: timestamppb.New(f.ID.Start), End: timestamppb.New(f.ID.End)})
	}
	return resp, nil
}

// dependencyReader answers that there are no service dependencies: kairn's services are
// display pipelines, which do not call each other.
type dependencyReader struct {
	storagev2.UnimplementedDependencyReaderServer
}

func (dependencyReader) GetDependencies(_ context.Context, req *storagev2.GetDependenciesRequest) (*storagev2.GetDependenciesResponse, error) {
	if s, e := req.GetStartTime(), req.GetEndTime(); s != nil && e != nil && e.AsTime().Before(s.AsTime()) {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("end %s is before start %s", e.AsTime().Format(time.RFC3339), s.AsTime().Format(time.RFC3339)))
	}
	return &storagev2.GetDependenciesResponse{}, nil
}
