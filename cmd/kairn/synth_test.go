package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/internal/synth"
)

// writeSynth writes one generated cluster's audit log and watch streams into dir.
func writeSynth(t testing.TB, dir string, c synth.Cluster) (audit string, watches []string) {
	t.Helper()
	audit = filepath.Join(dir, c.Name+"-audit.log")
	if err := os.WriteFile(audit, c.Audit, 0o644); err != nil {
		t.Fatal(err)
	}
	var names []string
	for r := range c.Watch {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		p := filepath.Join(dir, c.Name+"-watch-"+r+".json")
		if err := os.WriteFile(p, c.Watch[r], 0o644); err != nil {
			t.Fatal(err)
		}
		watches = append(watches, p)
	}
	return audit, watches
}

// TestSynthRolloutsFound: the generator's rollouts, ingested (audit alone, and audit + watch,
// as an EventList webhook stream too), are what rollout-first-pull reports, to the microsecond.
func TestSynthRolloutsFound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       synth.Config
		withWatch bool
	}{
		{"audit", synth.Config{Seed: 3, Clusters: 2, Deployments: 6, Replicas: 2, Rollouts: 2, Duration: 40 * time.Minute}, false},
		{"audit+watch,eventlist", synth.Config{Seed: 4, Deployments: 4, Replicas: 3, Rollouts: 3, EventList: 50}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			arch := filepath.Join(dir, "archive")
			truth := map[string][]truthRow{}
			for _, c := range synth.Generate(tc.cfg) {
				audit, watches := writeSynth(t, dir, c)
				if !tc.withWatch {
					watches = nil
				}
				args := ingestArgs(arch, audit, watches)
				args[3] = c.Name // --cluster
				kairn(t, args...)
				if len(c.Rollouts) == 0 {
					t.Fatalf("%s: the generator made no rollouts", c.Name)
				}
				for _, r := range c.Rollouts {
					truth[c.Name] = append(truth[c.Name], truthRow{namespace: r.Namespace, kind: r.Kind, name: r.Name,
						upgradeAt: r.UpgradeAt, firstPull: r.FirstPullAt})
				}
			}
			out := kairn(t, "report", "rollout-first-pull", "--archive", arch, "--format", "csv")
			for cluster, want := range truth {
				compareToTruth(t, want, parseReportCluster(t, onlyCluster(out, cluster), cluster), 0)
			}
		})
	}
}

// onlyCluster keeps the CSV header and the rows of one cluster.
func onlyCluster(csvOut, cluster string) string {
	lines := strings.Split(strings.TrimRight(csvOut, "\n"), "\n")
	out := lines[:1]
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, cluster+",") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}
