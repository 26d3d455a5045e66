package pubsub

import (
	"context"
	"sync"
)

// CheckpointStore keeps, per consumer group and topic, the global position of
// the last event the group has finished with. A Subscriber resumes after it.
//
// The contract, checked by pubsubtest.RunCheckpoints:
//
//   - Load returns 0, and no error, for a (group, topic) never saved.
//   - Save is monotonic: saving a position lower than the stored one leaves
//     the stored one unchanged and is not an error (a late flush from a
//     subscriber that lost its lease must never move a group backwards).
//   - Groups and topics are independent keys compared byte for byte; the
//     empty group "" is a valid group like any other.
//   - Implementations are safe for concurrent use.
//
// Implementations: MemoryCheckpoints (here, for tests), sqlite.Checkpoints
// and postgres.Checkpoints (in the store's own database). They live in the
// backends' packages and satisfy this interface structurally, so the event
// store packages do not import this one.
type CheckpointStore interface {
	Load(ctx context.Context, group, topic string) (position uint64, err error)
	Save(ctx context.Context, group, topic string, position uint64) error
}

// Leaser hands out, per consumer group and topic, the right to deliver: at
// most one holder at a time among all the Leasers that share its scope. All
// three checkpoint stores implement it, each with its own scope:
// MemoryCheckpoints and sqlite.Checkpoints within one process (the SQLite
// one per database file), postgres.Checkpoints across every process using
// the same schema (session advisory locks).
//
// Lease blocks until the lease is held or ctx ends (returning ctx's error).
// The returned context is derived from ctx and is cancelled when the lease
// is lost (for example when the database session holding it dies) or
// released; the holder must stop delivering when it is done. release gives
// the lease back; calling it more than once is harmless.
type Leaser interface {
	Lease(ctx context.Context, group, topic string) (held context.Context, release func(), err error)
}

// LocalLeases is a Leaser whose scope is the LocalLeases value itself: share
// one among every Subscriber that must exclude each other. The zero value is
// ready to use.
type LocalLeases struct {
	mu sync.Mutex
	m  map[leaseKey]*localLease
}

type leaseKey struct{ group, topic string }

type localLease struct {
	sem  chan struct{} // holds one token while leased
	refs int           // holders and waiters; the entry is dropped at zero
}

// Lease implements Leaser.
func (l *LocalLeases) Lease(ctx context.Context, group, topic string) (context.Context, func(), error) {
	k := leaseKey{group, topic}
	l.mu.Lock()
	if l.m == nil {
		l.m = map[leaseKey]*localLease{}
	}
	e := l.m[k]
	if e == nil {
		e = &localLease{sem: make(chan struct{}, 1)}
		l.m[k] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		l.drop(k, e)
		return nil, nil, ctx.Err()
	}
	held, cancel := context.WithCancel(ctx)
	var once sync.Once
	return held, func() {
		once.Do(func() {
			cancel()
			<-e.sem
			l.drop(k, e)
		})
	}, nil
}

func (l *LocalLeases) drop(k leaseKey, e *localLease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, k)
	}
}

// MemoryCheckpoints is an in-process CheckpointStore and Leaser, for tests
// and for the memory event store. The zero value is ready to use.
type MemoryCheckpoints struct {
	LocalLeases

	mu  sync.Mutex
	pos map[leaseKey]uint64
}

var (
	_ CheckpointStore = (*MemoryCheckpoints)(nil)
	_ Leaser          = (*MemoryCheckpoints)(nil)
)

// NewMemoryCheckpoints returns an empty MemoryCheckpoints.
func NewMemoryCheckpoints() *MemoryCheckpoints { return &MemoryCheckpoints{} }

// Load implements CheckpointStore.
func (m *MemoryCheckpoints) Load(ctx context.Context, group, topic string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos[leaseKey{group, topic}], nil
}

// Save implements CheckpointStore.
func (m *MemoryCheckpoints) Save(ctx context.Context, group, topic string, position uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pos == nil {
		m.pos = map[leaseKey]uint64{}
	}
	k := leaseKey{group, topic}
	if position > m.pos[k] {
		m.pos[k] = position
	}
	return nil
}
