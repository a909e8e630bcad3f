package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/collect"
	"github.com/kairn-dev/kairn/link"
)

// pipeline wires collect → spool → link → archive: facts are spooled by window (the
// acknowledgement point: once there, a crash loses nothing), and each window is linked against
// the revisions earlier windows ended with, then written as parts.
type pipeline struct {
	dir     string
	spool   *archive.Spool
	history *link.RevisionStore
	flusher *archive.Flusher

	mu    sync.Mutex
	bad   []collect.Malformed
	stats link.Stats
	rows  int
}

type pipelineConfig struct {
	Store         archive.Store
	SpoolDir      string
	SpoolMaxBytes int64
	Window        time.Duration
	Grace         time.Duration
	Writer        string
	Registerer    prometheus.Registerer
	Logger        *slog.Logger
}

// defaultSpoolDir is a spool per archive and cluster, so a rerun after a crash finds its spool.
func defaultSpoolDir(archiveLoc, cluster string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256([]byte(archiveLoc + "\x00" + cluster))
	return filepath.Join(base, "kairn", "spool", hex.EncodeToString(sum[:8]))
}

func openPipeline(cfg pipelineConfig) (*pipeline, error) {
	spool, err := archive.OpenSpool(archive.SpoolOptions{Dir: filepath.Join(cfg.SpoolDir, "records"), MaxBytes: cfg.SpoolMaxBytes})
	if err != nil {
		return nil, err
	}
	history, err := link.OpenRevisionStore(filepath.Join(cfg.SpoolDir, "history"))
	if err != nil {
		spool.Close()
		return nil, err
	}
	p := &pipeline{dir: cfg.SpoolDir, spool: spool, history: history}
	p.flusher, err = archive.NewFlusher(archive.FlusherOptions{
		Store: cfg.Store, Spool: spool, Window: cfg.Window, Grace: cfg.Grace, Writer: cfg.Writer,
		Build: p.build(cfg.Window), Registerer: cfg.Registerer, Logger: cfg.Logger,
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// build links one window's spooled facts. Windows are built in order, so the history holds what
// the previous windows ended with.
func (p *pipeline) build(window time.Duration) func(time.Time, func(func([]byte) error) error) ([]archive.Span, error) {
	return func(_ time.Time, replay func(func([]byte) error) error) ([]archive.Span, error) {
		batch := link.NewBatch(link.Config{Window: window, History: p.history})
		if err := replay(batch.AddRecord); err != nil {
			return nil, err
		}
		rows, st := batch.Spans()
		if err := p.history.Put(batch.LastRevisions()...); err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.stats.Add(st)
		p.rows += len(rows)
		p.mu.Unlock()
		return rows, nil
	}
}

// NewBatch returns a batch of facts to spool; the pipeline is safe for concurrent batches.
func (p *pipeline) NewBatch() collect.Batch { return p.newSpoolBatch() }

func (p *pipeline) newSpoolBatch() *spoolBatch {
	return &spoolBatch{p: p, pending: map[time.Time][][]byte{}}
}

// spoolBatch buffers encoded records by window until Commit spools them.
type spoolBatch struct {
	p       *pipeline
	pending map[time.Time][][]byte
	arena   []byte // the pending records' bytes, reused after each commit
	bad     []collect.Malformed
	err     error
}

func (b *spoolBatch) Observe(o link.Observation)    { b.add(link.Record{Observation: &o}) }
func (b *spoolBatch) Revise(r link.Revision)        { b.add(link.Record{Revision: &r}) }
func (b *spoolBatch) Malformed(m collect.Malformed) { b.bad = append(b.bad, m) }

func (b *spoolBatch) add(r link.Record) {
	if b.err != nil {
		return
	}
	t := r.Time()
	if t.IsZero() {
		b.bad = append(b.bad, collect.Malformed{File: "(revision)", Reason: "object revision without any timestamp: cannot place it in a window"})
		return
	}
	// Records are encoded into one growing buffer; a record keeps pointing at the array it was
	// written to when the buffer moves, so none is copied twice.
	start := len(b.arena)
	arena, err := link.AppendRecord(b.arena, r)
	if err != nil {
		b.err = err
		return
	}
	b.arena = arena
	rec := arena[start:len(arena):len(arena)]
	w := b.p.flusher.WindowOf(t)
	b.pending[w] = append(b.pending[w], rec)
}

// Len is the number of records waiting for Commit.
func (b *spoolBatch) Len() int {
	n := 0
	for _, recs := range b.pending {
		n += len(recs)
	}
	return n
}

// Commit spools the buffered records (one fsync'd append per window) and hands malformed ones
// to the pipeline's quarantine. On error nothing is acknowledged; what was appended before the
// error is kept, and a retry appends the rest again (duplicates are removed by observation id).
func (b *spoolBatch) Commit() error {
	if b.err != nil {
		return b.err
	}
	for w, recs := range b.pending {
		if err := b.p.flusher.Add(w, recs...); err != nil {
			if errors.Is(err, archive.ErrSpoolFull) {
				return fmt.Errorf("%w: %v", collect.ErrOverloaded, err)
			}
			return err
		}
		delete(b.pending, w)
	}
	b.arena = b.arena[:0] // the spool has its copy of every record
	if len(b.bad) > 0 {
		b.p.mu.Lock()
		b.p.bad = append(b.p.bad, b.bad...)
		b.p.mu.Unlock()
		b.bad = nil
	}
	return nil
}

// Flush writes every spooled window to the archive.
func (p *pipeline) Flush(ctx context.Context) error { return p.flusher.FlushAll(ctx) }

func (p *pipeline) Close() {
	p.history.Close()
	p.spool.Close()
}

// Done closes the pipeline after a complete offline run and removes its spool: everything is in
// the archive, and the next run of the same input starts afresh, so it writes the same parts.
func (p *pipeline) Done() error {
	p.Close()
	return os.RemoveAll(p.dir)
}
