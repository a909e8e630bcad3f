package analyze

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// Which columns a statement reads. DuckDB plans the statement over the registered views (the
// mirrors already hold every footer, so planning needs no data), and every Parquet scan of the
// physical plan names the columns it projects and the ones it filters on (filter columns that
// are not projected appear only in its filters). The union of those names, by top-level column,
// is what gets fetched. A statement that cannot be explained is classified by its first keyword:
// ones that read no data (SET, CREATE VIEW, …) fetch nothing, anything else fetches every column.

// neededColumns returns, for each Parquet scan of the statement, the top-level columns it reads
// (projected, or named in its filters: those may also hold function names and keywords, which
// match no column); all is true when that cannot be known (then every column is needed).
func neededColumns(ctx context.Context, c *duckdb.Conn, query string, args []driver.NamedValue) (scans []map[string]bool, all bool) {
	if multipleStatements(query) {
		// EXPLAIN would apply to the first statement and run the others.
		return nil, true
	}
	rows, err := c.QueryContext(ctx, "EXPLAIN (FORMAT json) "+query, args)
	if err != nil {
		if readsNothing(query) {
			return nil, false
		}
		return nil, true
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, true
		}
		plan, ok := dest[len(dest)-1].(string)
		if !ok {
			return nil, true
		}
		var nodes []planNode
		if err := json.Unmarshal([]byte(plan), &nodes); err != nil {
			return nil, true
		}
		for i := range nodes {
			if !nodes[i].scans(&scans) {
				return nil, true
			}
		}
	}
	return scans, false
}

type planNode struct {
	Name      string                     `json:"name"`
	Children  []planNode                 `json:"children"`
	ExtraInfo map[string]json.RawMessage `json:"extra_info"`
}

var (
	quoted     = regexp.MustCompile(`'(?:[^']|'')*'`)
	identifier = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// scans adds the columns of every Parquet scan under n; false when a scan does not say.
func (n *planNode) scans(out *[]map[string]bool) bool {
	fn := ""
	if raw, ok := n.ExtraInfo["Function"]; ok {
		json.Unmarshal(raw, &fn)
	}
	if strings.Contains(strings.ToUpper(n.Name+" "+fn), "PARQUET") {
		proj, ok := stringsOf(n.ExtraInfo["Projections"])
		if !ok {
			return false
		}
		cols := map[string]bool{}
		*out = append(*out, cols)
		for _, p := range proj {
			name, _, _ := strings.Cut(strings.Trim(p, `"`), ".")
			cols[name] = true
		}
		filters, _ := stringsOf(n.ExtraInfo["Filters"])
		for _, f := range filters {
			for _, id := range identifier.FindAllString(quoted.ReplaceAllString(f, ""), -1) {
				cols[id] = true
			}
		}
	}
	for i := range n.Children {
		if !n.Children[i].scans(out) {
			return false
		}
	}
	return true
}

// stringsOf decodes a plan value that is one string or a list of them.
func stringsOf(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return strings.Split(one, "\n"), true
	}
	return nil, false
}

// multipleStatements reports a ';' followed by more than whitespace, outside strings, quoted
// identifiers and comments.
func multipleStatements(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case '\'', '"':
			end := strings.IndexByte(q[i+1:], q[i])
			if end < 0 {
				return false
			}
			i += end + 1
		case '-':
			if strings.HasPrefix(q[i:], "--") {
				end := strings.IndexByte(q[i:], '\n')
				if end < 0 {
					return false
				}
				i += end
			}
		case '/':
			if strings.HasPrefix(q[i:], "/*") {
				end := strings.Index(q[i+2:], "*/")
				if end < 0 {
					return false
				}
				i += end + 3
			}
		case ';':
			if rest := strings.TrimSpace(q[i+1:]); rest != "" && !multipleStatementsOnlyComments(rest) {
				return true
			}
		}
	}
	return false
}

func multipleStatementsOnlyComments(s string) bool {
	for s != "" {
		switch {
		case strings.HasPrefix(s, "--"):
			_, s, _ = strings.Cut(s, "\n")
		case strings.HasPrefix(s, "/*"):
			_, s, _ = strings.Cut(s, "*/")
		case strings.HasPrefix(s, ";"):
			s = s[1:]
		default:
			return false
		}
		s = strings.TrimSpace(s)
	}
	return true
}

// readsNothing: statements whose first keyword never scans data (or only metadata).
func readsNothing(q string) bool {
	q = strings.TrimSpace(q)
	for strings.HasPrefix(q, "--") || strings.HasPrefix(q, "/*") {
		if strings.HasPrefix(q, "--") {
			_, q, _ = strings.Cut(q, "\n")
		} else {
			_, q, _ = strings.Cut(q, "*/")
		}
		q = strings.TrimSpace(q)
	}
	words := strings.Fields(strings.ToUpper(q))
	if len(words) == 0 {
		return true
	}
	switch words[0] {
	case "SET", "RESET", "DROP", "DESCRIBE", "SHOW", "BEGIN", "COMMIT", "ROLLBACK", "ABORT", "USE", "CHECKPOINT":
		return true
	case "CREATE":
		for _, w := range words[1:] {
			switch w {
			case "VIEW", "MACRO", "FUNCTION", "TYPE", "SCHEMA", "SEQUENCE":
				return true
			case "TABLE", "INDEX":
				return false
			}
		}
	}
	return false
}
