package helm

import (
	"os"
	"os/exec"
	"testing"
)

// TestKubeadmConfigE2E validates deploy/apiserver/kubeadm-cluster-configuration.yaml with a real
// kubeadm (`kubeadm config validate`: strict decoding, unknown fields fail). Opt-in, because
// make e2e does not build kubeadm: build one from the dev cluster's pinned module, e.g.
//
//	d=$(mktemp -d); cp ~/.cache/kairn/cluster/v1.37.2-*/go.{mod,sum} "$d"
//	(cd "$d" && GOFLAGS=-mod=mod go build -o /tmp/kubeadm k8s.io/kubernetes/cmd/kubeadm)
//	KAIRN_E2E=1 KAIRN_KUBEADM_BIN=/tmp/kubeadm go test -run KubeadmConfigE2E ./deploy/helm/
func TestKubeadmConfigE2E(t *testing.T) {
	bin := os.Getenv("KAIRN_KUBEADM_BIN")
	if os.Getenv("KAIRN_E2E") != "1" || bin == "" {
		t.Skip("opt-in: KAIRN_E2E=1 KAIRN_KUBEADM_BIN=/path/to/kubeadm")
	}
	out, err := exec.Command(bin, "config", "validate", "--config", "../apiserver/kubeadm-cluster-configuration.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm config validate: %v\n%s", err, out)
	}
	t.Logf("kubeadm config validate: %s", out)
}
