package collect

import (
	"errors"
	"slices"
	"sync"

	"github.com/kairn-dev/kairn/link"
)

// memSpool is the tests' Spooler: it keeps what was committed, in commit order. failNext makes
// the next commits fail, commitErr makes every commit fail with it; entered is signalled as a
// Commit starts and release, when set, holds it until closed.
type memSpool struct {
	mu        sync.Mutex
	revs      []link.Revision
	obs       []link.Observation
	bad       []Malformed
	commits   int
	failed    int
	failNext  int
	commitErr error
	entered   chan struct{}
	release   chan struct{}
}

func (s *memSpool) NewBatch() Batch { return &memBatch{s: s} }

type memBatch struct {
	s    *memSpool
	revs []link.Revision
	obs  []link.Observation
	bad  []Malformed
}

func (b *memBatch) Observe(o link.Observation) { b.obs = append(b.obs, o) }
func (b *memBatch) Revise(r link.Revision)     { b.revs = append(b.revs, r) }
func (b *memBatch) Malformed(m Malformed)      { b.bad = append(b.bad, m) }

func (b *memBatch) Commit() error {
	s := b.s
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	s.mu.Lock()
	release := s.release
	s.mu.Unlock()
	if release != nil {
		<-release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.failNext > 0:
		s.failNext--
		s.failed++
		return errors.New("injected: spool full")
	case s.commitErr != nil:
		s.failed++
		return s.commitErr
	}
	s.revs = append(s.revs, b.revs...)
	s.obs = append(s.obs, b.obs...)
	s.bad = append(s.bad, b.bad...)
	s.commits++
	return nil
}

func (s *memSpool) commitCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits
}

func (s *memSpool) committed() (obs []link.Observation, revs []link.Revision, bad []Malformed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.obs), slices.Clone(s.revs), slices.Clone(s.bad)
}

func (s *memSpool) snapshot() ([]link.Revision, []link.Observation) {
	obs, revs, _ := s.committed()
	return revs, obs
}
