//go:build tools

// Package tools pins github.com/minio/minio for hack/minio.sh.
package tools

import _ "github.com/minio/minio"
