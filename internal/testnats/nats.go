// Package testnats starts a throwaway NATS server with JetStream for tests that need a real
// broker.
//
// The server binary is $KAIRN_NATS_BIN, else the one hack/nats.sh builds into
// ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/nats-server/<version>/nats-server. When
// neither exists the test is skipped with a hint to run `hack/nats.sh path` (the Makefile sets
// KAIRN_NATS_BIN, so `make test` never skips).
package testnats

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kairn-dev/kairn/internal/testtool"
)

// EnvBin names the environment variable holding the nats-server binary to use.
const EnvBin = "KAIRN_NATS_BIN"

// Version is the nats-server version hack/nats.sh builds, read from hack/tools/nats/go.mod when
// the source tree is there; this is the fallback.
const Version = "v2.15.2"

// Binary returns the nats-server binary to use, or "" and a reason when there is none.
func Binary() (string, string) { return tool.Find() }

var tool = testtool.Tool{Env: EnvBin, Dir: "nats", Module: "github.com/nats-io/nats-server/v2", Name: "nats-server", Fallback: Version}

// Server is a running nats-server with JetStream enabled, on a free loopback port with a
// temporary store directory. It is stopped when the test ends.
type Server struct {
	URL  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// Start runs a fresh nats-server with JetStream and waits until JetStream answers. It skips the
// test when no nats-server binary is available.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, why := Binary()
	if bin == "" {
		t.Skipf("NATS server not available (%s): run `hack/nats.sh path` to build it (about a minute, cached) and set $%s to what it prints", why, EnvBin)
	}
	store := t.TempDir()
	var lastErr error
	for attempt := range 3 {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		s := &Server{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), logs: &syncBuffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port),
			"-sd", filepath.Join(store, fmt.Sprint(attempt)), "-n", "kairn-test")
		s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("testnats: %v", err)
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		if lastErr = s.waitReady(30 * time.Second); lastErr == nil {
			t.Cleanup(func() {
				s.stop()
				if t.Failed() {
					t.Logf("nats-server output:\n%s", s.logs.String())
				}
			})
			return s
		}
		s.stop()
		t.Logf("testnats: attempt %d: %v\n%s", attempt+1, lastErr, s.logs.String())
	}
	t.Fatalf("testnats: starting %s: %v", bin, lastErr)
	return nil
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("nats-server exited")
		default:
		}
		var nc *nats.Conn
		if nc, err = nats.Connect(s.URL, nats.Timeout(time.Second)); err == nil {
			var js jetstream.JetStream
			if js, err = jetstream.New(nc); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err = js.AccountInfo(ctx)
				cancel()
			}
			nc.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("JetStream not ready at %s after %s: %v", s.URL, timeout, err)
}

func (s *Server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Connect returns a client connection to the server, closed when the test ends.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL)
	if err != nil {
		t.Fatalf("testnats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testnats: %v", err)
	}
	return nc, js
}

// Logs is the server's output so far.
func (s *Server) Logs() string { return s.logs.String() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output (written from exec's copying goroutines), keeping the
// tail.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 128<<10 {
		tail := bytes.Clone(b.buf.Bytes()[b.buf.Len()-64<<10:])
		b.buf.Reset()
		b.buf.WriteString("[...]\n")
		b.buf.Write(tail)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
