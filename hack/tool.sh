#!/usr/bin/env bash
# Builds (once per version) a server or CLI the tests run against, into a cache outside the repo.
#
#   hack/tool.sh NAME path      build if needed, print the binary path on stdout (default command)
#   hack/tool.sh NAME build     same, but force a rebuild
#   hack/tool.sh NAME version   print the pinned version
#
# NAME is one of the tools modules in hack/tools/: each pins its tool's version in its go.mod, so
# the tool's dependency graph stays out of kairn's go.mod.
#   minio    github.com/minio/minio (a pseudo-version: MinIO's release tags are not module versions)
#   jaeger   github.com/jaegertracing/jaeger v1.76.0 = Jaeger v2.13 (`go install` fails on its
#            replace directive; the tools module's go.sum is seeded from jaeger's own); ~3 min, 2.2 GB
#   helm     helm.sh/helm/v3
#   nats     github.com/nats-io/nats-server/v2; when the build fails and Debian's nats-server (2.9,
#            JetStream included) is installed, `path` prints that one instead
# Cache: ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/<binary>/<version>/<binary>.
# Build progress goes to stderr; only the path goes to stdout. Cold builds take minutes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:-}"
ldflags=()
case "$name" in
minio) module=github.com/minio/minio pkg=github.com/minio/minio binary=minio ;;
jaeger) module=github.com/jaegertracing/jaeger pkg=github.com/jaegertracing/jaeger/cmd/jaeger binary=jaeger ;;
helm) module=helm.sh/helm/v3 pkg=helm.sh/helm/v3/cmd/helm binary=helm ;;
nats) module=github.com/nats-io/nats-server/v2 pkg=github.com/nats-io/nats-server/v2 binary=nats-server ;;
*)
	echo "usage: $0 minio|jaeger|helm|nats [path|build|version]" >&2
	exit 2
	;;
esac
toolsdir="$here/tools/$name"

version="$(awk -v m="$module" '$1 == m { print $2; exit } $2 == m { print $3; exit }' "$toolsdir/go.mod")"
if [[ -z "$version" ]]; then
	echo "tool.sh: cannot find the $module version in $toolsdir/go.mod" >&2
	exit 1
fi

if [[ "$name" == helm ]]; then
	# As Helm's own Makefile does: the default Kubernetes version of `helm template` and
	# `helm lint` (.Capabilities.KubeVersion) follows the k8s.io/client-go it is built with
	# (v0.37.x -> 1.37); without these flags it would be 1.20.
	minor="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$toolsdir/go.mod" | cut -d. -f2)"
	ld="-X helm.sh/helm/v3/internal/version.version=$version"
	for p in pkg/chartutil pkg/lint/rules; do
		ld+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$minor"
	done
	ldflags=(-ldflags "$ld")
fi

cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}"
dir="$cache/$binary/$version"
bin="$dir/$binary"

build() {
	mkdir -p "$dir"
	local tmp="$dir/.$binary.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	echo "tool.sh: building $pkg@$version into $dir (cold builds take minutes)" >&2
	local start=$SECONDS
	(
		cd "$toolsdir"
		GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
			go build -trimpath "${ldflags[@]}" -o "$tmp" "$pkg"
	) >&2
	mv -f "$tmp" "$bin" # atomic: a concurrent caller sees the old binary or the new one
	trap - EXIT
	echo "tool.sh: built $bin in $((SECONDS - start))s" >&2
}

case "${2:-path}" in
path)
	if [[ ! -x "$bin" ]] && ! build; then
		if [[ "$name" == nats ]] && debian="$(command -v nats-server)"; then
			echo "tool.sh: build failed; using $debian" >&2
			echo "$debian"
			exit 0
		fi
		exit 1
	fi
	echo "$bin"
	;;
build)
	build
	echo "$bin"
	;;
version)
	echo "$version"
	;;
*)
	echo "usage: $0 $name [path|build|version]" >&2
	exit 2
	;;
esac
