package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"

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
	}
	store, err := archive.OpenStore(ctx, cfg.Archive)
	if err != nil {
		return err
	}
	return serveArchive(ctx, store, cfg, stderr)
}

// serveArchive runs the query server until ctx ends.
func serveArchive(ctx context.Context, store archive.Store, cfg serveConfig, stderr io.Writer) error {
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
		g := grpc.NewServer(grpc.MaxSendMsgSize(64 << 20))
		srv.RegisterGRPC(g)
		fmt.Fprintf(stderr, "kairn serve: Jaeger remote storage v2 (gRPC) on %s, archive %s\n", lis.Addr(), store)
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
		h := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
		fmt.Fprintf(stderr, "kairn serve: Jaeger HTTP API on http://%s/api/, archive %s\n", lis.Addr(), store)
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
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, stop := range stops {
		stop()
	}
	return err
}
