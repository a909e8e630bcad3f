package helm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestHelmWebhookE2E checks the path from the apiserver to the collector as the chart and
// deploy/apiserver/audit-webhook-kubeconfig.yaml set it up: the certificate and token the chart
// generates, mounted as the chart mounts them into `kairn collect` with the chart's flags, and
// a client built by client-go from the webhook kubeconfig template (what kube-apiserver's audit
// webhook backend does) posting an audit EventList. The right token is accepted (the batch is
// spooled), a wrong one gets 401, and a client that does not trust the chart's CA fails TLS.
func TestHelmWebhookE2E(t *testing.T) {
	e := requireHelm(t)
	// The apiserver dials 127.0.0.1 here: the name goes into the certificate as extraSANs does.
	out := e.helm(t, "template", "e2e", chartDir, "--namespace", "kairn", "--show-only", "templates/webhook-secrets.yaml",
		"--set", "cluster.name=dev", "--set", "archive.url=s3://kairn/archive",
		"--set", "collector.webhook.tls.extraSANs={127.0.0.1}")
	dir := t.TempDir()
	files := map[string]string{}
	for _, d := range splitDocs(t, out) {
		for k, v := range d.Data {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatalf("secret %s key %s: %v", d.Name, k, err)
			}
			files[k] = filepath.Join(dir, k)
			os.WriteFile(files[k], b, 0o600)
		}
	}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt", "tokens"} {
		if files[k] == "" {
			t.Fatalf("the chart's webhook secrets have no %s:\n%s", k, out)
		}
	}
	tokens, _ := os.ReadFile(files["tokens"])
	ca, _ := os.ReadFile(files["ca.crt"])

	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	logPath := filepath.Join(dir, "collect.log")
	logf, _ := os.Create(logPath)
	// the flags of the chart's collector container (templates/collector.yaml)
	cmd := exec.CommandContext(ctx, kairnBin(t), "collect", "--cluster", "dev",
		"--archive", filepath.Join(dir, "archive"), "--spool", filepath.Join(dir, "spool"), "--metrics-addr=",
		"--webhook-addr="+addr, "--webhook-tls-cert="+files["tls.crt"], "--webhook-tls-key="+files["tls.key"],
		"--webhook-token-file="+files["tokens"])
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait(); logf.Close() })
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	template, err := os.ReadFile("../apiserver/audit-webhook-kubeconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	client := func(token string, caData []byte) (*rest.Config, *http.Client) {
		kc := strings.NewReplacer("<COLLECTOR_ADDRESS>", addr,
			"<CA_DATA>", base64.StdEncoding.EncodeToString(caData), "<TOKEN>", token).Replace(string(template))
		cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kc))
		if err != nil {
			t.Fatalf("the webhook kubeconfig template does not load: %v\n%s", err, kc)
		}
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return cfg, hc
	}
	batch := auditBatch(t, 5)
	post := func(cfg *rest.Config, hc *http.Client) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, cfg.Host, bytes.NewReader(batch))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	good := strings.SplitN(strings.TrimSpace(string(tokens)), "\n", 2)[0]
	cfg, hc := client(good, ca)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, err := post(cfg, hc)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s with the chart's token: %d %v\n%s", cfg.Host, code, err, logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if code, err := post(client("not-"+good, ca)); err != nil || code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d %v, want 401", code, err)
	}
	other := mustOtherCA(t, e)
	if _, err := post(client(good, other)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client that does not trust the chart's CA: %v, want a certificate error", err)
	}
	t.Logf("webhook kubeconfig template + chart-generated TLS and token: batch accepted at %s, wrong token 401, untrusted CA refused", cfg.Host)
}

// auditBatch is an audit.k8s.io/v1 EventList of the first n events of testdata/daemonset.
func auditBatch(t *testing.T, n int) []byte {
	t.Helper()
	f, err := os.Open("../../testdata/daemonset/audit.log.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var items []string
	for len(items) < n && sc.Scan() {
		items = append(items, sc.Text())
	}
	return []byte(fmt.Sprintf(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[%s]}`, strings.Join(items, ",")))
}

// mustOtherCA is a CA certificate that did not sign the collector's certificate.
func mustOtherCA(t *testing.T, e *env) []byte {
	t.Helper()
	out := e.helm(t, "template", "other", chartDir, "--namespace", "other", "--show-only", "templates/webhook-secrets.yaml",
		"--set", "cluster.name=dev", "--set", "archive.url=s3://kairn/archive")
	for _, d := range splitDocs(t, out) {
		if v := d.Data["ca.crt"]; v != "" {
			b, _ := base64.StdEncoding.DecodeString(v)
			return b
		}
	}
	t.Fatal("no ca.crt")
	return nil
}
