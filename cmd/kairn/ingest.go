package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/kairn-dev/kairn/archive"
	"github.com/kairn-dev/kairn/collect"
	"github.com/kairn-dev/kairn/link"
)

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ingest", "--cluster NAME [--archive DIR|s3://bucket/prefix] [--window 30m] [--audit FILE]... [--watch FILE]...", stderr)
	cluster := fs.String("cluster", "", "cluster name recorded on every span (required)")
	archiveLoc := fs.String("archive", defaultArchive, "archive: a directory or s3://bucket/prefix")
	window := fs.Duration("window", link.DefaultWindow, "window length (epoch-aligned, at least 1m)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	spoolDir := fs.String("spool", "", "spool directory (default: one per archive and cluster under the user cache); a rerun after a crash resumes from it")
	var audits, watches multiFlag
	fs.Var(&audits, "audit", "audit log: JSON lines of audit.k8s.io Events, webhook EventList bodies or AdmissionReview lines; gzip ok (repeat)")
	fs.Var(&watches, "watch", "watch stream of `kubectl get R -A --watch --output-watch-events -o json`, or objects/Lists/YAML; gzip ok (repeat)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usageErr("unexpected arguments %q (files go after --audit or --watch)", rest)
	case *cluster == "":
		return usageErr("--cluster is required")
	case len(audits)+len(watches) == 0:
		return usageErr("nothing to ingest: give --audit FILE and/or --watch FILE")
	case *window < time.Minute:
		return usageErr("--window %s is shorter than 1m", *window)
	}
	for _, f := range audits {
		if err := collect.CheckAuditFile(f); err != nil {
			return err
		}
	}
	for _, f := range watches {
		if err := collect.CheckWatchFile(f); err != nil {
			return err
		}
	}
	store, err := archive.OpenStore(ctx, *archiveLoc)
	if err != nil {
		return err
	}

	if *spoolDir == "" {
		*spoolDir = defaultSpoolDir(store.String(), *cluster)
	}
	started := time.Now()
	pipe, err := openPipeline(pipelineConfig{Store: store, SpoolDir: *spoolDir, Window: *window, Writer: "ingest"})
	if err != nil {
		return err
	}
	defer pipe.Close()
	sink := newCommittingSink(pipe)
	opts := collect.FileOptions{Cluster: *cluster}
	if !*quiet {
		opts.Progress = func(file string, done, total int64) {
			if total > 8<<20 {
				fmt.Fprintf(stderr, "\r%s: %.0f%% (%d/%d MiB)", file, 100*float64(done)/float64(total), done>>20, total>>20)
				if done >= total {
					fmt.Fprintln(stderr)
				}
			}
		}
	}
	var total collect.Stats
	for _, f := range audits {
		st, err := collect.ReadAuditFile(f, opts, sink)
		if err != nil {
			return err
		}
		total.Add(st)
	}
	for _, f := range watches {
		st, err := collect.ReadWatchFile(f, opts, sink)
		if err != nil {
			return err
		}
		total.Add(st)
	}
	if err := sink.Commit(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := pipe.Flush(ctx); err != nil {
		return err
	}
	if err := pipe.Done(); err != nil {
		return err
	}
	lst := pipe.stats
	if bad := pipe.bad; len(bad) > 0 {
		key, err := quarantine(ctx, store, *cluster, bad)
		if err != nil {
			return err
		}
		for i, m := range bad {
			if i == 10 {
				fmt.Fprintf(stderr, "... and %d more\n", len(bad)-10)
				break
			}
			fmt.Fprintln(stderr, "malformed:", m)
		}
		fmt.Fprintf(stderr, "%d malformed records quarantined to %s/%s\n", len(bad), store, key)
	}
	if !*quiet {
		fmt.Fprintf(stderr, "ingested %d records (%d skipped, %d malformed) into %d spans (%d object spans) in %s\n",
			total.Records, total.Skipped, total.Malformed, pipe.rows, lst.ObjectSpans, time.Since(started).Round(time.Millisecond))
		fmt.Fprintf(stderr, "linked: %d audit↔change by resourceVersion, %d by time+managedFields; %d generateName creates joined to their object (%d not); %d Events timed by audit; %d duplicates dropped\n",
			lst.AuditLinkedByRV, lst.AuditLinkedByFit, lst.GeneratedNamesJoined, lst.UnjoinedCreates, lst.EventsTimedByAudit, lst.Duplicates)
		fmt.Fprintf(stderr, "archive: %s\n", store)
	}
	return nil
}

// committingSink commits its batch whenever it holds commitBytes of encoded records, so an
// offline ingest spools as it reads, in memory bounded by bytes whatever the records' sizes, and
// a crash loses at most that much of what was read. Each commit costs one fsync per window.
type committingSink struct {
	*spoolBatch
	err error
}

// commitBytes is 8 MiB, about 13,000 spooled records of the generated traffic (615 B each on
// average): big enough that the fsyncs cost little next to decoding (one per window per commit,
// 1-10 ms each here).
const commitBytes = 8 << 20

// newCommittingSink allocates the arena once at its working size, with room for the record
// that crosses commitBytes: grown by append from nothing it was copied and zeroed ~24 MiB over
// before the first commit (4 % of the bench ingest's CPU profile).
func newCommittingSink(p *pipeline) *committingSink {
	b := p.newSpoolBatch()
	b.arena = make([]byte, 0, commitBytes+commitBytes/8)
	return &committingSink{spoolBatch: b}
}

func (s *committingSink) Observe(o link.Observation) { s.spoolBatch.Observe(o); s.tick() }
func (s *committingSink) Revise(r link.Revision)     { s.spoolBatch.Revise(r); s.tick() }

func (s *committingSink) tick() {
	if len(s.arena) >= commitBytes && s.err == nil {
		s.err = s.spoolBatch.Commit()
	}
}

func (s *committingSink) Commit() error {
	if s.err != nil {
		return s.err
	}
	return s.spoolBatch.Commit()
}

// quarantine writes malformed records as JSON lines next to the spans, so nothing is silently lost.
func quarantine(ctx context.Context, store archive.Store, cluster string, bad []collect.Malformed) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, m := range bad {
		if err := enc.Encode(map[string]any{"file": m.File, "line": m.Line, "reason": m.Reason, "raw": string(m.Raw)}); err != nil {
			return "", err
		}
	}
	key := fmt.Sprintf("quarantine/cluster=%s/ingest-%s.jsonl", cluster, time.Now().UTC().Format("20060102T150405.000000000"))
	return key, store.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()))
}
