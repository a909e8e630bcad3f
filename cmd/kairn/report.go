package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/kairn-dev/kairn/analyze"
	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/queries"
)

// summarySuffix names a report's second result: `report NAME --summary` runs NAME-summary.
const summarySuffix = "-summary"

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "NAME [--archive DIR|s3://...] [--format table|csv|json] [--summary] [--param k=v]\n       kairn report --list | --show NAME", stderr)
	qf := addQueryFlags(fs)
	list := fs.Bool("list", false, "name every report with a one-line description")
	show := fs.Bool("show", false, "print the report's SQL and documentation instead of running it")
	summary := fs.Bool("summary", false, "print the report's summary (its NAME-summary query), where it has one")
	var params multiFlag
	fs.Var(&params, "param", "query parameter NAME=VALUE (repeatable; see --show)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *list {
		return listReports(stdout)
	}
	if len(rest) != 1 {
		return usageErr("give one report name (have: %s)", strings.Join(queries.Names(), ", "))
	}
	name := rest[0]
	if *summary {
		if _, err := queries.Get(name + summarySuffix); err != nil {
			return usageErr("report %s has no summary", name)
		}
		name += summarySuffix
	}
	q, err := queries.Get(name)
	if err != nil {
		return usageErr("%v", err)
	}
	if *show {
		fmt.Fprintln(stdout, q.SQL)
		return nil
	}
	values, err := parseParams(params)
	if err != nil {
		return err
	}
	if err := q.CheckParams(values); err != nil {
		return usageErr("%v", err)
	}
	eng, err := qf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := eng.SetParams(ctx, values); err != nil {
		return err
	}
	return printQuery(ctx, eng, q.SQL, *qf.format, stdout)
}

func listReports(stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, name := range queries.Names() {
		q, err := queries.Get(name)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\n", name, q.Description)
	}
	return tw.Flush()
}

func parseParams(params []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageErr("--param %q: want NAME=VALUE", p)
		}
		out[k] = v
	}
	return out, nil
}

func runSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sql", `[--archive DIR|s3://...] [-c "SELECT ... FROM spans"] [--format table|csv|json]`, stderr)
	qf := addQueryFlags(fs)
	command := fs.String("c", "", "run this one statement and exit (default: an interactive prompt reading stdin)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *command != "" && len(rest) > 0:
		return usageErr("give the statement with -c or as the argument, not both")
	case len(rest) == 1:
		*command = rest[0]
	case len(rest) > 1:
		return usageErr(`give one SQL statement, quoted, e.g. -c "SELECT kind, count(*) FROM spans GROUP BY ALL"`)
	}
	eng, err := qf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := eng.RegisterLibrary(ctx, *command); err != nil {
		return err
	}
	if *command != "" {
		return printQuery(ctx, eng, *command, *qf.format, stdout)
	}
	fi, err := os.Stdin.Stat()
	interactive := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return repl(ctx, eng, os.Stdin, stdout, stderr, *qf.format, interactive)
}

// queryFlags are the flags of every command that reads the archive with SQL.
type queryFlags struct {
	archive, format, cacheDir *string
}

func addQueryFlags(fs *flag.FlagSet) queryFlags {
	return queryFlags{
		archive:  fs.String("archive", defaultArchive, "archive: a directory or s3://bucket/prefix"),
		format:   fs.String("format", "table", "output format: "+strings.Join(analyze.Formats, ", ")),
		cacheDir: fs.String("cache-dir", "", "local cache of parts fetched from S3 (default $XDG_CACHE_HOME/kairn/parts)"),
	}
}

// open checks the format, then opens the archive, showing fetch progress on a long fetch.
func (qf queryFlags) open(ctx context.Context, stderr io.Writer) (*analyze.Engine, error) {
	if !validFormat(*qf.format) {
		return nil, usageErr("unknown --format %q (want one of %s)", *qf.format, strings.Join(analyze.Formats, ", "))
	}
	store, err := archive.OpenStore(ctx, *qf.archive)
	if err != nil {
		return nil, err
	}
	return analyze.Open(ctx, store, analyze.Options{CacheDir: *qf.cacheDir, Progress: func(done, total int) {
		if total > 20 {
			fmt.Fprintf(stderr, "\rfetching parts %d/%d", done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}})
}

func printQuery(ctx context.Context, eng *analyze.Engine, sql, format string, stdout io.Writer) error {
	res, err := eng.Query(ctx, sql)
	if err != nil {
		return err
	}
	return res.Render(stdout, format)
}

func validFormat(f string) bool {
	for _, x := range analyze.Formats {
		if f == x {
			return true
		}
	}
	return false
}
