//go:build tools

// Package tools pins github.com/nats-io/nats-server/v2 for hack/nats.sh.
package tools

import _ "github.com/nats-io/nats-server/v2"
