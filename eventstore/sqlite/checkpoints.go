package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// Checkpoints keeps subscription checkpoints (per consumer group and topic,
// the global position a group has finished with) in the store's file, table
// subscription_checkpoints, created on first use. It satisfies
// projections/pubsub's CheckpointStore and Leaser interfaces (without
// importing that package).
//
// Its leases are in-process only: they exclude each other among all the
// Checkpoints of one process on the same database file (however many Stores
// were opened on it), not across processes. Run the subscribers of a group
// in one process.
type Checkpoints struct {
	st *Store

	mu    sync.Mutex // guards ready and file
	ready bool
	file  string // the database file, scoping the leases
}

// NewCheckpoints returns the checkpoint store of st.
func NewCheckpoints(st *Store) *Checkpoints { return &Checkpoints{st: st} }

const createCheckpoints = `
CREATE TABLE IF NOT EXISTS subscription_checkpoints (
	consumer_group TEXT    NOT NULL,
	topic          TEXT    NOT NULL,
	position       INTEGER NOT NULL CHECK (position >= 0),
	updated_at     INTEGER NOT NULL, -- unix microseconds, UTC
	PRIMARY KEY (consumer_group, topic)
) STRICT`

// ensure creates the table (once per Checkpoints; retried after a failure)
// and learns the file name.
func (c *Checkpoints) ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	if c.st.closed.Load() {
		return fmt.Errorf("sqlite: checkpoints: %w", eventstore.ErrClosed)
	}
	if _, err := c.st.WriteDB().ExecContext(ctx, createCheckpoints); err != nil {
		return fmt.Errorf("sqlite: create subscription_checkpoints: %w", translateError(err))
	}
	var file string
	if err := c.st.DB().QueryRowContext(context.WithoutCancel(ctx), // see Store.readCtx
		`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		return fmt.Errorf("sqlite: checkpoints: database file: %w", translateError(err))
	}
	if file == "" {
		file = fmt.Sprintf("store:%p", c.st)
	}
	c.file = file
	c.ready = true
	return nil
}

// Load returns the group's checkpoint for topic, 0 when none was saved.
func (c *Checkpoints) Load(ctx context.Context, group, topic string) (uint64, error) {
	if err := c.ensure(ctx); err != nil {
		return 0, err
	}
	var pos int64
	err := c.st.DB().QueryRowContext(context.WithoutCancel(ctx), // see Store.readCtx
		`SELECT position FROM subscription_checkpoints WHERE consumer_group = ? AND topic = ?`, group, topic).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: load checkpoint: %w", translateError(err))
	}
	return uint64(pos), nil
}

// Save moves the group's checkpoint for topic forwards to position; a lower
// position than the stored one changes nothing.
func (c *Checkpoints) Save(ctx context.Context, group, topic string, position uint64) error {
	if position > math.MaxInt64 {
		return fmt.Errorf("sqlite: checkpoint position %d out of range", position)
	}
	if err := c.ensure(ctx); err != nil {
		return err
	}
	_, err := c.st.WriteDB().ExecContext(ctx, `
INSERT INTO subscription_checkpoints (consumer_group, topic, position, updated_at)
VALUES (?, ?, ?, ?)
ON CONFLICT (consumer_group, topic) DO UPDATE
SET position = excluded.position, updated_at = excluded.updated_at
WHERE excluded.position > subscription_checkpoints.position`,
		group, topic, int64(position), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlite: save checkpoint: %w", translateError(err))
	}
	return nil
}

// Lease gives the caller, among every Checkpoints of this process on the
// same database file, sole delivery of (group, topic) until release is
// called. It blocks until then or until ctx ends. The returned context ends
// with ctx or at release.
func (c *Checkpoints) Lease(ctx context.Context, group, topic string) (context.Context, func(), error) {
	if err := c.ensure(ctx); err != nil {
		return nil, nil, err
	}
	return fileLeases.lease(ctx, leaseKey{c.file, group, topic})
}

// fileLeases are the process's leases, keyed by database file.
var fileLeases leaseTable

type leaseKey struct{ file, group, topic string }

type leaseTable struct {
	mu sync.Mutex
	m  map[leaseKey]*leaseEntry
}

type leaseEntry struct {
	sem  chan struct{} // holds one token while leased
	refs int           // holders and waiters; dropped at zero
}

func (l *leaseTable) lease(ctx context.Context, k leaseKey) (context.Context, func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[leaseKey]*leaseEntry{}
	}
	e := l.m[k]
	if e == nil {
		e = &leaseEntry{sem: make(chan struct{}, 1)}
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

func (l *leaseTable) drop(k leaseKey, e *leaseEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, k)
	}
}
