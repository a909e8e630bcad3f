// Package serve owns kairn's query server: it renders one object's story as a trace for the
// Jaeger UI. It serves Jaeger's remote storage v2 gRPC API (jaeger.storage.v2 TraceReader and
// DependencyReader, which jaeger-query reads) and Jaeger's HTTP JSON API (/api/services,
// /api/traces, … for curl and Grafana). It owns the trace id layout (TraceID), the display
// pipelines (tree, timeline, tracing, grouping, with the selectors full tree, ancestors,
// children), and the read path over the archive: object index first, then only the partitions a
// trace covers, merged parts and the unmerged parts of open windows alike.
//
// It is read-only: it reads only what package archive wrote, and never writes to the archive.
// docs/query-server.md documents what a user sees.
package serve
