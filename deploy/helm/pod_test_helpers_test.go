package helm

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

type container struct {
	Name  string   `json:"name"`
	Image string   `json:"image"`
	Args  []string `json:"args"`
	Env   []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
}

type podSpec struct {
	AutomountServiceAccountToken *bool       `json:"automountServiceAccountToken"`
	Containers                   []container `json:"containers"`
}

// podOf is the pod template of a Deployment or CronJob (ok false for other kinds).
func podOf(t *testing.T, d manifest) (p podSpec, ok bool) {
	t.Helper()
	if d.Kind != "Deployment" && d.Kind != "CronJob" {
		return p, false
	}
	var w struct {
		Spec struct {
			Template struct {
				Spec podSpec `json:"spec"`
			} `json:"template"`
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec podSpec `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(d.Raw), &w); err != nil {
		t.Fatal(err)
	}
	if d.Kind == "CronJob" {
		return w.Spec.JobTemplate.Spec.Template.Spec, true
	}
	return w.Spec.Template.Spec, true
}

// containerOf is container name of the Deployment or CronJob whose name ends in suffix.
func containerOf(t *testing.T, docs []manifest, kind, suffix, name string) container {
	t.Helper()
	for _, d := range docs {
		if d.Kind != kind || !strings.HasSuffix(d.Name, suffix) {
			continue
		}
		p, _ := podOf(t, d)
		for _, c := range p.Containers {
			if c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("no container %s in a %s *%s", name, kind, suffix)
	return container{}
}

// automountsToken: the pod of the Deployment whose name ends in suffix mounts its
// ServiceAccount token (automountServiceAccountToken true, or unset: the default).
func automountsToken(t *testing.T, docs []manifest, suffix string) bool {
	t.Helper()
	for _, d := range docs {
		if d.Kind == "Deployment" && strings.HasSuffix(d.Name, suffix) {
			p, _ := podOf(t, d)
			return p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken
		}
	}
	t.Fatalf("no Deployment *%s", suffix)
	return false
}

// localArgs rewrites a container's arguments to run it on this machine, nothing else changed:
// paths under the pod's mounts (/etc/kairn, /var/lib/kairn, /var/cache) move under root, the
// archive URL becomes archive, and listen addresses ":PORT" become free 127.0.0.1 ports
// (returned by container port).
func localArgs(t *testing.T, args []string, root, archive string) ([]string, map[string]string) {
	t.Helper()
	ports := map[string]string{}
	out := make([]string, len(args))
	for i, a := range args {
		flag, val, ok := strings.Cut(a, "=")
		switch {
		case !ok:
		case flag == "--archive":
			val = archive
		case strings.HasPrefix(val, ":"):
			ports[val[1:]] = freePort(t)
			val = ports[val[1:]]
		case strings.HasPrefix(val, "/etc/kairn/") || strings.HasPrefix(val, "/var/lib/kairn") || strings.HasPrefix(val, "/var/cache/"):
			val = filepath.Join(root, val)
		}
		if ok {
			a = flag + "=" + val
		}
		out[i] = a
	}
	return out, ports
}

// mount writes a file of the pod's filesystem under root.
func mount(t *testing.T, root, path string, data []byte) {
	t.Helper()
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func listening(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("nothing listens on %s: %w", addr, err)
	}
	return c.Close()
}

func getText(url string, s *string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	*s = string(b)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return nil
}
