#!/usr/bin/env bash
# hack/record-demo.sh - record real control-plane activity of a scripted rollout scenario into
# testdata/recording/ (committed; used as test input and demo data for kairn):
#   audit.log.gz                     kube-apiserver audit log (JSON lines, audit.k8s.io/v1 Event),
#                                    policy deploy/audit-policy.yaml
#   watch-<resource>.json.gz         `kubectl get <resource> -A --watch --output-watch-events -o json`
#                                    (a stream of {"type":...,"object":{...}} JSON documents) for
#                                    deployments, replicasets, statefulsets, controllerrevisions, pods,
#                                    events (core and events.k8s.io), services, endpointslices,
#                                    configmaps, nodes
#   timeline.tsv                     the scenario steps with their UTC start/end times
#   README.md                        how it was made and what to expect in it
#
# Uses the local control plane of deploy/dev/cluster.sh (started if not running; FRESH=1 restarts
# it so the recording starts from an empty cluster). Needs jq and openssl (client certificates
# for the users alice and bob of the 409 Conflict step, signed by the dev cluster's CA).
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
WATCHES=(deployments replicasets statefulsets controllerrevisions pods events events.v1.events.k8s.io
         services endpointslices.discovery.k8s.io configmaps)
if [[ ${NODES_WATCH:-1} == 1 ]]; then WATCHES+=(nodes); fi
watch_file() {
  case $1 in
    events.v1.events.k8s.io) echo watch-events.k8s.io.json ;;
    endpointslices.discovery.k8s.io) echo watch-endpointslices.json ;;
    *) echo "watch-$1.json" ;;
  esac
}
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

begin 2 "shop: create ConfigMap release-42 and ClusterIP Service web (selector app=web, no pods yet)"
k -n shop create -f - <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: release-42
  labels: {release: "42"}
data:
  release: "42"
  images: "web=nginx:1.25 api=httpd:2.4.58"
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {app: web}
spec:
  type: ClusterIP
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 80}]
EOF
for _ in $(seq 1 50); do   # the EndpointSlice controller creates an (empty) slice for the Service
  [[ -n $(k -n shop get endpointslices -l kubernetes.io/service-name=web -o name) ]] && break
  sleep 0.2
done
end; pause

begin 3 "shop: create Deployment web (nginx:1.25, 2 replicas) and Deployment api (httpd:2.4.58, 1 replica, annotation kairn.dev/parent -> ConfigMap shop/release-42)"
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
  annotations:
    # a link to the object this Deployment was made for (kairn's link annotation)
    kairn.dev/parent: '{"cluster":"rec","group":"","resource":"configmaps","namespace":"shop","name":"release-42"}'
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

begin 4 "blog: create Deployment web (nginx:1.25, 1 replica, env BLOG_THEME=light), headless Service db, StatefulSet db (postgres:16.1, 2 replicas)"
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

begin 5 "concurrent image upgrades: shop/web and blog/web nginx:1.25 -> nginx:1.26 (two kubectl set image in parallel)"
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

begin 6 "shop/api image upgrade httpd:2.4.58 -> httpd:2.4.59"
k -n shop set image deployment/api httpd=httpd:2.4.59
k -n shop rollout status deployment/api --timeout=120s
settle shop
end; pause

begin 7 "scale shop/web 2 -> 3 replicas (a scale, not a rollout)"
k -n shop scale deployment/web --replicas=3
k -n shop rollout status deployment/web --timeout=120s
settle shop
end; pause

begin 8 "409 Conflict on shop/web: alice and bob both read the Deployment (same resourceVersion) and kubectl replace it with annotation example.com/owner=team-a / team-b; alice wins, bob gets 409"
# two users with client certificates (CN=alice / CN=bob) from the dev cluster's CA, allowed to edit in shop
for u in alice bob; do
  openssl req -newkey rsa:2048 -nodes -keyout "$WORK/$u.key" -out "$WORK/$u.csr" -subj "/CN=$u" 2>/dev/null
  printf 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$WORK/$u.ext"
  openssl x509 -req -in "$WORK/$u.csr" -CA "$STATE/pki/ca.crt" -CAkey "$STATE/pki/ca.key" -CAcreateserial \
    -CAserial "$WORK/ca.srl" -days 2 -extfile "$WORK/$u.ext" -out "$WORK/$u.crt" 2>/dev/null || die "cert for $u"
done
k -n shop create rolebinding deployers --clusterrole=edit --user=alice --user=bob
asuser() { local u=$1; shift; k --client-certificate="$WORK/$u.crt" --client-key="$WORK/$u.key" "$@"; }
for _ in $(seq 1 50); do asuser alice -n shop auth can-i update deployments >/dev/null 2>&1 && asuser bob -n shop auth can-i update deployments >/dev/null 2>&1 && break; sleep 0.2; done
asuser alice -n shop get deployment web -o json >"$WORK/a.json"
asuser bob -n shop get deployment web -o json >"$WORK/b.json"
CONFLICT_RV=$(jq -r .metadata.resourceVersion "$WORK/a.json")
[[ $(jq -r .metadata.resourceVersion "$WORK/b.json") == "$CONFLICT_RV" ]] || die "alice and bob read different resourceVersions"
jq '.metadata.annotations["example.com/owner"]="team-a"' "$WORK/a.json" >"$WORK/web-team-a.json"
jq '.metadata.annotations["example.com/owner"]="team-b"' "$WORK/b.json" >"$WORK/web-team-b.json"
asuser alice replace -f "$WORK/web-team-a.json" || die "alice's replace (resourceVersion $CONFLICT_RV) failed"
if asuser bob replace -f "$WORK/web-team-b.json" 2>"$WORK/bob.err"; then die "bob's replace with stale resourceVersion $CONFLICT_RV succeeded"; fi
cat "$WORK/bob.err" >&2
grep -qi conflict "$WORK/bob.err" || grep -q "has been modified" "$WORK/bob.err" || die "bob's replace failed, but not with a conflict"
[[ $(k -n shop get deployment web -o jsonpath='{.metadata.annotations.example\.com/owner}') == team-a ]] || die "shop/web is not owned by team-a"
settle shop
end; pause

begin 9 "blog/db StatefulSet image upgrade postgres:16.1 -> postgres:16.2"
k -n blog set image statefulset/db postgres=postgres:16.2
k -n blog rollout status statefulset/db --timeout=180s
settle blog
end; pause

begin 10 "rollback of shop/api (kubectl rollout undo: back to httpd:2.4.58)"
k -n shop rollout undo deployment/api
k -n shop rollout status deployment/api --timeout=120s
settle shop
end; pause

begin 11 "blog/web pod template change without image change: kubectl patch env BLOG_THEME light -> dark"
k -n blog patch deployment/web --type=strategic \
  -p '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"BLOG_THEME","value":"dark"}]}]}}}}'
k -n blog rollout status deployment/web --timeout=120s
settle blog
end; pause

begin 12 "delete Deployment shop/api and wait for its pods to be gone"
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
# the 409 Conflict of step 8: every update of shop/web by alice or bob
conflict=$(A | jq -r 'select(.stage=="ResponseComplete" and .verb=="update" and .objectRef.resource=="deployments"
      and .objectRef.namespace=="shop" and .objectRef.name=="web" and (.user.username=="alice" or .user.username=="bob"))
    | "| \(.requestReceivedTimestamp) | \(.user.username) | \(.requestObject.metadata.annotations["example.com/owner"]) | \(.objectRef.resourceVersion // "-") | \(.requestObject.metadata.resourceVersion) | \(.responseStatus.code) | \(.responseObject.metadata.resourceVersion // .responseStatus.reason // "-") | \(.auditID) |"')
[[ $(A | jq -c 'select(.stage=="ResponseComplete" and .responseStatus.code==409 and .verb=="update" and .user.username=="bob"
      and .objectRef.namespace=="shop" and .objectRef.name=="web" and .requestObject.metadata.resourceVersion=="'"$CONFLICT_RV"'")' | wc -l) == 1 ]] ||
  die "the audit log does not have exactly one 409 update of shop/web by bob with resourceVersion $CONFLICT_RV"
conflict_gen=$(A | jq -r 'select(.stage=="ResponseComplete" and .verb=="update" and .user.username=="alice" and .responseStatus.code==200
      and .objectRef.resource=="deployments" and .objectRef.namespace=="shop" and .objectRef.name=="web")
    | "\(.requestObject.metadata.generation) -> \(.responseObject.metadata.generation)"')
all_409=$(A | jq -r 'select(.stage=="ResponseComplete" and .responseStatus.code==409)
    | "\(.user.username)\t\(.verb)\t\(.objectRef.resource)\(if .objectRef.subresource then "/"+.objectRef.subresource else "" end)"' |
  sort | uniq -c | awk '{printf "| %s | %s | %s | %s |\n", $2, $3, $4, $1}')
# EndpointSlices of Service shop/web as the watch saw them
slices=$(W watch-endpointslices.json | jq -r 'select(.object.metadata.namespace=="shop"
      and .object.metadata.labels["kubernetes.io/service-name"]=="web")
    | "| \(.type) | \(.object.metadata.name) | \(.object.metadata.resourceVersion) | \(.object.metadata.annotations["endpoints.kubernetes.io/last-change-trigger-time"] // "-") | \([.object.endpoints[]? | select(.conditions.ready)] | length) | \([.object.endpoints[]? | select(.conditions.ready | not)] | length) | \([.object.endpoints[]? | "\(.addresses[0])=\(.targetRef.name)\(if .conditions.ready then "" else " (not ready)" end)"] | join(", ")) |"')
[[ -n $slices ]] || die "no EndpointSlice of Service shop/web in watch-endpointslices.json"
slice_names=$(W watch-endpointslices.json | jq -r 'select(.object.metadata.namespace=="shop" and .object.metadata.labels["kubernetes.io/service-name"]=="web") | .object.metadata.name' | sort -u | paste -sd, | sed 's/,/, /g')
max_ready=$(W watch-endpointslices.json | jq -r 'select(.object.metadata.namespace=="shop" and .object.metadata.labels["kubernetes.io/service-name"]=="web")
    | [.object.endpoints[]? | select(.conditions.ready)] | length' | sort -n | tail -n 1)
[[ $max_ready -gt 0 ]] || log "WARNING: the EndpointSlices of shop/web never listed a ready endpoint"
services=$(W watch-services.json | jq -r 'select(.type=="ADDED") | .object
    | "| \(.metadata.namespace)/\(.metadata.name) | \(.spec.type) | \(.spec.clusterIP) | \(.spec.selector // {} | to_entries | map("\(.key)=\(.value)") | join(",")) |"' | sort -u)
web_svc_ip=$(W watch-services.json | jq -r 'select(.object.metadata.namespace=="shop" and .object.metadata.name=="web") | .object.spec.clusterIP' | head -n 1 || true)
# the kairn.dev/parent annotation: on shop/api and (copied by the deployment controller) its ReplicaSets
parent_deploy=$(W watch-deployments.json | jq -r 'select(.type=="ADDED" and .object.metadata.namespace=="shop" and .object.metadata.name=="api")
    | .object.metadata.annotations["kairn.dev/parent"]' | head -n 1 || true)
[[ $parent_deploy == '{"cluster":"rec","group":"","resource":"configmaps","namespace":"shop","name":"release-42"}' ]] ||
  die "Deployment shop/api does not carry the kairn.dev/parent annotation: $parent_deploy"
parent_rs=$(W watch-replicasets.json | jq -r 'select(.object.metadata.annotations["kairn.dev/parent"] != null) | "\(.object.metadata.namespace)/\(.object.metadata.name)"' | sort -u | paste -sd, | sed 's/,/, /g')
owner_rs=$(W watch-replicasets.json | jq -r 'select(.object.metadata.annotations["example.com/owner"] != null) | "\(.object.metadata.namespace)/\(.object.metadata.name)=\(.object.metadata.annotations["example.com/owner"])"' | sort -u | paste -sd, | sed 's/,/, /g')
configmaps=$(W watch-configmaps.json | jq -r 'select(.type=="ADDED") | .object | "\(.metadata.namespace)/\(.metadata.name)"' | sort -u | paste -sd, | sed 's/,/, /g')
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
  kwok node (few updates: kwok heartbeats through its Lease). \`watch-services.json\`,
  \`watch-endpointslices.json\` (\`endpointslices.discovery.k8s.io\`, discovery.k8s.io/v1) and
  \`watch-configmaps.json\` (including kube-system's and every namespace's \`kube-root-ca.crt\`:
  noise) were added for the Service, the EndpointSlices and the annotation link below.
  ConfigMaps are audited at \`Metadata\` only (no bodies), Services and EndpointSlices too.
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
| 3 | shop/Deployment/web | created, nginx:1.25, 2 replicas | revision 1 |
| 3 | shop/Deployment/api | created, httpd:2.4.58, 1 replica | revision 1 |
| 4 | blog/Deployment/web | created, nginx:1.25, 1 replica, BLOG_THEME=light | revision 1 |
| 4 | blog/StatefulSet/db | created, postgres:16.1, 2 replicas (db-0 then db-1) | ControllerRevision db-<hash> |
| 5 | shop/Deployment/web | image nginx:1.25 -> nginx:1.26 (\`kubectl set image\`, concurrent with the next) | revision 2, new RS |
| 5 | blog/Deployment/web | image nginx:1.25 -> nginx:1.26 (\`kubectl set image\`, concurrent with the previous) | revision 2, new RS |
| 6 | shop/Deployment/api | image httpd:2.4.58 -> httpd:2.4.59 | revision 2, new RS |
| 7 | shop/Deployment/web | scale 2 -> 3 (deployments/scale; NOT a rollout: no new RS, the revision-2 RS scales up) | still revision 2 |
| 8 | shop/Deployment/web | annotation example.com/owner=team-a by alice (\`kubectl replace\`); bob's replace gets 409 (NOT a rollout: pod template unchanged) | still revision 2 |
| 9 | blog/StatefulSet/db | image postgres:16.1 -> postgres:16.2 (pods replaced one by one, db-1 then db-0) | second ControllerRevision |
| 10 | shop/Deployment/api | \`kubectl rollout undo\`: back to httpd:2.4.58 (the revision-1 RS is scaled up again) | revision 3 (reuses the first RS) |
| 11 | blog/Deployment/web | \`kubectl patch\` env BLOG_THEME light -> dark, image unchanged (nginx:1.26) | revision 3, new RS |
| 12 | shop/Deployment/api | deleted; its ReplicaSets and pod are garbage-collected | - |

(Steps 1-12 are the earlier recording's steps 1-10 with two added: step 2, the ConfigMap and the
Service, and step 8, the conflict. Steps 3-7 and 9-12 are the earlier 2-6 and 7-10, in the same order.)

### Step 8: a 409 Conflict between two writers holding the same resourceVersion

Users \`alice\` and \`bob\` (client certificates CN=alice / CN=bob signed by the dev cluster's CA, so
\`user.username\` is alice / bob in the audit log, no impersonation; RoleBinding shop/deployers gives
them ClusterRole \`edit\`) both \`kubectl get deployment web -n shop -o json\`, both at
resourceVersion **$CONFLICT_RV**. Each sets annotation \`example.com/owner\` in its copy (alice: team-a, bob:
team-b) and \`kubectl replace\`s it (an \`update\` with the stale resourceVersion in the body). alice is
first and wins; bob's update is rejected with 409 Conflict ("the object has been modified; please apply
your changes to the latest version and try again") and changes nothing. shop/web ends with
\`example.com/owner: team-a\`. The update changes metadata only: spec and pod template are unchanged,
so it is not a rollout (no new ReplicaSet, revision stays 2), but the apiserver still bumps
metadata.generation $conflict_gen (it does so on any Deployment annotation change). The deployment
controller copies the annotation to the current ReplicaSet ($owner_rs).

The two updates in audit.log (stage ResponseComplete, level RequestResponse; objectRef.resourceVersion is
what the apiserver filled in from the request body; "result" is the new resourceVersion of a success, the
Status reason of a failure):

| requestReceivedTimestamp | user | owner | objectRef.resourceVersion | requestObject rv | code | result | auditID |
|---|---|---|---|---|---|---|---|
$conflict

All 409 responses in the audit log (the controllers' own optimistic-concurrency retries included):

| user | verb | resource | count |
|---|---|---|---|
$all_409

### Step 2: Service shop/web and its EndpointSlices

Service shop/web is a ClusterIP Service ($web_svc_ip, port 80 -> targetPort 80) selecting \`app=web\`,
created before the web pods, so the EndpointSlice controller (kube-controller-manager) first writes an
empty EndpointSlice and then updates it as shop/web pods become Ready, go away (rollout in step 5) and
are added (scale in step 7). Its slices, labelled \`kubernetes.io/service-name=web\`: $slice_names.
kwok gives every pod a podIP from 10.244.0.0/16, so the slices do list endpoints (address = podIP,
targetRef = the pod); at most $max_ready were ready at once. blog/db (headless, step 4) has slices too.
Every version the watch saw (ready / not-ready endpoint counts; the trigger time is the
\`endpoints.kubernetes.io/last-change-trigger-time\` annotation):

| type | name | resourceVersion | last-change-trigger-time | ready | not ready | endpoints |
|---|---|---|---|---|---|---|
$slices

Services the watch saw (ADDED):

| namespace/name | type | clusterIP | selector |
|---|---|---|---|
$services

### Steps 2-3: an annotation link from Deployment shop/api to ConfigMap shop/release-42

ConfigMap shop/release-42 is created in step 2. Deployment shop/api is created in step 3 with, in its
metadata (not in the pod template),

    kairn.dev/parent: '$parent_deploy'

The deployment controller copies Deployment annotations to the ReplicaSets it manages, so the annotation
is also on: $parent_rs. It stays on shop/api until it is deleted in step 12.
ConfigMaps the watch saw: $configmaps.

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
