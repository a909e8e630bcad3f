// Package testminio starts a throwaway MinIO server for tests that need real S3.
//
// The server binary is $KAIRN_MINIO_BIN, else the one hack/minio.sh builds into
// ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/minio/<version>/minio. When neither exists
// the test is skipped with a hint to run `hack/minio.sh path` (the Makefile sets KAIRN_MINIO_BIN,
// so CI never skips).
package testminio

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kairn-dev/kairn/internal/testtool"
)

// EnvBin names the environment variable holding the MinIO server binary to use.
const EnvBin = "KAIRN_MINIO_BIN"

// Version is the MinIO module version hack/minio.sh builds. It is read from
// hack/tools/minio/go.mod when the source tree is available; this is the fallback.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// startTimeout bounds how long MinIO may take to become ready (slow, loaded CI machines).
const startTimeout = 90 * time.Second

// Binary returns the MinIO server binary to use, or "" and a reason when there is none.
func Binary() (string, string) { return tool.Find() }

var tool = testtool.Tool{Env: EnvBin, Dir: "minio", Module: "github.com/minio/minio", Name: "minio", Fallback: Version}

// Start runs a fresh single-drive MinIO server on free loopback ports with a temporary data
// directory, waits until it is ready and stops it when the test ends. It skips the test when no
// MinIO binary is available.
func Start(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	s := StartServer(t)
	return s.Endpoint, s.AccessKey, s.SecretKey
}

// Server is a running MinIO server that a test can stop and start again on the same ports and
// data directory, e.g. to simulate an object store outage.
type Server struct {
	Endpoint, AccessKey, SecretKey string

	t                  testing.TB
	bin, addr, console string
	data, certs        string
	mu                 sync.Mutex
	stop               func() // nil while stopped
	logs               *syncBuffer
}

// StartServer is Start, returning the Server. It is stopped when the test ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, why := Binary()
	if bin == "" {
		t.Skipf("MinIO not available (%s): run `hack/minio.sh path` to build it (several minutes, cached), or set $%s", why, EnvBin)
	}
	s := &Server{t: t, bin: bin, AccessKey: "kairn-test", SecretKey: randomHex(t, 16), logs: &syncBuffer{}}
	dir := t.TempDir()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("MinIO output:\n%s", s.logs.String())
		}
	})

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			lastErr = err
			continue
		}
		s.addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		s.console = fmt.Sprintf("127.0.0.1:%d", ports[1])
		s.data = filepath.Join(dir, fmt.Sprintf("data-%d", attempt))
		s.certs = filepath.Join(dir, fmt.Sprintf("certs-%d", attempt)) // keep MinIO away from ~/.minio
		s.Endpoint = "http://" + s.addr
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		// Most likely a port taken between probing and binding: retry on new ports.
		t.Logf("testminio: attempt %d: %v", attempt+1, lastErr)
	}
	t.Fatalf("testminio: starting MinIO (%s): %v", bin, lastErr)
	return nil
}

// Stop stops the server (a no-op when it is not running). Its data stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// Restart starts the stopped server again on the same ports and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("testminio: restarting MinIO: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "server", s.data, "--address", s.addr, "--console-address", s.console, "--certs-dir", s.certs, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if err := waitReady(s.Endpoint, exited); err != nil {
		stop()
		return fmt.Errorf("%w\nMinIO output:\n%s", err, s.logs.String())
	}
	s.stop = stop
	return nil
}

// waitReady polls MinIO's liveness, then readiness, endpoint.
func waitReady(endpoint string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
		for {
			resp, err := client.Get(endpoint + path)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-exited:
				return fmt.Errorf("MinIO exited before %s answered", path)
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("MinIO not ready at %s%s after %s (last error: %v)", endpoint, path, startTimeout, err)
			}
		}
	}
	return nil
}

// Client returns an S3 client for the MinIO server (path-style, us-east-1, static credentials).
func Client(endpoint, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

// Bucket creates a bucket on the MinIO server.
func Bucket(t testing.TB, endpoint, accessKey, secretKey, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Client(endpoint, accessKey, secretKey).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testminio: create bucket %q: %v", name, err)
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer collects MinIO's output (written from exec's copying goroutines), keeping the tail.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxLog = 64 << 10

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 2*maxLog {
		tail := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-maxLog:]...)
		b.buf.Reset()
		b.buf.WriteString("[...]\n")
		b.buf.Write(tail)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		out.WriteString("  " + sc.Text() + "\n")
	}
	return out.String()
}
