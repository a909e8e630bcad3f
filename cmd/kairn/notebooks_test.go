package main

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/kairn-dev/kairn/analyze"
	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/queries"
)

// notebookViews is the SQL block docs/notebooks.md tells users to run in their own DuckDB.
func notebookViews(t *testing.T, archiveDir string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/notebooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- views:begin -->")
	block, _, ok2 := strings.Cut(block, "<!-- views:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/notebooks.md lost its views block markers")
	}
	block = strings.TrimSpace(block)
	block = strings.TrimSuffix(strings.TrimPrefix(block, "```sql"), "```")
	return strings.ReplaceAll(block, "'kairn-data/", "'"+archiveDir+"/")
}

func rowsAsText(t *testing.T, rows *sql.Rows) []string {
	t.Helper()
	res, err := analyze.ScanRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(res.Rows))
	for r, row := range res.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = analyze.FormatValue(v)
		}
		out[r] = strings.Join(cells, "|")
	}
	return out
}

// The documented notebook views, in a plain DuckDB, give every library query the answer kairn
// gives: from one writer's parts, and after merging two writers' overlapping parts.
func TestNotebookViewsMatchKairn(t *testing.T) {
	audit, watches := recordingFiles(t)
	dir := t.TempDir()
	kairn(t, ingestArgs(dir, audit, watches)...)
	ctx := context.Background()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range []string{"SET autoinstall_known_extensions = false", "SET TimeZone = 'UTC'"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(stage string) {
		if _, err := db.ExecContext(ctx, notebookViews(t, dir)); err != nil {
			t.Fatalf("%s: the documented views fail: %v", stage, err)
		}
		store, _ := archive.OpenStore(ctx, dir)
		eng, err := analyze.Open(ctx, store, analyze.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		for _, name := range queries.Names() {
			q, _ := queries.Get(name)
			mine, err := db.QueryContext(ctx, q.SQL)
			if err != nil {
				t.Errorf("%s: %s in plain DuckDB: %v", stage, name, err)
				continue
			}
			got := rowsAsText(t, mine)
			theirs, err := eng.DB().QueryContext(ctx, q.SQL)
			if err != nil {
				t.Fatal(err)
			}
			want := rowsAsText(t, theirs)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: %s differs in the notebook:\n%s\nkairn:\n%s", stage, name, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	// The object index exists once windows are merged.
	kairn(t, "merge", "--archive", dir, "--open")
	compare("one writer, merged")
	// A second writer holding some of the same facts, merged in.
	kairn(t, ingestArgs(dir, audit, nil)...)
	kairn(t, "merge", "--archive", dir, "--open")
	compare("two writers, merged")
}
