package collect

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kairn-dev/kairn/internal/testnats"
)

func TestNATSClusterFromSubject(t *testing.T) {
	for _, c := range []struct{ filter, subject, def, want string }{
		{"kairn.audit.>", "kairn.audit.prod", "", "prod"},
		{"kairn.audit.>", "kairn.audit.prod.eu-1", "", "prod.eu-1"},
		{"kairn.audit.*", "kairn.audit.dev", "x", "dev"},
		{"audit", "audit", "dev", "dev"},
		{"kairn.audit.>", "kairn.audit.Bad_Name", "dev", ""},
		{"audit", "audit", "", ""},
	} {
		n, err := NewNATS(NATSOptions{Subject: c.filter, Cluster: c.def})
		if err != nil {
			t.Fatal(err)
		}
		got, err := n.clusterOf(c.subject)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("%s on %s (default %q): %q %v, want %q", c.subject, c.filter, c.def, got, err, c.want)
		}
	}
	if _, err := NewNATS(NATSOptions{Stream: "a.b"}); err == nil {
		t.Error("a stream name with a dot was accepted")
	}
}

// startNATS runs the source against a real server until the test ends.
func startNATS(t *testing.T, o NATSOptions, sp Spooler) *NATS {
	t.Helper()
	n, err := NewNATS(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, sp) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the NATS source did not get ready")
	}
	return n
}

// waitDrained waits until the consumer has nothing pending and nothing awaiting an ack.
func waitDrained(t *testing.T, js jetstream.JetStream, stream, consumer string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		c, err := js.Consumer(ctx, stream, consumer)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer %s not drained", consumer)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func publish(t *testing.T, js jetstream.JetStream, subject string, data []byte, hdr nats.Header) {
	t.Helper()
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: hdr}); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func TestNATSSource(t *testing.T) {
	srv := testnats.Start(t)
	_, js := srv.Connect(t)
	sp := &memSpool{}
	startNATS(t, NATSOptions{URL: srv.URL, Cluster: "fallback", RetryDelay: 100 * time.Millisecond}, sp)

	publish(t, js, "kairn.audit.prod", gzipped(eventList(auditWithID("g1"), auditWithID("g2"))), nil)
	publish(t, js, "kairn.audit.dev", []byte(auditWithID("p1")), nil) // a single Event
	publish(t, js, "kairn.audit.dev", gzipped([]byte(auditWithID("h1"))), nats.Header{"Content-Encoding": {"gzip"}})
	publish(t, js, "kairn.audit.dev", []byte("this is no JSON"), nil)
	publish(t, js, "kairn.audit.dev", []byte{0x1f, 0x8b, 1, 2, 3}, nil) // broken gzip
	publish(t, js, "kairn.audit.Bad_Cluster", eventList(auditWithID("c1")), nil)
	publish(t, js, "kairn.audit.dev", eventList(auditWithID("m1"), `"just a string"`, auditWithID("m3")), nil)
	publish(t, js, "kairn.audit.dev", []byte(`{"kind":"ConfigMap","apiVersion":"v1"}`), nil)
	publish(t, js, "kairn.audit.dev", eventList(auditWithID("z1")), nil) // after the bad ones: not blocked
	waitDrained(t, js, defaultNATSStream, defaultNATSConsumer)

	obs, _, bad := sp.committed()
	if got := strings.Join(auditIDs(obs), ","); got != "g1,g2,h1,m1,m3,p1,z1" {
		t.Errorf("committed %s", got)
	}
	for _, o := range obs {
		want := "dev"
		if strings.HasPrefix(o.AuditID, "g") {
			want = "prod"
		}
		if o.Object.Cluster != want {
			t.Errorf("%s: cluster %q, want %q", o.AuditID, o.Object.Cluster, want)
		}
	}
	var reasons []string
	for _, m := range bad {
		if !strings.HasPrefix(m.File, "nats:kairn.audit.") || len(m.Raw) == 0 {
			t.Errorf("quarantined %+v: want the subject and the raw message", m)
		}
		reasons = append(reasons, m.Reason)
	}
	if len(bad) != 5 {
		t.Errorf("%d quarantined, want 5 (no JSON, broken gzip, bad cluster, bad item, wrong kind): %q", len(bad), reasons)
	}
}

// A batch that is not committed is not acknowledged: it comes again, and is committed once the
// spool takes it.
func TestNATSRedeliversUncommitted(t *testing.T) {
	srv := testnats.Start(t)
	_, js := srv.Connect(t)
	sp := &memSpool{commitErr: ErrOverloaded}
	startNATS(t, NATSOptions{URL: srv.URL, RetryDelay: 100 * time.Millisecond, BatchSize: 2}, sp)
	for i := range 5 {
		publish(t, js, "kairn.audit.dev", eventList(auditWithID("r"+string(rune('0'+i)))), nil)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sp.mu.Lock()
		failed := sp.failed
		sp.mu.Unlock()
		if failed >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d failed commits, want retries", failed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if obs, _, _ := sp.committed(); len(obs) != 0 {
		t.Fatalf("committed %d while the spool refused", len(obs))
	}
	sp.mu.Lock()
	sp.commitErr = nil
	sp.mu.Unlock()
	waitDrained(t, js, defaultNATSStream, defaultNATSConsumer)
	obs, _, _ := sp.committed()
	ids := auditIDs(obs)
	if got := strings.Join(slices.Compact(ids), ","); got != "r0,r1,r2,r3,r4" {
		t.Errorf("committed %s, want r0..r4", got)
	}
}
