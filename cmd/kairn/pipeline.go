package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

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

	pending  map[time.Time][][]byte
	npending int
	bad      []collect.Malformed
	err      error

	mu    sync.Mutex
	stats link.Stats
	rows  int
}

type pipelineConfig struct {
	Store    archive.Store
	SpoolDir string
	Window   time.Duration
	Grace    time.Duration
	Writer   string
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
	spool, err := archive.OpenSpool(archive.SpoolOptions{Dir: filepath.Join(cfg.SpoolDir, "records")})
	if err != nil {
		return nil, err
	}
	history, err := link.OpenRevisionStore(filepath.Join(cfg.SpoolDir, "history"))
	if err != nil {
		spool.Close()
		return nil, err
	}
	p := &pipeline{dir: cfg.SpoolDir, spool: spool, history: history, pending: map[time.Time][][]byte{}}
	p.flusher, err = archive.NewFlusher(archive.FlusherOptions{
		Store: cfg.Store, Spool: spool, Window: cfg.Window, Grace: cfg.Grace, Writer: cfg.Writer,
		Build: p.build(cfg.Window),
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
		if err := replay(func(rec []byte) error {
			r, err := link.DecodeRecord(rec)
			if err != nil {
				return err
			}
			batch.Add(r)
			return nil
		}); err != nil {
			return nil, err
		}
		rows, st := batch.Spans()
		if err := p.history.Put(batch.LastRevisions()...); err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.stats.AuditLinkedByRV += st.AuditLinkedByRV
		p.stats.AuditLinkedByFit += st.AuditLinkedByFit
		p.stats.EventsTimedByAudit += st.EventsTimedByAudit
		p.stats.Duplicates += st.Duplicates
		p.stats.ObjectSpans += st.ObjectSpans
		p.stats.NoOps += st.NoOps
		p.rows += len(rows)
		p.mu.Unlock()
		return rows, nil
	}
}

// spoolBatch is how many records of one window are spooled (and fsync'd) together.
const spoolBatch = 512

func (p *pipeline) Observe(o link.Observation) { p.add(link.Record{Observation: &o}) }
func (p *pipeline) Revise(r link.Revision)     { p.add(link.Record{Revision: &r}) }
func (p *pipeline) Malformed(m collect.Malformed) {
	p.bad = append(p.bad, m)
}

func (p *pipeline) add(r link.Record) {
	if p.err != nil {
		return
	}
	t := r.Time()
	if t.IsZero() {
		p.bad = append(p.bad, collect.Malformed{File: "(revision)", Reason: "object revision without any timestamp: cannot place it in a window"})
		return
	}
	rec, err := link.EncodeRecord(r)
	if err != nil {
		p.err = err
		return
	}
	w := p.flusher.WindowOf(t)
	p.pending[w] = append(p.pending[w], rec)
	p.npending++
	if len(p.pending[w]) >= spoolBatch {
		p.err = p.spoolWindow(w)
	}
}

func (p *pipeline) spoolWindow(w time.Time) error {
	recs := p.pending[w]
	delete(p.pending, w)
	p.npending -= len(recs)
	return p.flusher.Add(w, recs...)
}

// Spool writes what is still buffered; once it returns nil, everything read so far survives a crash.
func (p *pipeline) Spool() error {
	if p.err != nil {
		return p.err
	}
	for w := range p.pending {
		if err := p.spoolWindow(w); err != nil {
			return err
		}
	}
	return nil
}

// Flush spools what is buffered and writes every spooled window to the archive.
func (p *pipeline) Flush(ctx context.Context) error {
	if err := p.Spool(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return p.flusher.FlushAll(ctx)
}

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
