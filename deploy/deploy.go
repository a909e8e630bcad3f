// Package deploy owns what it takes to run kairn next to a cluster: the audit policy we
// recommend (embedded here so the binary can print it), and under dev/ a real local control
// plane for development and the live tests.
package deploy

import _ "embed"

// AuditPolicy is deploy/audit-policy.yaml: full bodies for writes on the workload chain,
// Metadata elsewhere (Secrets never above Metadata), no leases or health probes.
//
//go:embed audit-policy.yaml
var AuditPolicy []byte
