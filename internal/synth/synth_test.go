package synth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, Clusters: 2, Deployments: 5, Replicas: 3, Rollouts: 2}
	a, b := Generate(cfg), Generate(cfg)
	for i := range a {
		if !bytes.Equal(a[i].Audit, b[i].Audit) {
			t.Fatalf("cluster %d: same seed, different audit bytes", i)
		}
		for r, w := range a[i].Watch {
			if !bytes.Equal(w, b[i].Watch[r]) {
				t.Fatalf("cluster %d: same seed, different %s watch bytes", i, r)
			}
		}
	}
	if bytes.Equal(a[0].Audit, a[1].Audit) {
		t.Fatal("two clusters got the same stream")
	}
	c := Generate(Config{Seed: 8, Clusters: 1, Deployments: 5, Replicas: 3, Rollouts: 2})
	if bytes.Equal(a[0].Audit, c[0].Audit) {
		t.Fatal("another seed gave the same bytes")
	}
}

type mix struct {
	n, body, events, bytes int
	verbs                  map[string]int
	ua                     map[string]int
	reasons                map[string]int
	size                   map[string][]int
}

func measure(t *testing.T, audit []byte) mix {
	m := mix{verbs: map[string]int{}, ua: map[string]int{}, reasons: map[string]int{}, size: map[string][]int{}}
	sc := bufio.NewScanner(bytes.NewReader(audit))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var e struct {
			Level, Verb, UserAgent string
			ObjectRef              struct{ Resource, Subresource string }
			ResponseObject         struct{ Reason string }
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		m.n++
		m.bytes += len(sc.Bytes())
		m.ua[strings.SplitN(e.UserAgent, "/", 2)[0]]++
		if e.Level == "RequestResponse" {
			m.body++
			key := e.Verb + " " + e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				key += "/" + e.ObjectRef.Subresource
			}
			m.size[key] = append(m.size[key], len(sc.Bytes()))
			if e.ObjectRef.Resource == "events" {
				m.events++
				m.reasons[e.ResponseObject.Reason]++
			}
		} else {
			m.verbs[e.Verb]++
		}
	}
	return m
}

func mean(xs []int) float64 {
	s := 0
	for _, x := range xs {
		s += x
	}
	return float64(s) / float64(len(xs))
}

// TestMixMatchesRecording checks the generated traffic against what testdata's recordings show
// (shape.go has the measured numbers).
func TestMixMatchesRecording(t *testing.T) {
	c := Generate(Config{Seed: 1, Deployments: 20, Replicas: 3, Rollouts: 3})[0]
	m := measure(t, c.Audit)
	within := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol*want {
			t.Errorf("%s: %.3f, recording %.3f (tolerance %.0f%%)", what, got, want, 100*tol)
		} else {
			t.Logf("%s: %.3f, recording %.3f", what, got, want)
		}
	}
	// Both recordings: 25.7% of audit events at RequestResponse, 1.85 KB per event on average
	// (2582810 + 1716917 bytes / 1316 + 1022 lines).
	within("RequestResponse share", float64(m.body)/float64(m.n), 600.0/2338, 0.05)
	within("bytes per event", float64(m.bytes)/float64(m.n), 4299727.0/2338, 0.20)
	// Body sizes per request kind (recording/, mean bytes of the whole audit line).
	for key, want := range map[string]float64{
		"create events": 2684, "update deployments/status": 5720, "update replicasets/status": 5501,
		"patch pods/status": 5730, "delete pods": 4914, "create pods": 4819, "create pods/binding": 1407,
		"create replicasets": 4812, "patch deployments": 4753,
	} {
		within("mean bytes of "+key, mean(m.size[key]), want, 0.30)
	}
	// Event reasons per pod created: one each of SuccessfulCreate, Scheduled, Pulling, Pulled,
	// Created, Started (recording/: 15 each for 15 pods).
	pods := len(m.size["create pods"])
	for _, r := range []string{"SuccessfulCreate", "Scheduled", "Pulling", "Pulled", "Created", "Started"} {
		if m.reasons[r] != pods {
			t.Errorf("%d %s Events for %d pods", m.reasons[r], r, pods)
		}
	}
	// Events are 22-32% of the body events in the recordings' scenario parts; the chain here
	// has more per pod (Killing and SuccessfulDelete on every replaced pod).
	within("Event writes per body event", float64(m.events)/float64(m.body), 0.44, 0.25)
	// User agents of all events: the controller manager and the apiserver (its own Metadata
	// requests) lead, then kwok's kubelet, kubectl and the scheduler (both recordings: 929, 854,
	// 210, 243, 102 of 2338).
	for ua, want := range map[string]float64{"kube-controller-manager": 929, "kwok": 210, "kube-scheduler": 102} {
		within("share of "+ua, float64(m.ua[ua])/float64(m.n), want/2338, 0.4)
	}
	if len(c.Rollouts) != 20*3 {
		t.Errorf("%d rollouts, want 60", len(c.Rollouts))
	}
}

func TestScales(t *testing.T) {
	small := Generate(Config{Seed: 1, Deployments: 2})[0]
	big := Generate(Config{Seed: 1, Deployments: 8})[0]
	if r := float64(big.Events) / float64(small.Events); r < 3.5 || r > 4.5 {
		t.Errorf("4× the Deployments gave %.2f× the events", r)
	}
	rate := Generate(Config{Seed: 1, Deployments: 2, Duration: time.Minute, EventsPerSecond: 500})[0]
	if rate.Events < 30000 {
		t.Errorf("500 events/s over a minute gave %d events", rate.Events)
	}
	list := Generate(Config{Seed: 1, Deployments: 2, EventList: 100})[0]
	if n := bytes.Count(list.Audit, []byte("\n")); n != (small.Events+99)/100 {
		t.Errorf("EventList of 100: %d lines for %d events", n, small.Events)
	}
}
