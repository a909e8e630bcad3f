package collect

import (
	"context"
	"errors"
)

// Spooler is where sources hand what they collect. Each source takes its own Batch: a Batch is
// not safe for concurrent use, the Spooler is.
type Spooler interface {
	NewBatch() Batch
}

// Batch collects facts until Commit makes them durable. Commit is the acknowledgement point: a
// source acknowledges its input (answers a webhook 200, moves a checkpoint) only after Commit
// returned nil. An error wrapping archive's ErrSpoolFull means the spool is at its disk bound:
// the source must not acknowledge, and should retry later (backpressure). Malformed records are
// quarantined on Commit as well.
type Batch interface {
	Sink
	Commit() error
}

// Source is one live source of facts (the audit webhook, an audit log tail, a watch). Run blocks
// until ctx is done or the source fails.
type Source interface {
	Name() string
	Run(ctx context.Context, out Spooler) error
}

// ErrOverloaded is what a Spooler's Commit wraps when kairn cannot take more right now (the spool
// is at its disk bound): the source must not acknowledge, and should ask its sender to retry
// later (HTTP 429).
var ErrOverloaded = errors.New("kairn is overloaded: retry later")
