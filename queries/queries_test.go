package queries

import (
	"strings"
	"testing"
)

func TestFragmentsAreIncludedAndNotListed(t *testing.T) {
	for _, name := range Names() {
		if strings.HasPrefix(name, fragmentPrefix) {
			t.Errorf("fragment %s listed as a query", name)
		}
		q, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(q.SQL, "@include") {
			t.Errorf("%s: an include was left in:\n%s", name, q.SQL)
		}
	}
	q, err := Get("rollout-first-pull")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(q.SQL, "rollouts AS (") || !strings.Contains(q.SQL, "firsts AS (") || strings.Contains(q.SQL, "Fragment:") {
		t.Errorf("rollout-first-pull expanded to:\n%s", q.SQL)
	}
	if _, err := Get("_rollouts"); err == nil {
		t.Error("a fragment is gettable as a query")
	}
	if _, err := include("WITH\n-- @include nope\nSELECT 1"); err == nil || !strings.Contains(err.Error(), "_nope.sql") {
		t.Errorf("unknown fragment: %v", err)
	}
}

func TestDescriptionIsTheFirstParagraph(t *testing.T) {
	q := parse("x", "-- One line\n-- and its end.\n--\n-- @param top_n how many\nSELECT 1")
	if q.Description != "One line and its end." || len(q.Params) != 1 || q.Params[0].Name != "top_n" || q.Params[0].Doc != "how many" {
		t.Errorf("%+v", q)
	}
}
