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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/collect"
	"github.com/kairn-dev/kairn/link"
)

// runCollect is `kairn collect`: live sources → spool → windows → archive, until SIGTERM, which
// flushes every open window before exiting.
func runCollect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("collect", "--cluster NAME [--kubeconfig PATH] [--archive DIR|s3://...] [--webhook-addr 127.0.0.1:8765] [--audit-log PATH] ...", stderr)
	cluster := fs.String("cluster", "", "cluster name of --kubeconfig and of webhook batches posted to /audit (required)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster to watch (Events and objects); empty: no watches")
	inCluster := fs.Bool("in-cluster", false, "watch the cluster kairn runs in, with its service account (instead of --kubeconfig)")
	var moreClusters multiFlag
	fs.Var(&moreClusters, "watch-cluster", "another cluster to watch, as NAME=KUBECONFIG (repeat); its webhook posts to /audit/NAME")
	archiveLoc := fs.String("archive", defaultArchive, "archive: a directory or s3://bucket/prefix")
	window := fs.Duration("window", link.DefaultWindow, "window length (whole minutes)")
	grace := fs.Duration("grace", 2*time.Minute, "a window closes this long after its end; later facts go to a late part")
	spoolDir := fs.String("spool", "", "spool directory (default: one per archive and cluster under the user cache)")
	spoolMax := fs.Int64("spool-max-bytes", 1<<30, "disk bound of the spool; at it, webhook batches get 429 and watches wait")
	webhookAddr := fs.String("webhook-addr", "127.0.0.1:8765", "audit webhook listen address; empty: no webhook")
	insecure := fs.Bool("webhook-insecure-http", false, "serve the webhook over plain http (development only)")
	tlsCert := fs.String("webhook-tls-cert", "", "webhook TLS certificate")
	tlsKey := fs.String("webhook-tls-key", "", "webhook TLS key")
	clientCA := fs.String("webhook-client-ca", "", "require webhook client certificates signed by this CA")
	tokenFile := fs.String("webhook-token-file", "", "require one of the bearer tokens in this file (one per line)")
	auditLog := fs.String("audit-log", "", "also follow this audit log file (the apiserver's --audit-log-path)")
	natsURL := fs.String("nats-url", "", "also consume audit batches from NATS JetStream at this URL (e.g. nats://nats:4222); empty: off")
	natsStream := fs.String("nats-stream", "KAIRN_AUDIT", "JetStream stream of audit batches (created with --nats-subject if absent)")
	natsSubject := fs.String("nats-subject", "kairn.audit.>", "subject filter; a message's cluster is its subject after the filter's prefix (kairn.audit.NAME), else --cluster")
	natsConsumer := fs.String("nats-consumer", "kairn-collect", "durable consumer name; replicas sharing it share the messages")
	natsCreds := fs.String("nats-creds", "", "NATS credentials file (JWT and nkey seed)")
	natsAckWait := fs.Duration("nats-ack-wait", time.Minute, "NATS redelivers a message not acknowledged within this time (the consumer's AckWait)")
	noWatch := fs.Bool("no-watch", false, "do not watch Events and objects")
	leaderElect := fs.Bool("leader-elect", false, "watch only while holding the Lease (webhook and tail run on every replica)")
	leaderNS := fs.String("leader-election-namespace", "kube-system", "namespace of the leader-election Lease")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:9464", "/metrics, /healthz and /readyz; empty: off")
	shutdownTimeout := fs.Duration("shutdown-timeout", time.Minute, "on SIGTERM: stop sources and flush open windows within this time")
	logs := addLogFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usageErr("unexpected arguments %q", rest)
	case *cluster == "":
		return usageErr("--cluster is required")
	case *window < time.Minute:
		return usageErr("--window %s is shorter than 1m", *window)
	case *inCluster && *kubeconfig != "":
		return usageErr("give --in-cluster or --kubeconfig, not both")
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}

	store, err := archive.OpenStore(ctx, *archiveLoc)
	if err != nil {
		return err
	}
	if *spoolDir == "" {
		*spoolDir = defaultSpoolDir(store.String(), *cluster)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if store, err = archive.InstrumentStore(store, reg); err != nil {
		return err
	}
	pipe, err := openPipeline(pipelineConfig{
		Store: store, SpoolDir: *spoolDir, SpoolMaxBytes: *spoolMax, Window: *window, Grace: *grace,
		Writer: "collect-" + replicaName(), Registerer: reg, Logger: log,
	})
	if err != nil {
		return err
	}
	defer pipe.Close()

	var sources []collect.Source
	if *webhookAddr != "" {
		opts := collect.WebhookOptions{Addr: *webhookAddr, Cluster: *cluster, InsecureHTTP: *insecure,
			TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey, ClientCAFile: *clientCA, Logger: log, Registerer: reg}
		if *tokenFile != "" {
			if opts.BearerTokens, err = readTokens(*tokenFile); err != nil {
				return err
			}
		}
		wh, err := collect.NewWebhook(opts)
		if err != nil {
			return usageErr("%v", err)
		}
		sources = append(sources, wh)
	}
	if *auditLog != "" {
		tail, err := collect.NewTail(collect.TailOptions{Path: *auditLog, Cluster: *cluster,
			Checkpoint: *spoolDir + "/audit-log.checkpoint", Logger: log})
		if err != nil {
			return err
		}
		sources = append(sources, tail)
	}
	if *natsURL != "" {
		n, err := collect.NewNATS(collect.NATSOptions{URL: *natsURL, CredsFile: *natsCreds, Stream: *natsStream,
			Subject: *natsSubject, Consumer: *natsConsumer, AckWait: *natsAckWait, Cluster: *cluster, Logger: log, Registerer: reg})
		if err != nil {
			return usageErr("%v", err)
		}
		sources = append(sources, n)
	}
	type watched struct{ name, kubeconfig string }
	var clusters []watched
	if *kubeconfig != "" || *inCluster {
		clusters = append(clusters, watched{*cluster, *kubeconfig})
	}
	for _, c := range moreClusters {
		name, path, ok := strings.Cut(c, "=")
		if !ok || name == "" || path == "" {
			return usageErr("--watch-cluster %q: want NAME=KUBECONFIG", c)
		}
		clusters = append(clusters, watched{name, path})
	}
	var elected []electedWatch
	if !*noWatch {
		for _, c := range clusters {
			// An empty kubeconfig path is the in-cluster service account.
			cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
			if err != nil {
				return fmt.Errorf("--kubeconfig %s: %w", c.kubeconfig, err)
			}
			cfg.UserAgent = "kairn-collect"
			w, err := collect.NewWatch(collect.WatchOptions{Cluster: c.name, Config: cfg, Events: true,
				StateDir: *spoolDir + "/watch-" + c.name, Logger: log})
			if err != nil {
				return err
			}
			if *leaderElect {
				elected = append(elected, electedWatch{w, cfg, *leaderNS})
			} else {
				sources = append(sources, w)
			}
		}
	}
	if len(sources)+len(elected) == 0 {
		return usageErr("nothing to collect: give --webhook-addr, --audit-log, --nats-url or --kubeconfig")
	}

	// Sources stop on ctx (SIGTERM); the flusher and metrics outlive them until the final flush.
	flushCtx, stopFlusher := context.WithCancel(context.Background())
	defer stopFlusher()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); pipe.flusher.Run(flushCtx) }()
	var ready atomic.Bool
	if *metricsAddr != "" {
		stop, err := serveMetrics(*metricsAddr, reg, &ready)
		if err != nil {
			return err
		}
		defer stop()
	}
	bg.Add(1)
	go func() { defer bg.Done(); quarantineLoop(flushCtx, store, *cluster, pipe, log) }()

	sourceRecords := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_source_records_total",
		Help: "Facts a source handed to the spool and had committed, by kind: observation, revision, malformed (quarantined)."},
		[]string{"source", "kind"})
	reg.MustRegister(sourceRecords)
	counted := func(name string) collect.Spooler { return countedSpooler{pipe, sourceRecords, name} }
	srcCtx, cancelSources := context.WithCancel(ctx)
	defer cancelSources()
	log.Info("collecting", "cluster", *cluster, "archive", store.String(), "spool", *spoolDir, "sources", len(sources)+len(elected))
	errs := make(chan error, len(sources)+len(elected))
	var running sync.WaitGroup
	for _, s := range sources {
		running.Add(1)
		go func() {
			defer running.Done()
			if err := s.Run(srcCtx, counted(s.Name())); err != nil && srcCtx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", s.Name(), err)
			}
		}()
	}
	for _, e := range elected {
		running.Add(1)
		go func() {
			defer running.Done()
			err := collect.RunElected(srcCtx, e.cfg, e.namespace, "kairn-collect", replicaName(), func(ctx context.Context) error { return e.w.Run(ctx, counted(e.w.Name())) })
			if err != nil && srcCtx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", e.w.Name(), err)
			}
		}()
	}
	ready.Store(true)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		log.Error("source failed; flushing and exiting", "err", runErr)
	}
	ready.Store(false)
	cancelSources()
	// Shutdown is bounded: half the time for sources to stop, the rest for the final flush. What
	// is not flushed in time stays in the spool for the next start.
	stopped := make(chan struct{})
	go func() { running.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(*shutdownTimeout / 2):
		log.Warn("sources did not stop in time; flushing what is spooled", "timeout", *shutdownTimeout/2)
	}

	// Flush every window, open ones too, so the archive is complete for merge and report.
	final, cancel := context.WithTimeout(context.Background(), *shutdownTimeout/2)
	defer cancel()
	log.Info("flushing open windows")
	err = pipe.Flush(final)
	stopFlusher()
	bg.Wait()
	if qerr := writeQuarantine(final, store, *cluster, pipe); qerr != nil {
		err = errors.Join(err, qerr)
	}
	if err != nil {
		return fmt.Errorf("final flush: %w (records stay spooled in %s and are flushed by the next start)", err, *spoolDir)
	}
	log.Info("flushed; exiting")
	return runErr
}

type electedWatch struct {
	w         *collect.Watch
	cfg       *rest.Config
	namespace string
}

// replicaName tells collector replicas apart in part names and leader election.
func replicaName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "kairn"
}

func readTokens(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--webhook-token-file: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--webhook-token-file %s: no tokens", path)
	}
	return out, nil
}

// countedSpooler counts what a source had committed to the spool.
type countedSpooler struct {
	collect.Spooler
	counts *prometheus.CounterVec
	source string
}

func (c countedSpooler) NewBatch() collect.Batch {
	return &countedBatch{Batch: c.Spooler.NewBatch(), counts: c.counts, source: c.source}
}

type countedBatch struct {
	collect.Batch
	counts                             *prometheus.CounterVec
	source                             string
	observations, revisions, malformed int
}

func (b *countedBatch) Observe(o link.Observation) { b.observations++; b.Batch.Observe(o) }
func (b *countedBatch) Revise(r link.Revision)     { b.revisions++; b.Batch.Revise(r) }
func (b *countedBatch) Malformed(m collect.Malformed) {
	b.malformed++
	b.Batch.Malformed(m)
}

func (b *countedBatch) Commit() error {
	if err := b.Batch.Commit(); err != nil {
		return err
	}
	b.counts.WithLabelValues(b.source, "observation").Add(float64(b.observations))
	b.counts.WithLabelValues(b.source, "revision").Add(float64(b.revisions))
	b.counts.WithLabelValues(b.source, "malformed").Add(float64(b.malformed))
	b.observations, b.revisions, b.malformed = 0, 0, 0
	return nil
}

// serveMetrics serves /metrics, /healthz (the process answers) and /readyz (ready says so) on
// addr until the returned stop is called.
func serveMetrics(addr string, reg *prometheus.Registry, ready *atomic.Bool) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// quarantineLoop writes malformed input to the archive's quarantine once a minute.
func quarantineLoop(ctx context.Context, store archive.Store, cluster string, pipe *pipeline, log *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := writeQuarantine(ctx, store, cluster, pipe); err != nil {
				log.Warn("quarantine write failed; kept for the next attempt", "err", err)
			}
		}
	}
}

func writeQuarantine(ctx context.Context, store archive.Store, cluster string, pipe *pipeline) error {
	pipe.mu.Lock()
	bad := pipe.bad
	pipe.bad = nil
	pipe.mu.Unlock()
	if len(bad) == 0 {
		return nil
	}
	if _, err := quarantine(ctx, store, cluster, bad); err != nil {
		pipe.mu.Lock()
		pipe.bad = append(bad, pipe.bad...)
		pipe.mu.Unlock()
		return err
	}
	return nil
}
