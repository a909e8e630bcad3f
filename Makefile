# kairn — the two setup commands on a fresh machine are `make demo` and `make test`.
SHELL := /bin/bash
export GOTOOLCHAIN ?= local
export GOFLAGS ?= -buildvcs=false

BIN        := bin/kairn
ARCHIVE    ?= ./kairn-data
RECORDING  := testdata/recording
DEMO_WATCH := $(wildcard $(RECORDING)/watch-*.json.gz)

.PHONY: build test demo bench e2e fmt lint minio nats fuzz clean proto jaeger helm ui ui-screenshot

build:
	go build -o $(BIN) ./cmd/kairn

# The S3 tests run against a real MinIO, the NATS source tests against a real nats-server, both
# built once from the Go module proxy into a cache outside the repo (hack/minio.sh, hack/nats.sh).
test: minio nats
	KAIRN_MINIO_BIN="$$(hack/minio.sh path)" KAIRN_NATS_BIN="$$(hack/nats.sh path)" go test -count=1 ./...

minio:
	@hack/minio.sh path >/dev/null

nats:
	@hack/nats.sh path >/dev/null

# Ingest the bundled recording (made on a real control plane, see testdata/recording/README.md)
# into a local archive, print the rollout table, then the demo Deployment's trace as a tree and
# how to open it in the Jaeger UI.
demo: build
	@time ( $(BIN) ingest --cluster rec --archive $(ARCHIVE) \
		--audit $(RECORDING)/audit.log.gz $(addprefix --watch ,$(DEMO_WATCH)) && \
	  $(BIN) report rollout-first-pull --archive $(ARCHIVE) )
	@echo; echo "The trace of Deployment shop/web (kairn trace deployment web -n shop --archive $(ARCHIVE)):"; echo
	@$(BIN) trace deployment web -n shop --archive $(ARCHIVE)
	@echo; echo "To open it in the real Jaeger UI: make ui   (then the URL it prints)"

# The benchmark table (docs/performance.md): each benchmark records its figure, a baseline measured
# in the same run and the target (internal/benchrow) into bench/rows.jsonl; internal/benchtable
# prints the table and writes bench/results.json. rollout-first-pull runs over a synthetic archive
# of 10 M spans, generated once into ~/.cache/kairn/bench (≈ 5 min cold), then read from MinIO.
BENCH_ROWS := bench/rows.jsonl
bench: minio
	@mkdir -p bench && rm -f $(BENCH_ROWS)
	KAIRN_BENCH_RESULTS=$(CURDIR)/$(BENCH_ROWS) go test -run '^$$' -bench . -benchmem -benchtime 2s -cpu 1 ./cmd/kairn/ ./link/ ./collect/
	KAIRN_BENCH_RESULTS=$(CURDIR)/$(BENCH_ROWS) KAIRN_MINIO_BIN="$$(hack/minio.sh path)" KAIRN_BENCH_SPANS=$${KAIRN_BENCH_SPANS:-10000000} \
		go test -count=1 -run '^TestBenchRolloutFirstPull$$' -v -timeout 60m ./analyze/
	KAIRN_BENCH_RESULTS=$(CURDIR)/$(BENCH_ROWS) KAIRN_MINIO_BIN="$$(hack/minio.sh path)" KAIRN_BENCH_SPANS=$${KAIRN_BENCH_SPANS:-10000000} \
		go test -run '^$$' -bench 'BenchmarkTrace48Windows|BenchmarkTraceSyntheticArchive' -benchtime 30x ./serve/
	@echo; go run ./internal/benchtable $(BENCH_ROWS) bench/results.json

fuzz:
	go test -run '^$$' -fuzz '^FuzzAuditDecoder$$' -fuzztime 30s ./collect/
	go test -run '^$$' -fuzz '^FuzzWatchDecoder$$' -fuzztime 30s ./collect/
	go test -run '^$$' -fuzz '^FuzzAuditDecoderDifferential$$' -fuzztime 30s ./collect/
	go test -run '^$$' -fuzz '^FuzzAuditWholeLines$$' -fuzztime 30s ./collect/
	go test -run '^$$' -fuzz '^FuzzWatchBodyDifferential$$' -fuzztime 30s ./collect/
	go test -run '^$$' -fuzz '^FuzzRawDiff$$' -fuzztime 30s ./link/
	go test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 30s ./link/
	go test -run '^$$' -fuzz '^FuzzDecodeIndex$$' -fuzztime 30s ./archive/
	go test -run '^$$' -fuzz '^FuzzDecodeIndexTable$$' -fuzztime 30s ./archive/
	go test -run '^$$' -fuzz '^FuzzDictChunk$$' -fuzztime 30s ./serve/
	go test -run '^$$' -fuzz '^FuzzHybridInt32$$' -fuzztime 30s ./serve/
	go test -run '^$$' -fuzz '^FuzzSkipValid$$' -fuzztime 30s ./internal/jsonscan/

# Live tests against a real control plane (deploy/dev/cluster.sh: etcd, kube-apiserver,
# controller-manager, scheduler, kwok; built once into ~/.cache/kairn, ~10 min cold).
# -p 1: one package at a time on the shared cluster (cmd/kairn checks every audit record the
# apiserver logged while it collected; another package's requests near its stop would race it).
e2e: build jaeger helm
	deploy/dev/cluster.sh up
	eval "$$(deploy/dev/cluster.sh env)" && KAIRN_JAEGER_BIN="$$(hack/jaeger.sh path)" KAIRN_HELM_BIN="$$(hack/helm.sh path)" KAIRN_JAEGER_UI_DIR="$(JAEGER_UI_DIR)" KAIRN_ARTIFACTS="$${KAIRN_ARTIFACTS:-$(CURDIR)/.dev/e2e-artifacts}" KAIRN_E2E=1 go test -p 1 -count=1 -timeout 20m -run 'E2E' -v ./cmd/kairn/ ./collect/ ./deploy/helm/ ; rc=$$?; deploy/dev/cluster.sh down; exit $$rc

# The real Jaeger UI (jaeger-ui v1.76.0, served by Jaeger v2.13's jaeger_query) on the demo archive,
# until Ctrl-C: hack/ui.sh. JAEGER_UI_DIR: a built jaeger-ui; empty: ../shared/vendor beside the
# repo, else built once from its release tag into ~/.cache/kairn. Ports: UI_PORT (16686),
# UI_QUERY_GRPC_PORT, UI_KAIRN_GRPC_PORT, UI_KAIRN_HTTP_PORT, UI_KAIRN_METRICS_PORT.
# ui-screenshot retakes the README's screenshot of the demo Deployment's trace.
JAEGER_UI_DIR ?=
UI_ENV = KAIRN=$(BIN) ARCHIVE=$(ARCHIVE) JAEGER_UI_DIR="$(JAEGER_UI_DIR)" $(foreach v,UI_PORT UI_QUERY_GRPC_PORT UI_KAIRN_GRPC_PORT UI_KAIRN_HTTP_PORT UI_KAIRN_METRICS_PORT,$(if $($(v)),$(v)=$($(v))))
ui: build jaeger
	@$(UI_ENV) hack/ui.sh

ui-screenshot: build jaeger
	@$(UI_ENV) hack/ui.sh --screenshot docs/img/trace.png

# Regenerate the Jaeger remote storage v2 stubs (serve/internal/storagev2; needs protoc).
proto:
	hack/proto.sh

# Build (once) the Jaeger v2 binary the serve e2e test puts in front of `kairn serve`.
jaeger:
	@hack/jaeger.sh path >/dev/null

# Build (once) the Helm CLI the chart e2e test renders deploy/helm/kairn with.
helm:
	@hack/helm.sh path >/dev/null

fmt:
	gofmt -l -w .

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...

clean:
	rm -rf bin $(ARCHIVE)
