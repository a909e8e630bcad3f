// Command otlpdesc writes a FileDescriptorSet of the OTLP trace proto and its imports, taken from
// the Go registry of go.opentelemetry.io/proto/otlp. That module ships generated Go code but not
// the .proto files, and jaeger.storage.v2 imports opentelemetry/proto/trace/v1/trace.proto, so
// hack/proto.sh hands this set to protoc with --descriptor_set_in. Used only by `make proto`.
package main

import (
	"fmt"
	"os"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: otlpdesc OUT.pb")
		os.Exit(2)
	}
	seen := map[string]bool{}
	set := &descriptorpb.FileDescriptorSet{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(tracepb.File_opentelemetry_proto_trace_v1_trace_proto)
	b, err := proto.Marshal(set)
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlpdesc:", err)
		os.Exit(1)
	}
}
