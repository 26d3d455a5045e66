package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Checkpoints keeps subscription checkpoints (per consumer group and topic,
// the global position a group has finished with) in the store's schema,
// table subscription_checkpoints, created on first use. It satisfies
// projections/pubsub's CheckpointStore and Leaser interfaces (without
// importing that package).
//
// Leases are PostgreSQL session advisory locks, so they exclude every other
// holder of the same (schema, group, topic) in any process. The locks of one
// Checkpoints are all taken on one dedicated connection, opened when the
// first lease is requested and closed when the last is released, so holding
// many leases costs one connection, not one each; waiting callers retry
// pg_try_advisory_lock every LeaseRetry. If that connection dies, PostgreSQL
// frees its locks and every lease taken on it is reported lost (its context
// is cancelled): another process may already have taken over. The
// connection is checked every LeaseCheck.
type Checkpoints struct {
	st    *Store
	table string // "schema"."subscription_checkpoints"

	// LeaseRetry is how often a waiting Lease tries again (default 250ms).
	// LeaseCheck is how often a connection holding leases is pinged
	// (default 2s). Set them before the first Lease.
	LeaseRetry, LeaseCheck time.Duration

	initMu sync.Mutex
	ready  bool

	mu      sync.Mutex // guards the lease session below
	conn    *pgx.Conn  // nil while no lease is held or awaited
	gen     uint64     // increments with every new connection
	users   int        // leases held or awaited
	holders map[int64]context.CancelFunc

	local localLeases // one contender per key in this Checkpoints at a time
}

// NewCheckpoints returns the checkpoint store of st.
func NewCheckpoints(st *Store) *Checkpoints {
	return &Checkpoints{
		st:         st,
		table:      pgx.Identifier{st.Schema(), "subscription_checkpoints"}.Sanitize(),
		LeaseRetry: 250 * time.Millisecond,
		LeaseCheck: 2 * time.Second,
		holders:    map[int64]context.CancelFunc{},
	}
}

func (c *Checkpoints) ensure(ctx context.Context) error {
	c.initMu.Lock()
	defer c.initMu.Unlock()
	if c.ready {
		return nil
	}
	if err := c.st.usable(ctx); err != nil {
		return err
	}
	// CREATE TABLE IF NOT EXISTS is not safe against itself in concurrent
	// sessions (both may try to insert the type): take turns.
	err := pgx.BeginTxFunc(ctx, c.st.Pool(), pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('payesh.checkpoints.migrate:' || $1, 0))", c.st.Schema()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS `+c.table+` (
	consumer_group TEXT COLLATE "C" NOT NULL,
	topic          TEXT COLLATE "C" NOT NULL,
	position       BIGINT      NOT NULL CHECK (position >= 0),
	updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer_group, topic)
)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create subscription_checkpoints: %w", c.st.fail(err))
	}
	c.ready = true
	return nil
}

// Load returns the group's checkpoint for topic, 0 when none was saved.
func (c *Checkpoints) Load(ctx context.Context, group, topic string) (uint64, error) {
	if err := c.ensure(ctx); err != nil {
		return 0, err
	}
	var pos int64
	err := c.st.Pool().QueryRow(ctx, `SELECT position FROM `+c.table+` WHERE consumer_group = $1 AND topic = $2`, group, topic).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: load checkpoint: %w", c.st.fail(err))
	}
	return uint64(pos), nil
}

// Save moves the group's checkpoint for topic forwards to position; a lower
// position than the stored one changes nothing.
func (c *Checkpoints) Save(ctx context.Context, group, topic string, position uint64) error {
	if position > math.MaxInt64 {
		return fmt.Errorf("postgres: checkpoint position %d out of range", position)
	}
	if err := c.ensure(ctx); err != nil {
		return err
	}
	_, err := c.st.Pool().Exec(ctx, `
INSERT INTO `+c.table+` AS c (consumer_group, topic, position, updated_at)
VALUES ($1, $2, $3, now())
ON CONFLICT (consumer_group, topic) DO UPDATE
SET position = excluded.position, updated_at = excluded.updated_at
WHERE c.position < excluded.position`, group, topic, int64(position))
	if err != nil {
		return fmt.Errorf("postgres: save checkpoint: %w", c.st.fail(err))
	}
	return nil
}

// leaseKey is the advisory lock key of (schema, group, topic): the first 8
// bytes of a SHA-256, so unrelated keys practically never collide (a
// collision would only make two subscriptions take turns).
func (c *Checkpoints) leaseKey(group, topic string) int64 {
	h := sha256.New()
	for _, s := range []string{"payesh.pubsub.lease", c.st.Schema(), group, topic} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// Lease gives the caller sole delivery of (group, topic) among every
// holder in every process using this schema, until release is called. It
// blocks until then or until ctx ends. The returned context ends with ctx,
// at release, or when the lease is lost.
func (c *Checkpoints) Lease(ctx context.Context, group, topic string) (context.Context, func(), error) {
	if err := c.st.usable(ctx); err != nil {
		return nil, nil, err
	}
	key := c.leaseKey(group, topic)
	c.mu.Lock()
	c.users++
	c.mu.Unlock()

	unlockLocal, err := c.local.lock(ctx, key)
	if err != nil {
		c.leave()
		return nil, nil, err
	}
	for {
		gen, ok, err := c.tryLock(key)
		if err == nil && ok {
			held, cancel := context.WithCancel(ctx)
			c.mu.Lock()
			if c.gen == gen && c.conn != nil {
				c.holders[key] = cancel
			} else {
				cancel() // the session died in between
			}
			c.mu.Unlock()
			var once sync.Once
			return held, func() {
				once.Do(func() {
					cancel()
					c.unlock(key, gen)
					unlockLocal()
					c.leave()
				})
			}, nil
		}
		t := time.NewTimer(c.LeaseRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			unlockLocal()
			c.leave()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// tryLock tries the advisory lock on the lease session, opening it if
// needed. An error means the session is unusable (it was dropped). It does
// not take the caller's context: pgx closes a connection whose query is
// cancelled, which would free the other holders' locks.
func (c *Checkpoints) tryLock(key int64) (uint64, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.conn == nil {
		cfg := c.st.Pool().Config().ConnConfig.Copy()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return 0, false, err
		}
		c.conn = conn
		c.gen++
		go c.check(c.gen)
	}
	var ok bool
	if err := c.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		c.dropSessionLocked()
		return c.gen, false, err
	}
	return c.gen, ok, nil
}

// unlock gives an advisory lock back, if the session it was taken on is
// still the current one (otherwise PostgreSQL freed it with the session).
func (c *Checkpoints) unlock(key int64, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.conn == nil {
		return
	}
	delete(c.holders, key)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ok bool
	if err := c.conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&ok); err != nil || !ok {
		// Unsure what the session still holds: start a new one.
		c.dropSessionLocked()
	}
}

// leave ends one user's interest in the session, closing it after the last.
func (c *Checkpoints) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users--
	if c.users == 0 && c.conn != nil {
		c.dropSessionLocked()
	}
}

// dropSessionLocked closes the lease session; every lease taken on it is
// lost. c.mu must be held.
func (c *Checkpoints) dropSessionLocked() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.conn.Close(ctx)
	c.conn = nil
	for k, lost := range c.holders {
		lost()
		delete(c.holders, k)
	}
}

// check pings the session of generation gen every LeaseCheck until it is
// replaced or closed, dropping it (and so reporting its leases lost) when
// it does not answer.
func (c *Checkpoints) check(gen uint64) {
	t := time.NewTicker(c.LeaseCheck)
	defer t.Stop()
	for range t.C {
		c.mu.Lock()
		if c.gen != gen || c.conn == nil {
			c.mu.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.LeaseCheck)
		err := c.conn.Ping(ctx)
		cancel()
		if err != nil {
			c.dropSessionLocked()
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// localLeases lets one caller per key at a time at the advisory lock: a
// session's advisory locks are re-entrant, so two callers sharing the
// session would otherwise both get it.
type localLeases struct {
	mu sync.Mutex
	m  map[int64]*localLease
}

type localLease struct {
	sem  chan struct{}
	refs int
}

func (l *localLeases) lock(ctx context.Context, key int64) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[int64]*localLease{}
	}
	e := l.m[key]
	if e == nil {
		e = &localLease{sem: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	drop := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
	}
	select {
	case e.sem <- struct{}{}:
		return func() { <-e.sem; drop() }, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}
