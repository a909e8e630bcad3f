package collect

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WebhookOptions configure the audit webhook (kube-apiserver's --audit-webhook-config-file
// points at it).
type WebhookOptions struct {
	Addr         string // listen address; default "127.0.0.1:8765"
	Cluster      string // cluster of batches posted to /audit; /audit/{cluster} names its own
	InsecureHTTP bool   // serve plain http; refused unless set
	TLSCertFile  string
	TLSKeyFile   string
	ClientCAFile string   // when set, /audit requires a client certificate signed by this CA
	BearerTokens []string // when set, /audit requires "Authorization: Bearer <one of them>"
	MaxBodyBytes int64    // per request, after decompression; default 32 MiB; larger → 413
	// MaxInFlight bounds the batches being read, decoded and committed at once; one more is
	// answered 429 at once rather than queued, so memory stays within MaxInFlight×MaxBodyBytes
	// (times decoding overhead). Default 2×GOMAXPROCS.
	MaxInFlight int
	Logger      *slog.Logger
	// Registerer, when set, gets the webhook's metrics: kairn_webhook_request_duration_seconds
	// {code}, kairn_webhook_rejections_total{code}, kairn_webhook_events_total{result}.
	Registerer prometheus.Registerer
}

const (
	defaultWebhookAddr = "127.0.0.1:8765"
	defaultMaxBody     = 32 << 20
	// shutdownGrace is how long Run waits for open requests on shutdown before closing their
	// connections; batches already being committed are waited for regardless.
	shutdownGrace = 30 * time.Second
)

// Webhook is the audit webhook source: it receives the EventList batches kube-apiserver's audit
// webhook backend posts and acknowledges each only once it is committed to the spool.
type Webhook struct {
	opts   WebhookOptions
	log    *slog.Logger
	tls    *tls.Config
	tokens [][sha256.Size]byte // hashes, so comparing them takes the same time whatever the length
	// slots is the in-flight bound: a batch holds a slot from before its body is read until its
	// Commit returned. Run takes all of them on shutdown to wait for the batches still committing.
	slots   chan struct{}
	started atomic.Bool
	ready   chan struct{}
	addr    atomic.Pointer[string]

	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec
	events   *prometheus.CounterVec
}

// NewWebhook validates the options and loads the TLS material, so a bad flag fails at start and
// not at the first batch.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.Addr == "" {
		o.Addr = defaultWebhookAddr
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = defaultMaxBody
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 2 * runtime.GOMAXPROCS(0)
	}
	switch {
	case o.MaxBodyBytes < 0:
		return nil, fmt.Errorf("audit webhook: MaxBodyBytes %d is negative", o.MaxBodyBytes)
	case o.MaxInFlight < 0:
		return nil, fmt.Errorf("audit webhook: MaxInFlight %d is negative", o.MaxInFlight)
	case o.Cluster != "" && !validCluster(o.Cluster):
		return nil, fmt.Errorf("audit webhook: cluster %q: want 1 to 63 of a-z, 0-9, '.' and '-'", o.Cluster)
	}
	w := &Webhook{opts: o, log: o.Logger, slots: make(chan struct{}, o.MaxInFlight), ready: make(chan struct{}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kairn_webhook_request_duration_seconds",
			Help: "Audit webhook requests: time from arrival to answer, by status code.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_webhook_rejections_total",
			Help: "Audit webhook requests refused, by status code (401 unauthenticated, 400 bad body, 413 too large, 429 overloaded, ...)."}, []string{"code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kairn_webhook_events_total",
			Help: "Audit events received in committed batches: accepted, or quarantined as malformed."}, []string{"result"}),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{w.duration, w.rejected, w.events} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("audit webhook: registering metrics: %w", err)
			}
		}
	}
	for _, t := range o.BearerTokens {
		if t == "" {
			return nil, errors.New("audit webhook: empty bearer token")
		}
		w.tokens = append(w.tokens, sha256.Sum256([]byte(t)))
	}
	hasTLS := o.TLSCertFile != "" || o.TLSKeyFile != ""
	switch {
	case o.InsecureHTTP && (hasTLS || o.ClientCAFile != ""):
		return nil, errors.New("audit webhook: plain http was asked for together with TLS certificates: choose one")
	case o.InsecureHTTP:
		return w, nil // bearer tokens, if any, still apply
	case !hasTLS:
		return nil, errors.New("audit webhook: TLS needs a certificate and key (or allow plain http explicitly, for development)")
	case o.TLSCertFile == "" || o.TLSKeyFile == "":
		return nil, errors.New("audit webhook: TLS needs both a certificate and a key file")
	case o.ClientCAFile == "" && len(o.BearerTokens) == 0:
		// Anyone who can reach the port could write into the archive.
		return nil, errors.New("audit webhook: refusing to serve unauthenticated: give a client CA or bearer tokens")
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("audit webhook: %w", err)
	}
	w.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("audit webhook: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("audit webhook: client CA %s: no PEM certificates in it", o.ClientCAFile)
		}
		w.tls.ClientCAs = pool
		// A certificate that is presented must verify (else the handshake fails), but the
		// requirement is enforced per path: /healthz stays open to probes that have none.
		w.tls.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return w, nil
}

func (w *Webhook) Name() string { return "audit-webhook" }

// Ready is closed once Run listens.
func (w *Webhook) Ready() <-chan struct{} { return w.ready }

// Addr is the bound address once Ready is closed (useful with port 0), else "".
func (w *Webhook) Addr() string {
	if a := w.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Run serves until ctx is done, then shuts down gracefully: requests in flight finish, and their
// batches are committed and answered, before Run returns.
func (w *Webhook) Run(ctx context.Context, out Spooler) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("audit webhook: Run called twice")
	}
	ln, err := net.Listen("tcp", w.opts.Addr)
	if err != nil {
		return fmt.Errorf("audit webhook: %w", err)
	}
	addr := ln.Addr().String()
	w.addr.Store(&addr)
	srv := &http.Server{
		Handler:   w.Handler(out),
		TLSConfig: w.tls,
		// Bound slow clients: a batch holds an in-flight slot while its body arrives.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelWarn), // TLS handshake errors
	}
	w.log.Info("audit webhook listening", "addr", addr, "tls", w.tls != nil,
		"client_certs", w.opts.ClientCAFile != "", "bearer_tokens", len(w.tokens) > 0)
	close(w.ready)

	served := make(chan error, 1)
	go func() {
		if w.tls != nil {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-served:
		return fmt.Errorf("audit webhook: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		w.log.Warn("audit webhook: requests still open at shutdown; closing them", "err", err)
		srv.Close()
	}
	// Closing a connection does not stop a handler inside Commit: wait for every batch to be done
	// so the caller may close the spool. Holding all slots also turns any late request into a 429.
	for range cap(w.slots) {
		w.slots <- struct{}{}
	}
	<-served // http.ErrServerClosed
	return nil
}

// Handler serves POST /audit and /audit/{cluster}, and GET /healthz, committing to out.
func (w *Webhook) Handler(out Spooler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { w.serve(rw, r, out) })
}

func (w *Webhook) serve(rw http.ResponseWriter, r *http.Request, out Spooler) {
	if r.URL.Path == "/healthz" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			w.fail(rw, r, http.StatusMethodNotAllowed, "use GET")
			return
		}
		io.WriteString(rw, "ok\n")
		return
	}
	start := time.Now()
	answer := &statusWriter{ResponseWriter: rw, code: http.StatusOK}
	rw = answer
	defer func() { w.duration.WithLabelValues(strconv.Itoa(answer.code)).Observe(time.Since(start).Seconds()) }()
	// Authentication comes before routing, so an unauthenticated client learns nothing.
	if reason := w.unauthenticated(r); reason != "" {
		if len(w.tokens) > 0 {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="kairn"`)
		}
		w.fail(rw, r, http.StatusUnauthorized, reason)
		return
	}
	cluster, status, reason := w.route(r.URL.Path)
	if status != 0 {
		w.fail(rw, r, status, reason)
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", "POST")
		w.fail(rw, r, http.StatusMethodNotAllowed, "use POST")
		return
	}
	// Take a slot before reading the body, so that no more than MaxInFlight bodies are in memory.
	select {
	case w.slots <- struct{}{}:
		defer func() { <-w.slots }()
	default:
		rw.Header().Set("Retry-After", "1")
		w.fail(rw, r, http.StatusTooManyRequests, fmt.Sprintf("%d batches in flight: retry later", cap(w.slots)))
		return
	}
	body, status, reason := w.readBody(rw, r)
	if status != 0 {
		w.fail(rw, r, status, reason)
		return
	}

	b := out.NewBatch()
	a := &auditReader{input{file: "webhook:" + r.RemoteAddr, cluster: cluster, sink: b}}
	items, err := decodeAuditBody(a, body)
	if err != nil {
		w.fail(rw, r, http.StatusBadRequest, err.Error())
		return // nothing was acknowledged; the batch is dropped uncommitted
	}
	if err := b.Commit(); err != nil {
		// Retry-After on 503 too: with it, the apiserver's webhook backend retries a 503 (it
		// retries 429 and 500 anyway), and the batch is not lost to a transient spool error.
		rw.Header().Set("Retry-After", "1")
		code := http.StatusServiceUnavailable
		if errors.Is(err, ErrOverloaded) {
			code = http.StatusTooManyRequests
		}
		w.fail(rw, r, code, "batch not committed: "+err.Error())
		return
	}
	quarantined := min(a.stats.Malformed, items)
	w.events.WithLabelValues("accepted").Add(float64(items - quarantined))
	w.events.WithLabelValues("quarantined").Add(float64(quarantined))
	if quarantined > 0 {
		w.log.Warn("audit webhook: quarantined malformed events of a batch", "remote", r.RemoteAddr,
			"cluster", cluster, "events", items, "quarantined", quarantined)
	}
	// 200 even with quarantined events: they are kept in the quarantine, and any other answer
	// would make the apiserver send the good ones again and again.
	rw.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(rw, "{\"accepted\":%d,\"quarantined\":%d}\n", items-quarantined, quarantined)
}

// unauthenticated returns why r is not authenticated, or "" if it is.
func (w *Webhook) unauthenticated(r *http.Request) string {
	if w.tls != nil && w.tls.ClientCAs != nil && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return "client certificate required"
	}
	if len(w.tokens) == 0 {
		return ""
	}
	h := r.Header.Get("Authorization")
	if len(h) < len("Bearer ") || !strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return "bearer token required"
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(h[len("Bearer "):])))
	match := 0
	for _, t := range w.tokens { // no early exit: the time taken does not tell which token matched
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match == 0 {
		return "bearer token not accepted"
	}
	return ""
}

// route returns the cluster a path posts to, or the status and reason to refuse it with.
func (w *Webhook) route(path string) (cluster string, status int, reason string) {
	if path == "/audit" {
		if w.opts.Cluster == "" {
			return "", http.StatusNotFound, "this webhook has no default cluster: post to /audit/{cluster}"
		}
		return w.opts.Cluster, 0, ""
	}
	if c, ok := strings.CutPrefix(path, "/audit/"); ok {
		if !validCluster(c) {
			return "", http.StatusNotFound, fmt.Sprintf("bad cluster name %q in path: want 1 to 63 of a-z, 0-9, '.' and '-'", c)
		}
		return c, 0, ""
	}
	return "", http.StatusNotFound, "not found: post audit batches to /audit or /audit/{cluster}"
}

func validCluster(c string) bool {
	if len(c) == 0 || len(c) > 63 {
		return false
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// readBody reads the whole body, decompressing gzip, bounded by MaxBodyBytes both before and
// after decompression (a small gzip body can expand a thousandfold).
func (w *Webhook) readBody(rw http.ResponseWriter, r *http.Request) (body []byte, status int, reason string) {
	limit := w.opts.MaxBodyBytes
	tooLarge := fmt.Sprintf("body larger than %d bytes", limit)
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	var src io.Reader = http.MaxBytesReader(rw, r.Body, limit)
	var buf bytes.Buffer
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength > 0 {
			buf.Grow(int(r.ContentLength))
		}
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			status, reason := readStatus(err, tooLarge, "bad gzip body")
			return nil, status, reason
		}
		// One byte over the limit tells a body of exactly the limit from a larger one.
		src = io.LimitReader(zr, limit+1)
		if r.ContentLength > 0 {
			// Audit JSON compresses some tenfold: start near the size, not from 512 bytes.
			buf.Grow(int(min(limit+1, 8*r.ContentLength)))
		}
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q: want gzip or none", enc)
	}
	if _, err := buf.ReadFrom(src); err != nil {
		status, reason := readStatus(err, tooLarge, "reading body")
		return nil, status, reason
	}
	if int64(buf.Len()) > limit {
		return nil, http.StatusRequestEntityTooLarge, "decompressed " + tooLarge
	}
	return buf.Bytes(), 0, ""
}

func readStatus(err error, tooLarge, what string) (int, string) {
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return http.StatusRequestEntityTooLarge, tooLarge
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, what + ": truncated"
	}
	return http.StatusBadRequest, what + ": " + err.Error()
}

// fail answers with a one-line reason and logs it once.
func (w *Webhook) fail(rw http.ResponseWriter, r *http.Request, code int, reason string) {
	if len(reason) > 400 { // it may quote the body: a kind of a megabyte, say
		reason = reason[:400] + "…"
	}
	level := slog.LevelWarn
	if code >= 500 {
		level = slog.LevelError
	}
	w.rejected.WithLabelValues(strconv.Itoa(code)).Inc()
	w.log.Log(r.Context(), level, "audit webhook: request refused", "status", code, "reason", reason,
		"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	http.Error(rw, reason, code)
}

// statusWriter remembers the status code of an answer, for the latency metric.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// webhookEnvelope is the top level of a webhook body: an EventList, or a single Event.
type webhookEnvelope struct {
	Kind       string            `json:"kind"`
	APIVersion string            `json:"apiVersion"`
	Items      []json.RawMessage `json:"items"`
}

// decodeAuditBody hands the events of a body to the audit reader one by one: a bad event is
// quarantined by it and its neighbours are kept. The error is for a body that is not an audit
// EventList or Event at all; it returns the number of events otherwise.
func decodeAuditBody(a *auditReader, body []byte) (int, error) {
	env, err := splitEnvelope(body)
	if err != nil {
		return 0, envelopeError(body, err)
	}
	switch env.APIVersion {
	case "", "audit.k8s.io/v1", "audit.k8s.io/v1beta1":
	default:
		return 0, fmt.Errorf("apiVersion %q (kind %q): want audit.k8s.io/v1 or v1beta1", env.APIVersion, env.Kind)
	}
	switch env.Kind {
	case "EventList":
		// Item numbers stand in for line numbers in what is quarantined.
		for i, it := range env.Items {
			a.value(i+1, it)
		}
		return len(env.Items), nil
	case "Event":
		a.value(1, body)
		return 1, nil
	case "":
		return 0, errors.New(`body has no "kind": want an audit.k8s.io/v1 EventList`)
	}
	return 0, fmt.Errorf("kind %q: want an audit.k8s.io/v1 EventList or Event", env.Kind)
}

// envelopeError explains why a body is no JSON object, in encoding/json's words where it has
// some (the error path may be slow).
func envelopeError(body []byte, splitErr error) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty body: want an audit.k8s.io/v1 EventList")
	}
	var env webhookEnvelope
	err := json.Unmarshal(body, &env)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return fmt.Errorf("bad EventList: %v", splitErr) // splitEnvelope is the stricter
	case errors.As(err, &se) && se.Offset >= int64(len(body)):
		return errors.New("body is truncated JSON: want an audit.k8s.io/v1 EventList")
	case errors.As(err, &se):
		return fmt.Errorf("body is not JSON: %v at byte %d", err, se.Offset)
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("body is a JSON %s: want an audit.k8s.io/v1 EventList object", te.Value)
	}
	return errors.New("bad EventList: " + jsonReason(err))
}

// splitEnvelope reads the top level of a body in one pass, cutting the items out without decoding
// them. encoding/json would go over the whole body twice more (validation, then the copy into
// RawMessages) before the items are decoded: a third of the webhook's CPU time in
// BenchmarkWebhookIngest. Each item is still checked in full when auditReader decodes it, so a
// syntax error inside one item quarantines that item alone; the envelope's other values are
// checked here.
func splitEnvelope(b []byte) (webhookEnvelope, error) {
	var env webhookEnvelope
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return env, errors.New("not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return env, trailing(b, i+1)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return env, fmt.Errorf("want a key at byte %d", i)
		}
		end, err := valueEnd(b, i)
		if err != nil {
			return env, err
		}
		var key string
		if err := json.Unmarshal(b[i:end], &key); err != nil {
			return env, err
		}
		if i = skipSpace(b, end); i == len(b) || b[i] != ':' {
			return env, fmt.Errorf("want ':' at byte %d", i)
		}
		i = skipSpace(b, i+1)
		// Keys match as in encoding/json: exactly or else case-insensitively; the last one wins.
		if strings.EqualFold(key, "items") && i < len(b) && b[i] == '[' {
			for _, it := range env.Items {
				// The items of an earlier "items" are dropped; as in encoding/json, still only
				// if the body is JSON.
				if !json.Valid(it) {
					return env, errors.New("items: not JSON")
				}
			}
			env.Items = env.Items[:0]
			if i, err = splitItems(b, i, &env.Items); err != nil {
				return env, err
			}
		} else {
			if end, err = valueEnd(b, i); err != nil {
				return env, err
			}
			v := b[i:end]
			switch {
			case strings.EqualFold(key, "kind"):
				err = json.Unmarshal(v, &env.Kind)
			case strings.EqualFold(key, "apiVersion"):
				err = json.Unmarshal(v, &env.APIVersion)
			case strings.EqualFold(key, "items"):
				err = json.Unmarshal(v, &env.Items) // null, or the wrong type
			default:
				if !json.Valid(v) {
					err = fmt.Errorf("field %q: not JSON", key)
				}
			}
			if err != nil {
				return env, err
			}
			i = end
		}
		i = skipSpace(b, i)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return env, trailing(b, i+1)
		default:
			return env, fmt.Errorf("want ',' or '}' at byte %d", i)
		}
	}
}

// splitItems appends the values of the array at b[i] to items and returns the index after it.
func splitItems(b []byte, i int, items *[]json.RawMessage) (int, error) {
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		end, err := valueEnd(b, i)
		if err != nil {
			return 0, err
		}
		*items = append(*items, b[i:end])
		i = skipSpace(b, end)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == ']':
			return i + 1, nil
		default:
			return 0, fmt.Errorf("want ',' or ']' at byte %d", i)
		}
	}
}

// valueEnd returns the end of the JSON value starting at b[i]. It follows strings and nesting
// only: what is inside is left to the decoder of the value.
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, io.ErrUnexpectedEOF
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, io.ErrUnexpectedEOF
	}
	// A literal (number, true, false, null) ends where the syntax around it goes on.
	j := i
	for j < len(b) && !endsLiteral(b[j]) {
		j++
	}
	if j == i {
		return 0, fmt.Errorf("want a value at byte %d", i)
	}
	return j, nil
}

// stringEnd returns the end of the JSON string starting at b[i].
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, io.ErrUnexpectedEOF
}

func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func trailing(b []byte, i int) error {
	if i = skipSpace(b, i); i < len(b) {
		return fmt.Errorf("data after the top-level object at byte %d", i)
	}
	return nil
}
