package synth

// Shape parameters of the generated traffic. They were measured on the two recordings of a real
// control plane in testdata (recording/: Deployments + StatefulSet scenario, 1316 audit lines;
// daemonset/: DaemonSet + Deployment scenario, 1022 lines; both kube-apiserver v1.37.2 with
// deploy/audit-policy.yaml) by a small script over the gzipped audit logs and watch files
// (json.loads per line, counted by level / verb / objectRef.resource / userAgent / Event reason).
// TestMixMatchesRecording checks the generated mix against the same numbers.

// MetadataPerBody is how many Metadata-level audit events (no bodies: gets, lists, watches and
// writes outside the workload chain) the apiserver logs per RequestResponse event. Both
// recordings together: 1738 Metadata / 600 RequestResponse = 2.90 (recording/ 939/377,
// daemonset/ 799/223).
const MetadataPerBody = 2.90

// metadataVerbMix is the verb mix of Metadata-level events outside bootstrap (the scenario part
// of recording/, after 06:09:03: get 0.101, update 0.085, list 0.076, watch 0.042, create 0.039
// of all events, normalised here to the Metadata-level ones).
var metadataVerbMix = []weighted{
	{"get", 0.29}, {"update", 0.25}, {"list", 0.22}, {"watch", 0.12}, {"create", 0.11},
}

// metadataResources are the resources Metadata-level events are about, most frequent first
// (both recordings, Metadata level: clusterroles 0.186, serviceaccounts 0.160,
// clusterrolebindings 0.129, namespaces 0.076, deployments 0.039, flowschemas 0.032, pods 0.030,
// configmaps 0.029, apiservices 0.028, nodes 0.022, endpointslices 0.020, rolebindings 0.019,
// roles 0.018, endpoints 0.015).
var metadataResources = []weightedRes{
	{"", "serviceaccounts", true, 0.160}, {"rbac.authorization.k8s.io", "clusterroles", false, 0.186},
	{"rbac.authorization.k8s.io", "clusterrolebindings", false, 0.129}, {"", "namespaces", false, 0.076},
	{"apps", "deployments", true, 0.039}, {"flowcontrol.apiserver.k8s.io", "flowschemas", false, 0.032},
	{"", "pods", true, 0.030}, {"", "configmaps", true, 0.029}, {"apiregistration.k8s.io", "apiservices", false, 0.028},
	{"", "nodes", false, 0.022}, {"discovery.k8s.io", "endpointslices", true, 0.020},
	{"rbac.authorization.k8s.io", "rolebindings", true, 0.019}, {"rbac.authorization.k8s.io", "roles", true, 0.018},
	{"", "endpoints", true, 0.015},
}

// metadataNotFound is the share of Metadata-level gets answered 404 (both recordings: 427 of the
// Metadata-level events are 404, nearly all gets of objects bootstrap was about to create; in the
// scenario part 0.5% of all events): the generator uses the scenario value for gets.
const metadataNotFound = 0.02

// metadataUserAgents: who sends Metadata-level requests (both recordings, Metadata level:
// kube-apiserver 0.491 (its own loopback requests), kube-controller-manager 0.345, kubectl
// 0.127, kube-scheduler 0.029, kwok 0.009; kwok's share is folded into the controller manager's).
// Like MetadataPerBody these are whole-recording numbers, bootstrap included.
var metadataUserAgents = []weighted{
	{"apiserver", 0.491}, {"controller", 0.354}, {"kubectl", 0.127}, {"scheduler", 0.029},
}

// Event reasons per replaced pod, from the recordings' Event writes (recording/ scenario part:
// SuccessfulCreate 15, Scheduled 15, Pulling 15, Pulled 15, Created 15, Started 15 per 15 pods
// created; Killing 11 and SuccessfulDelete 8 per pod deleted; ScalingReplicaSet 16 over 8
// rollouts/scales). The generator emits exactly that chain per pod.

// Timing of a pod's life after its ReplicaSet asks for it, from the recordings: scheduling
// (pods/binding) 2-20 ms after the create; kwok moves the pod to Running/Ready within 0.5-2 s
// (its README) and emits Pulling ~0.1-0.3 s after binding, Pulled/Created/Started after.
const (
	bindDelayMs    = 10
	pullDelayMs    = 200
	readyDelayMinS = 0.5
	readyDelayMaxS = 2.0
)

// The 409 Conflict rate on controller status writes: recording/ has 16 conflicts on
// deployments/status out of 67+16 and 2 on replicasets of 13+2; daemonset/ 7 of its 246 body
// events. The generator answers 12% of status updates of Deployments with 409.
const statusConflictRate = 0.12

// User agents, as the apiserver logs them in the recordings.
const (
	uaKubectl    = "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07"
	uaController = "kube-controller-manager/v1.37.2 (linux/amd64) kubernetes/$Format/system:serviceaccount:kube-system:"
	uaScheduler  = "kube-scheduler/v1.37.2 (linux/amd64) kubernetes/$Format/scheduler"
	uaKwok       = "kwok/v0.8.0 (linux/amd64)"
	uaAPIServer  = "kube-apiserver/v1.37.2 (linux/amd64) kubernetes/$Format"
)

type weighted struct {
	v string
	w float64
}

type weightedRes struct {
	group, resource string
	namespaced      bool
	w               float64
}
