package analyze

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/queries"
)

func TestParseJobsRejectsMistakesByName(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"", "empty jobs file"},
		{"jobs: []", "no jobs"},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: conflicts\n  colour: red", `unknown field "colour"`},
		{"jobs:\n- name: A b\n  schedule: '@daily'\n  query: conflicts", `name "A b"`},
		{"jobs:\n- name: a\n  schedule: 'every day'\n  query: conflicts", `job "a": schedule "every day"`},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: nope", `no query named "nope"`},
		{"jobs:\n- name: a\n  schedule: '@daily'", "give query"},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: conflicts\n  sql: select 1", "not both"},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: conflicts\n  params: {top: '5'}", "takes no parameters"},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: conflicts\n  range: {since: 0s, until: -1h}", "since (0s) must be before until (-1h0m0s)"},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: conflicts\n  range: {since: -1 day, until: 0s}", `bad duration "-1 day"`},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: conflicts\n  formats: [xlsx]", `format "xlsx"`},
		{"jobs:\n- name: a\n  schedule: '@daily'\n  query: conflicts\n- name: a\n  schedule: '@hourly'\n  sql: select 1", `job "a": name used twice`},
	} {
		_, err := ParseJobs([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to say %q", tc.yaml, err, tc.want)
		}
	}
}

func TestExampleJobsFileIsValid(t *testing.T) {
	data, err := os.ReadFile("../deploy/analyze-jobs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := ParseJobs(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) < 3 {
		t.Errorf("example has %d jobs", len(jobs))
	}
}

func TestRangeResolve(t *testing.T) {
	at := time.Date(2026, 11, 24, 0, 30, 0, 0, time.UTC)
	since, until := PreviousDay.Resolve(at)
	if want := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC); !since.Equal(want) {
		t.Errorf("since %s, want %s", since, want)
	}
	if want := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC); !until.Equal(want) {
		t.Errorf("until %s, want %s", until, want)
	}
	var week Range
	if err := week.Since.UnmarshalJSON([]byte(`"-7d"`)); err != nil {
		t.Fatal(err)
	}
	since, until = week.Resolve(at)
	if until.Sub(since) != 7*24*time.Hour || !until.Equal(at) {
		t.Errorf("7d unaligned: %s .. %s", since, until)
	}
}

func TestDefaultJobsRunEveryQueryDaily(t *testing.T) {
	jobs := DefaultJobs()
	if len(jobs) != len(queries.Names()) {
		t.Fatalf("%d default jobs for %d queries", len(jobs), len(queries.Names()))
	}
	for i, j := range jobs {
		if j.Query != queries.Names()[i] || j.Range == nil || *j.Range != PreviousDay {
			t.Errorf("default job %+v", j)
		}
		if err := j.validate(); err != nil {
			t.Errorf("default job %s: %v", j.Name, err)
		}
	}
}
