// Package queries owns kairn's query library: documented SQL files over the archive's `spans`
// view, embedded into the binary. Each is also a `kairn report NAME`.
package queries

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.sql
var files embed.FS

// Query is one library query. Its header comment (lines starting with "-- ") documents it:
// the first line is a one-line description.
type Query struct {
	Name        string
	Description string
	Doc         string
	SQL         string
}

// Get returns the named query.
func Get(name string) (Query, error) {
	b, err := files.ReadFile(name + ".sql")
	if err != nil {
		return Query{}, fmt.Errorf("no query named %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return parse(name, string(b)), nil
}

// Names lists the library's queries.
func Names() []string {
	entries, _ := files.ReadDir(".")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".sql"))
	}
	sort.Strings(out)
	return out
}

func parse(name, text string) Query {
	q := Query{Name: name, SQL: text}
	var doc []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "--") {
			break
		}
		doc = append(doc, strings.TrimSpace(strings.TrimPrefix(line, "--")))
	}
	if len(doc) > 0 {
		q.Description = doc[0]
	}
	q.Doc = strings.Join(doc, "\n")
	return q
}
