#!/usr/bin/env bash
# hack/record-demo.sh - record real control-plane activity of a scripted rollout scenario into
# testdata/recording/ (committed; used as test input and demo data for kairn):
#   audit.log.gz                     kube-apiserver audit log (JSON lines, audit.k8s.io/v1 Event),
#                                    policy deploy/audit-policy.yaml
#   watch-<resource>.json.gz         `kubectl get <resource> -A --watch --output-watch-events -o json`
#                                    (a stream of {"type":...,"object":{...}} JSON documents)
#   timeline.tsv                     the scenario steps with their UTC start/end times
#   README.md                        how it was made and what to expect in it
#
# Uses the local control plane of deploy/dev/cluster.sh (started if not running; FRESH=1 restarts
# it so the recording starts from an empty cluster). Needs jq for the summary at the end.
#   OUT=testdata/recording  output directory
#   KEEP_UP=1               leave the cluster running afterwards (default: leave it as found)
#   NODES_WATCH=0           do not record watch-nodes.json.gz
#   PAUSE=12                seconds between steps
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=$REPO/deploy/dev/cluster.sh
OUT=${OUT:-$REPO/testdata/recording}
STATE=${KAIRN_CLUSTER_DIR:-$REPO/.dev/cluster}
log() { echo "[record] $(date -u +%H:%M:%S) $*" >&2; }
die() { echo "[record] ERROR: $*" >&2; exit 1; }

started_cluster=0
if [[ ${FRESH:-0} == 1 ]]; then "$CLUSTER" down; fi
if "$CLUSTER" status >/dev/null 2>&1; then
  log "using the running cluster"
else
  "$CLUSTER" down >/dev/null 2>&1 || true   # clean up a partially running one
  "$CLUSTER" up
  started_cluster=1
fi
eval "$("$CLUSTER" env)"
k() { "$KUBECTL" "$@"; }
for ns in shop blog; do
  if k get namespace "$ns" >/dev/null 2>&1; then die "namespace $ns exists already: run with FRESH=1"; fi
done
AUDIT=$STATE/audit.log
audit_offset=0
if [[ $started_cluster == 0 ]]; then audit_offset=$(stat -c %s "$AUDIT"); fi

WORK=$(mktemp -d)
WATCH_PIDS=()
cleanup() {
  local p
  for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  if [[ $started_cluster == 1 && ${KEEP_UP:-0} != 1 ]]; then "$CLUSTER" down || true; fi
}
trap cleanup EXIT

###############################################################################
# watches: started before the scenario, stopped after it settled
###############################################################################
WATCHES=(deployments replicasets statefulsets controllerrevisions pods events events.v1.events.k8s.io)
if [[ ${NODES_WATCH:-1} == 1 ]]; then WATCHES+=(nodes); fi
watch_file() { case $1 in events.v1.events.k8s.io) echo watch-events.k8s.io.json ;; *) echo "watch-$1.json" ;; esac; }
for r in "${WATCHES[@]}"; do
  k get "$r" -A --watch --output-watch-events -o json >"$WORK/$(watch_file "$r")" 2>"$WORK/$(watch_file "$r").err" &
  WATCH_PIDS+=($!)
done
sleep 3

###############################################################################
# scenario
###############################################################################
T0=$(date +%s)
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
pause() { sleep "${PAUSE:-12}"; }   # keep steps apart in time

begin 1 "create namespaces shop and blog"
k create namespace shop
k create namespace blog
end; pause

begin 2 "shop: create Deployment web (nginx:1.25, 2 replicas) and Deployment api (httpd:2.4.58, 1 replica)"
k -n shop create -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: frontend}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, tier: frontend}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels: {app: api, tier: backend}
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api, tier: backend}
    spec:
      containers:
      - name: httpd
        image: httpd:2.4.58
        ports: [{containerPort: 80}]
EOF
k -n shop rollout status deployment/web --timeout=120s
k -n shop rollout status deployment/api --timeout=120s
settle shop
end; pause

begin 3 "blog: create Deployment web (nginx:1.25, 1 replica, env BLOG_THEME=light), headless Service db, StatefulSet db (postgres:16.1, 2 replicas)"
k -n blog create -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: frontend}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, tier: frontend}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        env:
        - {name: BLOG_THEME, value: light}
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: db
  labels: {app: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: postgres, port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  labels: {app: db, tier: database}
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db, tier: database}
    spec:
      containers:
      - name: postgres
        image: postgres:16.1
        env:
        - {name: POSTGRES_DB, value: blog}
        ports: [{name: postgres, containerPort: 5432}]
EOF
k -n blog rollout status deployment/web --timeout=120s
k -n blog rollout status statefulset/db --timeout=120s
settle blog
end; pause

begin 4 "concurrent image upgrades: shop/web and blog/web nginx:1.25 -> nginx:1.26 (two kubectl set image in parallel)"
k -n shop set image deployment/web nginx=nginx:1.26 &
p1=$!
k -n blog set image deployment/web nginx=nginx:1.26 &
p2=$!
wait "$p1" "$p2"
k -n shop rollout status deployment/web --timeout=120s &
p1=$!
k -n blog rollout status deployment/web --timeout=120s &
p2=$!
wait "$p1" "$p2"
settle shop blog
end; pause

begin 5 "shop/api image upgrade httpd:2.4.58 -> httpd:2.4.59"
k -n shop set image deployment/api httpd=httpd:2.4.59
k -n shop rollout status deployment/api --timeout=120s
settle shop
end; pause

begin 6 "scale shop/web 2 -> 3 replicas (a scale, not a rollout)"
k -n shop scale deployment/web --replicas=3
k -n shop rollout status deployment/web --timeout=120s
settle shop
end; pause

begin 7 "blog/db StatefulSet image upgrade postgres:16.1 -> postgres:16.2"
k -n blog set image statefulset/db postgres=postgres:16.2
k -n blog rollout status statefulset/db --timeout=180s
settle blog
end; pause

begin 8 "rollback of shop/api (kubectl rollout undo: back to httpd:2.4.58)"
k -n shop rollout undo deployment/api
k -n shop rollout status deployment/api --timeout=120s
settle shop
end; pause

begin 9 "blog/web pod template change without image change: kubectl patch env BLOG_THEME light -> dark"
k -n blog patch deployment/web --type=strategic \
  -p '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"BLOG_THEME","value":"dark"}]}]}}}}'
k -n blog rollout status deployment/web --timeout=120s
settle blog
end; pause

begin 10 "delete Deployment shop/api and wait for its pods to be gone"
k -n shop delete deployment/api
k -n shop wait --for=delete pod -l app=api --timeout=120s
settle shop
end

sleep 3   # audit webhook batch / watch streams flush
log "scenario done in $(( $(date +%s) - T0 ))s"

###############################################################################
# write the recording
###############################################################################
for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${WATCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
WATCH_PIDS=()
for r in "${WATCHES[@]}"; do
  f=$(watch_file "$r")
  if [[ -s $WORK/$f.err ]]; then log "kubectl watch $r stderr:"; cat "$WORK/$f.err" >&2; fi
  [[ -s $WORK/$f ]] || die "empty watch stream for $r"
done
mkdir -p "$OUT"
rm -f "$OUT"/audit.log.gz "$OUT"/watch-*.json.gz
tail -c +$((audit_offset + 1)) "$AUDIT" | gzip -9n >"$OUT/audit.log.gz"
for r in "${WATCHES[@]}"; do f=$(watch_file "$r"); gzip -9n <"$WORK/$f" >"$OUT/$f.gz"; done
cp "$WORK/timeline.tsv" "$OUT/timeline.tsv"

# versions for the README
server_version=$(k version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion')
client_version=$(k version -o json 2>/dev/null | jq -r '.clientVersion.gitVersion')
kwok_version=${KWOK_VERSION:-v0.8.0}

###############################################################################
# summary (also goes into the README)
###############################################################################
A() { gunzip -c "$OUT/audit.log.gz"; }
W() { gunzip -c "$OUT/$1.gz" | jq -c .; }   # kubectl may pretty-print: jq -c makes one doc per line
audit_workload=$(A | jq -r 'select(.objectRef.apiGroup=="apps" or (.objectRef.apiGroup==null and (.objectRef.resource=="pods" or .objectRef.resource=="nodes")))
    | select(.verb|test("create|update|patch|delete"))
    | "\(.verb)\t\(.objectRef.resource)\(if .objectRef.subresource then "/"+.objectRef.subresource else "" end)\t\(.level)"' |
  sort | uniq -c | sort -k3,3 -k2,2 | awk '{printf "| %s | %s | %s | %s |\n", $2, $3, $4, $1}')
event_reasons=$(W watch-events.json | jq -r 'select(.type=="ADDED") | .object | select(.metadata.namespace=="shop" or .metadata.namespace=="blog")
    | "\(.source.component // .reportingComponent)\t\(.reason)"' | sort | uniq -c | sort -k2,2 -k1,1nr |
  awk '{printf "| %s | %s | %s |\n", $2, $3, $1}')
pulling=$(W watch-events.json | jq -r 'select(.type=="ADDED") | .object | select(.reason=="Pulling")
    | "\(.metadata.namespace)\t\(.involvedObject.name | sub("-[a-z0-9]{5}$"; "") | sub("-[0-9]+$"; "-N") )\t\(.message)"' |
  sort | uniq -c | awk '{gsub(/"/, "", $NF); printf "| %s | %s | %s | %s |\n", $2, $3, $NF, $1}')
sizes=$(cd "$OUT" && ls -l audit.log.gz watch-*.json.gz | awk '{printf "| %s | %d |\n", $9, $5; t+=$5} END{printf "| total | %d |\n", t}')
audit_lines=$(A | wc -l)
first_line=$(gunzip -c "$OUT/watch-pods.json.gz" | head -n 1 || true)   # (pipefail: head closes the pipe)
if jq -e . <<<"$first_line" >/dev/null 2>&1; then
  watch_layout="printed one compact document per line"
else
  watch_layout="pretty-printed each document over several lines"
fi
timeline=$(tail -n +2 "$OUT/timeline.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, substr($2,12,8), substr($3,12,8), $4}')
rec_date=$(head -n 2 "$OUT/timeline.tsv" | tail -n 1 | cut -f2 | cut -c1-10)

cat >"$OUT/README.md" <<EOF
# Recorded control-plane activity: a rollout scenario

Real data from a real control plane (etcd, kube-apiserver, kube-controller-manager and
kube-scheduler built from k8s.io/kubernetes $server_version; kwok $kwok_version faking the kubelet of
one node \`kwok-node-0\`). Recorded on $rec_date with

    hack/record-demo.sh            # uses deploy/dev/cluster.sh; FRESH=1 restarts the cluster first

kubectl: $client_version. Timestamps are UTC. The cluster was started empty right before the
scenario, so the audit log also holds the cluster bootstrap (kube-system, RBAC, node registration).

## Files

| file | bytes |
|---|---|
$sizes

- \`audit.log.gz\`: the kube-apiserver audit log (\`--audit-log-format=json\`): one
  audit.k8s.io/v1 Event per line, $audit_lines lines, from cluster start to the end of the scenario.
  Policy: [deploy/audit-policy.yaml](../../deploy/audit-policy.yaml): stage RequestReceived omitted;
  nothing for leases and health/version/openapi/metrics; \`Metadata\` for secrets and configmaps;
  \`RequestResponse\` (requestObject + responseObject bodies) for create/update/patch/delete/deletecollection
  of apps deployments(+/scale,/status), replicasets(+/scale,/status), statefulsets(+/scale,/status),
  daemonsets(+/status), controllerrevisions and core pods(+/status,/binding,/eviction), nodes(+/status);
  \`RequestResponse\` for create/update/patch of Events (core and events.k8s.io: the response names
  generateName'd Events, so each is timed by its audited creation);
  \`Metadata\` for everything else (including get/list/watch of those). An event appears once per
  request at stage ResponseComplete (watches also at ResponseStarted).
- \`watch-<resource>.json.gz\`: \`kubectl get <resource> -A --watch --output-watch-events -o json\`
  started before step 1 and stopped after the last step, kept exactly as kubectl printed it: a
  stream of JSON documents \`{"type":"ADDED|MODIFIED|DELETED","object":{...}}\`. This kubectl
  ($client_version) $watch_layout; other kubectl versions may not, so read the files as a JSON
  stream (json.Decoder), not line by line.
  The first documents are ADDED for the objects that existed when the watch started (kube-system).
  \`watch-events.json\` is core/v1 Events, \`watch-events.k8s.io.json\` the same Events seen as
  events.k8s.io/v1 (\`kubectl get events.v1.events.k8s.io -A -w ...\`). \`watch-nodes.json\` has the one
  kwok node (few updates: kwok heartbeats through its Lease).
- \`timeline.tsv\`: the steps below with start/end times.

Pods never run real containers: kwok stages (deploy/dev/kwok-pod-stages.yaml) move them to Running/Ready
within 0.5-2 s and emit kubelet-like core/v1 Events (source.component=kubelet) for the first container:
Pulling, Pulled, Created on create, Started when ready, Killing on deletion. Those come from the
kwok-controller user in the audit log. Everything else (ScalingReplicaSet, SuccessfulCreate,
SuccessfulDelete, Scheduled, ...) is emitted by the real controllers and scheduler. kwok may run a
stage twice for a pod (e.g. when its status patch races with a deletion), so a pod can have two
Killing events.

## Scenario

Namespaces \`shop\` and \`blog\` both have a Deployment named \`web\` (on purpose: same name, different
namespaces). Each step waited for \`kubectl rollout status\` and for all pods to be Ready with none
terminating, then paused ~${PAUSE:-12} s.

| step | start | end | what |
|---|---|---|---|
$timeline

Rollouts a reader should find (revision = deployment.kubernetes.io/revision, or the StatefulSet's
ControllerRevision):

| step | namespace/kind/name | change | new ReplicaSet / revision |
|---|---|---|---|
| 2 | shop/Deployment/web | created, nginx:1.25, 2 replicas | revision 1 |
| 2 | shop/Deployment/api | created, httpd:2.4.58, 1 replica | revision 1 |
| 3 | blog/Deployment/web | created, nginx:1.25, 1 replica, BLOG_THEME=light | revision 1 |
| 3 | blog/StatefulSet/db | created, postgres:16.1, 2 replicas (db-0 then db-1) | ControllerRevision db-<hash> |
| 4 | shop/Deployment/web | image nginx:1.25 -> nginx:1.26 (\`kubectl set image\`, concurrent with the next) | revision 2, new RS |
| 4 | blog/Deployment/web | image nginx:1.25 -> nginx:1.26 (\`kubectl set image\`, concurrent with the previous) | revision 2, new RS |
| 5 | shop/Deployment/api | image httpd:2.4.58 -> httpd:2.4.59 | revision 2, new RS |
| 6 | shop/Deployment/web | scale 2 -> 3 (deployments/scale; NOT a rollout: no new RS, the revision-2 RS scales up) | still revision 2 |
| 7 | blog/StatefulSet/db | image postgres:16.1 -> postgres:16.2 (pods replaced one by one, db-1 then db-0) | second ControllerRevision |
| 8 | shop/Deployment/api | \`kubectl rollout undo\`: back to httpd:2.4.58 (the revision-1 RS is scaled up again) | revision 3 (reuses the first RS) |
| 9 | blog/Deployment/web | \`kubectl patch\` env BLOG_THEME light -> dark, image unchanged (nginx:1.26) | revision 3, new RS |
| 10 | shop/Deployment/api | deleted; its ReplicaSets and pod are garbage-collected | - |

## What is in it (computed from the files by hack/record-demo.sh)

Audit events on the workload chain (writes; apps group, core pods and nodes; all namespaces, including
the controllers' and kwok's own writes):

| verb | resource | level | count |
|---|---|---|---|
$audit_workload

core/v1 Events in shop and blog (from watch-events.json, ADDED):

| source | reason | count |
|---|---|---|
$event_reasons

Pulling events per workload (kubelet-like, by kwok):

| namespace | pods of | image | count |
|---|---|---|---|
$pulling
EOF
log "wrote $OUT:"
ls -l "$OUT" >&2
