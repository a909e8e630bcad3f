package main

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kairn-dev/kairn/internal/testminio"
)

// SIGTERM while the object store is down: `kairn collect` stops within --shutdown-timeout,
// says the records stay spooled, and the next start flushes them: every acknowledged audit event
// reaches the archive exactly once.
func TestCollectShutdownIsBoundedAndLosesNothing(t *testing.T) {
	auditPath, lines := recordingAudit(t)
	minio := testminio.StartServer(t)
	useMinIO(t, minio)
	archiveLoc := "s3://kairn/shutdown"
	spool := filepath.Join(t.TempDir(), "spool")
	start := func() (*collector, string) {
		addr := freeAddr(t)
		c := startCollectorArgs(t, collectArgs(archiveLoc, spool, "--webhook-addr", addr, "--webhook-insecure-http",
			"--shutdown-timeout", "4s")...)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				return c, addr
			}
			if time.Now().After(deadline) {
				t.Fatalf("collect did not start:\n%s", c.logs)
			}
		}
	}

	c, addr := start()
	for _, b := range eventLists(lines, 50) {
		resp, err := http.Post("http://"+addr+"/audit", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %s", resp.Status)
		}
	}
	// Every batch was answered 200; an audit span is a request about an object (non-resource
	// URLs such as /healthz are not archived) at its final stage.
	acked := 0
	for _, a := range auditLines(t, auditPath) {
		if s := getS(a, "stage"); (s == "ResponseComplete" || s == "Panic") && getS(a, "objectRef", "resource") != "" {
			acked++
		}
	}
	minio.Stop()
	stopAt := time.Now()
	c.cmd.Process.Signal(syscall.SIGTERM)
	err := c.cmd.Wait()
	took := time.Since(stopAt)
	t.Logf("SIGTERM with the store down: exited in %s (%v)", took.Round(time.Millisecond), err)
	if took > 10*time.Second {
		t.Errorf("shutdown took %s with --shutdown-timeout 4s", took)
	}
	if err == nil || !strings.Contains(c.logs.String(), "stay spooled") {
		t.Errorf("an unflushed shutdown must fail and say the records stay spooled:\n%s", c.logs)
	}

	minio.Restart()
	c, _ = start()
	c.stop(t, syscall.SIGTERM)
	kairn(t, "merge", "--quiet", "--archive", archiveLoc, "--open")
	got := kairn(t, "sql", "--archive", archiveLoc, "--format", "csv",
		`SELECT count(*), count(DISTINCT audit_id) FROM spans WHERE kind = 'audit'`)
	if want := "count_star(),count(DISTINCT audit_id)\n" + strconv.Itoa(acked) + "," + strconv.Itoa(acked) + "\n"; got != want {
		t.Errorf("audit spans after the restart:\n%s want\n%s", got, want)
	}
}
