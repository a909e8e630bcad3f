package helm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestHelmServePodE2E runs the chart's serve pod outside Kubernetes: the Jaeger v2 config the
// chart renders, given to a real Jaeger (KAIRN_JAEGER_BIN, the same jaeger binary as the
// official image, built from the same version), and `kairn serve` with the chart's arguments
// over a local archive of testdata/daemonset. Only the listen addresses are moved to free local
// ports. Jaeger must come up healthy and answer traces that it reads through its remote
// storage backend from kairn.
func TestHelmServePodE2E(t *testing.T) {
	e := requireHelm(t)
	jaegerBin := os.Getenv("KAIRN_JAEGER_BIN")
	if jaegerBin == "" {
		t.Skip("KAIRN_JAEGER_BIN is not set (make e2e sets it from hack/jaeger.sh path)")
	}
	out := e.helm(t, "template", "e2e", chartDir, "--namespace", "kairn", "--show-only", "templates/serve.yaml",
		"--set", "cluster.name=dev", "--set", "archive.url=s3://kairn/archive")
	var config string
	var serveArgs []string
	var jaegerArgs, jaegerEnv []string
	for _, d := range splitDocs(t, out) {
		switch d.Kind {
		case "ConfigMap":
			config = d.Data["config.yaml"]
		case "Deployment":
			var dep struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Name  string   `json:"name"`
								Image string   `json:"image"`
								Args  []string `json:"args"`
								Env   []struct {
									Name  string `json:"name"`
									Value string `json:"value"`
								} `json:"env"`
							} `json:"containers"`
						} `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(d.Raw), &dep); err != nil {
				t.Fatal(err)
			}
			for _, c := range dep.Spec.Template.Spec.Containers {
				switch c.Name {
				case "serve":
					serveArgs = c.Args
				case "jaeger":
					jaegerArgs = c.Args
					for _, v := range c.Env {
						jaegerEnv = append(jaegerEnv, v.Name+"="+v.Value)
					}
					if !strings.HasPrefix(c.Image, "jaegertracing/jaeger:2.") {
						t.Errorf("jaeger image %q: want the official jaegertracing/jaeger v2", c.Image)
					}
				}
			}
		}
	}
	if config == "" || len(serveArgs) == 0 || !slices.Equal(jaegerArgs, []string{"--config=/etc/jaeger/config.yaml"}) {
		t.Fatalf("serve.yaml: config %d bytes, serve args %q, jaeger args %q", len(config), serveArgs, jaegerArgs)
	}

	// The pod's addresses, moved to free local ports.
	ui, health, query, remote, api, metrics := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	moves := map[string]string{"0.0.0.0:16686": ui, "0.0.0.0:13133": health, "127.0.0.1:16685": query, "127.0.0.1:17271": remote}
	for from, to := range moves {
		if !strings.Contains(config, from) {
			t.Fatalf("jaeger config has no %s:\n%s", from, config)
		}
		config = strings.ReplaceAll(config, from, to)
	}
	dir := t.TempDir()
	archiveDir := filepath.Join(dir, "archive")
	args := []string{"ingest", "--cluster", "rec", "--archive", archiveDir, "--audit", "../../testdata/daemonset/audit.log.gz"}
	watches, _ := filepath.Glob("../../testdata/daemonset/watch-*.json.gz")
	for _, w := range watches {
		args = append(args, "--watch", w)
	}
	bin := kairnBin(t)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("kairn ingest: %v\n%s", err, out)
	}
	for i, a := range serveArgs {
		switch {
		case strings.HasPrefix(a, "--archive="):
			serveArgs[i] = "--archive=" + archiveDir
		case a == "--grpc-addr=127.0.0.1:17271":
			serveArgs[i] = "--grpc-addr=" + remote
		case strings.HasPrefix(a, "--http-addr=:"):
			serveArgs[i] = "--http-addr=" + api
		case strings.HasPrefix(a, "--metrics-addr=:"):
			serveArgs[i] = "--metrics-addr=" + metrics
		}
	}
	if !slices.Contains(serveArgs, "--metrics-addr="+metrics) {
		t.Fatalf("serve args have no --metrics-addr=:PORT for the probes: %q", serveArgs)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(config), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(name string, env []string, path string, args ...string) *os.File {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), env...)
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); cmd.Wait(); logf.Close() })
		return logf
	}
	serveLog := start("serve", nil, bin, serveArgs...)
	jaegerLog := start("jaeger", jaegerEnv, jaegerBin, "--config="+cfgPath)
	logs := func() string {
		a, _ := os.ReadFile(serveLog.Name())
		b, _ := os.ReadFile(jaegerLog.Name())
		return "kairn serve:\n" + string(a) + "\njaeger:\n" + string(b)
	}

	// healthcheckv2, as the pod's probes ask it
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st struct {
			Healthy bool `json:"healthy"`
		}
		if err := getJSON("http://"+health+"/status", &st); err == nil && st.Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger did not report healthy on /status:\n%s", logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
	// kairn serve's probes, as the pod asks them
	for _, p := range []string{"/readyz", "/healthz"} {
		var body string
		deadline := time.Now().Add(30 * time.Second)
		for getText("http://"+metrics+p, &body) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("kairn serve %s: %s\n%s", p, body, logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Jaeger's query API, answered through the remote storage backend by kairn serve.
	var services struct {
		Data   []string `json:"data"`
		Errors any      `json:"errors"`
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		err := getJSON("http://"+ui+"/api/services", &services)
		if err == nil && slices.Contains(services.Data, "tree") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger /api/services: %v %+v\n%s", err, services, logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
	var traces struct {
		Data []struct {
			TraceID string `json:"traceID"`
			Spans   []any  `json:"spans"`
		} `json:"data"`
		Errors any `json:"errors"`
	}
	url := fmt.Sprintf("http://%s/api/traces?service=tree&start=946684800000000&end=%d&limit=5", ui, time.Now().UnixMicro())
	if err := getJSON(url, &traces); err != nil || len(traces.Data) == 0 || len(traces.Data[0].Spans) == 0 {
		t.Fatalf("jaeger /api/traces: %v %+v\n%s", err, traces, logs())
	}
	t.Logf("jaeger (chart config) healthy; /api/services: %d pipelines; /api/traces: %d traces, first has %d spans, read from kairn serve",
		len(services.Data), len(traces.Data), len(traces.Data[0].Spans))
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}
