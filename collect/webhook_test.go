package collect

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kairn-dev/kairn/internal/benchrow"
	"github.com/kairn-dev/kairn/link"
)

// nopSpooler commits nothing, for the benchmark.
type nopSpooler struct{}
type nopBatch struct{}

func (nopSpooler) NewBatch() Batch        { return nopBatch{} }
func (nopBatch) Observe(link.Observation) {}
func (nopBatch) Revise(link.Revision)     {}
func (nopBatch) Malformed(Malformed)      {}
func (nopBatch) Commit() error            { return nil }

func eventList(items ...string) []byte {
	return []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(items, ",") + `]}`)
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func auditWithID(id string) string { return strings.Replace(goodAudit, `"a1"`, `"`+id+`"`, 1) }

// testServer serves w's handler over loopback http.
func testServer(t *testing.T, o WebhookOptions, sp Spooler) (*Webhook, *httptest.Server) {
	t.Helper()
	if !o.InsecureHTTP && o.TLSCertFile == "" {
		o.InsecureHTTP = true
	}
	w, err := NewWebhook(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler(sp))
	t.Cleanup(srv.Close)
	return w, srv
}

type reply struct {
	code int
	body string
	hdr  http.Header
	err  error
}

func post(c *http.Client, url string, body []byte, hdr map[string]string) reply {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, body: string(b), hdr: resp.Header, err: err}
}

func auditIDs(obs []link.Observation) []string {
	var ids []string
	for _, o := range obs {
		if o.Source == link.SourceAudit {
			ids = append(ids, o.AuditID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestWebhookEventList(t *testing.T) {
	list := eventList(auditWithID("a1"), auditWithID("a2"), auditWithID("a3"))
	for _, tc := range []struct {
		name, path, cluster string
		gzip                bool
	}{
		{"plain default cluster", "/audit", "dev", false},
		{"gzip default cluster", "/audit", "dev", true},
		{"plain named cluster", "/audit/prod-eu.1", "prod-eu.1", false},
		{"gzip named cluster", "/audit/prod-eu.1", "prod-eu.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := &memSpool{}
			_, srv := testServer(t, WebhookOptions{Cluster: "dev"}, sp)
			body, hdr := list, map[string]string{"Content-Type": "application/json"}
			if tc.gzip {
				body, hdr["Content-Encoding"] = gzipped(list), "gzip"
			}
			r := post(nil, srv.URL+tc.path, body, hdr)
			if r.err != nil || r.code != 200 {
				t.Fatalf("POST %s: %d %q %v", tc.path, r.code, r.body, r.err)
			}
			if want := `{"accepted":3,"quarantined":0}`; strings.TrimSpace(r.body) != want {
				t.Errorf("body %q, want %s", r.body, want)
			}
			obs, _, bad := sp.committed()
			if got := strings.Join(auditIDs(obs), ","); got != "a1,a2,a3" || len(bad) > 0 {
				t.Errorf("committed %s (bad %v), want a1,a2,a3", got, bad)
			}
			for _, o := range obs {
				if o.Object.Cluster != tc.cluster {
					t.Errorf("%s: cluster %q, want %q", o.AuditID, o.Object.Cluster, tc.cluster)
				}
			}
		})
	}
	t.Run("single Event", func(t *testing.T) {
		sp := &memSpool{}
		_, srv := testServer(t, WebhookOptions{Cluster: "dev"}, sp)
		if r := post(nil, srv.URL+"/audit", []byte(goodAudit), nil); r.code != 200 {
			t.Fatalf("%d %q %v", r.code, r.body, r.err)
		}
		if obs, _, _ := sp.committed(); len(obs) != 1 {
			t.Errorf("committed %d observations, want 1", len(obs))
		}
	})
}

func TestWebhookRouting(t *testing.T) {
	sp := &memSpool{}
	_, srv := testServer(t, WebhookOptions{}, sp) // no default cluster
	list := eventList(goodAudit)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"POST", "/healthz", 405},
		{"GET", "/audit/dev", 405},
		{"PUT", "/audit/dev", 405},
		{"POST", "/audit", 404}, // no default cluster
		{"POST", "/", 404},
		{"POST", "/audit/Dev", 404},
		{"POST", "/audit/a/b", 404},
		{"POST", "/audit/", 404},
		{"POST", "/audit/" + strings.Repeat("x", 64), 404},
		{"POST", "/audit/dev", 200},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, bytes.NewReader(list))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, resp.StatusCode, b, tc.want)
		}
	}
}

func TestWebhookAcksOnlyAfterCommit(t *testing.T) {
	sp := &memSpool{entered: make(chan struct{}, 1), release: make(chan struct{})}
	_, srv := testServer(t, WebhookOptions{Cluster: "dev"}, sp)
	replies := make(chan reply, 1)
	go func() { replies <- post(nil, srv.URL+"/audit", eventList(goodAudit), nil) }()
	<-sp.entered
	select {
	case r := <-replies:
		t.Fatalf("answered %d %q while Commit had not returned", r.code, r.body)
	case <-time.After(200 * time.Millisecond):
	}
	close(sp.release)
	if r := <-replies; r.code != 200 {
		t.Fatalf("after Commit: %d %q %v", r.code, r.body, r.err)
	}
	if obs, _, _ := sp.committed(); len(obs) != 1 {
		t.Errorf("committed %d, want 1", len(obs))
	}
}

func TestWebhookCommitFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("spool: %w: at 1 GiB", ErrOverloaded), http.StatusTooManyRequests},
		{errors.New("disk on fire"), http.StatusServiceUnavailable},
	} {
		sp := &memSpool{commitErr: tc.err}
		_, srv := testServer(t, WebhookOptions{Cluster: "dev"}, sp)
		r := post(nil, srv.URL+"/audit", eventList(goodAudit), nil)
		if r.code != tc.want || r.hdr.Get("Retry-After") != "1" {
			t.Errorf("Commit error %v: %d Retry-After %q, want %d and 1", tc.err, r.code, r.hdr.Get("Retry-After"), tc.want)
		}
		if !strings.Contains(r.body, tc.err.Error()) {
			t.Errorf("Commit error %v: body %q does not say why", tc.err, r.body)
		}
		if obs, _, _ := sp.committed(); len(obs) > 0 || sp.commitCount() > 0 {
			t.Errorf("Commit error %v: %d acknowledged", tc.err, len(obs))
		}
	}
}

func TestWebhookBadBody(t *testing.T) {
	sp := &memSpool{}
	_, srv := testServer(t, WebhookOptions{Cluster: "dev"}, sp)
	full := string(eventList(goodAudit, goodAudit))
	for _, tc := range []struct {
		name   string
		body   []byte
		hdr    map[string]string
		reason string
	}{
		{"empty", nil, nil, "empty body"},
		{"not JSON", []byte("audit: yes\n"), nil, "not JSON"},
		{"truncated", []byte(full[:len(full)/2]), nil, "truncated"},
		{"array", []byte(`[` + goodAudit + `]`), nil, "JSON array"},
		{"no kind", []byte(`{"items":[]}`), nil, `no "kind"`},
		{"wrong kind", []byte(`{"kind":"PodList","apiVersion":"v1","items":[]}`), nil, `kind "PodList"`},
		{"core Event", []byte(`{"kind":"Event","apiVersion":"v1","involvedObject":{}}`), nil, `apiVersion "v1"`},
		{"items not a list", []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":{}}`), nil, `field "items"`},
		{"not gzip", []byte(full), map[string]string{"Content-Encoding": "gzip"}, "bad gzip body"},
		{"truncated gzip", gzipped([]byte(full))[:100], map[string]string{"Content-Encoding": "gzip"}, "truncated"},
		{"br", []byte(full), map[string]string{"Content-Encoding": "br"}, "Content-Encoding"},
	} {
		r := post(nil, srv.URL+"/audit", tc.body, tc.hdr)
		want := http.StatusBadRequest
		if tc.name == "br" {
			want = http.StatusUnsupportedMediaType
		}
		if r.code != want || !strings.Contains(r.body, tc.reason) || strings.Count(strings.TrimSpace(r.body), "\n") > 0 {
			t.Errorf("%s: %d %q, want %d with one line saying %q", tc.name, r.code, r.body, want, tc.reason)
		}
	}
	if sp.commitCount() > 0 {
		t.Errorf("%d bad bodies committed", sp.commitCount())
	}
}

func TestWebhookMixedBatch(t *testing.T) {
	sp := &memSpool{}
	_, srv := testServer(t, WebhookOptions{Cluster: "dev"}, sp)
	body := eventList(
		auditWithID("a1"),
		`{"auditID":"x2","verb":"get","stage":"ResponseComplete","objectRef":{"resource":"pods"},"requestReceivedTimestamp":"not-a-time"}`,
		auditWithID("a3"),
		`{"stage":"ResponseComplete","verb":"get","objectRef":{"resource":"pods"}}`, // no auditID
		`"just a string"`,
		auditWithID("a6"),
	)
	r := post(nil, srv.URL+"/audit", body, nil)
	if r.code != 200 {
		t.Fatalf("%d %q", r.code, r.body)
	}
	var counts struct{ Accepted, Quarantined int }
	if err := json.Unmarshal([]byte(r.body), &counts); err != nil || counts.Accepted != 3 || counts.Quarantined != 3 {
		t.Errorf("body %q (%v), want 3 accepted and 3 quarantined", r.body, err)
	}
	obs, _, bad := sp.committed()
	if got := strings.Join(auditIDs(obs), ","); got != "a1,a3,a6" {
		t.Errorf("committed %s, want a1,a3,a6", got)
	}
	var lines []int
	for _, m := range bad {
		lines = append(lines, m.Line)
		if !strings.HasPrefix(m.File, "webhook:127.0.0.1:") || m.Reason == "" || len(m.Raw) == 0 {
			t.Errorf("malformed %+v: want the sender, a reason and the raw event", m)
		}
	}
	if !slices.Equal(lines, []int{2, 4, 5}) {
		t.Errorf("malformed items %v, want 2, 4, 5 (%v)", lines, bad)
	}
}

func TestWebhookTooLarge(t *testing.T) {
	sp := &memSpool{}
	const limit = 16 << 10
	_, srv := testServer(t, WebhookOptions{Cluster: "dev", MaxBodyBytes: limit}, sp)
	items := make([]string, 0, 64)
	for i := range cap(items) {
		items = append(items, auditWithID(fmt.Sprint("a", i)))
	}
	big := eventList(items...)
	if len(big) <= limit {
		t.Fatalf("test body of %d bytes is not over the limit", len(big))
	}
	// A gzip bomb: 4 MiB of blanks in a valid EventList compress to some 4 KiB, under the limit.
	bomb := gzipped(slices.Concat([]byte(`{"kind":"EventList","items":[`), bytes.Repeat([]byte(" "), 4<<20), []byte(`]}`)))
	for _, tc := range []struct {
		name string
		body []byte
		hdr  map[string]string
		// chunked hides the length, so the limit applies while reading
		chunked bool
	}{
		{"plain", big, nil, false},
		{"plain chunked", big, nil, true},
		{"gzip", gzipped(big), map[string]string{"Content-Encoding": "gzip"}, false},
		{"gzip bomb", bomb, map[string]string{"Content-Encoding": "gzip"}, true},
	} {
		var body io.Reader = bytes.NewReader(tc.body)
		if tc.chunked {
			body = io.MultiReader(body) // not a *bytes.Reader: no Content-Length
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/audit", body)
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || tc.name == "gzip bomb" && !strings.Contains(string(b), "decompressed") {
			t.Errorf("%s (%d bytes sent): %d %q, want 413", tc.name, len(tc.body), resp.StatusCode, b)
		}
	}
	if sp.commitCount() > 0 {
		t.Errorf("%d oversized bodies committed", sp.commitCount())
	}
	// (The test takes half a second: net/http lingers that long before closing a connection
	// whose body it did not read, and the test server waits for it.)
	// At the limit exactly is fine.
	if r := post(nil, srv.URL+"/audit", eventList(items[:20]...), nil); r.code != 200 {
		t.Errorf("body under the limit: %d %q", r.code, r.body)
	}
}

func TestWebhookOverload(t *testing.T) {
	sp := &memSpool{entered: make(chan struct{}, 1), release: make(chan struct{})}
	_, srv := testServer(t, WebhookOptions{Cluster: "dev", MaxInFlight: 1}, sp)
	first := make(chan reply, 1)
	go func() { first <- post(nil, srv.URL+"/audit", eventList(auditWithID("a1")), nil) }()
	<-sp.entered
	start := time.Now()
	r := post(nil, srv.URL+"/audit", eventList(auditWithID("a2")), nil)
	if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") != "1" {
		t.Errorf("second batch while one is in flight: %d Retry-After %q, want 429 and 1", r.code, r.hdr.Get("Retry-After"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("429 took %v: it must not wait for the slot", d)
	}
	close(sp.release)
	if r := <-first; r.code != 200 {
		t.Errorf("first batch: %d %q", r.code, r.body)
	}
	if r := post(nil, srv.URL+"/audit", eventList(auditWithID("a3")), nil); r.code != 200 {
		t.Errorf("after the first is done: %d %q", r.code, r.body)
	}
	if obs, _, _ := sp.committed(); strings.Join(auditIDs(obs), ",") != "a1,a3" {
		t.Errorf("committed %v, want a1,a3", auditIDs(obs))
	}
}

func TestNewWebhookValidation(t *testing.T) {
	pki := newTestPKI(t)
	for _, tc := range []struct {
		name string
		o    WebhookOptions
		want string
	}{
		{"no TLS, no insecure", WebhookOptions{}, "TLS needs a certificate"},
		{"tokens only, no TLS", WebhookOptions{BearerTokens: []string{"t"}}, "TLS needs a certificate"},
		{"cert without key", WebhookOptions{TLSCertFile: pki.serverCert, ClientCAFile: pki.caFile}, "both"},
		{"TLS unauthenticated", WebhookOptions{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey}, "unauthenticated"},
		{"insecure and TLS", WebhookOptions{InsecureHTTP: true, TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey}, "choose one"},
		{"insecure and client CA", WebhookOptions{InsecureHTTP: true, ClientCAFile: pki.caFile}, "choose one"},
		{"bad CA file", WebhookOptions{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, ClientCAFile: pki.serverKey}, "no PEM certificates"},
		{"missing cert", WebhookOptions{TLSCertFile: "/nonexistent", TLSKeyFile: pki.serverKey, BearerTokens: []string{"t"}}, "no such file"},
		{"empty token", WebhookOptions{InsecureHTTP: true, BearerTokens: []string{""}}, "empty bearer token"},
		{"bad cluster", WebhookOptions{InsecureHTTP: true, Cluster: "Prod_1"}, "cluster"},
	} {
		if _, err := NewWebhook(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	for _, o := range []WebhookOptions{
		{InsecureHTTP: true},
		{InsecureHTTP: true, BearerTokens: []string{"t"}},
		{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, ClientCAFile: pki.caFile},
		{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, BearerTokens: []string{"t"}},
	} {
		if _, err := NewWebhook(o); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestWebhookBearerToken(t *testing.T) {
	sp := &memSpool{}
	_, srv := testServer(t, WebhookOptions{Cluster: "dev", BearerTokens: []string{"s3cret-one", "s3cret-two"}}, sp)
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer", 401},
		{"Bearer wrong", 401},
		{"Bearer s3cret-one-and-more", 401},
		{"Basic czNjcmV0LW9uZQ==", 401},
		{"Bearer s3cret-one", 200},
		{"bearer s3cret-two", 200},
	} {
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		r := post(nil, srv.URL+"/audit", eventList(goodAudit), hdr)
		if r.code != tc.want {
			t.Errorf("Authorization %q: %d %q, want %d", tc.auth, r.code, r.body, tc.want)
		}
		if r.code == 401 && !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: 401 without WWW-Authenticate: Bearer", tc.auth)
		}
	}
	// Unauthenticated requests learn nothing about paths.
	if r := post(nil, srv.URL+"/nowhere", nil, nil); r.code != 401 {
		t.Errorf("unauthenticated POST /nowhere: %d, want 401", r.code)
	}
	if sp.commitCount() != 2 {
		t.Errorf("%d commits, want 2", sp.commitCount())
	}
}

func TestWebhookTLSClientCert(t *testing.T) {
	pki := newTestPKI(t)
	sp := &memSpool{}
	w := runWebhook(t, WebhookOptions{Addr: "127.0.0.1:0", Cluster: "dev",
		TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, ClientCAFile: pki.caFile}, sp)
	url := "https://" + w.Addr() + "/audit"
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pki.pool, Certificates: certs}}}
	}
	body := eventList(goodAudit)

	if r := post(client(), url, body, nil); r.err == nil && r.code != 401 {
		t.Errorf("no client certificate: %d %q, want 401 or a TLS error", r.code, r.body)
	}
	if r := post(client(pki.otherClient), url, body, nil); r.err == nil && r.code != 401 {
		// Go's client does not even send a certificate the server's CA list does not name.
		t.Errorf("client certificate of another CA: %d %q, want 401 or a TLS error", r.code, r.body)
	}
	forced := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pki.pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &pki.otherClient, nil
		}}}}
	if r := post(forced, url, body, nil); r.err == nil {
		t.Errorf("client certificate of another CA, presented anyway: %d %q, want a TLS handshake error", r.code, r.body)
	}
	if r := post(nil, "http://"+w.Addr()+"/audit", body, nil); r.err == nil && r.code == 200 {
		t.Errorf("plain http to the TLS port accepted")
	}
	if r := post(client(pki.client), url, body, nil); r.err != nil || r.code != 200 {
		t.Errorf("good client certificate: %d %q %v, want 200", r.code, r.body, r.err)
	}
	// Probes without certificates may still check health.
	resp, err := client().Get("https://" + w.Addr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz without a client certificate: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if sp.commitCount() != 1 {
		t.Errorf("%d commits, want 1", sp.commitCount())
	}
}

func TestWebhookRunGracefulShutdown(t *testing.T) {
	sp := &memSpool{entered: make(chan struct{}, 1), release: make(chan struct{})}
	w, err := NewWebhook(WebhookOptions{Addr: "127.0.0.1:0", Cluster: "dev", InsecureHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, sp) }()
	<-w.Ready()
	if w.Name() != "audit-webhook" {
		t.Errorf("Name %q", w.Name())
	}
	replies := make(chan reply, 1)
	go func() { replies <- post(nil, "http://"+w.Addr()+"/audit", eventList(goodAudit), nil) }()
	<-sp.entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a batch was being committed", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(sp.release)
	if r := <-replies; r.code != 200 {
		t.Errorf("in-flight batch at shutdown: %d %q %v, want 200", r.code, r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if r := post(nil, "http://"+w.Addr()+"/audit", eventList(goodAudit), nil); r.err == nil {
		t.Errorf("after shutdown: %d, want no listener", r.code)
	}
	if err := w.Run(context.Background(), sp); err == nil {
		t.Error("second Run: no error")
	}
}

// TestWebhookRealAuditBatch posts 50 records of the bundled recording as one EventList: what is
// committed is exactly their final-stage records of resources, found here with encoding/json alone.
func TestWebhookRealAuditBatch(t *testing.T) {
	lines := recordingLines(t, 780, 50)
	var want []string
	for _, l := range lines {
		var ev struct {
			AuditID   string `json:"auditID"`
			Stage     string `json:"stage"`
			ObjectRef *struct {
				Resource string `json:"resource"`
			} `json:"objectRef"`
		}
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Stage == "ResponseComplete" && ev.ObjectRef != nil && ev.ObjectRef.Resource != "" {
			want = append(want, ev.AuditID)
		}
	}
	slices.Sort(want)
	if len(want) < 30 {
		t.Fatalf("only %d final-stage records in the sample", len(want))
	}
	sp := &memSpool{}
	_, srv := testServer(t, WebhookOptions{Cluster: "dev"}, sp)
	body := eventList(stringsOf(lines)...)
	r := post(nil, srv.URL+"/audit", gzipped(body), map[string]string{"Content-Encoding": "gzip"})
	if r.code != 200 || strings.TrimSpace(r.body) != `{"accepted":50,"quarantined":0}` {
		t.Fatalf("%d %q", r.code, r.body)
	}
	obs, revs, bad := sp.committed()
	if got := auditIDs(obs); !slices.Equal(got, want) {
		t.Errorf("committed audit IDs %v\nwant %v", got, want)
	}
	if len(bad) > 0 || len(revs) == 0 {
		t.Errorf("%d malformed, %d revisions: want none and some (the sample has RequestResponse writes)", len(bad), len(revs))
	}
}

func recordingLines(tb testing.TB, from, n int) [][]byte {
	tb.Helper()
	f, err := os.Open("../testdata/recording/audit.log.gz")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	var out [][]byte
	for i := 0; sc.Scan() && len(out) < n; i++ {
		if i >= from {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil || len(out) < n {
		tb.Fatalf("recording: %d lines from %d (%v), want %d", len(out), from, err, n)
	}
	return out
}

func stringsOf(b [][]byte) []string {
	s := make([]string, len(b))
	for i := range b {
		s[i] = string(b[i])
	}
	return s
}

func runWebhook(t *testing.T, o WebhookOptions, sp Spooler) *Webhook {
	t.Helper()
	w, err := NewWebhook(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, sp) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate, and a client
// certificate of another CA.
type testPKI struct {
	caFile, serverCert, serverKey string
	pool                          *x509.CertPool
	client, otherClient           tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(0)
	issue := func(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, der
	}
	newCA := func(name string) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
		k := newKey()
		c, der := issue(&x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}, nil, k, nil)
		return c, der, k
	}
	leaf := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
		k := newKey()
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		_, der := issue(tmpl, ca, k, caKey)
		keyDER, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, der, keyDER
	}

	ca, caDER, caKey := newCA("kairn test CA")
	other, _, otherKey := newCA("another CA")
	p := &testPKI{caFile: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	_, srvDER, srvKey := leaf(ca, caKey, "kairn", x509.ExtKeyUsageServerAuth)
	p.serverCert = write("server.pem", "CERTIFICATE", srvDER)
	p.serverKey = write("server-key.pem", "EC PRIVATE KEY", srvKey)
	p.client, _, _ = leaf(ca, caKey, "kube-apiserver", x509.ExtKeyUsageClientAuth)
	p.otherClient, _, _ = leaf(other, otherKey, "intruder", x509.ExtKeyUsageClientAuth)
	return p
}

// benchBodies are EventLists of 400 events each, cut from the recording.
func benchBodies(b *testing.B) [][]byte {
	lines := recordingLines(b, 0, 1200)
	var bodies [][]byte
	for i := 0; i+400 <= len(lines); i += 400 {
		bodies = append(bodies, eventList(stringsOf(lines[i:i+400])...))
	}
	return bodies
}

// BenchmarkWebhookIngest posts 400-event batches over loopback to the webhook, one at a time,
// with a Spooler whose Commit does nothing: decoding and HTTP are what is measured. Compare
// events/s with BenchmarkWebhookDecodeBaseline, run on the same bodies.
func BenchmarkWebhookIngest(b *testing.B) {
	bodies := benchBodies(b)
	w, err := NewWebhook(WebhookOptions{Cluster: "bench", InsecureHTTP: true})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler(nopSpooler{}))
	defer srv.Close()
	client := srv.Client()
	for _, gz := range []bool{false, true} {
		name, posted := "plain", bodies
		if gz {
			name, posted = "gzip", nil
			for _, body := range bodies {
				posted = append(posted, gzipped(body))
			}
		}
		b.Run(name, func(b *testing.B) {
			var raw int64
			for _, body := range bodies {
				raw += int64(len(body))
			}
			b.SetBytes(raw / int64(len(bodies))) // uncompressed bytes per batch
			n := 0
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/audit", bytes.NewReader(posted[n%len(posted)]))
				if gz {
					req.Header.Set("Content-Encoding", "gzip")
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				n++
			}
			rate := float64(n*400) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "events/s")
			if !gz {
				// The same-run baseline: encoding/json of the same bodies into maps, best of 3.
				best := time.Duration(1<<63 - 1)
				for range 3 {
					start := time.Now()
					for _, body := range bodies {
						var m map[string]any
						json.Unmarshal(body, &m)
					}
					best = min(best, time.Since(start))
				}
				benchrow.Record(benchrow.Row{Name: "webhook over loopback, 400-event batches", Value: rate, Unit: "events/s",
					Baseline: float64(len(bodies)*400) / best.Seconds(), BaselineName: "encoding/json into maps"})
			}
		})
	}
}

// BenchmarkWebhookDecodeBaseline is plain encoding/json of the same bodies into map[string]any:
// what any Go receiver of these batches pays at least.
func BenchmarkWebhookDecodeBaseline(b *testing.B) {
	bodies := benchBodies(b)
	var raw int64
	for _, body := range bodies {
		raw += int64(len(body))
	}
	b.SetBytes(raw / int64(len(bodies)))
	n := 0
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(bodies[n%len(bodies)], &m); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*400)/b.Elapsed().Seconds(), "events/s")
}

// FuzzSplitEnvelope holds splitEnvelope to encoding/json: on a body encoding/json accepts, it finds
// the same kind, apiVersion and items; on one encoding/json refuses, it fails too, or one of its
// items is itself invalid JSON (and is quarantined when decoded).
func FuzzSplitEnvelope(f *testing.F) {
	for _, s := range []string{
		string(eventList(goodAudit, goodAudit)),
		`{"kind":"EventList","items":[1, true ,null,"s",[],{}, -2.5e3 ]}`,
		`{ "KIND" : "Event" , "apiversion":"audit.k8s.io/v1beta1", "x": {"y": [1, {"}": "]"}]} }`,
		`{"kind":"EventList","items":[{"a":"\"}]"}],"items":[{"b":1}]}`,
		`{"kind":"EventList","items":null}`,
		`{"kind":"EventList","items":{}}`,
		`{"kind":5}`,
		`{"kind":"EventList","items":[{"a":1} {"b":2}]}`,
		`{"kind":"EventList","items":[{"a":1,}]}`,
		`{"kind":"EventList","items":[{"a":[}]}`,
		`{"kind":"EventList","items":[{"a":1}]`,
		`{"items":[{""}],"items":[]}`,
		`{"kind":"EventList"} x`,
		`{"kind":"EventList","n":tru}`,
		`{"kind":"EventList","n":}`,
		`{}`, `null`, `[]`, `"s"`, ``, `{`, `{"`, `{"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want webhookEnvelope
		jerr := json.Unmarshal(body, &want)
		got, serr := splitEnvelope(body)
		var te *json.UnmarshalTypeError
		switch {
		case jerr == nil && bytes.Equal(bytes.TrimSpace(body), []byte("null")):
		case jerr == nil:
			if serr != nil {
				t.Fatalf("encoding/json accepts %q, splitEnvelope: %v", body, serr)
			}
			if got.Kind != want.Kind || got.APIVersion != want.APIVersion || len(got.Items) != len(want.Items) {
				t.Fatalf("%q: split %q %q %d items, encoding/json %q %q %d", body,
					got.Kind, got.APIVersion, len(got.Items), want.Kind, want.APIVersion, len(want.Items))
			}
			for i := range got.Items {
				if !bytes.Equal(got.Items[i], want.Items[i]) {
					t.Fatalf("%q: item %d split as %q, encoding/json %q", body, i, got.Items[i], want.Items[i])
				}
			}
		case errors.As(jerr, &te):
			if serr == nil {
				t.Fatalf("encoding/json refuses %q (%v), splitEnvelope accepts it", body, jerr)
			}
		case serr == nil:
			if !slices.ContainsFunc(got.Items, func(it json.RawMessage) bool { return !json.Valid(it) }) {
				t.Fatalf("encoding/json refuses %q (%v), splitEnvelope accepts it with valid items", body, jerr)
			}
		}
	})
}

func TestWebhookMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, srv := testServer(t, WebhookOptions{Cluster: "dev", BearerTokens: []string{"s3cret"}, Registerer: reg}, &memSpool{})
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	for _, r := range []reply{
		post(nil, srv.URL+"/audit", eventList(auditWithID("a1"), `"just a string"`, auditWithID("a2")), auth),
		post(nil, srv.URL+"/audit", []byte("{not json"), auth),
		post(nil, srv.URL+"/audit", eventList(auditWithID("a3")), nil),
	} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	want := `
# HELP kairn_webhook_events_total Audit events received in committed batches: accepted, or quarantined as malformed.
# TYPE kairn_webhook_events_total counter
kairn_webhook_events_total{result="accepted"} 2
kairn_webhook_events_total{result="quarantined"} 1
# HELP kairn_webhook_rejections_total Audit webhook requests refused, by status code (401 unauthenticated, 400 bad body, 413 too large, 429 overloaded, ...).
# TYPE kairn_webhook_rejections_total counter
kairn_webhook_rejections_total{code="400"} 1
kairn_webhook_rejections_total{code="401"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kairn_webhook_events_total", "kairn_webhook_rejections_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "kairn_webhook_request_duration_seconds"); n != 3 {
		t.Errorf("latency series for %d status codes, want 3 (200, 400, 401)", n)
	}
}
