#!/usr/bin/env bash
# Builds (once per version) the Jaeger v2 binary (jaeger-query + remote storage) the serve e2e test runs, into a cache outside the repo.
#
#   hack/jaeger.sh path      build if needed, print the binary path on stdout (default command)
#   hack/jaeger.sh build     same, but force a rebuild
#   hack/jaeger.sh version   print the pinned version
#
# The version is pinned in hack/tools/jaeger/go.mod (github.com/jaegertracing/jaeger v1.76.0 is
# Jaeger v2.13; `go install` cannot build it because of a replace directive, hence the tools module,
# whose go.sum is seeded from jaeger's own). Cache: ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/jaeger/<version>/jaeger
# A cold build takes about 3 minutes and 2.2 GB of memory.
# Build progress goes to stderr; only the path goes to stdout. A cold build takes minutes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
toolsdir="$here/tools/jaeger"

version="$(awk '$1 == "github.com/jaegertracing/jaeger" { print $2; exit } $2 == "github.com/jaegertracing/jaeger" { print $3; exit }' "$toolsdir/go.mod")"
if [[ -z "$version" ]]; then
	echo "jaeger.sh: cannot find the github.com/jaegertracing/jaeger version in $toolsdir/go.mod" >&2
	exit 1
fi

cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}"
dir="$cache/jaeger/$version"
bin="$dir/jaeger"

build() {
	mkdir -p "$dir"
	local tmp="$dir/.jaeger.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	echo "jaeger.sh: building github.com/jaegertracing/jaeger@$version into $dir (cold build takes several minutes)" >&2
	local start=$SECONDS
	(
		cd "$toolsdir"
		GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
			go build -trimpath -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger
	) >&2
	mv -f "$tmp" "$bin" # atomic: a concurrent caller sees the old binary or the new one
	trap - EXIT
	echo "jaeger.sh: built $bin in $((SECONDS - start))s" >&2
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
