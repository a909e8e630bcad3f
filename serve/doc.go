// Package serve will own the query server that renders single traces for the Jaeger UI
// (Jaeger remote storage v2 and its HTTP JSON API). It reads only what archive wrote.
package serve
