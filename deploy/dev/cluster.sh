#!/usr/bin/env bash
# deploy/dev/cluster.sh - a real, local Kubernetes control plane for developing and testing kairn,
# without containers or root:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes, built from source)
#   kwok  (sigs.k8s.io/kwok: fakes the kubelet of 1 node; pods go Pending -> Running and get
#          kubelet-like Events: Pulling, Pulled, Created, Started, Killing; see kwok-pod-stages.yaml)
# The apiserver writes its audit log (JSON lines) to .dev/cluster/audit.log and also sends it to an
# audit webhook at http://127.0.0.1:$AUDIT_PORT/audit (batch mode), where `kairn collect` can listen.
# Nothing has to listen there: the apiserver only logs delivery errors (and the undelivered events, in
# its own log format, to .dev/cluster/logs/kube-apiserver.log).
#
# Usage:
#   deploy/dev/cluster.sh up       build if needed (cold ~10 min on 2 cores, warm: seconds), start an EMPTY cluster
#   deploy/dev/cluster.sh down     stop it (by recorded pids); KEEP=1 keeps etcd data, logs and audit log
#   deploy/dev/cluster.sh status   what runs, where
#   deploy/dev/cluster.sh build    only build the binaries
#   deploy/dev/cluster.sh env      print `export KUBECONFIG=... KUBECTL=...` (use: eval "$(deploy/dev/cluster.sh env)")
#
# Needs: Go (>= the go line of k8s.io/kubernetes' go.mod; 1.26 for v1.37), the Go module proxy,
# openssl, curl. Uses kubectl from PATH; if there is none it builds one.
#
# Binaries are cached outside the repo, keyed by versions:
#   ${KAIRN_CACHE:-${XDG_CACHE_HOME:-~/.cache}/kairn}/cluster/<k8s>-<kwok>-<go>/{go.mod,go.sum,bin/}
# Runtime state lives in the repo's .dev/cluster/ (git-ignored): admin.kubeconfig, audit.log,
# audit-policy.yaml (copy of deploy/audit-policy.yaml), pki/, logs/, *.pid, etcd-data/.
#
# Env knobs:
#   K8S_VERSION=v1.37.2 KWOK_VERSION=v0.8.0   (other versions: the build module is generated + go mod tidy)
#   NODES=1          number of kwok fake nodes
#   ETCD_PORT=2379 ETCD_PEER_PORT=2380 APISERVER_PORT=6443 AUDIT_PORT=8765
#   KCM_PORT=10257 SCHED_PORT=10259 KWOK_PORT=10247
#   KAIRN_CLUSTER_DIR=<repo>/.dev/cluster   runtime state directory
#   KUBECTL=...      kubectl binary to use
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
NODES=${NODES:-1}
ETCD_PORT=${ETCD_PORT:-2379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
APISERVER_PORT=${APISERVER_PORT:-6443}
AUDIT_PORT=${AUDIT_PORT:-8765}
KCM_PORT=${KCM_PORT:-10257}
SCHED_PORT=${SCHED_PORT:-10259}
KWOK_PORT=${KWOK_PORT:-10247}
STATE=${KAIRN_CLUSTER_DIR:-$REPO/.dev/cluster}
PKI=$STATE/pki
LOGS=$STATE/logs
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)   # start order

export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then PATH=$PATH:/usr/local/go/bin; fi

T_START=$(date +%s.%N)
T_LAST=$T_START
log() { echo "[cluster] $*" >&2; }
lap() { # lap "label": time since the previous lap and since the start
  local t; t=$(date +%s.%N)
  awk -v l="$1" -v t="$t" -v p="$T_LAST" -v s="$T_START" \
    'BEGIN{printf "[cluster] %-40s %7.1fs  (total %6.1fs)\n", l, t-p, t-s}' >&2
  T_LAST=$t
}
STARTED=0
die() {
  echo "[cluster] ERROR: $*" >&2
  # stop what this run started (state is kept for inspection); KEEP_ON_FAIL=1 leaves it running
  if [[ $STARTED == 1 && ${KEEP_ON_FAIL:-0} != 1 ]]; then KEEP=1 cmd_down >&2 || true; fi
  exit 1
}
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $st != Z* ]]; }  # zombies are dead
pid_of() { [[ -f $STATE/$1.pid ]] && cat "$STATE/$1.pid"; }
running() { local p; p=$(pid_of "$1") && alive "$p"; }

GOVERSION=$(go env GOVERSION 2>/dev/null || echo go-unknown)
cache_dir() {
  echo "${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/cluster/$K8S_VERSION-$KWOK_VERSION-$GOVERSION"
}

###############################################################################
# build
###############################################################################
ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local v=$K8S_VERSION
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1" \
       "-X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
       "-X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
}

gen_build_module() { # $1 = dir: write go.mod (+ go.sum) of the scratch build module
  local dir=$1
  if [[ $K8S_VERSION == v1.37.2 && $KWOK_VERSION == v0.8.0 && -f $HERE/build/go.mod ]]; then
    # pinned, resolved copy: deterministic and no `go mod tidy` round trip
    cp "$HERE/build/go.mod" "$HERE/build/go.sum" "$dir/"
    return
  fi
  # k8s.io/kubernetes replaces its staging modules (k8s.io/api, client-go, ...) with ./staging/...
  # paths, so `go install k8s.io/kubernetes/cmd/...@v` fails. A scratch module requires
  # k8s.io/kubernetes and replaces every staging module with its published v0.X.Y. etcd and kwok are
  # built in the same module: etcd is the version kubernetes pins, k8s.io/* compile once.
  local kmod go_line staging
  kmod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $kmod ]] || die "could not fetch go.mod of k8s.io/kubernetes@$K8S_VERSION"
  go_line=$(awk '$1=="go"{print $2; exit}' "$kmod")
  staging="v0.${K8S_VERSION#v1.}"
  {
    echo "module localcluster/build"
    echo
    echo "go $go_line"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $K8S_VERSION"
    echo "	sigs.k8s.io/kwok $KWOK_VERSION"
    echo ")"
    echo
    echo "replace ("
    awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&$3 ~ /^\.\/staging/{print "\t" $1 " => " $1 " '"$staging"'"}' "$kmod"
    echo ")"
    echo
    echo "tool ("
    echo "	go.etcd.io/etcd/server/v3"
    echo "	k8s.io/kubernetes/cmd/kube-apiserver"
    echo "	k8s.io/kubernetes/cmd/kube-controller-manager"
    echo "	k8s.io/kubernetes/cmd/kube-scheduler"
    echo "	sigs.k8s.io/kwok/cmd/kwok"
    echo ")"
  } >"$dir/go.mod"
  rm -f "$dir/go.sum"
  (cd "$dir" && go mod tidy) || die "go mod tidy failed in $dir"
}

gen_kwok_node_stages() { # $1 = cache dir: kwok's own node stages + general pod stages, from its module source
  local dir=$1 src f
  src=$(cd "$dir" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d $src/kustomize/stage ]] || die "kwok sources not found (go mod download sigs.k8s.io/kwok@$KWOK_VERSION)"
  {
    echo "# generated by deploy/dev/cluster.sh from sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/general/pod-init-container-running.yaml pod/general/pod-init-container-completed.yaml \
             pod/general/pod-complete.yaml; do
      echo "---"; cat "$src/kustomize/stage/$f"
    done
  } >"$dir/kwok-stages.yaml.tmp"
  mv "$dir/kwok-stages.yaml.tmp" "$dir/kwok-stages.yaml"
}

need_kubectl() { [[ -z ${KUBECTL:-} ]] && ! command -v kubectl >/dev/null; }

cmd_build() {
  local dir bin stamp
  dir=$(cache_dir); bin=$dir/bin
  stamp="k8s=$K8S_VERSION kwok=$KWOK_VERSION go=$GOVERSION"
  mkdir -p "$bin"
  if [[ "$(cat "$bin/.stamp" 2>/dev/null)" != "$stamp" ]] || [[ ! -f $dir/kwok-stages.yaml ]]; then
    log "building etcd + Kubernetes $K8S_VERSION + kwok $KWOK_VERSION with $GOVERSION in $dir (cold: ~10 min on 2 cores)"
    rm -f "$bin/.stamp"
    gen_build_module "$dir"
    (cd "$dir" && go build -trimpath -ldflags "$(ldflags)" -o "$bin/" tool) || die "go build failed"
    mv -f "$bin/server" "$bin/etcd"   # go names the go.etcd.io/etcd/server/v3 binary 'server'
    gen_kwok_node_stages "$dir"
    echo "$stamp" >"$bin/.stamp"
    lap "build etcd/apiserver/kcm/scheduler/kwok"
  fi
  if need_kubectl && [[ ! -x $bin/kubectl ]]; then
    log "no kubectl on PATH: building k8s.io/kubernetes/cmd/kubectl $K8S_VERSION into $bin"
    if ! grep -q 'k8s.io/kubernetes/cmd/kubectl' "$dir/go.mod"; then
      echo "tool k8s.io/kubernetes/cmd/kubectl" >>"$dir/go.mod"
      (cd "$dir" && go mod tidy) || die "go mod tidy (kubectl) failed"
    fi
    (cd "$dir" && go build -trimpath -ldflags "$(ldflags)" -o "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl) || die "kubectl build failed"
    lap "build kubectl"
  fi
}

kubectl_bin() {
  if [[ -n ${KUBECTL:-} ]]; then echo "$KUBECTL"
  elif command -v kubectl >/dev/null; then command -v kubectl
  else echo "$(cache_dir)/bin/kubectl"; fi
}

###############################################################################
# up
###############################################################################
start_bg() { # start_bg name cmd...: own session (survives the calling shell), pid in $STATE/name.pid
  local name=$1; shift
  STARTED=1
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

wait_for() { # wait_for "desc" timeout_s cmd...  (fails fast if a started component died)
  local desc=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout )) c
  until "$@" >/dev/null 2>&1; do
    for c in "${COMPONENTS[@]}"; do
      [[ -f $STATE/$c.pid ]] || continue
      if ! running "$c"; then tail -n 20 "$LOGS/$c.log" >&2; die "$c exited while waiting for $desc (log: $LOGS/$c.log)"; fi
    done
    (( $(date +%s) <= deadline )) || die "timed out after ${timeout}s waiting for $desc"
    sleep 0.2
  done
}

write_kubeconfig() { # name server [client cert basename]
  local name=$1 server=$2 user=${3:-}
  if [[ -n $user ]]; then
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kairn-dev
  cluster:
    server: $server
    certificate-authority: $PKI/ca.crt
users:
- name: $user
  user:
    client-certificate: $PKI/$user.crt
    client-key: $PKI/$user.key
contexts:
- name: kairn-dev
  context: {cluster: kairn-dev, user: $user}
current-context: kairn-dev
EOF
  else # audit webhook: cluster.server is the receiver URL (plain http is fine), no credentials
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster:
    server: $server
users:
- name: kube-apiserver
  user: {}
contexts:
- name: default
  context: {cluster: $name, user: kube-apiserver}
current-context: default
EOF
  fi
}

make_pki() {
  [[ -f $PKI/sa.pub ]] && return
  rm -rf "$PKI"; mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=kairn-dev-ca" 2>/dev/null
    cert() { # cert name subject extfile-content
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    cert apiserver "/CN=kube-apiserver" "subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
    local client="keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
    cert kcm "/CN=system:kube-controller-manager" "$client"
    cert scheduler "/CN=system:kube-scheduler" "$client"
    cert kwok "/O=system:masters/CN=kwok-controller" "$client"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || die "PKI generation failed"
}

cmd_up() {
  command -v go >/dev/null || die "go not found"
  command -v openssl >/dev/null || die "openssl not found"
  command -v curl >/dev/null || die "curl not found"
  mkdir -p "$STATE" "$LOGS"
  local c any=0 all=1
  for c in "${COMPONENTS[@]}"; do if running "$c"; then any=1; else all=0; fi; done
  if [[ $all == 1 ]]; then
    log "already running (deploy/dev/cluster.sh status / down)"; return 0
  elif [[ $any == 1 ]]; then
    die "partially running: run deploy/dev/cluster.sh down first"
  fi

  cmd_build
  local dir bin kubectl
  dir=$(cache_dir); bin=$dir/bin
  kubectl=$(kubectl_bin)
  [[ -x $kubectl ]] || die "kubectl not found: $kubectl"

  make_pki
  local api="https://127.0.0.1:$APISERVER_PORT" who
  for who in admin kcm scheduler kwok; do write_kubeconfig "$who" "$api" "$who" >"$STATE/$who.kubeconfig"; done
  write_kubeconfig kairn-audit-webhook "http://127.0.0.1:$AUDIT_PORT/audit" >"$STATE/audit-webhook.kubeconfig"
  cp "$REPO/deploy/audit-policy.yaml" "$STATE/audit-policy.yaml"
  # kwok: kwok's own node-initialize / node-heartbeat-with-lease and general pod stages, plus our
  # pod-create / pod-ready / pod-delete stages that emit kubelet-like Events. (KwokConfiguration
  # options are flags: a KwokConfiguration document in this file would replace kwok's defaulted one.)
  { cat "$dir/kwok-stages.yaml"; echo "---"; cat "$HERE/kwok-pod-stages.yaml"; } >"$STATE/kwok.yaml"
  lap "pki + configs"

  # always start from an empty cluster
  rm -rf "$STATE/etcd-data" "$STATE"/audit.log* "$LOGS"; mkdir -p "$LOGS"
  local fsync=(); if "$bin/etcd" --help 2>&1 | grep -q -- --unsafe-no-fsync; then fsync=(--unsafe-no-fsync); fi
  start_bg etcd "$bin/etcd" --name kairn-dev --data-dir "$STATE/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "kairn-dev=http://127.0.0.1:$ETCD_PEER_PORT" \
    "${fsync[@]}" --log-level warn
  wait_for "etcd" 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"
  lap "etcd healthy"

  start_bg kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --endpoint-reconciler-type=none \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --audit-policy-file="$STATE/audit-policy.yaml" \
    --audit-log-path="$STATE/audit.log" --audit-log-format=json --audit-log-maxsize=200 --audit-log-maxbackup=1 \
    --audit-webhook-config-file="$STATE/audit-webhook.kubeconfig" \
    --audit-webhook-mode=batch --audit-webhook-batch-max-wait=1s --audit-webhook-initial-backoff=3s \
    --v=1
  export KUBECONFIG=$STATE/admin.kubeconfig
  wait_for "kube-apiserver /readyz" 120 "$kubectl" get --raw /readyz
  lap "kube-apiserver ready"

  start_bg kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$STATE/kcm.kubeconfig" \
    --authentication-kubeconfig="$STATE/kcm.kubeconfig" --authorization-kubeconfig="$STATE/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --v=1
  start_bg kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
    --leader-elect=false --v=1
  start_bg kwok "$bin/kwok" --kubeconfig="$STATE/kwok.kubeconfig" --config="$STATE/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --server-address="127.0.0.1:$KWOK_PORT"
  wait_for "kube-controller-manager /healthz" 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for "kube-scheduler /healthz" 60 curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"
  wait_for "default ServiceAccount" 60 "$kubectl" -n default get serviceaccount default
  lap "controller-manager + scheduler + kwok up"

  local i
  for i in $(seq 0 $((NODES - 1))); do
    cat <<EOF | "$kubectl" apply -f - >/dev/null
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
  nodeInfo: {architecture: amd64, kubeProxyVersion: fake, kubeletVersion: fake, operatingSystem: linux}
  phase: Running
EOF
  done
  wait_for "kwok node(s) Ready" 60 "$kubectl" wait --for=condition=Ready node --all --timeout=1s
  lap "kwok node(s) Ready"
  log "up. export KUBECONFIG=$STATE/admin.kubeconfig"
  log "audit log: $STATE/audit.log   audit webhook target: http://127.0.0.1:$AUDIT_PORT/audit"
}

###############################################################################
# down / status / env
###############################################################################
cmd_down() {
  local i c pid t1
  for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do   # reverse start order
    c=${COMPONENTS[$i]}
    pid=$(pid_of "$c") || continue
    if alive "$pid"; then
      t1=$(date +%s.%N)
      kill "$pid" 2>/dev/null || true
      # (kube-apiserver takes ~10 s: on shutdown its audit webhook backend retries the undelivered
      #  batches when nothing listens on $AUDIT_PORT; it then logs them to logs/kube-apiserver.log)
      for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
      if alive "$pid"; then log "$c (pid $pid) did not exit, SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
      awk -v n="$c" -v p="$pid" -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN{printf "[cluster] stopped %-24s (pid %s) in %.1fs\n", n, p, b-a}' >&2
    fi
    rm -f "$STATE/$c.pid"
  done
  if [[ ${KEEP:-0} != 1 ]]; then
    rm -rf "$STATE/etcd-data" "$LOGS" "$STATE"/audit.log*
  fi
  log "down$([[ ${KEEP:-0} == 1 ]] && echo " (state kept in $STATE)")"
}

cmd_status() {
  local c pid port rc=0
  declare -A ports=([etcd]=$ETCD_PORT [kube-apiserver]=$APISERVER_PORT [kube-controller-manager]=$KCM_PORT
                    [kube-scheduler]=$SCHED_PORT [kwok]=$KWOK_PORT)
  for c in "${COMPONENTS[@]}"; do
    port=${ports[$c]}
    if pid=$(pid_of "$c") && alive "$pid"; then
      printf '%-24s running  pid %-7s port %-5s RSS %s MiB\n' "$c" "$pid" "$port" "$(ps -o rss= -p "$pid" | awk '{printf "%.0f", $1/1024}')"
    elif [[ -n ${pid:-} ]]; then
      printf '%-24s DEAD     pid %-7s (log: %s)\n' "$c" "$pid" "$LOGS/$c.log"; rc=1
    else
      printf '%-24s stopped\n' "$c"; rc=1
    fi
    pid=
  done
  if running kube-apiserver; then
    local kubectl; kubectl=$(kubectl_bin)
    export KUBECONFIG=$STATE/admin.kubeconfig
    printf '%-24s %s\n' "apiserver /readyz" "$("$kubectl" get --raw /readyz 2>&1 | head -n1)"
    "$kubectl" get nodes --no-headers 2>/dev/null | awk '{printf "%-24s %s\n", "node " $1, $2}'
  fi
  printf '%-24s %s\n' "KUBECONFIG" "$STATE/admin.kubeconfig"
  printf '%-24s %s (%s bytes)\n' "audit log" "$STATE/audit.log" "$(stat -c %s "$STATE/audit.log" 2>/dev/null || echo 0)"
  printf '%-24s %s\n' "audit webhook target" "http://127.0.0.1:$AUDIT_PORT/audit (batch)"
  printf '%-24s %s\n' "binaries" "$(cache_dir)/bin"
  return $rc
}

cmd_env() {
  echo "export KUBECONFIG=$STATE/admin.kubeconfig"
  echo "export KUBECTL=$(kubectl_bin)"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  build) cmd_build ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|build|env" >&2; exit 2 ;;
esac
