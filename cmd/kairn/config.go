package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Settings come, weakest first, from flag defaults, the config file (--config or $KAIRN_CONFIG),
// the environment (KAIRN_<FLAG>, e.g. KAIRN_ARCHIVE, KAIRN_WEBHOOK_TOKEN_FILE), and the command
// line. The config file has one section per command, keyed by flag name; top-level keys apply to
// every command that has that flag:
//
//	archive: s3://kairn/archive
//	collect:
//	  cluster: prod-eu
//	  leader-elect: true
const configEnv = "KAIRN_CONFIG"

// Flags every command has; handled by parseFlags.
const (
	configFlag      = "config"
	printConfigFlag = "print-config"
)

// errConfigPrinted ends a command that only printed its effective settings.
var errConfigPrinted = errors.New("config printed")

// applySettings sets flags from the config file and the environment; the command line is parsed
// after, so it wins.
func applySettings(fs *flag.FlagSet, command string, args []string) error {
	path := os.Getenv(configEnv)
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != configFlag {
			continue
		}
		switch {
		case hasValue:
			path = value
		case i+1 < len(args):
			path = args[i+1]
		}
	}
	if path != "" {
		if err := applyConfigFile(fs, command, path); err != nil {
			return usageErr("--config %s: %v", path, err)
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || f.Name == configFlag || f.Name == printConfigFlag {
			return
		}
		env := "KAIRN_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageErr("%s=%q: %v", env, v, e)
			}
		}
	})
	return err
}

func applyConfigFile(fs *flag.FlagSet, command, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	set := func(name string, v any) error {
		if fs.Lookup(name) == nil {
			return nil
		}
		values := []any{v}
		if list, ok := v.([]any); ok {
			values = list
		}
		for _, x := range values {
			if err := fs.Set(name, fmt.Sprint(x)); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
		}
		return nil
	}
	for k, v := range doc {
		if _, section := v.(map[string]any); !section {
			if err := set(k, v); err != nil {
				return err
			}
		}
	}
	if section, ok := doc[command].(map[string]any); ok {
		for k, v := range section {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("%s: kairn %s has no flag --%s", command, command, k)
			}
			if err := set(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// secretEnv are the environment settings `config print` shows redacted.
var secretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// printConfig writes the effective settings: every flag, then the environment kairn reads.
func printConfig(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "# effective settings of %s (flags, config file, KAIRN_* environment)\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag || f.Name == printConfigFlag {
			return
		}
		fmt.Fprintf(w, "%s: %q\n", f.Name, redactValue(f.Value.String()))
	})
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || k == "KAIRN_S3_ENDPOINT" || k == configEnv {
			env = append(env, fmt.Sprintf("  %s: %q", k, redactEnv(k, v)))
		}
	}
	sort.Strings(env)
	if len(env) > 0 {
		fmt.Fprintln(w, "environment:")
		fmt.Fprintln(w, strings.Join(env, "\n"))
	}
}

func redactEnv(k, v string) string {
	for _, s := range secretEnv {
		if k == s && v != "" {
			return "<redacted>"
		}
	}
	if k == "AWS_ACCESS_KEY_ID" && len(v) > 4 {
		return v[:4] + "…"
	}
	return v
}

// redactValue hides a password in a URL-valued setting (kairn's flags take no secrets
// themselves: tokens and keys are files).
func redactValue(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "print" {
		return usageErr("kairn config print COMMAND [--config FILE] [flags]: the effective settings of COMMAND, secrets redacted")
	}
	for _, c := range commands() {
		if c.name == args[1] && c.name != "config" {
			// The command prints its settings through its flag set's output: stdout here.
			err := c.run(ctx, append([]string{"--" + printConfigFlag}, args[2:]...), stdout, stdout)
			if errors.Is(err, errConfigPrinted) {
				return nil
			}
			return err
		}
	}
	return usageErr("config print: unknown command %q", args[1])
}

// logFlags are the logging flags of long-running commands.
type logFlags struct{ format, level *string }

func addLogFlags(fs *flag.FlagSet) logFlags {
	return logFlags{
		format: fs.String("log-format", "text", "log format: text or json"),
		level:  fs.String("log-level", "info", "log level: debug, info, warn or error"),
	}
}

func (lf logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*lf.level)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", *lf.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *lf.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format %q: want text or json", *lf.format)
}
