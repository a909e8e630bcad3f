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
// the first paragraph is a one-line description, and a line "-- @param NAME description" declares a
// parameter, which the SQL reads with getvariable('NAME') (defaulting with coalesce).
type Query struct {
	Name        string
	Description string
	Doc         string
	SQL         string
	Params      []Param
}

// Param is a declared query parameter.
type Param struct {
	Name, Doc string
}

// CheckParams reports a parameter the query does not declare.
func (q Query) CheckParams(params map[string]string) error {
	for k := range params {
		if !q.hasParam(k) {
			var names []string
			for _, p := range q.Params {
				names = append(names, p.Name)
			}
			if len(names) == 0 {
				return fmt.Errorf("query %s takes no parameters (got %s)", q.Name, k)
			}
			return fmt.Errorf("query %s has no parameter %s (it has: %s)", q.Name, k, strings.Join(names, ", "))
		}
	}
	return nil
}

func (q Query) hasParam(name string) bool {
	for _, p := range q.Params {
		if p.Name == name {
			return true
		}
	}
	return false
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
		text := strings.TrimSpace(strings.TrimPrefix(line, "--"))
		if rest, ok := strings.CutPrefix(text, "@param "); ok {
			name, pdoc, _ := strings.Cut(strings.TrimSpace(rest), " ")
			q.Params = append(q.Params, Param{Name: name, Doc: strings.TrimSpace(pdoc)})
		}
		doc = append(doc, text)
	}
	// The description is the first paragraph, joined into one line.
	for _, line := range doc {
		if line == "" {
			break
		}
		q.Description = strings.TrimSpace(q.Description + " " + line)
	}
	q.Doc = strings.Join(doc, "\n")
	return q
}
