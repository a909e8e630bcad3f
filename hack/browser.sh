#!/usr/bin/env bash
# The headless browser the Jaeger UI tests drive: Debian's chromium through npm's puppeteer-core.
#
#   hack/browser.sh modules    install hack/browser's npm dependencies (once per package-lock.json)
#                              into a cache outside the repo; print the directory that holds
#                              node_modules (the script finds puppeteer-core there via
#                              KAIRN_BROWSER_DIR)
#   hack/browser.sh chromium   print the Chromium binary (KAIRN_CHROMIUM, else chromium on PATH)
#   hack/browser.sh install    both, installing Debian's chromium with apt-get when it is missing
#                              (CI; needs root)
#
# Cache: ${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/browser/<sha of package-lock.json>.
# node_modules never goes into the repo: the key changes with the lock file, so an upgrade gets a
# fresh directory and an old one is simply left behind.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/browser"
cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}"

install_modules() {
	command -v npm >/dev/null || {
		echo "browser.sh: npm not found (Debian: apt-get install -y nodejs npm)" >&2
		exit 1
	}
	local key dir
	key="$(sha256sum "$src/package-lock.json" | cut -c1-16)"
	dir="$cache/browser/$key"
	if [[ ! -f "$dir/.installed" ]]; then
		echo "browser.sh: installing puppeteer-core into $dir" >&2
		mkdir -p "$dir"
		cp "$src/package.json" "$src/package-lock.json" "$dir/"
		# PUPPETEER_SKIP_DOWNLOAD: puppeteer-core downloads nothing itself, but say so in case a
		# dependency's install script would: the only browser here is Debian's.
		(cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) >&2
		touch "$dir/.installed"
	fi
	echo "$dir"
}

find_chromium() {
	local c="${KAIRN_CHROMIUM:-}"
	if [[ -z "$c" ]]; then
		c="$(command -v chromium || command -v chromium-browser || true)"
	fi
	if [[ -z "$c" || ! -x "$c" ]]; then
		echo "browser.sh: no Chromium (set KAIRN_CHROMIUM, or apt-get install -y chromium)" >&2
		return 1
	fi
	echo "$c"
}

case "${1:-}" in
modules) install_modules ;;
chromium) find_chromium ;;
install)
	if ! find_chromium >/dev/null 2>&1; then
		echo "browser.sh: installing Debian's chromium (≈ 1 min)" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
	fi
	find_chromium
	install_modules
	;;
*)
	echo "usage: $0 modules|chromium|install" >&2
	exit 2
	;;
esac
