#!/usr/bin/env bash
# make ui: the real Jaeger UI on the demo archive, until Ctrl-C.
#
#   hack/ui.sh                      start kairn serve + Jaeger v2 with the built jaeger-ui, print
#                                   the URLs, wait for Ctrl-C (stops both)
#   hack/ui.sh --screenshot FILE    the same, then screenshot the demo Deployment's trace
#                                   (pipeline tracing, 1400×900) into FILE and stop (make
#                                   ui-screenshot: docs/img/trace.png)
#
# Environment (the Makefile passes its variables of the same names):
#   KAIRN        kairn binary (bin/kairn)            ARCHIVE  demo archive (./kairn-data; ingested
#                                                             from testdata/recording when missing)
#   JAEGER_UI_DIR  a built jaeger-ui v1.76.0 (index.html + static/). Default: ../shared/vendor/
#                jaeger-ui-v1.76.0 beside the repo where it exists, else the cache below, built
#                from the release tag on first use where GitHub is reachable.
#   UI_PORT      Jaeger UI / query HTTP (16686)      UI_QUERY_GRPC_PORT  Jaeger query gRPC (16785)
#   UI_KAIRN_GRPC_PORT / UI_KAIRN_HTTP_PORT / UI_KAIRN_METRICS_PORT: kairn serve (17371/16787/9567;
#                not kairn's defaults, so a `kairn serve` already running elsewhere does not clash)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
kairn="${KAIRN:-bin/kairn}"
archive="${ARCHIVE:-./kairn-data}"
ui_port="${UI_PORT:-16686}"
query_grpc="${UI_QUERY_GRPC_PORT:-16785}"
kairn_grpc="${UI_KAIRN_GRPC_PORT:-17371}"
kairn_http="${UI_KAIRN_HTTP_PORT:-16787}"
kairn_metrics="${UI_KAIRN_METRICS_PORT:-9567}"
ui_version=v1.76.0 # the jaeger-ui release of Jaeger v2.13 (hack/tools/jaeger: jaeger v1.76.0)
cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}"
screenshot=""

while (($#)); do
	case "$1" in
	--screenshot)
		screenshot="${2:?--screenshot needs a file}"
		shift 2
		;;
	*)
		echo "usage: $0 [--screenshot FILE]" >&2
		exit 2
		;;
	esac
done

die() {
	echo "ui.sh: $*" >&2
	exit 1
}

# The UI: given, vendored beside the repo, cached, or built from its tag into the cache.
ui_dir() {
	local vendored="$repo/../shared/vendor/jaeger-ui-$ui_version" built="$cache/jaeger-ui-$ui_version"
	if [[ -n "${JAEGER_UI_DIR:-}" ]]; then
		[[ -f "$JAEGER_UI_DIR/index.html" ]] || die "JAEGER_UI_DIR=$JAEGER_UI_DIR has no index.html (want a built jaeger-ui: packages/jaeger-ui/build)"
		(cd "$JAEGER_UI_DIR" && pwd)
		return
	fi
	if [[ -f "$vendored/index.html" ]]; then
		(cd "$vendored" && pwd)
		return
	fi
	if [[ -f "$built/index.html" ]]; then
		echo "$built"
		return
	fi
	# timeout: where outbound traffic is dropped rather than refused, git would wait for minutes.
	if ! GIT_TERMINAL_PROMPT=0 timeout 20 git ls-remote --exit-code --tags https://github.com/jaegertracing/jaeger-ui "$ui_version" >/dev/null 2>&1; then
		die "no built Jaeger UI: $vendored does not exist and github.com is not reachable to build jaeger-ui $ui_version.
  Build it where GitHub is reachable (Node 20):
    git clone --depth 1 --branch $ui_version https://github.com/jaegertracing/jaeger-ui
    cd jaeger-ui && npm ci --engine-strict=false && cd packages/jaeger-ui && npm run build
  and run: make ui JAEGER_UI_DIR=/path/to/jaeger-ui/packages/jaeger-ui/build"
	fi
	command -v npm >/dev/null || die "building jaeger-ui needs npm (apt-get install -y nodejs npm), or set JAEGER_UI_DIR"
	echo "ui.sh: building jaeger-ui $ui_version into $built (once; a few minutes)" >&2
	local src
	src="$(mktemp -d)"
	(
		set -e
		git clone -q --depth 1 --branch "$ui_version" https://github.com/jaegertracing/jaeger-ui "$src/jaeger-ui"
		cd "$src/jaeger-ui"
		# --engine-strict=false: the tag pins a Node newer than Debian's 20; the build works on 20.
		npm ci --engine-strict=false --no-audit --no-fund --loglevel=error
		cd packages/jaeger-ui && npm run build
	) >&2 || {
		rm -rf "$src"
		die "building jaeger-ui $ui_version failed (see above); set JAEGER_UI_DIR to a built jaeger-ui"
	}
	mkdir -p "$(dirname "$built")"
	rm -rf "$built.tmp" && cp -r "$src/jaeger-ui/packages/jaeger-ui/build" "$built.tmp" && mv "$built.tmp" "$built"
	rm -rf "$src"
	echo "$built"
}

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

[[ -x "$kairn" ]] || die "$kairn not built (make build)"
for p in "$ui_port" "$query_grpc" "$kairn_grpc" "$kairn_http" "$kairn_metrics"; do
	port_free "$p" || die "port $p is in use; choose others: make ui UI_PORT=… UI_QUERY_GRPC_PORT=… UI_KAIRN_GRPC_PORT=… UI_KAIRN_HTTP_PORT=… UI_KAIRN_METRICS_PORT=…"
done
ui="$(ui_dir)"
jaeger="$(hack/jaeger.sh path)" # built once into the cache (≈ 3 min cold)

if [[ ! -d "$archive" ]]; then
	# The same ingest as make demo.
	echo "ui.sh: ingesting testdata/recording into $archive" >&2
	watches=()
	for w in testdata/recording/watch-*.json.gz; do watches+=(--watch "$w"); done
	"$kairn" ingest --cluster rec --archive "$archive" --audit testdata/recording/audit.log.gz "${watches[@]}" >&2
fi

run="$(mktemp -d)"
pids=()
stop() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$run"
}
trap stop EXIT
trap 'exit 130' INT TERM

"$kairn" serve --archive "$archive" --grpc-addr "127.0.0.1:$kairn_grpc" --http-addr "127.0.0.1:$kairn_http" \
	--metrics-addr "127.0.0.1:$kairn_metrics" >"$run/serve.log" 2>&1 &
pids+=($!)
cat >"$run/jaeger.yaml" <<EOF
# Jaeger v2 query + the built UI, reading kairn serve through remote storage v2.
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [nop]
      processors: [batch]
      exporters: [nop]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: kairn
    ui:
      assets_path: "$ui"
    http:
      endpoint: 127.0.0.1:$ui_port
    grpc:
      endpoint: 127.0.0.1:$query_grpc
  jaeger_storage:
    backends:
      kairn:
        grpc:
          endpoint: 127.0.0.1:$kairn_grpc
          tls:
            insecure: true
receivers:
  nop:
processors:
  batch:
exporters:
  nop:
EOF
# OTEL_TRACES_EXPORTER=none, as the recipe says; this Jaeger build still logs failed exports of
# its own traces to 127.0.0.1:4317 into jaeger.log, which is harmless.
OTEL_TRACES_EXPORTER=none "$jaeger" --config "$run/jaeger.yaml" >"$run/jaeger.log" 2>&1 &
pids+=($!)

base="http://127.0.0.1:$ui_port"
for ((i = 0; ; i++)); do
	if curl -fsS "$base/api/services" >/dev/null 2>&1; then break; fi
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || die "a server exited; kairn serve: $(tail -5 "$run/serve.log"); jaeger: $(tail -5 "$run/jaeger.log")"
	done
	((i < 300)) || die "$base/api/services did not answer within 30 s"
	sleep 0.1
done

# The recording is 2026-11-24 06:09–06:12 UTC: search an hour around it (the UI's default is the
# last hour, which is empty).
start=$(($(date -u -d 2026-11-24T06:00:00Z +%s) * 1000000))
end=$((start + 3600 * 1000000))
tags='{"group":"apps","resource":"deployments","namespace":"shop","name":"web"}'
enc_tags="$(printf '%s' "$tags" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')"
id="$(curl -fsS "$base/api/traces?service=tracing&start=$start&end=$end&limit=1&tags=$enc_tags" |
	grep -o '"traceID":"[0-9a-f]*"' | head -1 | cut -d'"' -f4 || true)"

if [[ -n "$screenshot" ]]; then
	chromium="$(hack/browser.sh chromium)"
	modules="$(hack/browser.sh modules)"
	mkdir -p "$(dirname "$screenshot")"
	KAIRN_CHROMIUM="$chromium" KAIRN_BROWSER_DIR="$modules" node hack/browser/jaeger-ui.mjs \
		--ui "$base" --start "$start" --end "$end" --tags "$tags" --services tracing \
		--screenshot "$screenshot" --no-details >/dev/null
	echo "ui.sh: wrote $screenshot"
	exit 0
fi

trace="(not found: is $archive the demo archive?)"
[[ -z "$id" ]] || trace="$base/trace/$id"
cat <<EOF

Jaeger UI (jaeger-ui $ui_version from $ui) on the demo archive $archive:
  $base/search?service=tracing&start=$start&end=$end&lookback=custom&limit=20
  Deployment shop/web: $trace
Services are kairn's pipelines (tracing, tree, timeline, grouping); search tags e.g. namespace=shop name=web.
kairn serve: grpc 127.0.0.1:$kairn_grpc, http 127.0.0.1:$kairn_http; logs in $run. Ctrl-C stops both.
EOF
rc=0
wait -n "${pids[@]}" || rc=$?
# Ctrl-C reaches the servers too (one process group): they exit 0 or by the signal, and that is
# the normal way out.
((rc == 0 || rc > 128)) && exit 0
echo "ui.sh: a server exited ($rc); kairn serve: $(tail -3 "$run/serve.log"); jaeger: $(tail -3 "$run/jaeger.log")" >&2
exit 1
