// Package helm holds the live test of the Helm chart in deploy/helm/kairn: real Helm renders it,
// the real kube-apiserver of deploy/dev/cluster.sh validates every manifest (server-side dry run,
// admission included), and `kubectl auth can-i` plus a real `kairn collect` under the chart's
// ServiceAccount prove its RBAC is enough and no more.
package helm

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// valuesSets are the configurations the chart is rendered and validated with.
var valuesSets = []struct {
	name string
	args []string
	// CRD-backed kinds expected in the output; the dev cluster has no cert-manager, so they
	// are checked here but not sent to the apiserver.
	crdKinds []string
}{
	{name: "default", args: []string{"--set", "cluster.name=dev", "--set", "archive.url=s3://kairn/archive"}},
	{name: "multicluster", args: []string{"-f", "testdata/multicluster.yaml"}},
	{name: "certmanager", args: []string{"-f", "testdata/certmanager.yaml"}, crdKinds: []string{"Certificate"}},
	// $JOBS: deploy/analyze-jobs.yaml, the example jobs file, as analyze.jobs (writeJobsValues)
	{name: "analyze-cronjob", args: []string{"-f", "testdata/analyze-cronjob.yaml", "-f", "$JOBS"}},
	{name: "remote-rbac", args: []string{"-f", "testdata/remote-rbac.yaml"}},
	{name: "managed", args: []string{"-f", "testdata/managed.yaml"}},
}

const chartDir = "kairn"

// watchedResources is what `kairn collect` watches: collect.DefaultWatchResources and
// collect.EventResources (kept in step by the real collect run in TestHelmRBACE2E).
var watchedResources = []string{"events", "events.events.k8s.io", "pods", "nodes", "services",
	"deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps",
	"jobs.batch", "endpointslices.discovery.k8s.io"}

func TestHelmChartE2E(t *testing.T) {
	env := requireEnv(t)
	jobs := writeJobsValues(t)

	// helm lint --strict with the values every install needs.
	env.helm(t, "lint", "--strict", chartDir, "--set", "cluster.name=dev", "--set", "archive.url=s3://kairn/archive")

	applied := 0
	for _, vs := range valuesSets {
		t.Run(vs.name, func(t *testing.T) {
			ns := env.createNamespace(t, "kairn-e2e-"+vs.name)
			args := []string{"template", "e2e-" + vs.name, chartDir, "--namespace", ns, "--kube-version", env.kubeVersion}
			for _, a := range vs.args {
				args = append(args, strings.ReplaceAll(a, "$JOBS", jobs))
			}
			out := env.helm(t, args...)
			docs := splitDocs(t, out)
			if len(docs) == 0 {
				t.Fatal("helm template rendered nothing")
			}
			var keep []manifest
			for _, d := range docs {
				checkStatic(t, d)
				if slices.Contains(vs.crdKinds, d.Kind) {
					t.Logf("%s %s: CRD-backed, not validated by the apiserver (no cert-manager in the dev cluster)", d.Kind, d.Name)
					continue
				}
				keep = append(keep, d)
			}
			for _, k := range vs.crdKinds {
				if !slices.ContainsFunc(docs, func(d manifest) bool { return d.Kind == k }) {
					t.Errorf("expected a %s in the output", k)
				}
			}
			n := env.dryRun(t, ns, keep)
			if n != len(keep) {
				t.Errorf("apiserver accepted %d objects, rendered %d", n, len(keep))
			}
			applied += n
			t.Logf("%d manifests validated by the apiserver (%s)", n, kinds(keep))
		})
	}
	t.Logf("total: %d manifests validated by the apiserver over %d values sets", applied, len(valuesSets))
}

// TestHelmValuesRefusedE2E: values the chart must refuse, with a message that says what to fix.
func TestHelmValuesRefusedE2E(t *testing.T) {
	helmBin := os.Getenv("KAIRN_HELM_BIN")
	if os.Getenv("KAIRN_E2E") != "1" || helmBin == "" {
		t.Skip("live tests run with KAIRN_E2E=1 and KAIRN_HELM_BIN (make e2e)")
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "archive.url=s3://kairn/archive"}, "cluster.name is required"},
		{[]string{"--set", "cluster.name=dev"}, "archive.url is required"},
		{[]string{"--set", "cluster.name=dev", "--set", "archive.url=s3://k/a", "--set", "collector.webhook.auth.token.enabled=false"}, "refuses an unauthenticated webhook"},
		{[]string{"--set", "cluster.name=dev", "--set", "archive.url=s3://k/a", "--set", "collector.webhook.tls.source=secret"}, "tls.secretName is required"},
		{[]string{"--set", "cluster.name=dev", "--set", "archive.url=s3://k/a", "--set", "analyze.mode=sidecar"}, "want deployment or cronjob"},
	} {
		out, err := exec.Command(helmBin, append([]string{"template", "bad", chartDir}, bad.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), bad.want) {
			t.Errorf("helm template %q: %v, want an error saying %q:\n%.300s", bad.args, err, bad.want, out)
		}
	}

}

// TestHelmRBACE2E applies the chart's RBAC for real, then asks the apiserver what the
// collector's ServiceAccount may do (each needed verb yes, everything else around it no), and
// runs `kairn collect --leader-elect --in-cluster` under that identity, with its token where a
// pod has it: no request may be forbidden, and it must win the Lease.
func TestHelmRBACE2E(t *testing.T) {
	env := requireEnv(t)
	ns := env.createNamespace(t, "kairn-e2e-rbac")
	other := env.createNamespace(t, "kairn-e2e-rbac-other")
	out := env.helm(t, "template", "e2e-rbac", chartDir, "--namespace", ns, "--kube-version", env.kubeVersion,
		"--set", "cluster.name=dev", "--set", "archive.url=s3://kairn/archive")
	var rbac []manifest
	docs := splitDocs(t, out)
	for _, d := range docs {
		switch d.Kind {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, d)
		}
	}
	f := writeManifests(t, rbac)
	env.kubectl(t, "apply", "-f", f)
	t.Cleanup(func() { env.kubectlNoFail("delete", "--ignore-not-found", "--wait=false", "-f", f) })

	sa := "system:serviceaccount:" + ns + ":e2e-rbac-kairn-collector"
	jobsSA := "system:serviceaccount:" + ns + ":e2e-rbac-kairn-jobs"
	type check struct {
		as, ns    string // ns "": all namespaces
		verb, res string // res: resource[.group][/name]
		sub       string // subresource
		want      bool
	}
	var checks []check
	for _, r := range watchedResources {
		for _, v := range []string{"get", "list", "watch"} {
			checks = append(checks, check{sa, "", v, r, "", true})
		}
		for _, v := range []string{"create", "update", "patch", "delete", "deletecollection"} {
			checks = append(checks, check{sa, "", v, r, "", false})
		}
		checks = append(checks, check{jobsSA, "", "list", r, "", false}) // merge/analyze/serve: no API at all
	}
	checks = append(checks,
		// leader election: the Lease kairn-collect in its own namespace only
		check{sa, ns, "create", "leases.coordination.k8s.io", "", true},
		check{sa, ns, "get", "leases.coordination.k8s.io/kairn-collect", "", true},
		check{sa, ns, "update", "leases.coordination.k8s.io/kairn-collect", "", true},
		check{sa, ns, "update", "leases.coordination.k8s.io/other", "", false},
		check{sa, ns, "delete", "leases.coordination.k8s.io/kairn-collect", "", false},
		check{sa, ns, "list", "leases.coordination.k8s.io", "", false},
		check{sa, other, "create", "leases.coordination.k8s.io", "", false},
		check{sa, "kube-system", "update", "leases.coordination.k8s.io/kairn-collect", "", false},
		// cluster identity: the kube-system Namespace, nothing else about namespaces
		check{sa, "", "get", "namespaces/kube-system", "", true},
		check{sa, "", "get", "namespaces/default", "", false},
		check{sa, "", "list", "namespaces", "", false},
		// no Secrets, no ConfigMaps, no way around them
		check{sa, "", "get", "secrets", "", false},
		check{sa, "", "list", "secrets", "", false},
		check{sa, "", "watch", "secrets", "", false},
		check{sa, ns, "get", "secrets", "", false},
		check{sa, "", "get", "configmaps", "", false},
		check{sa, "", "create", "pods", "exec", false},
		check{sa, "", "get", "pods", "log", false},
		check{sa, "", "get", "nodes", "proxy", false},
		check{sa, "", "create", "serviceaccounts", "token", false},
		check{sa, "", "impersonate", "serviceaccounts", "", false},
		check{sa, "", "create", "pods", "", false},
		check{sa, "", "update", "deployments.apps", "scale", false},
		check{sa, "", "list", "controllerrevisions.apps", "", false},
		check{sa, "", "list", "customresourcedefinitions.apiextensions.k8s.io", "", false},
		check{sa, "", "escalate", "clusterroles.rbac.authorization.k8s.io", "", false},
		check{sa, "", "*", "*", "", false},
		check{jobsSA, ns, "get", "secrets", "", false},
		check{jobsSA, ns, "get", "leases.coordination.k8s.io/kairn-collect", "", false},
	)
	bad := 0
	for _, c := range checks {
		args := []string{"auth", "can-i", c.verb, c.res, "--as", c.as}
		if c.sub != "" {
			args = append(args, "--subresource", c.sub)
		}
		if c.ns == "" {
			args = append(args, "--all-namespaces")
		} else {
			args = append(args, "-n", c.ns)
		}
		got := env.canI(t, args...)
		if got != c.want {
			bad++
			t.Errorf("kubectl %s: %v, want %v", strings.Join(args, " "), got, c.want)
		}
	}
	t.Logf("%d auth can-i checks (%d failed)", len(checks), bad)

	env.collectAsServiceAccount(t, ns, "e2e-rbac-kairn-collector", docs)
}

// collectAsServiceAccount runs the chart's collector container on this machine for a few
// seconds: its exact arguments (localArgs moves mounts, archive and ports), its files (the
// webhook certificate and token Secrets) and, for --in-cluster (client-go's in-cluster config),
// what the kubelet gives a pod whose token is mounted: a token of the collector's ServiceAccount
// and the cluster CA in /var/run/secrets/kubernetes.io/serviceaccount, and
// KUBERNETES_SERVICE_HOST/PORT. That path is fixed in client-go, so the collector runs in a
// private mount namespace (unshare) where a tmpfs over /run holds them; the host's /run is untouched.
func (e *env) collectAsServiceAccount(t *testing.T, ns, sa string, docs []manifest) {
	dir := t.TempDir()
	root := filepath.Join(dir, "pod")
	for _, d := range docs {
		switch {
		case d.Kind == "Secret" && strings.HasSuffix(d.Name, "-webhook-tls"):
			for k, v := range d.Data {
				b, _ := base64.StdEncoding.DecodeString(v)
				mount(t, root, "/etc/kairn/webhook-tls/"+k, b)
			}
		case d.Kind == "Secret" && strings.HasSuffix(d.Name, "-webhook-token"):
			b, _ := base64.StdEncoding.DecodeString(d.Data["tokens"])
			mount(t, root, "/etc/kairn/webhook-token/tokens", b)
		}
	}
	c := containerOf(t, docs, "Deployment", "-collector", "collector")
	args, ports := localArgs(t, c.Args, root, filepath.Join(dir, "archive"))
	for _, want := range []string{"--leader-elect", "--leader-election-namespace=" + ns, "--in-cluster"} {
		if !slices.Contains(args, want) {
			t.Fatalf("the chart's collector args have no %s: %q", want, c.Args)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--kubeconfig") }) {
		t.Fatalf("the chart's collector args still name a kubeconfig: %q", c.Args)
	}
	if !automountsToken(t, docs, "-collector") {
		t.Fatal("the collector pod does not mount its ServiceAccount token (automountServiceAccountToken), which --in-cluster reads")
	}

	// What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount.
	saDir := filepath.Join(root, "/var/run/secrets/kubernetes.io/serviceaccount")
	token := strings.TrimSpace(e.kubectl(t, "-n", ns, "create", "token", sa, "--duration=10m"))
	mount(t, root, "/var/run/secrets/kubernetes.io/serviceaccount/token", []byte(token))
	mount(t, root, "/var/run/secrets/kubernetes.io/serviceaccount/namespace", []byte(ns))
	caFile := e.kubectl(t, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority}")
	if caFile == "" {
		t.Skip("dev cluster kubeconfig has no certificate-authority file")
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	mount(t, root, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", ca)
	server, err := url.Parse(e.kubectl(t, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"))
	if err != nil || server.Port() == "" {
		t.Fatalf("dev cluster server %v: %v", server, err)
	}
	unshare := []string{"--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		unshare = append([]string{"--user", "--map-root-user"}, unshare...)
	}
	if out, err := exec.Command("unshare", append(unshare, "true")...).CombinedOutput(); err != nil {
		t.Fatalf("unshare %q (a private mount namespace for the pod's /var/run/secrets): %v\n%s", unshare, err, out)
	}
	const inPod = `mount -t tmpfs -o mode=0755 kairn-e2e-run /var/run &&
mkdir -p /var/run/secrets/kubernetes.io/serviceaccount &&
mount --bind "$0" /var/run/secrets/kubernetes.io/serviceaccount &&
exec "$@"`

	bin := kairnBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logPath := filepath.Join(dir, "collect.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	cmd := exec.CommandContext(ctx, "unshare", append(append(unshare, "--", "sh", "-c", inPod, saDir, bin), args...)...)
	cmd.Env = append(os.Environ(), "POD_NAME=e2e-rbac-0", "KUBECONFIG=",
		"KUBERNETES_SERVICE_HOST="+server.Hostname(), "KUBERNETES_SERVICE_PORT="+server.Port())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	}
	defer stop()
	// Once it holds the Lease, the elected replica lists and watches every resource.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs(), "watch: initial lists delivered") {
		select {
		case <-exited:
			t.Fatalf("kairn collect exited:\n%s", logs())
		default:
		}
		if strings.Contains(logs(), "forbidden") {
			time.Sleep(time.Second)
			t.Fatalf("kairn collect as %s was denied:\n%s", sa, logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("kairn collect did not finish its initial lists as %s:\n%s", sa, logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
	holder := e.kubectl(t, "-n", ns, "get", "lease", "kairn-collect", "-o", "jsonpath={.spec.holderIdentity}")
	if holder != "e2e-rbac-0" {
		t.Errorf("Lease %s/kairn-collect is held by %q, want e2e-rbac-0", ns, holder)
	}
	// the pod's probes: liveness /healthz, readiness /readyz
	for _, p := range []string{"/healthz", "/readyz"} {
		var body string
		if err := getText("http://"+ports["9464"]+p, &body); err != nil {
			t.Errorf("probe %s on the metrics port: %v", p, err)
		}
	}
	time.Sleep(3 * time.Second) // watches running
	stop()
	out := logs()
	if m := regexp.MustCompile(`(?i).*(forbidden|cannot (list|watch|get)|level=WARN|level=ERROR).*`).FindAllString(out, 5); len(m) > 0 {
		t.Fatalf("kairn collect under the chart's ServiceAccount hit denials or warnings:\n%s", strings.Join(m, "\n"))
	}
	want := fmt.Sprintf("resources=%d", len(watchedResources))
	if !strings.Contains(out, want) {
		t.Errorf("kairn collect did not watch %d resources (%s):\n%s", len(watchedResources), want, out)
	}
	t.Logf("the chart's collector container (args %q) ran under %s: took the Lease, listed and watched with no denial, /healthz and /readyz ok", c.Args, sa)
}

// checkStatic checks what the apiserver cannot: the chart's least-privilege promises.
func checkStatic(t *testing.T, d manifest) {
	t.Helper()
	// An API token only in a pod that watches its own cluster (--in-cluster reads it), and an
	// explicit choice in every pod (not the ServiceAccount's default).
	if p, ok := podOf(t, d); ok {
		inCluster := slices.ContainsFunc(p.Containers, func(c container) bool { return slices.Contains(c.Args, "--in-cluster") })
		switch {
		case p.AutomountServiceAccountToken == nil:
			t.Errorf("%s %s: automountServiceAccountToken not set", d.Kind, d.Name)
		case *p.AutomountServiceAccountToken != inCluster:
			t.Errorf("%s %s: automountServiceAccountToken %v with --in-cluster %v", d.Kind, d.Name, *p.AutomountServiceAccountToken, inCluster)
		}
	}
	switch d.Kind {
	case "ClusterRole", "Role":
		for _, r := range d.Rules {
			for _, v := range r.Verbs {
				if !slices.Contains([]string{"get", "list", "watch"}, v) &&
					!(d.Kind == "Role" && slices.Contains(r.Resources, "leases") && (v == "create" || v == "update")) {
					t.Errorf("%s %s grants %q on %v", d.Kind, d.Name, v, r.Resources)
				}
			}
			for _, res := range r.Resources {
				if res == "secrets" || res == "configmaps" || strings.Contains(res, "*") {
					t.Errorf("%s %s grants access to %q", d.Kind, d.Name, res)
				}
			}
			if slices.Contains(r.APIGroups, "*") {
				t.Errorf("%s %s grants on every API group", d.Kind, d.Name)
			}
		}
	}
}

type manifest struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Rules []struct {
		APIGroups []string `json:"apiGroups"`
		Resources []string `json:"resources"`
		Verbs     []string `json:"verbs"`
	} `json:"rules"`
	Data map[string]string `json:"data"`
	Name string            `json:"-"`
	Raw  string            `json:"-"`
}

func splitDocs(t *testing.T, out string) []manifest {
	t.Helper()
	var docs []manifest
	for _, raw := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		var m manifest
		if err := yaml.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, raw)
		}
		if m.Kind == "" {
			continue
		}
		m.Name, m.Raw = m.Metadata.Name, raw
		docs = append(docs, m)
	}
	return docs
}

func kinds(ms []manifest) string {
	n := map[string]int{}
	var order []string
	for _, m := range ms {
		if n[m.Kind] == 0 {
			order = append(order, m.Kind)
		}
		n[m.Kind]++
	}
	var s []string
	for _, k := range order {
		s = append(s, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(s, ", ")
}

func writeManifests(t *testing.T, ms []manifest) string {
	t.Helper()
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("---\n")
		b.WriteString(strings.TrimSpace(m.Raw))
		b.WriteString("\n")
	}
	f := filepath.Join(t.TempDir(), "manifests.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// writeJobsValues puts deploy/analyze-jobs.yaml, the example jobs file, under analyze.jobs.
func writeJobsValues(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../analyze-jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var jobs map[string]any
	if err := yaml.Unmarshal(raw, &jobs); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(map[string]any{"analyze": map[string]any{"jobs": jobs}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "analyze-jobs-values.yaml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// kairnBin builds ./cmd/kairn once per test binary.
func kairnBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kairn-helm-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "kairn")
		if out, err := exec.Command("go", "build", "-o", builtBin, "../../cmd/kairn").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build kairn: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

type env struct {
	helmBin, kubectlBin, kubeconfig, kubeVersion string
}

// requireHelm skips unless the live tests are on and Helm is built: enough for tests that render
// the chart and run its containers' commands without the cluster.
func requireHelm(t *testing.T) *env {
	t.Helper()
	if os.Getenv("KAIRN_E2E") != "1" {
		t.Skip("live tests run with KAIRN_E2E=1 against deploy/dev/cluster.sh (make e2e)")
	}
	e := &env{helmBin: os.Getenv("KAIRN_HELM_BIN")}
	if e.helmBin == "" {
		t.Skip("KAIRN_HELM_BIN is not set (make e2e sets it from hack/helm.sh path)")
	}
	return e
}

// requireEnv is requireHelm plus the dev cluster, reachable with kubectl.
func requireEnv(t *testing.T) *env {
	t.Helper()
	e := requireHelm(t)
	e.kubectlBin, e.kubeconfig = os.Getenv("KUBECTL"), os.Getenv("KUBECONFIG")
	if e.kubectlBin == "" {
		e.kubectlBin = "kubectl"
	}
	if e.kubeconfig == "" {
		e.kubeconfig, _ = filepath.Abs("../../.dev/cluster/admin.kubeconfig")
		os.Setenv("KUBECONFIG", e.kubeconfig)
	}
	if out, err := exec.Command(e.kubectlBin, "get", "--raw", "/readyz").CombinedOutput(); err != nil {
		t.Fatalf("KAIRN_E2E=1 but the dev cluster is not ready (deploy/dev/cluster.sh up): %v %s", err, out)
	}
	v := e.kubectl(t, "version", "-o", "json")
	var ver struct {
		Server struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	if err := yaml.Unmarshal([]byte(v), &ver); err != nil || ver.Server.GitVersion == "" {
		t.Fatalf("kubectl version: %v\n%s", err, v)
	}
	e.kubeVersion = ver.Server.GitVersion
	return e
}

func (e *env) helm(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(e.helmBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

func (e *env) helmNoFail(args ...string) {
	exec.Command(e.helmBin, args...).Run()
}

func (e *env) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(e.kubectlBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

func (e *env) kubectlNoFail(args ...string) {
	exec.Command(e.kubectlBin, args...).Run()
}

// canI is `kubectl auth can-i`: exit 0 yes, 1 no, anything else an error.
func (e *env) canI(t *testing.T, args ...string) bool {
	t.Helper()
	out, err := exec.Command(e.kubectlBin, args...).CombinedOutput()
	if err == nil {
		return true
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && strings.HasPrefix(strings.TrimSpace(string(out)), "no") {
		return false
	}
	t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	return false
}

// createNamespace creates ns for real, enforcing the restricted Pod Security Standard (and
// warning on it, so workloads that would break it show up in the dry run), and deletes it at
// the end of the test.
// The name gets a random suffix: a namespace of an earlier run may still be terminating.
func (e *env) createNamespace(t *testing.T, base string) string {
	t.Helper()
	ns := fmt.Sprintf("%s-%04x", base, rand.Uint32()&0xffff)
	e.kubectl(t, "create", "namespace", ns)
	e.kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted")
	// Gone before the test ends (no kubelet: pods are force-deleted), so nothing of it is still
	// happening on the shared cluster when the next package's tests run.
	t.Cleanup(func() {
		e.kubectlNoFail("-n", ns, "delete", "pods", "--all", "--force", "--grace-period=0")
		e.kubectlNoFail("delete", "namespace", ns, "--wait=true", "--timeout=90s")
	})
	return ns
}

// dryRun sends every manifest to the apiserver with --dry-run=server (validation, defaulting,
// admission: nothing is persisted) and returns how many objects it accepted. Any warning (a
// Pod Security violation, a deprecated API, an unknown field) fails the test.
func (e *env) dryRun(t *testing.T, ns string, ms []manifest) int {
	t.Helper()
	f := writeManifests(t, ms)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(e.kubectlBin, "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-o", "name", "-f", f)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, stderr.String())
	}
	if w := strings.TrimSpace(stderr.String()); w != "" {
		t.Errorf("apiserver warnings:\n%s", w)
	}
	return len(strings.Fields(stdout.String()))
}
