# syntax=docker/dockerfile:1
#
# kairn: one image for every command (collect, merge, analyze, serve, report, sql, ingest).
#   docker build -t ghcr.io/kairn-dev/kairn:0.1.0 .
#
# Why not a static binary: analyze, report, sql and merge embed DuckDB (github.com/duckdb/duckdb-go,
# C++, linked through cgo from the prebuilt libraries of duckdb-go-bindings). The binary is
# therefore dynamically linked against glibc, libstdc++, libgcc_s and libm (`ldd bin/kairn`).
# Linking glibc statically is unsupported for getaddrinfo/NSS and fragile with libstdc++, so the
# runtime is gcr.io/distroless/cc-debian12: glibc + libgcc + libstdc++ + CA certificates (for S3
# over TLS) and nothing else (no shell, no package manager). The builder is Debian 12 (bookworm) too, so the glibc the binary is linked
# against is the one it runs with. DuckDB extensions are never installed or loaded at run time
# (autoinstall/autoload are off), so the image needs no network access to an extension repository.
#
# The image runs as distroless' "nonroot" user (65532), the uid the Helm chart
# (deploy/helm/kairn) sets; the chart mounts writable emptyDirs for the spool and caches, and
# keeps the root filesystem read-only.

# The Go version must be at least the go line of go.mod.
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=1 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# gcc/g++ for cgo come with the golang bookworm image (buildpack-deps).
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/kairn ./cmd/kairn && \
    /out/kairn -h >/dev/null

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="kairn" \
      org.opencontainers.image.description="Kubernetes objects as spans: audit + watch collector, Parquet archive, DuckDB reports, Jaeger UI" \
      org.opencontainers.image.source="https://github.com/kairn-dev/kairn"
COPY --from=build /out/kairn /usr/local/bin/kairn
USER 65532:65532
# webhook 8443, collect metrics 9464, analyze metrics 9465, serve HTTP API 16687 / gRPC 17271
EXPOSE 8443 9464 9465 16687 17271
ENTRYPOINT ["/usr/local/bin/kairn"]
CMD ["-h"]
