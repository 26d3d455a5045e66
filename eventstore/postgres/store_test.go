package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/internal/pgtest"
)

// openTest opens a store on schema, closed when the test ends.
func openTest(t testing.TB, url, schema string, tweak func(*Config)) *Store {
	t.Helper()
	cfg := Config{URL: url, Schema: schema, MaxConns: 4}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

func TestContract(t *testing.T) {
	t.Parallel()
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Backend {
		url, schema := pgtest.Schema(t)
		st := openTest(t, url, schema, func(c *Config) { c.scanWindow = contractScanWindow })
		return eventstoretest.Backend{Store: st, Tamper: &tamperer{pool: st.Pool(), n: newNames(schema)}}
	}, eventstoretest.Features{ScanWindow: contractScanWindow})
}

// contractScanWindow makes ReadPage stop after a few positions in the
// contract suite, so that filtered reads and subscriptions go through many
// pages, empty ones among them. TestContractInsertPath keeps the default.
const contractScanWindow = 3

// tamperer edits the log with plain SQL, as someone with database access
// would; the guard triggers are meant to refuse it.
type tamperer struct {
	pool *pgxpool.Pool
	n    names
}

func (tp *tamperer) exec(ctx context.Context, sql string, args ...any) error {
	tag, err := tp.pool.Exec(ctx, sql, args...)
	if err != nil {
		return interpretError(err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%s: %d rows affected", sql, tag.RowsAffected())
	}
	return nil
}

func (tp *tamperer) SetData(ctx context.Context, position uint64, data []byte) error {
	return tp.exec(ctx, "UPDATE "+tp.n.events+" SET data = $1 WHERE position = $2", data, int64(position))
}

func (tp *tamperer) Delete(ctx context.Context, position uint64) error {
	return tp.exec(ctx, "DELETE FROM "+tp.n.events+" WHERE position = $1", int64(position))
}

// Swap moves a to a free position, b to a, then a to b: the primary key is
// checked row by row, so a single UPDATE could collide.
func (tp *tamperer) Swap(ctx context.Context, a, b uint64) error {
	return pgx.BeginFunc(ctx, tp.pool, func(tx pgx.Tx) error {
		var free int64
		if err := tx.QueryRow(ctx, "SELECT max(position) + 1 FROM "+tp.n.events).Scan(&free); err != nil {
			return err
		}
		for _, m := range [][2]int64{{int64(a), free}, {int64(b), int64(a)}, {free, int64(b)}} {
			tag, err := tx.Exec(ctx, "UPDATE "+tp.n.events+" SET position = $2 WHERE position = $1", m[0], m[1])
			if err != nil {
				return interpretError(err)
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("swap: no event at position %d", m[0])
			}
		}
		return nil
	})
}

func (tp *tamperer) DisableGuards(ctx context.Context) error {
	_, err := tp.pool.Exec(ctx, fmt.Sprintf("DROP TRIGGER events_immutable ON %[1]s; DROP TRIGGER events_no_truncate ON %[1]s", tp.n.events))
	return err
}

// TestGuards checks each guard trigger, and that a dropped or disabled one is
// reported by CheckGuards — also after a restart, which must not quietly
// re-create it.
func TestGuards(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.Schema(t)
	st := openTest(t, url, schema, nil)
	ctx := context.Background()
	_, err := st.Append(ctx, "g", eventstore.NoStream, eventstoretest.Events(2, "t.v1"))
	require.NoError(t, err)

	n := st.n
	refused := []string{
		"UPDATE " + n.events + " SET type = 'x'",
		"DELETE FROM " + n.events,
		"TRUNCATE " + n.events,
		"DELETE FROM " + n.head,
		"TRUNCATE " + n.head,
	}
	for _, sql := range refused {
		_, err := st.Pool().Exec(ctx, sql)
		require.ErrorIs(t, interpretError(err), ErrImmutable, sql)
	}
	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.NoError(t, st.CheckGuards(ctx))

	_, err = st.Pool().Exec(ctx, "ALTER TABLE "+n.head+" DISABLE TRIGGER head_no_delete")
	require.NoError(t, err)
	var ge *eventstore.GuardError
	require.ErrorAs(t, st.CheckGuards(ctx), &ge)
	require.Equal(t, []string{"head_no_delete"}, ge.Missing)

	tp := &tamperer{pool: st.Pool(), n: n}
	require.NoError(t, tp.DisableGuards(ctx))
	require.NoError(t, tp.SetData(ctx, 1, []byte(`{}`)))

	// A restart leaves the evidence in place.
	again := openTest(t, url, schema, nil)
	require.ErrorAs(t, again.CheckGuards(ctx), &ge)
	require.Contains(t, ge.Missing, "events_immutable")
	require.ErrorIs(t, again.CheckGuards(ctx), eventstore.ErrTampered)
}

// TestPrefixIsLiteral covers the metacharacters of LIKE that the contract
// suite does not, the backslash, through both of ReadPage's statements: the
// rare prefixes' (every prefix here, with the default window) and the
// window's (with a window of 1 and one event a call, for every prefix that
// holds more than one event).
func TestPrefixIsLiteral(t *testing.T) {
	t.Parallel()
	for _, window := range []int{0, 1} {
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) {
			url, schema := pgtest.Schema(t)
			st := openTest(t, url, schema, func(c *Config) { c.scanWindow = window })
			ctx := context.Background()
			for _, stream := range []string{`a\b`, `a\\b`, `a_b`, `axb`, `a%b`} {
				_, err := st.Append(ctx, stream, eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
				require.NoError(t, err)
			}
			streams := func(prefixes ...string) []string {
				var out []string
				var after uint64
				for {
					got, err := st.ReadAll(ctx, after, 1, eventstore.Filter{StreamPrefixes: prefixes})
					require.NoError(t, err)
					if len(got) == 0 {
						break
					}
					out = append(out, got[0].Stream)
					after = got[0].Position
				}
				all, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{StreamPrefixes: prefixes})
				require.NoError(t, err)
				require.Len(t, all, len(out))
				return out
			}
			require.Equal(t, []string{`a\b`, `a\\b`}, streams(`a\`))
			require.Equal(t, []string{`a\\b`}, streams(`a\\`))
			require.Equal(t, []string{`a_b`}, streams(`a_`))
			require.Equal(t, []string{`a%b`}, streams(`a%`))
			require.Equal(t, []string{`a_b`, `a%b`}, streams(`a%`, `a_`))
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := Config{Schema: "pg_catalog", MaxConns: -1, Poll: -time.Second, MaxBatch: -1}.Validate()
	require.Error(t, err)
	for _, want := range []string{"URL is required", "pg_ are reserved", "MaxConns", "Poll", "MaxBatch"} {
		require.ErrorContains(t, err, want)
	}
	cfg := Config{URL: "postgres://localhost/x"}
	cfg.setDefaults()
	require.NoError(t, cfg.Validate())
	require.Equal(t, "public", cfg.Schema)
	require.Equal(t, time.Second, cfg.Poll)
	require.ErrorContains(t, Config{URL: "postgres://localhost/x", Schema: string(make([]byte, 64))}.Validate(), "longer than 63")
}

func TestChannelName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "payesh_events.public", channelName("public"))
	long := channelName(string(make([]byte, 63)))
	require.LessOrEqual(t, len(long), maxIdentifierLen)
	require.NotEqual(t, long, channelName(string(make([]byte, 62))))
}

// TestTwoProcesses opens two stores on one schema, as two payeshd processes
// would, and checks that their concurrent appends form one valid chain and
// that a subscriber on one hears the other's commits through NOTIFY (its poll
// fallback is set to an hour, so nothing else could wake it).
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.Schema(t)

	// Both start at once on an empty schema: migrations take turns.
	stores := make([]*Store, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := Config{URL: url, Schema: schema, MaxConns: 4, Poll: time.Hour}
			st, err := Open(context.Background(), cfg)
			if err != nil {
				t.Errorf("open %d: %v", i, err)
				return
			}
			stores[i] = st
		}()
	}
	wg.Wait()
	for _, st := range stores {
		require.NotNil(t, st)
		t.Cleanup(func() { require.NoError(t, st.Close()) })
	}
	a, b := stores[0], stores[1]

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var (
		mu   sync.Mutex
		seen []eventstore.Event
		n    atomic.Int64
	)
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- a.Subscribe(subCtx, 0, eventstore.Filter{}, func(_ context.Context, batch []eventstore.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range batch {
				e.Data = append([]byte(nil), e.Data...)
				seen = append(seen, e)
			}
			n.Add(int64(len(batch)))
			return nil
		})
	}()
	waitFor := func(want int64, within time.Duration) {
		t.Helper()
		require.Eventually(t, func() bool { return n.Load() >= want }, within, time.Millisecond,
			"subscriber on A saw %d of %d events", n.Load(), want)
	}

	// Concurrent writers on both stores, to their own streams and to one
	// shared stream with optimistic concurrency.
	const writers, each = 8, 25
	var total atomic.Int64
	for w := range writers {
		for si, st := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					var err error
					if i%5 == 0 {
						err = appendRetrying(ctx, st, "shared")
					} else {
						_, err = st.Append(ctx, fmt.Sprintf("p%d-w%d", si, w), eventstore.Any, eventstoretest.Events(1+i%2, "t.v1"))
						if err == nil {
							total.Add(int64(1 + i%2))
							continue
						}
					}
					if err != nil {
						t.Errorf("append via store %d: %v", si, err)
						return
					}
					total.Add(1)
				}
			}()
		}
	}
	wg.Wait()

	rep, err := eventstore.Verify(ctx, b, eventstore.VerifyOptions{BatchSize: 100})
	require.NoError(t, err)
	require.Equal(t, uint64(total.Load()), rep.Events)
	headA, err := a.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, rep.Head, headA)
	v, err := a.StreamVersion(ctx, "shared")
	require.NoError(t, err)
	require.Equal(t, uint64(2*writers*each/5), v)

	waitFor(total.Load(), 10*time.Second)

	// Promptness: an append through B reaches A's subscriber in well under
	// its hour-long poll.
	for range 5 {
		start := time.Now()
		_, err := b.Append(ctx, "late", eventstore.Any, eventstoretest.Events(1, "t.v1"))
		require.NoError(t, err)
		total.Add(1)
		waitFor(total.Load(), 2*time.Second)
		t.Logf("append via B seen by subscriber on A after %s", time.Since(start))
	}

	// The listener reconnects when its connection is killed, and the
	// relayed wake-ups resume.
	var killed bool
	pid := a.listenerPID.Load()
	require.NoError(t, b.Pool().QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed))
	require.True(t, killed)
	require.Eventually(t, func() bool { return a.listenerPID.Load() != pid }, 5*time.Second, 5*time.Millisecond, "listener reconnected")
	_, err = b.Append(ctx, "after-reconnect", eventstore.Any, eventstoretest.Events(1, "t.v1"))
	require.NoError(t, err)
	total.Add(1)
	waitFor(total.Load(), 2*time.Second)

	stopSub()
	require.ErrorIs(t, <-subDone, context.Canceled)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, int(total.Load()))
	for i, e := range seen {
		require.Equal(t, uint64(i+1), e.Position, "in order, gap-free, exactly once")
	}
}

func appendRetrying(ctx context.Context, st eventstore.Store, stream string) error {
	ev := eventstoretest.Events(1, "t.v1")
	for {
		v, err := st.StreamVersion(ctx, stream)
		if err != nil {
			return err
		}
		_, err = st.Append(ctx, stream, eventstore.Exact(v), ev)
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return err
		}
	}
}

// TestContractInsertPath runs the suite again with every batch written by
// INSERT ... unnest, the path only small batches take by default (the
// default run covers both).
func TestContractInsertPath(t *testing.T) {
	t.Parallel()
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Backend {
		url, schema := pgtest.Schema(t)
		st := openTest(t, url, schema, func(c *Config) { c.copyThreshold = math.MaxInt })
		return eventstoretest.Backend{Store: st, Tamper: &tamperer{pool: st.Pool(), n: newNames(schema)}}
	}, eventstoretest.Features{})
}

// TestCloseDuringAppends closes the store while appends are in flight: each
// must either succeed or fail with ErrClosed, and none may hang.
func TestCloseDuringAppends(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.Schema(t)
	for round := range 5 {
		st, err := Open(context.Background(), Config{URL: url, Schema: schema, MaxConns: 2})
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					_, err := st.Append(context.Background(), fmt.Sprintf("c%d-%d-%d", round, w, i), eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, st.Close())
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("appends still blocked 10s after Close")
		}
		close(errs)
		for err := range errs {
			require.ErrorIs(t, err, eventstore.ErrClosed)
		}
		require.NoError(t, st.Close(), "Close is idempotent")
		_, err = st.Head(context.Background())
		require.ErrorIs(t, err, eventstore.ErrClosed)
	}
}

// TestReadersNeverSeeGaps is the property a SEQUENCE would break: while two
// stores (two processes) append concurrently, readers polling the log must
// only ever see a gap-free prefix of it. Each read after position p must
// start at p+1 and be contiguous; a reader that saw N+1 before N commits
// would fail here.
func TestReadersNeverSeeGaps(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.Schema(t)
	a := openTest(t, url, schema, nil)
	b := openTest(t, url, schema, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var writers sync.WaitGroup
	done := make(chan struct{})
	for w := range 12 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			st := []*Store{a, b}[w%2]
			for i := range 40 {
				if _, err := st.Append(ctx, fmt.Sprintf("g%d-%d", w, i%5), eventstore.Any, eventstoretest.Events(1+i%4, "t.v1")); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	go func() { writers.Wait(); close(done) }()

	var readers sync.WaitGroup
	var reads atomic.Int64
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			st := []*Store{a, b}[r%2]
			var after uint64
			for {
				finished := false
				select {
				case <-done:
					finished = true // one last read after the writers stopped
				default:
				}
				got, err := st.ReadAll(ctx, after, 50, eventstore.Filter{})
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				reads.Add(1)
				for _, e := range got {
					if e.Position != after+1 {
						t.Errorf("reader %d saw position %d right after %d", r, e.Position, after)
						return
					}
					after = e.Position
				}
				if finished && len(got) == 0 {
					return
				}
			}
		}()
	}
	readers.Wait()
	head, err := a.Head(ctx)
	require.NoError(t, err)
	rep, err := eventstore.Verify(ctx, a, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, head, rep.Head)
	t.Logf("%d events, %d gap-free reads", rep.Events, reads.Load())
}

// TestFailedCommitReleasesConnection makes every commit fail (a row written
// behind the store's back occupies the next position) and checks that the
// appends fail cleanly and no connection leaks: with MaxConns 2, one leaked
// connection per failure would block the store after two.
func TestFailedCommitReleasesConnection(t *testing.T) {
	t.Parallel()
	url, schema := pgtest.Schema(t)
	st := openTest(t, url, schema, func(c *Config) { c.MaxConns = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := st.Append(ctx, "f", eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
	require.NoError(t, err)
	_, err = st.Pool().Exec(ctx, `INSERT INTO `+st.n.events+` (position, stream, version, id, type, data, occurred_at, recorded_at, prev_hash, hash)
VALUES (2, 'intruder', 1, 'intruder-1', 't', '', now(), now(), decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))`)
	require.NoError(t, err)

	for i := range 6 {
		n := 1 + i%5 // both write paths: INSERT below the COPY threshold, COPY above
		_, err := st.Append(ctx, "f", eventstore.Any, eventstoretest.Events(n, "t.v1"))
		require.Error(t, err)
		require.NotErrorIs(t, err, eventstore.ErrClosed)
	}
	head, err := st.Head(ctx)
	require.NoError(t, err, "connections were returned to the pool")
	require.Equal(t, uint64(1), head.Position, "failed appends moved nothing")
	v, err := st.StreamVersion(ctx, "f")
	require.NoError(t, err)
	require.Equal(t, uint64(1), v)
}
