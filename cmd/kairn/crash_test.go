package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real `kairn ingest` killed with SIGKILL at random points, then run again on the same spool:
// after merge the archive holds every observation exactly once and answers as a clean run does.
func TestIngestSurvivesKill9(t *testing.T) {
	audit, watches := recordingFiles(t)
	answers := func(dir string) map[string]string {
		kairn(t, "merge", "--quiet", "--archive", dir, "--open", "--window", "1m")
		return map[string]string{
			"rollouts":  kairn(t, "report", "rollout-first-pull", "--archive", dir, "--format", "csv"),
			"conflicts": kairn(t, "report", "conflicts", "--archive", dir, "--format", "csv"),
			"facts": kairn(t, "sql", "--archive", dir, "--format", "csv",
				`SELECT kind, count(*), count(DISTINCT observation_id), count(DISTINCT span_id) FROM spans GROUP BY ALL ORDER BY ALL`),
			"changes": kairn(t, "sql", "--archive", dir, "--format", "csv",
				`SELECT observation_id, start_time, user, prev_resource_version, changes FROM spans WHERE kind = 'change' ORDER BY ALL`),
		}
	}
	clean := t.TempDir()
	kairn(t, append(ingestArgs(clean, audit, watches), "--window", "1m")...)
	want := answers(clean)

	iterations := 12
	if testing.Short() {
		iterations = 3
	}
	rng := rand.New(rand.NewPCG(7, 7))
	killedMidway := 0
	for i := range iterations {
		root := t.TempDir()
		dir, spool := filepath.Join(root, "archive"), filepath.Join(root, "spool")
		args := append(ingestArgs(dir, audit, watches), "--window", "1m", "--spool", spool)
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL
		if err := cmd.Wait(); err != nil {
			killedMidway++
		}
		kairn(t, args...) // the rerun resumes from the spool
		got := answers(dir)
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("iteration %d: %s differs from a clean run:\n%s", i, k, firstDiff(got[k], want[k]))
			}
		}
	}
	t.Logf("%d of %d runs were killed before they finished", killedMidway, iterations)
	if killedMidway == 0 {
		t.Error("no run was killed midway: the test proves nothing")
	}
}
