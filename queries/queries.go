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

// Get returns the named query, its fragments included.
func Get(name string) (Query, error) {
	b, err := files.ReadFile(name + ".sql")
	if err != nil || strings.HasPrefix(name, fragmentPrefix) {
		return Query{}, fmt.Errorf("no query named %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	text, err := include(string(b))
	if err != nil {
		return Query{}, fmt.Errorf("query %s: %w", name, err)
	}
	return parse(name, text), nil
}

// Names lists the library's queries (not its fragments).
func Names() []string {
	entries, _ := files.ReadDir(".")
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), fragmentPrefix) {
			out = append(out, strings.TrimSuffix(e.Name(), ".sql"))
		}
	}
	sort.Strings(out)
	return out
}

// Fragments are SQL shared by several queries (CTEs), in files named _NAME.sql. A query line
// "-- @include NAME" is replaced by the fragment without its comment header, so the text a
// user sees (kairn report --show) is plain SQL that runs anywhere.
const (
	fragmentPrefix   = "_"
	includeDirective = "-- @include "
)

func include(text string) (string, error) {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), includeDirective)
		if !ok {
			continue
		}
		b, err := files.ReadFile(fragmentPrefix + strings.TrimSpace(name) + ".sql")
		if err != nil {
			return "", fmt.Errorf("@include %s: no fragment %s%s.sql", name, fragmentPrefix, name)
		}
		body := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		for len(body) > 0 && strings.HasPrefix(body[0], "--") {
			body = body[1:]
		}
		lines[i] = strings.Join(body, "\n")
	}
	return strings.Join(lines, "\n"), nil
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
