// Command kairn is the one binary: it wires collect → link → archive → analyze explicitly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const defaultArchive = "./kairn-data"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"collect", "collect live from a cluster: audit webhook, audit log tail, Event and object watches", runCollect},
		{"ingest", "read recorded audit logs and watch streams into the archive", runIngest},
		{"merge", "merge closed windows: one sorted part per partition, late links resolved, object index", runMerge},
		{"report", "run a library query over the archive and print its table (--list names them)", runReport},
		{"analyze", "run report jobs on a schedule (or --once) and write results to the store", runAnalyze},
		{"config", "config print COMMAND: the effective settings of a command, secrets redacted", runConfig},
		{"sql", "ad-hoc SQL over the archive: an interactive prompt, or -c STATEMENT", runSQL},
		{"serve", "query server for the Jaeger UI: remote storage v2 gRPC and Jaeger's HTTP JSON API", runServe},
		{"trace", "print one object's trace as an indented tree (trace RESOURCE NAME [-n NS]), as the Jaeger UI shows it", runTrace},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp), errors.Is(err, errConfigPrinted):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "kairn %s: %v\n", c.name, err)
				return 2
			default:
				fmt.Fprintf(stderr, "kairn %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "kairn: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "kairn: Kubernetes objects as spans, archived as Parquet, asked with SQL.")
	fmt.Fprintln(w, "\nUsage: kairn COMMAND [flags]   (kairn COMMAND -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// newFlagSet returns a flag set that reports errors to the caller instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kairn "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String(configFlag, "", "config file (YAML: flag names, per command; default $"+configEnv+")")
	fs.Bool(printConfigFlag, false, "print the effective settings (secrets redacted) and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kairn %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags applies the config file and environment, then parses flags that may come before or
// after positional arguments. With --print-config it prints the settings and returns
// errConfigPrinted.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := applySettings(fs, strings.TrimPrefix(fs.Name(), "kairn "), args); err != nil {
		return nil, err
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if f := fs.Lookup(printConfigFlag); f != nil && f.Value.String() == "true" {
		printConfig(fs, fs.Output())
		return nil, errConfigPrinted
	}
	return positional, nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
