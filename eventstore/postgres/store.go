package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/internal/prefixset"
)

// Store is the PostgreSQL event store. It is safe for concurrent use by many
// goroutines, and by many processes opened on the same database and schema.
type Store struct {
	cfg   Config
	n     names
	sql   statements
	pool  *pgxpool.Pool
	gc    *eventstore.GroupCommitter
	wake  *eventstore.Signal
	close sync.Once
	// common remembers the prefix sets ReadPage reads by window.
	common prefixset.Common

	closed atomic.Bool

	stopListen  context.CancelFunc
	listenDone  chan struct{}
	listenerPID atomic.Uint32 // backend PID of the LISTEN connection, for tests
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to PostgreSQL, creates or upgrades the schema, and starts the
// group committer and the notification listener. Several processes may open
// the same schema at once.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := newNames(cfg.Schema)
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pcfg.MaxConns = cfg.MaxConns
	rp := pcfg.ConnConfig.RuntimeParams
	// Read models written through Pool go next to the log by default.
	// The store's own SQL names the schema explicitly.
	rp["search_path"] = n.qschema
	if rp["application_name"] == "" {
		rp["application_name"] = "payesh"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool, n); err != nil {
		pool.Close()
		return nil, err
	}

	s := &Store{
		cfg:        cfg,
		n:          n,
		sql:        newStatements(n),
		pool:       pool,
		wake:       eventstore.NewSignal(),
		listenDone: make(chan struct{}),
	}
	// Listen before accepting appends: a subscriber started right after
	// Open hears other processes' commits from the start.
	lconn, err := s.connectListener(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stopListen = stop
	go s.listen(lctx, lconn)

	s.gc = eventstore.NewGroupCommitter(backend{s}, eventstore.GroupCommitConfig{
		MaxBatch:  cfg.MaxBatch,
		Committed: func(eventstore.Head) { s.wake.Broadcast() },
	})
	go s.gc.Run()
	return s, nil
}

// Pool returns the store's connection pool, whose connections have the
// store's schema as search_path, so read models can share the database (and
// transactions) with the log. Do not use it after Close.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the schema holding the store's tables.
func (s *Store) Schema() string { return s.cfg.Schema }

// Close stops accepting appends, waits for the batch in flight, stops the
// listener and closes the pool. Live subscriptions end with ErrClosed.
// Calling Close again does nothing.
func (s *Store) Close() error {
	s.close.Do(func() {
		s.closed.Store(true)
		s.gc.Close() // answers or refuses every queued append before returning
		s.stopListen()
		<-s.listenDone
		s.pool.Close()
		s.wake.Broadcast() // subscriptions wake and see ErrClosed
	})
	return nil
}

// Append implements eventstore.Store. After Close the committer answers
// ErrClosed.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	return s.gc.Append(ctx, stream, expected, events)
}

// CommitStats reports how appends were batched into transactions.
func (s *Store) CommitStats() eventstore.CommitStats { return s.gc.Stats() }

// AppendMany implements eventstore.ManyAppender: the appends share the
// committer's transactions.
func (s *Store) AppendMany(ctx context.Context, appends []eventstore.StreamAppend) ([]eventstore.AppendResult, []error) {
	return s.gc.AppendMany(ctx, appends)
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.Event, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []eventstore.Event{}, nil
	}
	q := s.sql.readStreamForwards
	if dir == eventstore.Backwards {
		q = s.sql.readStreamBackwards
	}
	rows, err := s.pool.Query(ctx, q, stream, clamp(from), limit)
	if err != nil {
		return nil, s.fail(err)
	}
	events, err := scanEvents(rows, limit)
	return events, s.fail(err)
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, err
	}
	var v int64
	if err := s.pool.QueryRow(ctx, s.sql.streamVersion, stream).Scan(&v); err != nil {
		return 0, s.fail(err)
	}
	return uint64(v), nil
}

// ReadAll implements eventstore.Store. Positions are assigned under the
// chain-head lock, so what it returns is always a gap-free prefix of the log
// (filtering aside): see the package documentation. A filtered read goes
// page by page (ReadPage), so no statement scans further than a window.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int, filter eventstore.Filter) ([]eventstore.Event, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []eventstore.Event{}, nil
	}
	if len(filter.StreamPrefixes) > 0 || len(filter.Types) > 0 {
		return eventstore.ReadAllPaged(ctx, s, after, limit, filter)
	}
	rows, err := s.pool.Query(ctx, s.sql.readAll, clamp(after), limit)
	if err != nil {
		return nil, s.fail(err)
	}
	events, err := scanEvents(rows, limit)
	return events, s.fail(err)
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Head, error) {
	if err := s.usable(ctx); err != nil {
		return eventstore.Head{}, err
	}
	var (
		pos  int64
		hash []byte
	)
	if err := s.pool.QueryRow(ctx, s.sql.head).Scan(&pos, &hash); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return eventstore.Head{}, errHeadMissing
		}
		return eventstore.Head{}, s.fail(err)
	}
	h, err := eventstore.HashFromBytes(hash)
	if err != nil {
		return eventstore.Head{}, fmt.Errorf("postgres: head: %w", err)
	}
	return eventstore.Head{Position: uint64(pos), Hash: h}, nil
}

// Subscribe implements eventstore.Store. New commits are announced with
// NOTIFY, by this process or any other; Config.Poll is only the fallback.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handler eventstore.Handler) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	return eventstore.PollSubscribe(ctx, s, after, filter, handler, eventstore.SubscribeConfig{
		Wake: s.wake,
		Poll: s.cfg.Poll,
	})
}

var errHeadMissing = errors.New("postgres: the chain-head row is missing (was it deleted with the guards disabled?)")

// usable refuses calls on a closed store or with a finished context.
func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return ctx.Err()
}

// fail translates a driver error; a call that raced Close reports ErrClosed.
func (s *Store) fail(err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return fmt.Errorf("%w: %w", eventstore.ErrClosed, err)
	}
	return interpretError(err)
}

// clamp maps a uint64 position or version onto BIGINT: values past
// math.MaxInt64 (such as math.MaxUint64 for "the newest") mean "beyond any".
func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// eventColumns is the column list every event query selects, in the order
// scanEvents reads and Insert writes.
var eventColumns = []string{
	"position", "stream", "version", "id", "type", "data", "occurred_at", "recorded_at",
	"backdate_reason", "actor_id", "actor_role", "actor_org",
	"idempotency_key", "correlation_id", "causation_id", "prev_hash", "hash",
}

// scanEvents reads event rows and closes them.
func scanEvents(rows pgx.Rows, capHint int) ([]eventstore.Event, error) {
	defer rows.Close()
	out := make([]eventstore.Event, 0, min(capHint, 1024))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// scanEvent reads the current row: the columns of lead, then eventColumns.
func scanEvent(rows pgx.Rows, lead ...any) (eventstore.Event, error) {
	var (
		e                  eventstore.Event
		pos, ver           int64
		prevHash, hash     []byte
		occurred, recorded time.Time
	)
	dest := append(lead, &pos, &e.Stream, &ver, &e.ID, &e.Type, &e.Data, &occurred, &recorded,
		&e.BackdateReason, &e.Actor.ID, &e.Actor.Role, &e.Actor.Org,
		&e.IdempotencyKey, &e.CorrelationID, &e.CausationID, &prevHash, &hash)
	if err := rows.Scan(dest...); err != nil {
		return eventstore.Event{}, err
	}
	e.Position, e.Version = uint64(pos), uint64(ver)
	e.OccurredAt, e.RecordedAt = occurred.UTC(), recorded.UTC()
	var err error
	if e.PrevHash, err = eventstore.HashFromBytes(prevHash); err != nil {
		return eventstore.Event{}, fmt.Errorf("postgres: event at position %d: prev_hash: %w", pos, err)
	}
	if e.Hash, err = eventstore.HashFromBytes(hash); err != nil {
		return eventstore.Event{}, fmt.Errorf("postgres: event at position %d: hash: %w", pos, err)
	}
	return e, nil
}
