package analyze

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/kairn-dev/kairn/queries"
)

// ViewName is the view a library query is registered as: dashes become underscores
// (rollout-first-pull → rollout_first_pull).
func ViewName(query string) string { return strings.ReplaceAll(query, "-", "_") }

// RegisterLibrary registers library queries as views, so ad-hoc SQL can build on reports:
// SELECT * FROM rollout_first_pull WHERE latency_seconds > 30. With a statement given, only the
// views its text mentions are registered (binding a view over many parts takes time).
func (e *Engine) RegisterLibrary(ctx context.Context, statement string) error {
	lower := strings.ToLower(statement)
	for _, name := range queries.Names() {
		if statement != "" && !strings.Contains(lower, ViewName(name)) {
			continue
		}
		q, err := queries.Get(name)
		if err != nil {
			return err
		}
		if _, err := e.db.ExecContext(ctx, "CREATE OR REPLACE VIEW "+ViewName(name)+" AS "+trimStatement(q.SQL)); err != nil {
			return fmt.Errorf("register report %s as a view: %w", name, err)
		}
	}
	return nil
}

var (
	paramName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	number    = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

// SetParams sets query parameters as DuckDB variables, which library queries read with
// getvariable('name'). A value that parses as a number is a number, anything else a string.
func (e *Engine) SetParams(ctx context.Context, params map[string]string) error {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !paramName.MatchString(k) {
			return fmt.Errorf("parameter %q: use lower case letters, digits and _", k)
		}
		v := params[k]
		literal := "'" + strings.ReplaceAll(v, "'", "''") + "'"
		if number.MatchString(v) {
			literal = v
		}
		if _, err := e.db.ExecContext(ctx, "SET VARIABLE "+k+" = "+literal); err != nil {
			return fmt.Errorf("parameter %s: %w", k, err)
		}
	}
	return nil
}
