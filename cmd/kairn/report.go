package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kairn-dev/kairn/analyze"
	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/queries"
)

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "NAME [--archive DIR|s3://...] [--format table|csv|json]", stderr)
	archiveLoc, format := queryFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("give one report name (have: %s)", strings.Join(queries.Names(), ", "))
	}
	q, err := queries.Get(rest[0])
	if err != nil {
		return usageErr("%v", err)
	}
	return query(ctx, *archiveLoc, q.SQL, *format, stdout, stderr)
}

func runSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sql", `[--archive DIR|s3://...] [--format table|csv|json] "SELECT ... FROM spans"`, stderr)
	archiveLoc, format := queryFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr(`give one SQL statement, quoted, e.g. "SELECT kind, count(*) FROM spans GROUP BY ALL"`)
	}
	return query(ctx, *archiveLoc, rest[0], *format, stdout, stderr)
}

// queryFlags are the flags of every command that reads the archive with SQL.
func queryFlags(fs *flag.FlagSet) (archiveLoc, format *string) {
	archiveLoc = fs.String("archive", defaultArchive, "archive: a directory or s3://bucket/prefix")
	format = fs.String("format", "table", "output format: "+strings.Join(analyze.Formats, ", "))
	return archiveLoc, format
}

func runQueries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("queries", "[NAME]", stderr)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 1 {
		q, err := queries.Get(rest[0])
		if err != nil {
			return usageErr("%v", err)
		}
		fmt.Fprintln(stdout, q.SQL)
		return nil
	}
	for _, name := range queries.Names() {
		q, _ := queries.Get(name)
		fmt.Fprintf(stdout, "%-22s %s\n", name, q.Description)
	}
	return nil
}

func query(ctx context.Context, location, sql, format string, stdout, stderr io.Writer) error {
	if !validFormat(format) {
		return usageErr("unknown --format %q (want one of %s)", format, strings.Join(analyze.Formats, ", "))
	}
	store, err := archive.OpenStore(ctx, location)
	if err != nil {
		return err
	}
	eng, err := analyze.Open(ctx, store, analyze.Options{Progress: func(done, total int) {
		if total > 20 {
			fmt.Fprintf(stderr, "\rfetching parts %d/%d", done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}})
	if err != nil {
		return err
	}
	defer eng.Close()
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
