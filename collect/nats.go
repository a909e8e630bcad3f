package collect

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// NATSOptions configure the NATS JetStream audit source: a durable pull consumer on a stream,
// each message of which is what the apiserver's audit webhook would POST (an audit.k8s.io
// EventList, plain or gzipped) or a single audit Event.
type NATSOptions struct {
	URL       string // e.g. nats://127.0.0.1:4222; comma-separated for several servers
	CredsFile string // NATS credentials (JWT and nkey seed); empty: none
	// Stream is the JetStream stream to consume; default "KAIRN_AUDIT". When it does not exist
	// it is created (file storage, limits retention) with Subject as its only subject; an
	// existing stream is used as it is configured.
	Stream string
	// Subject is the consumer's filter subject; default "kairn.audit.>". The cluster of a
	// message is the part of its subject after the filter's literal prefix ("kairn.audit.prod"
	// → "prod"), else Cluster.
	Subject string
	// Consumer is the durable consumer's name; default "kairn-collect". Replicas that share it
	// share the work: each message goes to one of them (and to another if not acknowledged).
	Consumer string
	Cluster  string // cluster of messages whose subject names none
	// BatchSize is how many messages are fetched, committed as one batch and then acknowledged;
	// default 64.
	BatchSize int
	// MaxBodyBytes bounds a message after decompression; default 32 MiB. Larger ones are
	// quarantined.
	MaxBodyBytes int64
	// AckWait is how long the server waits for an acknowledgement before it redelivers; default
	// 1 minute. A batch waiting for the spool (ErrOverloaded) is negatively acknowledged sooner.
	AckWait time.Duration
	// RetryDelay is how long a batch that could not be committed waits before redelivery;
	// default 1 s.
	RetryDelay time.Duration
	Logger     *slog.Logger
	// Registerer, when set, gets kairn_nats_messages_total{result} (acked, quarantined, nacked)
	// and kairn_nats_events_total{result} (accepted, quarantined).
	Registerer prometheus.Registerer
}

// NATS is the NATS JetStream audit source. Delivery is at least once: a message is acknowledged
// only after the batch holding it was committed to the spool, so a crash or a failed commit has
// it delivered again, and the copies are removed at merge by observation_id. Ordering is not
// needed: merge sorts and joins a whole window.
type NATS struct {
	opts    NATSOptions
	log     *slog.Logger
	prefix  string // Subject's literal prefix, up to its wildcard, with the trailing '.'
	started atomic.Bool
	ready   chan struct{}

	messages *prometheus.CounterVec
	events   *prometheus.CounterVec
}

const (
	defaultNATSStream   = "KAIRN_AUDIT"
	defaultNATSSubject  = "kairn.audit.>"
	defaultNATSConsumer = "kairn-collect"
)

// NewNATS validates the options; it does not connect (Run does, and retries).
func NewNATS(o NATSOptions) (*NATS, error) {
	if o.URL == "" {
		o.URL = nats.DefaultURL
	}
	if o.Stream == "" {
		o.Stream = defaultNATSStream
	}
	if o.Subject == "" {
		o.Subject = defaultNATSSubject
	}
	if o.Consumer == "" {
		o.Consumer = defaultNATSConsumer
	}
	if o.BatchSize == 0 {
		o.BatchSize = 64
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = defaultMaxBody
	}
	if o.AckWait == 0 {
		o.AckWait = time.Minute
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
	switch {
	case o.BatchSize < 0 || o.MaxBodyBytes < 0 || o.AckWait < 0 || o.RetryDelay < 0:
		return nil, errors.New("nats: negative batch size, body bound or delay")
	case o.Cluster != "" && !validCluster(o.Cluster):
		return nil, fmt.Errorf("nats: cluster %q: want 1 to 63 of a-z, 0-9, '.' and '-'", o.Cluster)
	case strings.ContainsAny(o.Stream, ". *>\t"):
		return nil, fmt.Errorf("nats: stream name %q: no '.', '*', '>' or spaces", o.Stream)
	case strings.ContainsAny(o.Consumer, ". *>\t"):
		return nil, fmt.Errorf("nats: consumer name %q: no '.', '*', '>' or spaces", o.Consumer)
	}
	n := &NATS{opts: o, log: o.Logger, prefix: subjectPrefix(o.Subject), ready: make(chan struct{}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_nats_messages_total",
			Help: "NATS messages handled: acked (committed), quarantined (unreadable, committed to the quarantine and acked), nacked (not committed, to be redelivered)."}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_nats_events_total",
			Help: "Audit events in committed NATS messages: accepted, or quarantined as malformed."}, []string{"result"}),
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{n.messages, n.events} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("nats: registering metrics: %w", err)
			}
		}
	}
	return n, nil
}

func (n *NATS) Name() string { return "audit-nats" }

// Ready is closed once Run has its consumer.
func (n *NATS) Ready() <-chan struct{} { return n.ready }

// subjectPrefix is the literal part of a subject filter before its first wildcard token, with
// the trailing '.': "kairn.audit.>" → "kairn.audit.". A filter without wildcards has none.
func subjectPrefix(filter string) string {
	toks := strings.Split(filter, ".")
	for i, t := range toks {
		if t == "*" || t == ">" {
			return strings.Join(toks[:i], ".") + "."
		}
	}
	return ""
}

// clusterOf is the cluster a message's subject names, else the default one.
func (n *NATS) clusterOf(subject string) (string, error) {
	if n.prefix != "" {
		if c, ok := strings.CutPrefix(subject, n.prefix); ok && c != "" {
			if !validCluster(c) {
				return "", fmt.Errorf("subject %q: cluster %q: want 1 to 63 of a-z, 0-9, '.' and '-'", subject, c)
			}
			return c, nil
		}
	}
	if n.opts.Cluster == "" {
		return "", fmt.Errorf("subject %q names no cluster after %q and no default cluster is set", subject, n.prefix)
	}
	return n.opts.Cluster, nil
}

// Run connects (retrying until ctx is done), makes sure the stream and the durable consumer
// exist, and commits fetched messages batch by batch until ctx is done. The batch in hand when
// ctx ends is committed and acknowledged before Run returns.
func (n *NATS) Run(ctx context.Context, out Spooler) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("nats: Run called twice")
	}
	opts := []nats.Option{nats.Name("kairn-collect"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("nats: disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { n.log.Info("nats: reconnected", "server", c.ConnectedUrlRedacted()) }),
	}
	if n.opts.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(n.opts.CredsFile))
	}
	nc, err := nats.Connect(n.opts.URL, opts...)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer func() {
		// Acknowledgements are published asynchronously: get them to the server before closing.
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			n.log.Warn("nats: flushing acknowledgements at shutdown; unacknowledged messages will be redelivered", "err", err)
		}
		nc.Close()
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	var cons jetstream.Consumer
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		if cons, err = n.consumer(ctx, js); err == nil {
			break
		}
		n.log.Warn("nats: no consumer yet; retrying", "stream", n.opts.Stream, "consumer", n.opts.Consumer, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	n.log.Info("nats: consuming", "url", nc.ConnectedUrlRedacted(), "stream", n.opts.Stream, "subject", n.opts.Subject,
		"consumer", n.opts.Consumer)
	close(n.ready)

	for ctx.Err() == nil {
		msgs, err := n.fetch(ctx, cons)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("nats: fetch failed; retrying", "err", err, "messages", len(msgs))
		}
		if len(msgs) > 0 && !n.commit(out, msgs) || err != nil {
			sleep(ctx, n.opts.RetryDelay)
		}
	}
	return nil
}

// fetch returns the next messages, up to BatchSize: what is there at once, or else the first
// to come within a couple of seconds and what came with it. A batch is committed as soon as it
// is in hand, whether full or not.
func (n *NATS) fetch(ctx context.Context, cons jetstream.Consumer) ([]jetstream.Msg, error) {
	drain := func(b jetstream.MessageBatch, msgs []jetstream.Msg) ([]jetstream.Msg, error) {
		for m := range b.Messages() {
			msgs = append(msgs, m)
		}
		err := b.Error()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
			errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			err = nil
		}
		return msgs, err
	}
	b, err := cons.FetchNoWait(n.opts.BatchSize)
	if err != nil {
		return nil, err
	}
	msgs, err := drain(b, nil)
	if len(msgs) > 0 || err != nil {
		return msgs, err
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if b, err = cons.Fetch(1, jetstream.FetchContext(fctx)); err != nil {
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, nil
		}
		return nil, err
	}
	if msgs, err = drain(b, nil); len(msgs) == 0 || err != nil || n.opts.BatchSize == 1 {
		return msgs, err
	}
	if b, err = cons.FetchNoWait(n.opts.BatchSize - 1); err != nil {
		return msgs, nil // the one in hand goes on; the rest come with the next fetch
	}
	return drain(b, msgs)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// consumer makes sure the stream and the durable consumer exist. Replicas do the same with the
// same configuration, which JetStream takes as a no-op.
func (n *NATS) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	if _, err := js.Stream(ctx, n.opts.Stream); errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: n.opts.Stream, Subjects: []string{n.opts.Subject},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("creating stream %s: %w", n.opts.Stream, err)
		}
		n.log.Info("nats: created stream", "stream", n.opts.Stream, "subject", n.opts.Subject)
	} else if err != nil {
		return nil, err
	}
	return js.CreateOrUpdateConsumer(ctx, n.opts.Stream, jetstream.ConsumerConfig{
		Durable:       n.opts.Consumer,
		FilterSubject: n.opts.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       n.opts.AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: max(1024, 4*n.opts.BatchSize),
	})
}

// commit hands the messages to one batch, commits it, and acknowledges them once it is
// committed; when it is not, they are negatively acknowledged to be delivered again later. It
// reports whether the batch was committed.
func (n *NATS) commit(out Spooler, msgs []jetstream.Msg) bool {
	b := out.NewBatch()
	var items, quarantined, bad int // events, malformed events, unreadable messages
	for _, m := range msgs {
		where := "nats:" + m.Subject()
		if md, err := m.Metadata(); err == nil {
			where = fmt.Sprintf("nats:%s#%d", m.Subject(), md.Sequence.Stream)
		}
		cluster, err := n.clusterOf(m.Subject())
		var body []byte
		if err == nil {
			body, err = n.body(m)
		}
		if err == nil {
			a := &auditReader{input{file: where, cluster: cluster, sink: b}}
			var k int
			if k, err = decodeAuditBody(a, body); err == nil {
				items += k
				quarantined += min(a.stats.Malformed, k)
				continue
			}
		}
		// A message that is no audit body at all is quarantined whole, and acknowledged with
		// the batch: sent again, it would fail again.
		bad++
		b.Malformed(Malformed{File: where, Line: 1, Reason: "unreadable message: " + err.Error(), Raw: bytes.Clone(m.Data())})
	}
	if err := b.Commit(); err != nil {
		for _, m := range msgs {
			m.NakWithDelay(n.opts.RetryDelay)
		}
		n.messages.WithLabelValues("nacked").Add(float64(len(msgs)))
		level := slog.LevelError
		if errors.Is(err, ErrOverloaded) {
			level = slog.LevelWarn
		}
		n.log.Log(context.Background(), level, "nats: batch not committed; messages will be redelivered", "messages", len(msgs), "err", err)
		return false
	}
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			// The server will deliver it again after AckWait; merge removes the copy.
			n.log.Warn("nats: ack failed; the message will be redelivered", "subject", m.Subject(), "err", err)
		}
	}
	n.messages.WithLabelValues("acked").Add(float64(len(msgs) - bad))
	n.messages.WithLabelValues("quarantined").Add(float64(bad))
	n.events.WithLabelValues("accepted").Add(float64(items - quarantined))
	n.events.WithLabelValues("quarantined").Add(float64(quarantined))
	if bad > 0 || quarantined > 0 {
		n.log.Warn("nats: quarantined malformed input", "messages", bad, "events", quarantined)
	}
	return true
}

// body is a message's data, gunzipped when it is gzip (by its Content-Encoding header or its
// magic bytes), bounded by MaxBodyBytes.
func (n *NATS) body(m jetstream.Msg) ([]byte, error) {
	data := m.Data()
	enc := ""
	if h := m.Headers(); h != nil {
		enc = strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding")))
	}
	gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		return nil, fmt.Errorf("Content-Encoding %q: want gzip or none", enc)
	}
	if !gz {
		if int64(len(data)) > n.opts.MaxBodyBytes {
			return nil, fmt.Errorf("body larger than %d bytes", n.opts.MaxBodyBytes)
		}
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bad gzip body: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(n.opts.MaxBodyBytes+1, 8*int64(len(data)))))
	if _, err := buf.ReadFrom(io.LimitReader(zr, n.opts.MaxBodyBytes+1)); err != nil {
		return nil, fmt.Errorf("bad gzip body: %w", err)
	}
	if int64(buf.Len()) > n.opts.MaxBodyBytes {
		return nil, fmt.Errorf("decompressed body larger than %d bytes", n.opts.MaxBodyBytes)
	}
	return buf.Bytes(), nil
}
