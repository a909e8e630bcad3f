package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSettingsPrecedenceAndRedaction(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "kairn.yaml")
	os.WriteFile(cfg, []byte(`archive: s3://from-file/top
spool: /from/file
collect:
  cluster: from-file
  leader-elect: true
  watch-cluster: [a=/k/a, b=/k/b]
analyze:
  jobs: /etc/jobs.yaml
`), 0o644)
	t.Setenv("KAIRN_SPOOL", "/from/env")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
	out := kairn(t, "config", "print", "collect", "--config", cfg, "--cluster", "from-flag")
	for _, want := range []string{
		`cluster: "from-flag"`,          // the command line beats the file
		`spool: "/from/env"`,            // the environment beats the file
		`archive: "s3://from-file/top"`, // top-level keys apply to every command with the flag
		`leader-elect: "true"`,
		`watch-cluster: "a=/k/a,b=/k/b"`,
		`AWS_SECRET_ACCESS_KEY: "<redacted>"`,
		`AWS_ACCESS_KEY_ID: "AKIA…"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "very-secret") || strings.Contains(out, "AKIAEXAMPLE") {
		t.Errorf("a secret was printed:\n%s", out)
	}
	// A section only applies to its command; the config file through the environment works too.
	t.Setenv("KAIRN_CONFIG", cfg)
	if out := kairn(t, "config", "print", "analyze"); !strings.Contains(out, `jobs: "/etc/jobs.yaml"`) || strings.Contains(out, "from-file\"") {
		t.Errorf("analyze settings:\n%s", out)
	}
	if got := redactValue("https://user:pw@minio:9000/x"); strings.Contains(got, "pw") {
		t.Errorf("password in %s", got)
	}
}

func TestSettingsErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("collect:\n  colour: red\n"), 0o644)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"collect", "--config", bad}, "", "kairn collect has no flag --colour"},
		{[]string{"collect", "--config", filepath.Join(dir, "missing.yaml")}, "", "missing.yaml"},
		{[]string{"collect", "--cluster", "c"}, "KAIRN_WINDOW=soon", `KAIRN_WINDOW="soon"`},
		{[]string{"collect", "--cluster", "c", "--log-level", "loud"}, "", `--log-level "loud"`},
		{[]string{"analyze", "--once", "--log-format", "xml"}, "", `--log-format "xml"`},
		{[]string{"config", "print", "nope"}, "", `unknown command "nope"`},
	} {
		if tc.env != "" {
			k, v, _ := strings.Cut(tc.env, "=")
			t.Setenv(k, v)
		}
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, %s (want %q)", tc.args, code, stderr.String(), tc.want)
		}
		if tc.env != "" {
			os.Unsetenv(strings.SplitN(tc.env, "=", 2)[0])
		}
	}
}
