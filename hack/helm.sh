#!/usr/bin/env bash
# Builds (once per version) the Helm CLI that renders deploy/helm/kairn in the chart e2e test
# (deploy/helm/chart_e2e_test.go), into a cache outside the repo.
#
#   hack/helm.sh path      build if needed, print the binary path on stdout (default command)
#   hack/helm.sh build     same, but force a rebuild
#   hack/helm.sh version   print the pinned version
#
# The version is pinned in hack/tools/helm/go.mod (a tools module, so Helm's dependency graph stays
# out of kairn's go.mod). Needs only Go and the Go module proxy. Cache: ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/helm/<version>/helm
# Build progress goes to stderr; only the path goes to stdout. A cold build takes minutes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
toolsdir="$here/tools/helm"

version="$(awk '$1 == "helm.sh/helm/v3" { print $2; exit } $2 == "helm.sh/helm/v3" { print $3; exit }' "$toolsdir/go.mod")"
if [[ -z "$version" ]]; then
	echo "helm.sh: cannot find the helm.sh/helm/v3 version in $toolsdir/go.mod" >&2
	exit 1
fi

cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}"
dir="$cache/helm/$version"
bin="$dir/helm"

build() {
	mkdir -p "$dir"
	local tmp="$dir/.helm.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	echo "helm.sh: building helm.sh/helm/v3@$version into $dir (cold build takes a few minutes)" >&2
	local start=$SECONDS
	# As Helm's own Makefile does: the default Kubernetes version of `helm template` and
	# `helm lint` (.Capabilities.KubeVersion) follows the k8s.io/client-go it is built with
	# (v0.37.x -> 1.37); without these flags it would be 1.20.
	local cg minor ld
	cg="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$toolsdir/go.mod")"
	minor="$(echo "$cg" | cut -d. -f2)"
	ld="-X helm.sh/helm/v3/internal/version.version=$version"
	for p in pkg/chartutil pkg/lint/rules; do
		ld+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$minor"
	done
	(
		cd "$toolsdir"
		GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
			go build -trimpath -ldflags "$ld" -o "$tmp" helm.sh/helm/v3/cmd/helm
	) >&2
	mv -f "$tmp" "$bin" # atomic: a concurrent caller sees the old binary or the new one
	trap - EXIT
	echo "helm.sh: built $bin in $((SECONDS - start))s" >&2
}

case "${1:-path}" in
path)
	[[ -x "$bin" ]] || build
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
	echo "usage: $0 [path|build|version]" >&2
	exit 2
	;;
esac
