package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestTraceCommand prints the bundled recording's Deployment shop/web as a tree and checks its
// shape against the raw audit log and Event watch: the Deployment at the top, each of its
// ReplicaSets directly under it, each pod under the ReplicaSet that created it, and each pod's
// Pulling Events on that pod.
func TestTraceCommand(t *testing.T) {
	tr := shopWebTruth(t)
	dir := recordingArchive(t)
	out := kairn(t, "trace", "deployment", "web", "-n", "shop", "--archive", dir)

	type node struct {
		depth   int
		parent  string // uid of the enclosing object
		pulling int
	}
	objects := map[string]*node{}
	var stack []string // uids of the enclosing objects, by depth
	var current string
	for _, line := range strings.Split(out, "\n")[1:] {
		if line == "" {
			continue
		}
		depth := (len(line) - len(strings.TrimLeft(line, " "))) / 2
		if i := strings.LastIndex(line, "  uid "); i >= 0 {
			uid := line[i+len("  uid "):]
			stack = stack[:min(depth, len(stack))]
			n := &node{depth: depth}
			if depth > 0 && len(stack) == depth {
				n.parent = stack[depth-1]
			}
			objects[uid] = n
			stack = append(stack, uid)
			current = uid
			continue
		}
		if strings.Contains(line, " event Pulling ") && current != "" && depth == objects[current].depth+1 {
			objects[current].pulling++
		}
	}
	if d := objects[tr.deployment]; d == nil || d.depth != 0 {
		t.Fatalf("Deployment shop/web (uid %s) is not the tree's root:\n%s", tr.deployment, out)
	}
	replicaSets := 0
	for rs, owner := range tr.rsOwner {
		if owner != tr.deployment {
			continue
		}
		replicaSets++
		if n := objects[rs]; n == nil || n.parent != tr.deployment {
			t.Errorf("ReplicaSet %s is not directly under the Deployment", rs)
		}
	}
	if replicaSets < 2 {
		t.Fatalf("the recording's shop/web has %d ReplicaSets, want the rollout's two", replicaSets)
	}
	for pod, rs := range tr.podOwner {
		if tr.rsOwner[rs] != tr.deployment {
			continue
		}
		n := objects[pod]
		if n == nil || n.parent != rs {
			t.Errorf("pod %s is not under its ReplicaSet %s", pod, rs)
			continue
		}
		if n.pulling < tr.pulling[pod] {
			t.Errorf("pod %s shows %d Pulling events, the Event watch has %d", pod, n.pulling, tr.pulling[pod])
		}
	}
	if t.Failed() {
		t.Logf("kairn trace printed:\n%s", out)
	}

	// What a user gets wrong gets a message that says what to do.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"trace", "deployment", "web"}, "names several objects"},
		{[]string{"trace", "deploy", "nosuch", "-n", "shop"}, `no deploy named "nosuch" in namespace shop`},
		{[]string{"trace", "deployment"}, "give a resource and a name"},
		{[]string{"trace", "deployment", "web", "-n", "shop", "--pipeline", "flame"}, "unknown service"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append(c.args, "--archive", dir), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("kairn %s: exit %d, stderr %q; want an error saying %q", strings.Join(c.args, " "), code, stderr.String(), c.want)
		}
	}
	// The short name and another pipeline reach the same object.
	if out := kairn(t, "trace", "deploy", "web", "-n", "shop", "--pipeline", "tree", "--archive", dir); !strings.Contains(out, "uid "+tr.deployment) {
		t.Errorf("kairn trace deploy web --pipeline tree does not show the Deployment:\n%s", out)
	}
}
