#!/usr/bin/env bash
# Builds (once per version) the NATS server (with JetStream) the NATS source tests run against,
# into a cache outside the repo.
#
#   hack/nats.sh path      print the server binary's path on stdout, building it if needed (default)
#   hack/nats.sh build     same, but force a rebuild
#   hack/nats.sh version   print the pinned version
#
# The version is pinned in hack/tools/nats/go.mod (github.com/nats-io/nats-server/v2).
# Cache: ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/nats-server/<version>/nats-server
# When the build fails (no module proxy) and Debian's nats-server (2.9, JetStream included) is
# installed, `path` prints that one instead. A cold build takes about a minute.
# Build progress goes to stderr; only the path goes to stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
toolsdir="$here/tools/nats"

version="$(awk '$1 == "github.com/nats-io/nats-server/v2" { print $2; exit } $2 == "github.com/nats-io/nats-server/v2" { print $3; exit }' "$toolsdir/go.mod")"
if [[ -z "$version" ]]; then
	echo "nats.sh: cannot find the github.com/nats-io/nats-server/v2 version in $toolsdir/go.mod" >&2
	exit 1
fi

cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}"
dir="$cache/nats-server/$version"
bin="$dir/nats-server"

build() {
	mkdir -p "$dir"
	local tmp="$dir/.nats-server.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	echo "nats.sh: building github.com/nats-io/nats-server/v2@$version into $dir" >&2
	local start=$SECONDS
	(
		cd "$toolsdir"
		GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
			go build -trimpath -o "$tmp" github.com/nats-io/nats-server/v2
	) >&2
	mv -f "$tmp" "$bin" # atomic: a concurrent caller sees the old binary or the new one
	trap - EXIT
	echo "nats.sh: built $bin in $((SECONDS - start))s" >&2
}

case "${1:-path}" in
path)
	if [[ ! -x "$bin" ]] && ! build; then
		if debian="$(command -v nats-server)"; then
			echo "nats.sh: build failed; using $debian" >&2
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
	echo "usage: $0 [path|build|version]" >&2
	exit 2
	;;
esac
