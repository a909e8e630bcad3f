package synth

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// clone deep-copies a body (every body is JSON-shaped), so a revision written once never
// changes under a later one.
func clone(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func metaOf(body map[string]any) map[string]any { return body["metadata"].(map[string]any) }

func managed(manager, op, apiVersion string, at time.Time, sub string, fields map[string]any) map[string]any {
	m := map[string]any{"manager": manager, "operation": op, "apiVersion": apiVersion, "time": secs(at),
		"fieldsType": "FieldsV1", "fieldsV1": fields}
	if sub != "" {
		m["subresource"] = sub
	}
	return m
}

func (d *deployment) image() string { return d.repo + ":" + d.versions[d.version%len(d.versions)] }

func (d *deployment) podTemplate() map[string]any {
	return map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": d.app, "tier": "frontend"}},
		"spec": map[string]any{
			"containers": []any{map[string]any{
				"name": d.container, "image": d.image(),
				"ports":                    []any{map[string]any{"containerPort": 80, "protocol": "TCP"}},
				"resources":                map[string]any{},
				"terminationMessagePath":   "/dev/termination-log",
				"terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
			}},
			"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
			"securityContext": map[string]any{}, "schedulerName": "default-scheduler",
		},
	}
}

var templateFields = map[string]any{"f:metadata": map[string]any{"f:labels": map[string]any{".": map[string]any{}, "f:app": map[string]any{}, "f:tier": map[string]any{}}},
	"f:spec": map[string]any{"f:containers": map[string]any{`k:{"name":"c"}`: map[string]any{".": map[string]any{}, "f:image": map[string]any{}, "f:imagePullPolicy": map[string]any{}, "f:name": map[string]any{},
		"f:ports":     map[string]any{".": map[string]any{}, `k:{"containerPort":80,"protocol":"TCP"}`: map[string]any{".": map[string]any{}, "f:containerPort": map[string]any{}, "f:protocol": map[string]any{}}},
		"f:resources": map[string]any{}, "f:terminationMessagePath": map[string]any{}, "f:terminationMessagePolicy": map[string]any{}}},
		"f:dnsPolicy": map[string]any{}, "f:restartPolicy": map[string]any{}, "f:schedulerName": map[string]any{}, "f:securityContext": map[string]any{}, "f:terminationGracePeriodSeconds": map[string]any{}}}

var statusFields = map[string]any{"f:status": map[string]any{"f:availableReplicas": map[string]any{}, "f:conditions": map[string]any{".": map[string]any{},
	`k:{"type":"Available"}`:   map[string]any{".": map[string]any{}, "f:lastTransitionTime": map[string]any{}, "f:lastUpdateTime": map[string]any{}, "f:message": map[string]any{}, "f:reason": map[string]any{}, "f:status": map[string]any{}, "f:type": map[string]any{}},
	`k:{"type":"Progressing"}`: map[string]any{".": map[string]any{}, "f:lastTransitionTime": map[string]any{}, "f:lastUpdateTime": map[string]any{}, "f:message": map[string]any{}, "f:reason": map[string]any{}, "f:status": map[string]any{}, "f:type": map[string]any{}}},
	"f:observedGeneration": map[string]any{}, "f:readyReplicas": map[string]any{}, "f:replicas": map[string]any{}, "f:updatedReplicas": map[string]any{}}}

func condition(typ, reason, msg string, at time.Time) map[string]any {
	return map[string]any{"type": typ, "status": "True", "lastUpdateTime": secs(at), "lastTransitionTime": secs(at), "reason": reason, "message": msg}
}

func (g *gen) newDeployment(d *deployment, at time.Time) map[string]any {
	return map[string]any{
		"kind": "Deployment", "apiVersion": "apps/v1",
		"metadata": map[string]any{
			"name": d.name, "namespace": d.ns, "uid": d.uid, "resourceVersion": g.nextRV(), "generation": 1,
			"creationTimestamp": secs(at), "labels": map[string]any{"app": d.app, "tier": "frontend"},
			"managedFields": []any{managed("kubectl-create", "Update", "apps/v1", at, "", map[string]any{
				"f:metadata": map[string]any{"f:labels": map[string]any{".": map[string]any{}, "f:app": map[string]any{}, "f:tier": map[string]any{}}},
				"f:spec": map[string]any{"f:progressDeadlineSeconds": map[string]any{}, "f:replicas": map[string]any{}, "f:revisionHistoryLimit": map[string]any{}, "f:selector": map[string]any{},
					"f:strategy": map[string]any{"f:rollingUpdate": map[string]any{".": map[string]any{}, "f:maxSurge": map[string]any{}, "f:maxUnavailable": map[string]any{}}, "f:type": map[string]any{}},
					"f:template": templateFields}})},
		},
		"spec": map[string]any{
			"replicas": d.replicas, "selector": map[string]any{"matchLabels": map[string]any{"app": d.app}},
			"template":             d.podTemplate(),
			"strategy":             map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": "25%", "maxSurge": "25%"}},
			"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
		},
		"status": map[string]any{},
	}
}

// rollout creates the Deployment (create) or changes its image, and plays the controllers' chain.
func (g *gen) rollout(d *deployment, t time.Time, create bool) {
	var upgradeAt time.Time
	if create {
		d.body = g.newDeployment(d, t)
		req := clone(d.body)
		delete(req, "status")
		rm := metaOf(req)
		for _, k := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"} {
			delete(rm, k)
		}
		g.write(t, admin, "create", "apps", "deployments", "", d.body, req, 201, "ADDED")
		g.objects++
	} else {
		d.version++
		upgradeAt = t
		d.body = clone(d.body)
		m := metaOf(d.body)
		m["resourceVersion"] = g.nextRV()
		m["generation"] = m["generation"].(float64) + 1
		spec := d.body["spec"].(map[string]any)
		c := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
		c["image"] = d.image()
		mf := m["managedFields"].([]any)
		if len(mf) < 3 {
			mf = append(mf, managed("kubectl-set", "Update", "apps/v1", t, "", map[string]any{"f:spec": map[string]any{"f:template": map[string]any{"f:spec": map[string]any{"f:containers": map[string]any{`k:{"name":"c"}`: map[string]any{"f:image": map[string]any{}}}}}}}))
		} else {
			mf[2].(map[string]any)["time"] = secs(t)
		}
		m["managedFields"] = mf
		req := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"$setElementOrder/containers": []any{map[string]any{"name": d.container}},
			"containers":                  []any{map[string]any{"image": d.image(), "name": d.container}}}}}}
		g.write(t, admin, "patch", "apps", "deployments", "", d.body, req, 200, "MODIFIED")
	}
	d.revision++
	t = t.Add(g.ms(5, 20))

	// The deployment controller makes the new ReplicaSet, scales it up, reports status.
	old := d.rs
	rs := &replicaSet{name: d.name + "-" + g.suffix(10), uid: g.uid()}
	rs.body = map[string]any{
		"kind": "ReplicaSet", "apiVersion": "apps/v1",
		"metadata": map[string]any{
			"name": rs.name, "namespace": d.ns, "uid": rs.uid, "resourceVersion": g.nextRV(), "generation": 1,
			"creationTimestamp": secs(t), "labels": map[string]any{"app": d.app, "tier": "frontend", "pod-template-hash": rs.name[len(d.name)+1:]},
			"annotations": map[string]any{"deployment.kubernetes.io/desired-replicas": strconv.Itoa(d.replicas),
				"deployment.kubernetes.io/max-replicas": strconv.Itoa(d.replicas + 1), "deployment.kubernetes.io/revision": strconv.Itoa(d.revision)},
			"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": d.name, "uid": d.uid, "controller": true, "blockOwnerDeletion": true}},
			"managedFields": []any{managed("kube-controller-manager", "Update", "apps/v1", t, "", map[string]any{
				"f:metadata": map[string]any{"f:annotations": map[string]any{".": map[string]any{}, "f:deployment.kubernetes.io/desired-replicas": map[string]any{}, "f:deployment.kubernetes.io/max-replicas": map[string]any{}, "f:deployment.kubernetes.io/revision": map[string]any{}},
					"f:labels":          map[string]any{".": map[string]any{}, "f:app": map[string]any{}, "f:pod-template-hash": map[string]any{}, "f:tier": map[string]any{}},
					"f:ownerReferences": map[string]any{".": map[string]any{}, `k:{"uid":"` + d.uid + `"}`: map[string]any{}}},
				"f:spec": map[string]any{"f:replicas": map[string]any{}, "f:selector": map[string]any{}, "f:template": templateFields}})},
		},
		"spec": map[string]any{"replicas": d.replicas, "selector": map[string]any{"matchLabels": map[string]any{"app": d.app, "pod-template-hash": rs.name[len(d.name)+1:]}},
			"template": d.podTemplate()},
		"status": map[string]any{"replicas": 0},
	}
	g.write(t, deployCtl, "create", "apps", "replicasets", "", rs.body, clone(rs.body), 201, "ADDED")
	g.objects++
	d.rs = rs
	g.event(t.Add(g.ms(1, 4)), deployCtl, "deployment-controller", "", d.ns, "Deployment", "apps/v1", d.name, d.uid,
		"ScalingReplicaSet", fmt.Sprintf("Scaled up replica set %s from 0 to %d", rs.name, d.replicas), false)
	t = t.Add(g.ms(3, 10))
	g.deploymentStatus(d, t, "ReplicaSetUpdated")

	// Pods of the new ReplicaSet: created, bound, pulled, started, ready.
	firstPull := time.Time{}
	for i := range d.replicas {
		pt := t.Add(time.Duration(i) * g.ms(2, 30))
		p := g.newPod(d, rs, pt)
		rs.pods = append(rs.pods, p)
		g.event(pt.Add(g.ms(1, 3)), rsCtl, "replicaset-controller", "", d.ns, "ReplicaSet", "apps/v1", rs.name, rs.uid,
			"SuccessfulCreate", "Created pod: "+p.name, false)
		bt := pt.Add(g.ms(2, 2*bindDelayMs))
		g.bind(p, d.ns, bt)
		pull := bt.Add(g.ms(pullDelayMs/2, 3*pullDelayMs/2))
		pullAudit := g.kubelet(d, p, pull)
		if firstPull.IsZero() || pullAudit.Before(firstPull) {
			firstPull = pullAudit
		}
	}
	t = t.Add(time.Duration(readyDelayMaxS * float64(time.Second)))
	g.replicaSetStatus(rs, d.replicas, t)

	// The old ReplicaSet scales to zero; its pods are deleted and killed.
	if old != nil {
		t = t.Add(g.ms(5, 30))
		old.body = clone(old.body)
		om := metaOf(old.body)
		om["resourceVersion"] = g.nextRV()
		om["generation"] = om["generation"].(float64) + 1
		old.body["spec"].(map[string]any)["replicas"] = 0
		g.write(t, deployCtl, "update", "apps", "replicasets", "", old.body, clone(old.body), 200, "MODIFIED")
		g.event(t.Add(g.ms(1, 4)), deployCtl, "deployment-controller", "", d.ns, "Deployment", "apps/v1", d.name, d.uid,
			"ScalingReplicaSet", fmt.Sprintf("Scaled down replica set %s from %d to 0", old.name, len(old.pods)), false)
		for _, p := range old.pods {
			t = t.Add(g.ms(2, 20))
			g.deletePod(d, old, p, t)
		}
		old.pods = nil
		g.replicaSetStatus(old, 0, t.Add(g.ms(5, 20)))
	}
	t = t.Add(g.ms(10, 50))
	g.deploymentStatus(d, t, "NewReplicaSetAvailable")
	if !create {
		g.rollouts = append(g.rollouts, Rollout{Cluster: g.cluster, Namespace: d.ns, Kind: "Deployment", Name: d.name,
			UpgradeAt: upgradeAt.Truncate(time.Microsecond), FirstPullAt: firstPull.Truncate(time.Microsecond)})
	}
}

// deploymentStatus is the deployment controller's status update, sometimes answered 409 first.
func (g *gen) deploymentStatus(d *deployment, t time.Time, reason string) {
	if g.rng.Float64() < statusConflictRate {
		g.write(t, deployCtl, "update", "apps", "deployments", "status", d.body, clone(d.body), 409, "")
		t = t.Add(g.ms(2, 10))
	}
	d.body = clone(d.body)
	m := metaOf(d.body)
	m["resourceVersion"] = g.nextRV()
	m["annotations"] = map[string]any{"deployment.kubernetes.io/revision": strconv.Itoa(d.revision)}
	gen := m["generation"]
	mf := m["managedFields"].([]any)
	if len(mf) == 1 {
		mf = append(mf, managed("kube-controller-manager", "Update", "apps/v1", t, "status", statusFields))
		m["managedFields"] = mf
	} else {
		mf[1].(map[string]any)["time"] = secs(t)
	}
	d.body["status"] = map[string]any{"observedGeneration": gen, "replicas": d.replicas, "updatedReplicas": d.replicas,
		"readyReplicas": d.replicas, "availableReplicas": d.replicas, "conditions": []any{
			condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability.", t),
			condition("Progressing", reason, fmt.Sprintf("ReplicaSet %q has successfully progressed.", d.rs.name), t)}}
	g.write(t, deployCtl, "update", "apps", "deployments", "status", d.body, clone(d.body), 200, "MODIFIED")
}

func (g *gen) replicaSetStatus(rs *replicaSet, n int, t time.Time) {
	rs.body = clone(rs.body)
	m := metaOf(rs.body)
	m["resourceVersion"] = g.nextRV()
	rs.body["status"] = map[string]any{"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n, "availableReplicas": n,
		"observedGeneration": m["generation"]}
	g.write(t, rsCtl, "update", "apps", "replicasets", "status", rs.body, clone(rs.body), 200, "MODIFIED")
}

func (g *gen) newPod(d *deployment, rs *replicaSet, t time.Time) *pod {
	p := &pod{name: rs.name + "-" + g.suffix(5), uid: g.uid(),
		node: "node-" + strconv.Itoa(g.rng.IntN(g.cfg.Nodes)), ip: fmt.Sprintf("10.244.%d.%d", g.rng.IntN(256), 1+g.rng.IntN(254))}
	tmpl := d.podTemplate()
	spec := tmpl["spec"].(map[string]any)
	vol := "kube-api-access-" + g.suffix(5)
	spec["volumes"] = []any{map[string]any{"name": vol, "projected": map[string]any{"sources": []any{
		map[string]any{"serviceAccountToken": map[string]any{"expirationSeconds": 3607, "path": "token"}},
		map[string]any{"configMap": map[string]any{"name": "kube-root-ca.crt", "items": []any{map[string]any{"key": "ca.crt", "path": "ca.crt"}}}},
		map[string]any{"downwardAPI": map[string]any{"items": []any{map[string]any{"path": "namespace", "fieldRef": map[string]any{"apiVersion": "v1", "fieldPath": "metadata.namespace"}}}}}},
		"defaultMode": 420}}}
	spec["containers"].([]any)[0].(map[string]any)["volumeMounts"] = []any{map[string]any{"name": vol, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}}
	spec["serviceAccountName"], spec["serviceAccount"] = "default", "default"
	spec["tolerations"] = []any{
		map[string]any{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
		map[string]any{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}}
	spec["priority"], spec["enableServiceLinks"], spec["preemptionPolicy"] = 0, true, "PreemptLowerPriority"
	hash := rs.name[len(d.name)+1:]
	p.body = map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{
			"name": p.name, "generateName": rs.name + "-", "namespace": d.ns, "uid": p.uid, "resourceVersion": g.nextRV(), "generation": 1,
			"creationTimestamp": secs(t), "labels": map[string]any{"app": d.app, "tier": "frontend", "pod-template-hash": hash},
			"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs.name, "uid": rs.uid, "controller": true, "blockOwnerDeletion": true}},
			"managedFields": []any{managed("kube-controller-manager", "Update", "v1", t, "", map[string]any{
				"f:metadata": map[string]any{"f:generateName": map[string]any{}, "f:labels": map[string]any{".": map[string]any{}, "f:app": map[string]any{}, "f:pod-template-hash": map[string]any{}, "f:tier": map[string]any{}},
					"f:ownerReferences": map[string]any{".": map[string]any{}, `k:{"uid":"` + rs.uid + `"}`: map[string]any{}}},
				"f:spec": templateFields["f:spec"]})},
		},
		"spec":   spec,
		"status": map[string]any{"phase": "Pending", "qosClass": "BestEffort"},
	}
	req := clone(p.body)
	rm := metaOf(req)
	for _, k := range []string{"name", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"} {
		delete(rm, k)
	}
	g.write(t, rsCtl, "create", "", "pods", "", p.body, req, 201, "ADDED")
	g.objects++
	return p
}

func (g *gen) bind(p *pod, ns string, t time.Time) {
	req := map[string]any{"kind": "Binding", "apiVersion": "v1", "metadata": map[string]any{"name": p.name, "namespace": ns, "uid": p.uid},
		"target": map[string]any{"kind": "Node", "name": p.node}}
	g.emit(request{at: t, who: scheduler, verb: "create", ref: objectRef{Resource: "pods", Namespace: ns, Name: p.name, Subresource: "binding"},
		uri: uri("", ns, "pods", p.name, "binding"), code: 201, reqBody: req,
		respBody: map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Success", "code": 201}})
	p.body = clone(p.body)
	m := metaOf(p.body)
	m["resourceVersion"] = g.nextRV()
	p.body["spec"].(map[string]any)["nodeName"] = p.node
	p.body["status"] = map[string]any{"phase": "Pending", "qosClass": "BestEffort", "conditions": []any{
		map[string]any{"type": "PodScheduled", "status": "True", "lastProbeTime": nil, "lastTransitionTime": secs(t)}}}
	g.watchEvent("pods", "MODIFIED", t.Add(g.ms(1, 5)), p.body)
	g.event(t.Add(g.ms(1, 3)), scheduler, "default-scheduler", "", ns, "Pod", "v1", p.name, p.uid,
		"Scheduled", fmt.Sprintf("Successfully assigned %s/%s to %s", ns, p.name, p.node), true)
}

// kubelet plays kwok's kubelet for a bound pod: Pulling (returned: its audited creation),
// Pulled, Created, Started Events and two status patches.
func (g *gen) kubelet(d *deployment, p *pod, t time.Time) time.Time {
	img := d.image()
	g.event(t, kwok, "kubelet", p.node, p.body["metadata"].(map[string]any)["namespace"].(string), "Pod", "v1", p.name, p.uid,
		"Pulling", fmt.Sprintf("Pulling image %q", img), false)
	pull := t
	ns := d.ns
	g.podStatus(p, t.Add(g.ms(20, 60)), false)
	t = t.Add(g.ms(100, 400))
	g.event(t, kwok, "kubelet", p.node, ns, "Pod", "v1", p.name, p.uid, "Pulled", fmt.Sprintf("Successfully pulled image %q in 312ms (312ms including waiting). Image size: 71022632 bytes.", img), false)
	t = t.Add(g.ms(5, 50))
	g.event(t, kwok, "kubelet", p.node, ns, "Pod", "v1", p.name, p.uid, "Created", "Created container: "+d.container, false)
	t = t.Add(g.ms(5, 50))
	g.event(t, kwok, "kubelet", p.node, ns, "Pod", "v1", p.name, p.uid, "Started", "Started container "+d.container, false)
	g.podStatus(p, t.Add(g.ms(100, 900)), true)
	return pull
}

func (g *gen) podStatus(p *pod, t time.Time, ready bool) {
	p.body = clone(p.body)
	m := metaOf(p.body)
	m["resourceVersion"] = g.nextRV()
	phase, state := "Pending", map[string]any{"waiting": map[string]any{"reason": "ContainerCreating"}}
	if ready {
		phase, state = "Running", map[string]any{"running": map[string]any{"startedAt": secs(t)}}
	}
	c := p.body["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	conds := []any{map[string]any{"type": "PodScheduled", "status": "True", "lastProbeTime": nil, "lastTransitionTime": secs(t)}}
	for _, ct := range []string{"Initialized", "Ready", "ContainersReady"} {
		st := "True"
		if !ready && ct != "Initialized" {
			st = "False"
		}
		conds = append(conds, map[string]any{"type": ct, "status": st, "lastProbeTime": nil, "lastTransitionTime": secs(t)})
	}
	p.body["status"] = map[string]any{"phase": phase, "qosClass": "BestEffort", "hostIP": "10.0.0.2", "podIP": p.ip,
		"podIPs": []any{map[string]any{"ip": p.ip}}, "startTime": secs(t), "conditions": conds,
		"containerStatuses": []any{map[string]any{"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
			"restartCount": 0, "started": ready, "state": state, "lastState": map[string]any{}}}}
	req := map[string]any{"status": p.body["status"]}
	g.write(t, kwok, "patch", "", "pods", "status", p.body, req, 200, "MODIFIED")
}

func (g *gen) deletePod(d *deployment, rs *replicaSet, p *pod, t time.Time) {
	p.body = clone(p.body)
	m := metaOf(p.body)
	m["resourceVersion"] = g.nextRV()
	m["deletionTimestamp"] = secs(t.Add(30 * time.Second))
	m["deletionGracePeriodSeconds"] = 30
	g.write(t, rsCtl, "delete", "", "pods", "", p.body, map[string]any{"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}, 200, "MODIFIED")
	g.event(t.Add(g.ms(1, 4)), rsCtl, "replicaset-controller", "", d.ns, "ReplicaSet", "apps/v1", rs.name, rs.uid,
		"SuccessfulDelete", "Deleted pod: "+p.name, false)
	kt := t.Add(g.ms(50, 300))
	g.event(kt, kwok, "kubelet", p.node, d.ns, "Pod", "v1", p.name, p.uid, "Killing", "Stopping container "+d.container, false)
	p.body = clone(p.body)
	metaOf(p.body)["resourceVersion"] = g.nextRV()
	g.write(kt.Add(g.ms(100, 600)), kwok, "delete", "", "pods", "", p.body, map[string]any{"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}, 200, "DELETED")
}

// event writes an Event about an object: audited at RequestResponse (the policy logs Event
// writes with bodies) and seen by the Events watch. newAPI is events.k8s.io/v1 (the scheduler).
func (g *gen) event(t time.Time, who actor, component, host, ns, kind, apiVersion, name, uid, reason, msg string, newAPI bool) {
	evName := name + "." + fmt.Sprintf("%x", g.rng.Uint64()&0xffffffffffff)
	about := map[string]any{"kind": kind, "namespace": ns, "name": name, "uid": uid, "apiVersion": apiVersion}
	rv := g.nextRV()
	euid := g.uid()
	var req, resp map[string]any
	group := ""
	if newAPI {
		group = "events.k8s.io"
		req = map[string]any{"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": map[string]any{"name": evName, "namespace": ns},
			"eventTime": ts(t), "reportingController": component, "reportingInstance": component + "-" + host,
			"action": "Binding", "reason": reason, "regarding": about, "note": msg, "type": "Normal"}
		resp = clone(req)
		m := metaOf(resp)
		m["uid"], m["resourceVersion"], m["creationTimestamp"] = euid, rv, secs(t)
		m["managedFields"] = []any{managed(component, "Update", "events.k8s.io/v1", t, "", map[string]any{"f:action": map[string]any{}, "f:eventTime": map[string]any{}, "f:note": map[string]any{}, "f:reason": map[string]any{}, "f:regarding": map[string]any{}, "f:reportingController": map[string]any{}, "f:reportingInstance": map[string]any{}, "f:type": map[string]any{}})}
	} else {
		src := map[string]any{"component": component}
		if host != "" {
			src["host"] = host
		}
		req = map[string]any{"kind": "Event", "apiVersion": "v1", "metadata": map[string]any{"generateName": name + ".", "namespace": ns},
			"involvedObject": about, "reason": reason, "message": msg, "source": src,
			"firstTimestamp": secs(t), "lastTimestamp": secs(t), "count": 1, "type": "Normal", "eventTime": nil,
			"reportingComponent": component, "reportingInstance": host}
		resp = clone(req)
		m := metaOf(resp)
		m["name"], m["uid"], m["resourceVersion"], m["creationTimestamp"] = evName, euid, rv, secs(t)
		m["managedFields"] = []any{managed(component, "Update", "v1", t, "", map[string]any{"f:count": map[string]any{}, "f:firstTimestamp": map[string]any{}, "f:involvedObject": map[string]any{}, "f:lastTimestamp": map[string]any{}, "f:message": map[string]any{}, "f:metadata": map[string]any{"f:generateName": map[string]any{}}, "f:reason": map[string]any{}, "f:reportingComponent": map[string]any{}, "f:reportingInstance": map[string]any{}, "f:source": map[string]any{"f:component": map[string]any{}, "f:host": map[string]any{}}, "f:type": map[string]any{}})}
	}
	g.emit(request{at: t, who: who, verb: "create", ref: objectRef{Resource: "events", Namespace: ns, APIGroup: group},
		uri: uri(group, ns, "events", "", ""), code: 201, reqBody: req, respBody: resp})
	g.objects++
	// The core/v1 watch shows every Event as core/v1.
	w := map[string]any{"kind": "Event", "apiVersion": "v1", "metadata": map[string]any{"name": evName, "namespace": ns, "uid": euid,
		"resourceVersion": rv, "creationTimestamp": secs(t)}, "involvedObject": about, "reason": reason, "message": msg,
		"source": map[string]any{"component": component, "host": host}, "firstTimestamp": secs(t), "lastTimestamp": secs(t),
		"count": 1, "type": "Normal", "eventTime": nil, "reportingComponent": component, "reportingInstance": host}
	if newAPI {
		w["eventTime"], w["firstTimestamp"], w["lastTimestamp"] = ts(t), nil, nil
	}
	g.watchEvent("events", "ADDED", t.Add(g.ms(1, 5)), w)
}

// metadataEvent is one Metadata-level request: the background traffic around the workload chain.
func (g *gen) metadataEvent(t time.Time) {
	verb := pick(g, metadataVerbMix)
	res := g.pickResource()
	who := apiserver
	switch pick(g, metadataUserAgents) {
	case "controller":
		who = controllerManager
	case "kubectl":
		who = admin
	case "scheduler":
		who = scheduler
	}
	ns := ""
	if res.namespaced && verb != "list" && verb != "watch" {
		ns = "ns-" + strconv.Itoa(g.rng.IntN(g.cfg.Namespaces))
	}
	name := ""
	if verb != "list" && verb != "watch" && verb != "create" {
		name = res.resource[:len(res.resource)-1] + "-" + strconv.Itoa(g.rng.IntN(50))
	}
	code, stage := 200, "ResponseComplete"
	u := uri(res.group, ns, res.resource, name, "")
	switch verb {
	case "create":
		code = 201
		name = res.resource[:len(res.resource)-1] + "-" + g.suffix(5)
	case "get":
		if g.rng.Float64() < metadataNotFound {
			code = 404
		}
	case "watch":
		u += "?allowWatchBookmarks=true&resourceVersion=" + strconv.Itoa(g.rv) + "&timeout=9m36s&timeoutSeconds=576&watch=true"
		if g.rng.IntN(2) == 0 {
			stage = "ResponseStarted"
		}
	case "list":
		u += "?limit=500&resourceVersion=0"
	}
	ref := objectRef{Resource: res.resource, Namespace: ns, Name: name, APIGroup: res.group}
	g.emit(request{at: t, who: who, verb: verb, ref: ref, uri: u, code: code, stage: stage})
}

func pick(g *gen, ws []weighted) string {
	total := 0.0
	for _, w := range ws {
		total += w.w
	}
	x := g.rng.Float64() * total
	for _, w := range ws {
		if x -= w.w; x < 0 {
			return w.v
		}
	}
	return ws[len(ws)-1].v
}

func (g *gen) pickResource() weightedRes {
	total := 0.0
	for _, w := range metadataResources {
		total += w.w
	}
	x := g.rng.Float64() * total
	for _, w := range metadataResources {
		if x -= w.w; x < 0 {
			return w
		}
	}
	return metadataResources[0]
}
