// Package memory is an in-process eventstore.Store for tests and tools that
// need a throwaway ledger (an auditor replaying an export, for instance). It
// keeps the same contract as the SQL backends, through the same group
// committer, so code tested against it behaves the same on them. Nothing is
// persisted.
package memory

import (
	"context"
	"sort"

	"sync"

	"github.com/payesh/payesh/eventstore"
)

// Store holds the log in memory. It is safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	events   []eventstore.Event // events[i].Position == i+1
	byID     map[string]int
	byStream map[string][]int
	head     eventstore.Head
	// scanWindow bounds the positions one ReadPage looks through, as the
	// SQL backends do (eventstore.DefaultScanWindow); tests lower it.
	scanWindow int

	wake      *eventstore.Signal
	committer *eventstore.GroupCommitter
	closeOnce sync.Once
	closed    chan struct{}
}

var _ eventstore.Store = (*Store)(nil)

// New returns an empty, running store.
func New() *Store {
	s := &Store{
		byID:       map[string]int{},
		byStream:   map[string][]int{},
		scanWindow: eventstore.DefaultScanWindow,
		wake:       eventstore.NewSignal(),
		closed:     make(chan struct{}),
	}
	s.committer = eventstore.NewGroupCommitter(backend{s}, eventstore.GroupCommitConfig{
		Committed: func(eventstore.Head) { s.wake.Broadcast() },
	})
	go s.committer.Run()
	return s
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Append implements eventstore.Store. After Close the committer answers
// ErrClosed.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	return s.committer.Append(ctx, stream, expected, events)
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx := s.byStream[stream]
	var out []eventstore.Event
	if dir == eventstore.Forwards {
		start := sort.Search(len(idx), func(i int) bool { return s.events[idx[i]].Version >= from })
		for i := start; i < len(idx) && len(out) < limit; i++ {
			out = append(out, s.events[idx[i]])
		}
		return out, nil
	}
	end := sort.Search(len(idx), func(i int) bool { return s.events[idx[i]].Version > from })
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, s.events[idx[i]])
	}
	return out, nil
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return uint64(len(s.byStream[stream])), nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int, filter eventstore.Filter) ([]eventstore.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []eventstore.Event
	for i := int(after); i < len(s.events) && len(out) < limit; i++ {
		if filter.Matches(&s.events[i]) {
			out = append(out, s.events[i])
		}
	}
	return out, nil
}

// ReadPage implements eventstore.Store.
func (s *Store) ReadPage(ctx context.Context, after uint64, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.Page{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	head := uint64(len(s.events))
	page := eventstore.Page{Through: after, Head: head}
	if limit <= 0 || after >= head {
		return page, nil
	}
	end := min(head, after+uint64(max(limit, s.scanWindow)))
	for i := after; i < end; i++ {
		e := &s.events[i]
		page.Through = e.Position
		if filter.Matches(e) {
			page.Events = append(page.Events, *e)
			if len(page.Events) == limit {
				break
			}
		}
	}
	return page, nil
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handler eventstore.Handler) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	return eventstore.PollSubscribe(ctx, s, after, filter, handler, eventstore.SubscribeConfig{Wake: s.wake})
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Head, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.Head{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.head, nil
}

// Close implements eventstore.Store. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.committer.Close()
	})
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	return ctx.Err()
}

// backend adapts the store to the group committer. The committer runs one
// transaction at a time, so a transaction only needs the write lock while it
// publishes its events.
type backend struct{ s *Store }

func (b backend) Begin(context.Context) (eventstore.BatchTx, error) { return &tx{s: b.s}, nil }

type tx struct{ s *Store }

func (t *tx) Prepare(_ context.Context, ids, streams []string) (eventstore.Head, map[string]eventstore.Event, map[string]uint64, error) {
	t.s.mu.RLock()
	defer t.s.mu.RUnlock()
	stored := map[string]eventstore.Event{}
	for _, id := range ids {
		if i, ok := t.s.byID[id]; ok {
			stored[id] = t.s.events[i]
		}
	}
	versions := map[string]uint64{}
	for _, st := range streams {
		versions[st] = uint64(len(t.s.byStream[st]))
	}
	return t.s.head, stored, versions, nil
}

func (t *tx) Insert(_ context.Context, events []eventstore.Event, head eventstore.Head) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, e := range events {
		e.Data = append([]byte(nil), e.Data...)
		t.s.events = append(t.s.events, e)
		i := len(t.s.events) - 1
		t.s.byID[e.ID] = i
		t.s.byStream[e.Stream] = append(t.s.byStream[e.Stream], i)
	}
	t.s.head = head
	return nil
}

func (t *tx) Commit(context.Context) error   { return nil }
func (t *tx) Rollback(context.Context) error { return nil }

// AppendMany implements eventstore.ManyAppender.
func (s *Store) AppendMany(ctx context.Context, appends []eventstore.StreamAppend) ([]eventstore.AppendResult, []error) {
	return s.committer.AppendMany(ctx, appends)
}
