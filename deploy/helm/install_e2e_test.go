package helm

import (
	"strings"
	"testing"
)

// TestHelmInstallUpgradeE2E installs the chart for real into the dev cluster (its kwok node
// plays the kubelet: pods are scheduled and reported Running and Ready, no container runs),
// waits for every workload, upgrades it with another value, and checks that the webhook
// certificate and token survived the upgrade (the apiserver's webhook kubeconfig trusts them),
// then uninstalls it.
func TestHelmInstallUpgradeE2E(t *testing.T) {
	e := requireEnv(t)
	ns := e.createNamespace(t, "kairn-e2e-install")
	base := []string{"--namespace", ns, "--set", "cluster.name=dev",
		"--set", "archive.url=s3://kairn/archive", "--set", "s3.create=true",
		"--set", "s3.accessKeyId=dev", "--set", "s3.secretAccessKey=dev-secret"}
	e.helm(t, append([]string{"install", "kairn", chartDir, "--wait", "--timeout", "3m"}, base...)...)
	t.Cleanup(func() { e.helmNoFail("uninstall", "kairn", "--namespace", ns, "--wait", "--timeout", "2m") })

	secret := func(name, key string) string {
		return e.kubectl(t, "-n", ns, "get", "secret", name, "-o", "jsonpath={.data."+strings.ReplaceAll(key, ".", `\.`)+"}")
	}
	crt, tok := secret("kairn-webhook-tls", "tls.crt"), secret("kairn-webhook-token", "tokens")
	if crt == "" || tok == "" {
		t.Fatalf("webhook secrets missing after install")
	}
	ready := e.kubectl(t, "-n", ns, "get", "deploy", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.readyReplicas}/{.spec.replicas} {end}`)
	t.Logf("installed; deployments ready: %s", ready)
	for _, d := range strings.Fields(ready) {
		name, counts, _ := strings.Cut(d, "=")
		r, want, _ := strings.Cut(counts, "/")
		if r != want {
			t.Errorf("deployment %s: %s ready", name, counts)
		}
	}

	e.helm(t, append([]string{"upgrade", "kairn", chartDir, "--wait", "--timeout", "3m", "--set", "merge.schedule=*/5 * * * *"}, base...)...)
	if got := e.kubectl(t, "-n", ns, "get", "cronjob", "kairn-merge", "-o", "jsonpath={.spec.schedule}"); got != "*/5 * * * *" {
		t.Errorf("after upgrade: merge schedule %q", got)
	}
	if secret("kairn-webhook-tls", "tls.crt") != crt {
		t.Error("helm upgrade replaced the webhook certificate: the apiserver's kubeconfig would no longer trust it")
	}
	if secret("kairn-webhook-token", "tokens") != tok {
		t.Error("helm upgrade replaced the webhook token")
	}
	notes := e.helm(t, "get", "notes", "kairn", "--namespace", ns)
	if !strings.Contains(notes, "kairn-webhook-tls") || !strings.Contains(notes, "port-forward svc/kairn-serve") {
		t.Errorf("NOTES:\n%s", notes)
	}
	t.Log("helm upgrade kept the webhook certificate and token; NOTES name the right objects")
}
