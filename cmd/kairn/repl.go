package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kairn-dev/kairn/analyze"
)

const replHelp = `Statements end with ';' at the end of a line. Views: spans, object_windows, objects, and
every report (rollout_first_pull, ...). Commands:
  .tables           list the views
  .schema NAME      columns of a view
  .format FORMAT    table, csv or json
  .timer on|off     print how long each statement took
  .help             this text
  .quit             leave (or end the input)
`

// repl reads statements from in and prints each result. Interactive, it prompts on stderr and
// keeps going after errors; reading a script, it runs every statement and fails if one did.
func repl(ctx context.Context, eng *analyze.Engine, in io.Reader, stdout, stderr io.Writer, format string, interactive bool) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var stmt strings.Builder
	failed := 0
	prompt := func() {
		if !interactive {
			return
		}
		if stmt.Len() == 0 {
			fmt.Fprint(stderr, "kairn> ")
		} else {
			fmt.Fprint(stderr, "  ...> ")
		}
	}
	timer := false
	exec := func(sql string) {
		start := time.Now()
		if err := printQuery(ctx, eng, sql, format, stdout); err != nil {
			failed++
			fmt.Fprintf(stderr, "error: %v\n", err)
		}
		if timer {
			fmt.Fprintf(stderr, "time: %.3f s\n", time.Since(start).Seconds())
		}
	}
	if interactive {
		fmt.Fprintf(stderr, "kairn sql: %d parts registered. .help for help.\n", eng.Parts())
	}
	prompt()
	for sc.Scan() && ctx.Err() == nil {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if stmt.Len() == 0 && strings.HasPrefix(trimmed, ".") {
			cmd, arg, _ := strings.Cut(trimmed, " ")
			arg = strings.TrimSpace(arg)
			switch cmd {
			case ".quit", ".exit":
				return replResult(failed, interactive)
			case ".help":
				fmt.Fprint(stderr, replHelp)
			case ".tables":
				exec("SELECT table_name AS name, table_type AS type FROM information_schema.tables ORDER BY table_name")
			case ".schema":
				if arg == "" {
					fmt.Fprintln(stderr, "error: .schema needs a view name")
				} else {
					exec(`DESCRIBE "` + strings.ReplaceAll(arg, `"`, `""`) + `"`)
				}
			case ".timer":
				timer = arg == "on"
			case ".format":
				if validFormat(arg) {
					format = arg
				} else {
					fmt.Fprintf(stderr, "error: unknown format %q (want one of %s)\n", arg, strings.Join(analyze.Formats, ", "))
				}
			default:
				fmt.Fprintf(stderr, "error: unknown command %s (.help lists them)\n", cmd)
			}
			prompt()
			continue
		}
		if trimmed != "" || stmt.Len() > 0 {
			stmt.WriteString(line)
			stmt.WriteByte('\n')
		}
		if strings.HasSuffix(trimmed, ";") {
			exec(stmt.String())
			stmt.Reset()
		}
		prompt()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading statements: %w", err)
	}
	if strings.TrimSpace(stmt.String()) != "" {
		exec(stmt.String())
	}
	if interactive {
		fmt.Fprintln(stderr)
	}
	return replResult(failed, interactive)
}

func replResult(failed int, interactive bool) error {
	if failed > 0 && !interactive {
		return fmt.Errorf("%d statements failed", failed)
	}
	return nil
}
