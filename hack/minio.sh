#!/usr/bin/env bash
# Builds (once per version) the MinIO server the S3 tests run against, into a cache outside the repo.
#
#   hack/minio.sh path      build if needed, print the binary path on stdout (default command)
#   hack/minio.sh build     same, but force a rebuild
#   hack/minio.sh version   print the pinned version
#
# The version is pinned in hack/tools/minio/go.mod (MinIO's release tags are not valid module
# versions, so a pseudo-version is used). Cache: ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/minio/<version>/minio
# Build progress goes to stderr; only the path goes to stdout. A cold build takes minutes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
toolsdir="$here/tools/minio"

version="$(awk '$1 == "github.com/minio/minio" { print $2; exit } $2 == "github.com/minio/minio" { print $3; exit }' "$toolsdir/go.mod")"
if [[ -z "$version" ]]; then
	echo "minio.sh: cannot find the github.com/minio/minio version in $toolsdir/go.mod" >&2
	exit 1
fi

cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}"
dir="$cache/minio/$version"
bin="$dir/minio"

build() {
	mkdir -p "$dir"
	local tmp="$dir/.minio.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	echo "minio.sh: building github.com/minio/minio@$version into $dir (cold build takes several minutes)" >&2
	local start=$SECONDS
	(
		cd "$toolsdir"
		GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
			go build -trimpath -o "$tmp" github.com/minio/minio
	) >&2
	mv -f "$tmp" "$bin" # atomic: a concurrent caller sees the old binary or the new one
	trap - EXIT
	echo "minio.sh: built $bin in $((SECONDS - start))s" >&2
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
