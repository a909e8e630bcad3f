#!/usr/bin/env bash
# Regenerates serve/internal/storagev2 (the Go stubs of Jaeger's remote storage v2 API) from the
# .proto files copied there from github.com/jaegertracing/jaeger-idl v0.6.0 (proto/storage/v2; the
# version Jaeger 2.13 speaks). `make proto` runs it; the generated code is committed, so building
# kairn never needs protoc.
#
# Needs protoc (Debian: apt-get install -y protobuf-compiler). protoc-gen-go and protoc-gen-go-grpc
# are installed at pinned versions into a cache outside the repo. The OTLP trace.proto that the
# storage protos import is not shipped as a file by go.opentelemetry.io/proto/otlp: hack/otlpdesc
# dumps its descriptor from the Go registry and protoc reads it with --descriptor_set_in.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.10      # google.golang.org/protobuf
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1   # google.golang.org/grpc/cmd/protoc-gen-go-grpc

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/serve/internal/storagev2"
pkg=github.com/kairn-dev/kairn/serve/internal/storagev2
cache="${KAIRN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kairn}/protoc-gen/go-$PROTOC_GEN_GO_VERSION-grpc-$PROTOC_GEN_GO_GRPC_VERSION"

command -v protoc >/dev/null || { echo "proto.sh: protoc not found (apt-get install -y protobuf-compiler)" >&2; exit 1; }
if [[ ! -x "$cache/protoc-gen-go" || ! -x "$cache/protoc-gen-go-grpc" ]]; then
	mkdir -p "$cache"
	GOBIN="$cache" GOTOOLCHAIN=local go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
	GOBIN="$cache" GOTOOLCHAIN=local go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && GOTOOLCHAIN=local go run ./hack/otlpdesc "$tmp/otlp.pb")
# protoc needs the well-known types in the same descriptor set as the OTLP files it resolves.
protoc --include_imports --descriptor_set_out="$tmp/wkt.pb" -I /usr/include \
	google/protobuf/duration.proto google/protobuf/timestamp.proto
# Merge both sets: a FileDescriptorSet is a repeated field, so concatenating encodings merges them.
cat "$tmp/wkt.pb" "$tmp/otlp.pb" >"$tmp/all.pb"

m="Mtrace_storage.proto=$pkg;storagev2,Mdependency_storage.proto=$pkg;storagev2"
m="$m,Mopentelemetry/proto/trace/v1/trace.proto=go.opentelemetry.io/proto/otlp/trace/v1"
PATH="$cache:$PATH" protoc \
	--descriptor_set_in="$tmp/all.pb" -I "$out/proto" \
	--go_out="$tmp" --go_opt=paths=source_relative,"$m" \
	--go-grpc_out="$tmp" --go-grpc_opt=paths=source_relative,"$m" \
	trace_storage.proto dependency_storage.proto
cp "$tmp"/*.pb.go "$out/"
echo "proto.sh: generated $(cd "$out" && ls *.pb.go | tr '\n' ' ')" >&2
