#!/usr/bin/env bash
# hack/record-daemonset.sh - record a small scenario with DaemonSet rollouts (and one Deployment)
# on the real dev control plane into testdata/daemonset/ (committed; test input for the query
# library: rollout-first-pull, rollout-duration, controller-reconcile-latency, ...):
#   audit.log.gz             kube-apiserver audit log (JSON lines), policy deploy/audit-policy.yaml
#   watch-<resource>.json.gz `kubectl get <resource> -A --watch --output-watch-events -o json` for
#                            daemonsets, deployments, replicasets, controllerrevisions, pods, events, nodes
#   timeline.tsv             the steps with their UTC start/end times
#   README.md                how it was made and what is in it
#
# Starts the cluster of deploy/dev/cluster.sh with NODES=2 (so the DaemonSet has two pods) from
# empty and stops it afterwards. Refuses to run while a cluster is up (only one can run at a time).
#   OUT=testdata/daemonset  output directory
#   PAUSE=6                 seconds between steps
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=$REPO/deploy/dev/cluster.sh
OUT=${OUT:-$REPO/testdata/daemonset}
STATE=${KAIRN_CLUSTER_DIR:-$REPO/.dev/cluster}
log() { echo "[record] $(date -u +%H:%M:%S) $*" >&2; }
die() { echo "[record] ERROR: $*" >&2; exit 1; }

if "$CLUSTER" status >/dev/null 2>&1; then die "a cluster is running already; stop it first"; fi
NODES=2 "$CLUSTER" up
eval "$("$CLUSTER" env)"
k() { "$KUBECTL" "$@"; }
AUDIT=$STATE/audit.log

WORK=$(mktemp -d)
WATCH_PIDS=()
cleanup() {
  local p
  for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  "$CLUSTER" down || true
}
trap cleanup EXIT

WATCHES=(daemonsets deployments replicasets controllerrevisions pods events nodes)
for r in "${WATCHES[@]}"; do
  k get "$r" -A --watch --output-watch-events -o json >"$WORK/watch-$r.json" 2>"$WORK/watch-$r.json.err" &
  WATCH_PIDS+=($!)
done
sleep 3

printf 'step\tstart_utc\tend_utc\tdescription\n' >"$WORK/timeline.tsv"
STEP=; STEP_T=; STEP_D=
begin() { STEP=$1; STEP_D=$2; STEP_T=$(date -u +%Y-%m-%dT%H:%M:%SZ); log "step $STEP: $STEP_D"; }
end() { printf '%s\t%s\t%s\t%s\n' "$STEP" "$STEP_T" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STEP_D" >>"$WORK/timeline.tsv"; }
settle() { # settle ns...: wait until no pod is terminating or not Ready in the namespaces
  local ns n
  for _ in $(seq 1 300); do
    n=0
    for ns in "$@"; do
      n=$(( n + $(k -n "$ns" get pods -o json | jq '[.items[] | select(.metadata.deletionTimestamp != null
            or ([.status.conditions[]? | select(.type=="Ready" and .status=="True")] | length) == 0)] | length') ))
    done
    [[ $n == 0 ]] && return 0
    sleep 0.5
  done
  die "pods in $* did not settle"
}
pause() { sleep "${PAUSE:-6}"; }

begin 1 "create namespaces infra and app"
k create namespace infra
k create namespace app
end; pause

begin 2 "infra: create DaemonSet agent (fluent-bit:3.0, one pod per node: 2 nodes)"
k -n infra create -f - <<'EOF'
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  labels: {app: agent}
spec:
  selector:
    matchLabels: {app: agent}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: fluent-bit
        image: fluent/fluent-bit:3.0
        env:
        - {name: LOG_LEVEL, value: info}
EOF
k -n infra rollout status daemonset/agent --timeout=120s
settle infra
end; pause

begin 3 "app: create Deployment web (nginx:1.25, 2 replicas)"
k -n app create -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
EOF
k -n app rollout status deployment/web --timeout=120s
settle app
end; pause

begin 4 "infra/agent DaemonSet image upgrade fluent-bit:3.0 -> fluent-bit:3.1 (pods replaced one node at a time)"
k -n infra set image daemonset/agent fluent-bit=fluent/fluent-bit:3.1
k -n infra rollout status daemonset/agent --timeout=180s
settle infra
end; pause

begin 5 "app/web Deployment image upgrade nginx:1.25 -> nginx:1.26"
k -n app set image deployment/web nginx=nginx:1.26
k -n app rollout status deployment/web --timeout=120s
settle app
end; pause

begin 6 "infra/agent pod template change without image change: kubectl patch env LOG_LEVEL info -> debug"
k -n infra patch daemonset/agent --type=strategic \
  -p '{"spec":{"template":{"spec":{"containers":[{"name":"fluent-bit","env":[{"name":"LOG_LEVEL","value":"debug"}]}]}}}}'
k -n infra rollout status daemonset/agent --timeout=180s
settle infra
end; pause

begin 7 "scale app/web 2 -> 3 replicas (a scale, not a rollout)"
k -n app scale deployment/web --replicas=3
k -n app rollout status deployment/web --timeout=120s
settle app
end

sleep 3   # watch streams flush

for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${WATCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
WATCH_PIDS=()
for r in "${WATCHES[@]}"; do
  if [[ -s $WORK/watch-$r.json.err ]]; then log "kubectl watch $r stderr:"; cat "$WORK/watch-$r.json.err" >&2; fi
  [[ -s $WORK/watch-$r.json ]] || die "empty watch stream for $r"
done
mkdir -p "$OUT"
rm -f "$OUT"/audit.log.gz "$OUT"/watch-*.json.gz
gzip -9n <"$AUDIT" >"$OUT/audit.log.gz"
for r in "${WATCHES[@]}"; do gzip -9n <"$WORK/watch-$r.json" >"$OUT/watch-$r.json.gz"; done
cp "$WORK/timeline.tsv" "$OUT/timeline.tsv"

server_version=$(k version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion')
client_version=$(k version -o json 2>/dev/null | jq -r '.clientVersion.gitVersion')
A() { gunzip -c "$OUT/audit.log.gz"; }
W() { gunzip -c "$OUT/$1.gz" | jq -c .; }
audit_workload=$(A | jq -r 'select(.objectRef.apiGroup=="apps" or (.objectRef.apiGroup==null and .objectRef.resource=="pods"))
    | select(.verb|test("create|update|patch|delete"))
    | "\(.verb)\t\(.objectRef.resource)\(if .objectRef.subresource then "/"+.objectRef.subresource else "" end)\t\(.user.username)"' |
  sort | uniq -c | sort -k3,3 -k2,2 | awk '{printf "| %s | %s | %s | %s |\n", $2, $3, $4, $1}')
pulling=$(W watch-events.json | jq -r 'select(.type=="ADDED") | .object | select(.reason=="Pulling")
    | "\(.metadata.namespace)\t\(.involvedObject.name | sub("-[a-z0-9]{5}$"; ""))\t\(.message)"' |
  sort | uniq -c | awk '{gsub(/"/, "", $NF); printf "| %s | %s | %s | %s |\n", $2, $3, $NF, $1}')
sizes=$(cd "$OUT" && ls -l audit.log.gz watch-*.json.gz | awk '{printf "| %s | %d |\n", $9, $5; t+=$5} END{printf "| total | %d |\n", t}')
audit_lines=$(A | wc -l)
timeline=$(tail -n +2 "$OUT/timeline.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, substr($2,12,8), substr($3,12,8), $4}')
rec_date=$(head -n 2 "$OUT/timeline.tsv" | tail -n 1 | cut -f2 | cut -c1-10)

cat >"$OUT/README.md" <<EOF
# Recorded control-plane activity: DaemonSet rollouts

Real data from a real control plane (etcd, kube-apiserver, kube-controller-manager and
kube-scheduler $server_version; kwok faking the kubelets of two nodes \`kwok-node-0\` and
\`kwok-node-1\`), recorded on $rec_date with

    hack/record-daemonset.sh       # starts deploy/dev/cluster.sh with NODES=2 from empty, stops it after

kubectl: $client_version. Timestamps are UTC. The cluster was started empty right before the
scenario, so the audit log also holds the cluster bootstrap.

## Files

| file | bytes |
|---|---|
$sizes

- \`audit.log.gz\`: the kube-apiserver audit log, $audit_lines lines, policy
  [deploy/audit-policy.yaml](../../deploy/audit-policy.yaml) (bodies for writes on daemonsets,
  deployments, replicasets, controllerrevisions, pods and Events; see testdata/recording/README.md).
- \`watch-<resource>.json.gz\`: \`kubectl get <resource> -A --watch --output-watch-events -o json\`
  started before step 1 and stopped after the last step, as printed (read as a JSON stream).
- \`timeline.tsv\`: the steps below with start/end times.

Pods run no containers: kwok (deploy/dev/kwok-pod-stages.yaml) makes them Ready within 0.5-2 s and
emits kubelet-like Events for the first container (Pulling, Pulled, Created, Started, Killing).

## Scenario

Each step waited for \`kubectl rollout status\` and for all pods to be Ready with none terminating,
then paused ~${PAUSE:-6} s.

| step | start | end | what |
|---|---|---|---|
$timeline

Rollouts a reader should find (a write other than the create that changes the pod template):

| step | namespace/kind/name | change |
|---|---|---|
| 4 | infra/DaemonSet/agent | image fluent/fluent-bit:3.0 -> 3.1 (\`kubectl set image\`; maxUnavailable 1: one node at a time) |
| 5 | app/Deployment/web | image nginx:1.25 -> nginx:1.26 (\`kubectl set image\`; new ReplicaSet) |
| 6 | infra/DaemonSet/agent | env LOG_LEVEL info -> debug (\`kubectl patch\`), image unchanged |

Step 7 (scale 2 -> 3) is not a rollout: the current ReplicaSet's spec.replicas goes 2 -> 3.

## What is in it (computed from the files by hack/record-daemonset.sh)

Writes on the workload chain (apps group and core pods), by user:

| verb | resource | user | count |
|---|---|---|---|
$audit_workload

Pulling events (kubelet-like, by kwok):

| namespace | pod | image | count |
|---|---|---|---|
$pulling
EOF
log "wrote $OUT:"
ls -l "$OUT" >&2
