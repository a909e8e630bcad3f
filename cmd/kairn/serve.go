package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/link"
	"github.com/kairn-dev/kairn/serve"
)

// serveConfig is what `kairn serve` runs with.
type serveConfig struct {
	Archive   string
	GRPCAddr  string
	HTTPAddr  string
	Window    time.Duration
	SpanLimit int
	Timeout   time.Duration
	Metrics   string
	GCPercent int
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("serve", "[--archive DIR|s3://bucket/prefix] [--grpc-addr 127.0.0.1:17271] [--http-addr 127.0.0.1:16687]", stderr)
	var cfg serveConfig
	fs.StringVar(&cfg.Archive, "archive", defaultArchive, "archive to read: a directory or s3://bucket/prefix (read-only)")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:17271", "Jaeger remote storage v2 gRPC API (point jaeger-query's grpc backend here); empty: off")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:16687", "Jaeger HTTP JSON API (/api/traces, … for curl and Grafana); empty: off")
	fs.DurationVar(&cfg.Window, "window", link.DefaultWindow, "window length the archive was written with")
	fs.IntVar(&cfg.SpanLimit, "span-limit", 10_000, "most spans in one trace; above it the deepest levels are collapsed into summary spans (-1: no limit)")
	fs.DurationVar(&cfg.Timeout, "timeout", time.Minute, "longest time one request may take")
	fs.StringVar(&cfg.Metrics, "metrics-addr", "127.0.0.1:9467", "/metrics, /healthz and /readyz; empty: off")
	gc := serve.GCPercent
	if os.Getenv("GOGC") != "" {
		gc = 0 // the operator's GOGC wins unless the flag is given
	}
	fs.IntVar(&cfg.GCPercent, "gc-percent", gc, "garbage collector target (GOGC): a higher one trades memory for CPU per request; 0: keep $GOGC or Go's default of 100")
	logs := addLogFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usageErr("unexpected arguments %q", rest)
	case cfg.GRPCAddr == "" && cfg.HTTPAddr == "":
		return usageErr("both --grpc-addr and --http-addr are off: nothing to serve")
	case cfg.Window < time.Minute:
		return usageErr("--window %s is shorter than 1m", cfg.Window)
	case cfg.GCPercent < 0:
		return usageErr("--gc-percent %d is negative (0 keeps the runtime's setting)", cfg.GCPercent)
	}
	if cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	store, err := archive.OpenStore(ctx, cfg.Archive)
	if err != nil {
		return err
	}
	return serveArchive(ctx, store, cfg, log)
}

// requestMetrics are the query server's request metrics, for both APIs.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) requestMetrics {
	m := requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_serve_requests_total",
			Help: "Query server requests by API (grpc, http), method and result code."}, []string{"api", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kairn_serve_request_duration_seconds",
			Help: "Query server request latency by API and method.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"api", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m requestMetrics) observe(api, method, code string, start time.Time) {
	m.requests.WithLabelValues(api, method, code).Inc()
	m.duration.WithLabelValues(api, method).Observe(time.Since(start).Seconds())
}

func (m requestMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe("grpc", path.Base(info.FullMethod), status.Code(err).String(), start)
	return resp, err
}

func (m requestMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe("grpc", path.Base(info.FullMethod), status.Code(err).String(), start)
	return err
}

// httpRoute names a request by its API route, not its path, so trace ids do not become labels.
func httpRoute(p string) string {
	switch {
	case strings.HasPrefix(p, "/api/traces/"):
		return "/api/traces/{id}"
	case strings.HasPrefix(p, "/api/services/"):
		return "/api/services/{service}/operations"
	case p == "/api/traces" || p == "/api/services":
		return p
	}
	return "other"
}

func (m requestMetrics) http(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.observe("http", httpRoute(r.URL.Path), strconv.Itoa(rec.code), start)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// serveArchive runs the query server until ctx ends.
func serveArchive(ctx context.Context, store archive.Store, cfg serveConfig, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := newRequestMetrics(reg)
	var ready atomic.Bool
	if cfg.Metrics != "" {
		stop, err := serveMetrics(cfg.Metrics, reg, &ready)
		if err != nil {
			return err
		}
		defer stop()
	}
	srv := serve.New(store, serve.Config{
		Reader:    serve.ReaderConfig{Window: cfg.Window},
		SpanLimit: cfg.SpanLimit,
		Timeout:   cfg.Timeout,
	})
	errc := make(chan error, 2)
	var stops []func()
	if cfg.GRPCAddr != "" {
		lis, err := net.Listen("tcp", cfg.GRPCAddr)
		if err != nil {
			return fmt.Errorf("--grpc-addr: %w", err)
		}
		g := grpc.NewServer(grpc.MaxSendMsgSize(64<<20), grpc.UnaryInterceptor(metrics.unary), grpc.StreamInterceptor(metrics.stream))
		srv.RegisterGRPC(g)
		log.Info("serving Jaeger remote storage v2 (gRPC)", "addr", lis.Addr().String(), "archive", store.String())
		go func() { errc <- g.Serve(lis) }()
		stops = append(stops, g.GracefulStop)
	}
	if cfg.HTTPAddr != "" {
		lis, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			for _, stop := range stops {
				stop()
			}
			return fmt.Errorf("--http-addr: %w", err)
		}
		h := &http.Server{Handler: metrics.http(srv.Handler()), ReadHeaderTimeout: 10 * time.Second}
		log.Info("serving the Jaeger HTTP API", "url", "http://"+lis.Addr().String()+"/api/", "archive", store.String())
		go func() {
			if err := h.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		stops = append(stops, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = h.Shutdown(sctx)
		})
	}
	ready.Store(true)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	ready.Store(false)
	for _, stop := range stops {
		stop()
	}
	return err
}
