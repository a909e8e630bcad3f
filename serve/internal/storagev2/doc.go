// Package storagev2 is the generated Go code of Jaeger's remote storage v2 gRPC API
// (jaeger.storage.v2: TraceReader, DependencyReader). The .proto files under proto/ are copied
// unchanged from github.com/jaegertracing/jaeger-idl v0.6.0, proto/storage/v2 (Apache-2.0), the
// version Jaeger 2.13 (github.com/jaegertracing/jaeger v1.76.0) speaks. Regenerate with
// `make proto` (hack/proto.sh); do not edit the *.pb.go files.
package storagev2
