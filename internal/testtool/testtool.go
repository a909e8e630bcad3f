// Package testtool finds the server binaries tests run against (MinIO, nats-server, …), where
// hack/tool.sh builds them: $KAIRN_CACHE (default $XDG_CACHE_HOME/kairn, ~/.cache/kairn)
// /<binary>/<version>/<binary>, the version pinned in hack/tools/<tool>/go.mod.
package testtool

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Tool names one binary hack/tool.sh builds.
type Tool struct {
	Env      string // environment variable that names the binary directly, e.g. KAIRN_MINIO_BIN
	Dir      string // hack/tools/<Dir>
	Module   string // the module whose version is pinned there
	Name     string // binary name, and its cache folder
	Fallback string // version used when the source tree's go.mod cannot be read
}

// Binary returns the binary to use, or "" and a reason when there is none.
func (t Tool) Find() (string, string) {
	if bin := os.Getenv(t.Env); bin != "" {
		if st, err := os.Stat(bin); err != nil || st.IsDir() {
			return "", fmt.Sprintf("$%s=%s is not a file", t.Env, bin)
		}
		return bin, ""
	}
	cache := os.Getenv("KAIRN_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Sprintf("no $HOME to find the %s cache in", t.Name)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "kairn")
	}
	bin := filepath.Join(cache, t.Name, t.Version(), t.Name)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Sprintf("no %s at %s and $%s is unset", t.Name, bin, t.Env)
	}
	return bin, ""
}

// Version is the pinned version from hack/tools/<Dir>/go.mod next to this source file.
func (t Tool) Version() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return t.Fallback
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "hack", "tools", t.Dir, "go.mod"))
	if err != nil {
		return t.Fallback
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == t.Module {
			return f[1]
		}
	}
	return t.Fallback
}
