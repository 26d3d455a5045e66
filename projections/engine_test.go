package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/projectionstest"
)

// counter counts the events of every stream (that filter selects): an
// event applied twice, or a batch half applied, shows in its table. Its
// hook, when set, runs before each batch and may fail it.
type counter struct {
	name    string
	version int
	filter  eventstore.Filter
	hook    func(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error
}

func (c *counter) Name() string              { return c.name }
func (c *counter) Version() int              { return c.version }
func (c *counter) Tables() []string          { return []string{c.name} }
func (c *counter) Filter() eventstore.Filter { return c.filter }
func (c *counter) Schema(d projections.Dialect, t projections.TableNames) projections.Schema {
	extra := ""
	if c.version > 1 {
		extra = fmt.Sprintf(", v%d %s NOT NULL DEFAULT %d", c.version, d.Int(), c.version)
	}
	return projections.Schema{
		Tables: []string{`CREATE TABLE ` + t.Table(c.name) + ` (stream ` + d.Text() + ` NOT NULL PRIMARY KEY, events ` + d.Int() +
			` NOT NULL, last_position ` + d.Int() + ` NOT NULL` + extra + `)` + d.TableOptions()},
		Indexes: []string{`CREATE INDEX IF NOT EXISTS ` + t.Index(c.name, "pos") + ` ON ` + t.Table(c.name) + ` (last_position)`},
	}
}

func (c *counter) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	if c.hook != nil {
		if err := c.hook(ctx, tx, t, batch); err != nil {
			return err
		}
	}
	return c.count(ctx, tx, t, batch)
}

// count applies events one statement each, so a batch cut short leaves
// some applied inside the transaction.
func (c *counter) count(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	for _, e := range batch {
		if _, err := tx.Exec(ctx, `INSERT INTO `+t.Table(c.name)+` (stream, events, last_position) VALUES (?, 1, ?)
ON CONFLICT (stream) DO UPDATE SET events = `+t.Table(c.name)+`.events + 1, last_position = excluded.last_position`,
			e.Stream, int64(e.Position)); err != nil {
			return err
		}
	}
	return nil
}

// counts reads the counter's table.
func counts(t *testing.T, db *projections.DB, table string) map[string]int64 {
	t.Helper()
	rows, err := db.Read.QueryContext(context.Background(), `SELECT stream, events FROM `+table)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			s string
			n int64
		)
		require.NoError(t, rows.Scan(&s, &n))
		out[s] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// streamVersions is what counts must be once the counter reflects position
// upTo: each stream's number of events up to it.
func streamVersions(t *testing.T, st eventstore.Store, upTo uint64) map[string]int64 {
	t.Helper()
	return streamCounts(t, st, upTo, eventstore.Filter{})
}

// streamCounts is what counts must be once a counter with filter f
// reflects position upTo: each stream's number of events up to it that f
// selects.
func streamCounts(t *testing.T, st eventstore.Store, upTo uint64, f eventstore.Filter) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	var after uint64
	for after < upTo {
		evs, err := st.ReadAll(context.Background(), after, 1000, eventstore.Filter{})
		require.NoError(t, err)
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Position <= upTo && f.Matches(&e) {
				out[e.Stream]++
			}
			after = e.Position
		}
	}
	return out
}

func newEngine(t *testing.T, env *projectionstest.Env, batch int, ps ...projections.Projector) *projections.Engine {
	t.Helper()
	e, err := projections.New(projections.Config{
		Store: env.Store, DB: env.DB, Projectors: ps, BatchSize: batch, RetryBackoff: 5 * time.Millisecond,
	})
	require.NoError(t, err)
	return e
}

// start runs e until the test ends (or stop is called).
func start(t *testing.T, e *projections.Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitHead(t *testing.T, e *projections.Engine, env *projectionstest.Env, name string) {
	t.Helper()
	_, err := e.Reader().WaitFor(context.Background(), name, env.Head(t), 60*time.Second)
	require.NoError(t, err)
}

func dumpFacilities(t *testing.T, db *projections.DB) [][]string {
	t.Helper()
	return [][]string{
		projectionstest.Dump(t, db, facilities.FacilitiesTable, "facility_id"),
		projectionstest.Dump(t, db, facilities.InspectionsTable, "facility_id", "seq"),
		projectionstest.Dump(t, db, facilities.JobCountsTable, "fiscal_year", "province", "county", "agency", "program", "bank"),
	}
}

func storedState(t *testing.T, db *projections.DB, name string) projections.StoredState {
	t.Helper()
	states, err := projections.NewReader(db).States(context.Background())
	require.NoError(t, err)
	for _, s := range states {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no state for %s", name)
	return projections.StoredState{}
}

func TestKilledMidBatchResumesExactlyWhereItStopped(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 40, 4)

		// First run: the counter is killed in the middle of its third
		// catch-up batch, after half of it was written in the transaction.
		ctx, kill := context.WithCancel(context.Background())
		var calls atomic.Int32
		c := &counter{name: "test_counts", version: 1}
		c.hook = func(ctx context.Context, tx *projections.Tx, tn projections.TableNames, batch []projections.Envelope) error {
			if calls.Add(1) != 3 {
				return nil
			}
			require.NoError(t, c.count(ctx, tx, tn, batch[:len(batch)/2]))
			kill()
			<-ctx.Done()
			return ctx.Err()
		}
		e := newEngine(t, env, 50, c, facilities.New())
		require.ErrorIs(t, e.Run(ctx), context.Canceled)

		st := storedState(t, env.DB, c.name)
		require.EqualValues(t, 100, st.Position, "two whole batches of 50, none of the third")
		require.Equal(t, streamVersions(t, env.Store, st.Position), counts(t, env.DB, c.name))

		// Restart, as a new process: everything is applied exactly once.
		env.Reopen(t)
		h.Use(env.Service(t))
		c.hook = nil
		e = newEngine(t, env, 50, c, facilities.New())
		start(t, e)
		waitHead(t, e, env, c.name)
		waitHead(t, e, env, facilities.Name)
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, c.name))

		// Live traffic after the restart.
		before := dumpFacilities(t, env.DB)
		h.Step()
		waitHead(t, e, env, facilities.Name)
		waitHead(t, e, env, c.name)
		require.NotEqual(t, before, dumpFacilities(t, env.DB))
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, c.name))
		uninterrupted := dumpFacilities(t, env.DB)
		require.NoError(t, e.Rebuild(context.Background(), facilities.Name, nil))
		require.Equal(t, uninterrupted, dumpFacilities(t, env.DB), "the restarted tables equal a full replay")
	})
}

func TestKilledInALiveBatch(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 12, 5)
		c := &counter{name: "test_counts", version: 1}
		e := newEngine(t, env, 1000, c)
		stop := start(t, e)
		waitHead(t, e, env, c.name)
		stop()

		ctx, kill := context.WithCancel(context.Background())
		headBefore := env.Head(t)
		c.hook = func(ctx context.Context, tx *projections.Tx, tn projections.TableNames, batch []projections.Envelope) error {
			require.NoError(t, c.count(ctx, tx, tn, batch[:1]))
			kill()
			<-ctx.Done()
			return ctx.Err()
		}
		e = newEngine(t, env, 1000, c)
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		h.Step()
		require.ErrorIs(t, <-done, context.Canceled)
		require.Equal(t, headBefore, storedState(t, env.DB, c.name).Position)

		env.Reopen(t)
		h.Use(env.Service(t))
		c.hook = nil
		e = newEngine(t, env, 1000, c)
		start(t, e)
		waitHead(t, e, env, c.name)
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, c.name))
	})
}

func TestFailingBatchMarksTheProjectionFailedAndStopsBeforeIt(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 20, 6)
		// The first inspection poisons the counter; the facilities
		// projection is not affected.
		var poison uint64
		evs, err := env.Store.ReadAll(context.Background(), 0, 100_000, eventstore.Filter{Types: []string{"facility.inspected.v1"}})
		require.NoError(t, err)
		require.NotEmpty(t, evs)
		poison = evs[0].Position
		var attempts atomic.Int32
		c := &counter{name: "test_counts", version: 1}
		c.hook = func(_ context.Context, _ *projections.Tx, _ projections.TableNames, batch []projections.Envelope) error {
			for _, e := range batch {
				if e.Position == poison {
					attempts.Add(1)
					return errors.New("cannot count inspections today")
				}
			}
			return nil
		}
		e := newEngine(t, env, 100, c, facilities.New())
		start(t, e)
		waitHead(t, e, env, facilities.Name)

		_, err = e.Reader().WaitFor(context.Background(), c.name, env.Head(t), 10*time.Second)
		require.ErrorIs(t, err, projections.ErrFailed)
		require.Contains(t, err.Error(), "cannot count inspections today")
		require.EqualValues(t, 5, attempts.Load(), "retried MaxAttempts times")
		st := storedState(t, env.DB, c.name)
		require.Equal(t, projections.StatusFailed, st.Status)
		require.Contains(t, st.LastError, "cannot count inspections today")
		require.Less(t, st.Position, poison, "not advanced past the batch it could not apply")
		require.Equal(t, streamVersions(t, env.Store, st.Position), counts(t, env.DB, c.name))
		var status projections.Status
		for _, s := range e.Status() {
			if s.Name == c.name {
				status = s
			}
		}
		require.Equal(t, projections.StateFailed, status.State)
		require.Contains(t, status.LastError, "cannot count inspections today")
		require.False(t, status.Ready())

		// Fixed and restarted: it goes on from where it stopped.
		c.hook = nil
		e2 := newEngine(t, env, 100, c)
		start(t, e2)
		head := env.Head(t)
		require.Eventually(t, func() bool { // WaitFor would report the failure until e2 has started
			pos, err := e2.Reader().Position(context.Background(), c.name)
			return err == nil && pos == head
		}, 10*time.Second, 5*time.Millisecond)
		require.Equal(t, projections.StatusRunning, storedState(t, env.DB, c.name).Status)
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, c.name))
	})
}

func TestTransientFailureIsRetried(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 10, 7)
		var n atomic.Int32
		c := &counter{name: "test_counts", version: 1}
		c.hook = func(context.Context, *projections.Tx, projections.TableNames, []projections.Envelope) error {
			if n.Add(1) <= 2 {
				return errors.New("deadlock detected")
			}
			return nil
		}
		e := newEngine(t, env, 40, c)
		start(t, e)
		waitHead(t, e, env, c.name)
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, c.name))
		require.Equal(t, projections.StateLive, e.Status()[0].State)
	})
}

func TestNewVersionIsRebuiltBlueGreen(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 10, 8)
		v1 := &counter{name: "test_counts", version: 1}
		e := newEngine(t, env, 40, v1)
		stop := start(t, e)
		waitHead(t, e, env, v1.name)
		stop()
		require.EqualValues(t, 1, storedState(t, env.DB, v1.name).Generation)

		v2 := &counter{name: "test_counts", version: 2}
		e = newEngine(t, env, 40, v2)
		start(t, e)
		// Until the swap, the live tables are v1's, at the head.
		require.Eventually(t, func() bool { return storedState(t, env.DB, v2.name).Version == 2 }, 10*time.Second, 5*time.Millisecond)
		waitHead(t, e, env, v2.name)
		st := storedState(t, env.DB, v2.name)
		require.Equal(t, 2, st.Version)
		require.EqualValues(t, 2, st.Generation)
		require.Zero(t, st.NextGeneration)
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, v2.name))
		var v int
		require.NoError(t, env.DB.Read.QueryRow(`SELECT v2 FROM test_counts LIMIT 1`).Scan(&v))
		require.Equal(t, 2, v)
		require.Positive(t, statistics(t, env.DB, "test_counts"), "the rebuilt table goes live with planner statistics")
		require.Zero(t, statistics(t, env.DB, projections.NextTables(2).Table("test_counts")))
	})
}

func TestLongCatchUpAnalysesTheTables(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 10, 8)
		c := &counter{name: "test_counts", version: 1}
		e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{c},
			BatchSize: 40, RetryBackoff: 5 * time.Millisecond, AnalyzeAfter: 50})
		require.NoError(t, err)
		start(t, e)
		waitHead(t, e, env, c.name)
		require.Eventually(t, func() bool { return statistics(t, env.DB, "test_counts") > 0 }, 10*time.Second, 10*time.Millisecond,
			"a first build by catch-up of more than AnalyzeAfter events leaves statistics")
	})
}

// statistics counts the planner statistics rows the database holds for
// table.
func statistics(t *testing.T, db *projections.DB, table string) int {
	t.Helper()
	q := `SELECT count(*) FROM sqlite_stat1 WHERE tbl = ?`
	if !db.Dialect.IsPostgres() {
		var tables int
		require.NoError(t, db.Read.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'`).Scan(&tables))
		if tables == 0 {
			return 0 // nothing was ever analysed
		}
	}
	if db.Dialect.IsPostgres() {
		q = `SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = $1`
	}
	var n int
	require.NoError(t, db.Read.QueryRow(q, table).Scan(&n))
	return n
}

func TestInterruptedRebuildResumes(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 30, 9)
		c := &counter{name: "test_counts", version: 1}
		e := newEngine(t, env, 30, c, facilities.New())
		start(t, e)
		waitHead(t, e, env, facilities.Name)
		want := dumpFacilities(t, env.DB)

		ctx, cancel := context.WithCancel(context.Background())
		var firstStop uint64
		err := e.Rebuild(ctx, facilities.Name, func(pos, head uint64) {
			if pos >= 90 && firstStop == 0 {
				firstStop = pos
				cancel()
			}
		})
		require.ErrorIs(t, err, context.Canceled)
		st := storedState(t, env.DB, facilities.Name)
		require.Equal(t, projections.StatusRebuilding, st.Status)
		require.Equal(t, firstStop, st.NextPosition)
		require.True(t, projectionstest.TableExists(t, env.DB, "facilities__next"))
		require.Equal(t, want, dumpFacilities(t, env.DB), "the live tables are untouched")

		var resumedAt uint64
		require.NoError(t, e.Rebuild(context.Background(), facilities.Name, func(pos, head uint64) {
			if resumedAt == 0 {
				resumedAt = pos
			}
		}))
		require.Greater(t, resumedAt, firstStop, "resumed, not restarted from 0")
		require.Equal(t, want, dumpFacilities(t, env.DB))
		st = storedState(t, env.DB, facilities.Name)
		require.Equal(t, projections.StatusRunning, st.Status)
		require.EqualValues(t, 2, st.Generation)
		require.False(t, projectionstest.TableExists(t, env.DB, "facilities__next"))
	})
}

// Two processes run the same projections, while a third (the CLI) rebuilds
// one of them: every event is still applied exactly once.
func TestConcurrentEnginesApplyEachEventOnce(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 20, 10)
		other := env.Another(t)
		cli := env.Another(t)
		c := &counter{name: "test_counts", version: 1}
		e1 := newEngine(t, env, 25, c, facilities.New())
		e2 := newEngine(t, other, 25, c, facilities.New())
		start(t, e1)
		start(t, e2)
		e3 := newEngine(t, cli, 25, c, facilities.New())
		rebuilt := make(chan error, 1)
		go func() {
			time.Sleep(20 * time.Millisecond)
			rebuilt <- e3.Rebuild(context.Background(), facilities.Name, nil)
		}()
		for range 3 {
			h.Register(2)
			h.Step()
		}
		require.NoError(t, <-rebuilt)
		waitHead(t, e1, env, c.name)
		waitHead(t, e2, env, facilities.Name)
		waitHead(t, e1, env, facilities.Name)
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, c.name))
		got := dumpFacilities(t, env.DB)
		require.NoError(t, e1.Rebuild(context.Background(), facilities.Name, nil))
		require.Equal(t, got, dumpFacilities(t, env.DB))
	})
}

// The path the Watermill Router will take: events handed over one at a
// time, some twice.
func TestHandleAppliesSingleEventsOnce(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 15, 12)
		c := &counter{name: "test_counts", version: 1}
		e := newEngine(t, env, 100, c, facilities.New())
		ctx := context.Background()
		require.NoError(t, e.Prepare(ctx, c.name))
		require.NoError(t, e.Prepare(ctx, facilities.JobCountsTable))
		evs, err := env.Store.ReadAll(ctx, 0, 100_000, eventstore.Filter{})
		require.NoError(t, err)
		for i := range evs {
			for _, name := range []string{c.name, facilities.Name} {
				require.NoError(t, e.Handle(ctx, name, evs[i:i+1]))
				if i%3 == 0 { // redelivered
					require.NoError(t, e.Handle(ctx, name, evs[max(i-2, 0):i+1]))
				}
			}
		}
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, c.name))
		handled := dumpFacilities(t, env.DB)
		require.NoError(t, e.Rebuild(ctx, facilities.Name, nil))
		require.Equal(t, handled, dumpFacilities(t, env.DB))
		require.ErrorIs(t, e.Handle(ctx, "nope", evs[:1]), projections.ErrUnknownProjection)
	})
}

// Another process (an Engine starting with the new version, or a second
// payesh projections rebuild) resumes a rebuild in progress and swaps it in
// first: the first one finds its work done.
func TestRebuildCompletedByAnotherProcess(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 20, 13)
		e1 := newEngine(t, env, 40, facilities.New())
		start(t, e1)
		waitHead(t, e1, env, facilities.Name)
		want := dumpFacilities(t, env.DB)

		e2 := newEngine(t, env.Another(t), 40, facilities.New())
		calls := 0
		require.NoError(t, e1.Rebuild(context.Background(), facilities.Name, func(pos, head uint64) {
			if calls++; calls == 2 {
				require.NoError(t, e2.Rebuild(context.Background(), facilities.Name, nil))
			}
		}))
		require.Equal(t, 2, calls, "e1 stopped at its next batch: the work was done")
		require.Equal(t, want, dumpFacilities(t, env.DB))
		st := storedState(t, env.DB, facilities.Name)
		require.Zero(t, st.NextGeneration)
		require.EqualValues(t, 2, st.Generation, "e2 resumed e1's generation rather than starting another")
	})
}

func TestConfigIsValidated(t *testing.T) {
	_, err := projections.New(projections.Config{Projectors: []projections.Projector{
		&counter{name: "facilities"}, facilities.New(), &counter{name: "Bad-Name"},
	}})
	require.Error(t, err)
	for _, want := range []string{"Store is required", "DB is required", `"facilities" used by`, `"Bad-Name" is not a valid name`} {
		require.Contains(t, err.Error(), want)
	}
}

func TestUnknownNamesAndFreshDatabase(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		e := newEngine(t, env, 10, facilities.New())
		err := e.Rebuild(context.Background(), "nope", nil)
		require.ErrorIs(t, err, projections.ErrUnknownProjection)
		_, err = e.Reader().Position(context.Background(), "nope")
		require.ErrorIs(t, err, projections.ErrUnknownProjection)
		// No projection_state table yet: every model is at 0.
		pos, err := e.Reader().Position(context.Background(), facilities.JobCountsTable)
		require.NoError(t, err)
		require.Zero(t, pos, "never run")
		states, err := e.Reader().States(context.Background())
		require.NoError(t, err)
		require.Empty(t, states)
		require.False(t, e.Ready())
		start(t, e)
		require.Eventually(t, e.Ready, 10*time.Second, 5*time.Millisecond)
	})
}

func TestRebind(t *testing.T) {
	q := `SELECT '?', "a?b", x -- why?
FROM t WHERE a = ? AND b IN (?, ?)`
	require.Equal(t, q, projections.SQLite.Rebind(q))
	require.Equal(t, `SELECT '?', "a?b", x -- why?
FROM t WHERE a = $1 AND b IN ($2, $3)`, projections.Postgres.Rebind(q))
	require.True(t, strings.HasSuffix(projections.Postgres.Rebind("a = ?"), "$1"))
}

// The live path runs in a Watermill Router: a projector that panics on a
// live event is recovered, retried with backoff, and then stopped at that
// event, visibly, with nothing after it applied; the other projections go
// on. Fixed and restarted, it resumes at the event.
func TestLivePoisonEventStopsTheProjectionVisibly(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 12, 8)
		var armed atomic.Bool
		var attempts atomic.Int32
		c := &counter{name: "test_counts", version: 1}
		c.hook = func(_ context.Context, _ *projections.Tx, _ projections.TableNames, batch []projections.Envelope) error {
			if armed.Load() && len(batch) > 0 && batch[0].Type == "facility.registered.v1" {
				attempts.Add(1)
				panic("projector bug")
			}
			return nil
		}
		e := newEngine(t, env, 100, c, facilities.New())
		start(t, e)
		waitHead(t, e, env, c.name)
		before := env.Head(t)

		armed.Store(true)
		h.Register(2) // the first registration is the poison
		h.Step()      // events after it
		head := env.Head(t)
		require.Greater(t, head, before)

		_, err := e.Reader().WaitFor(context.Background(), c.name, head, 30*time.Second)
		require.ErrorIs(t, err, projections.ErrFailed)
		require.Contains(t, err.Error(), "projector bug")
		require.EqualValues(t, 5, attempts.Load(), "recovered and retried MaxAttempts times")
		st := storedState(t, env.DB, c.name)
		require.Equal(t, projections.StatusFailed, st.Status)
		require.Less(t, st.Position, head, "stopped before the event it could not apply")
		require.Equal(t, streamVersions(t, env.Store, st.Position), counts(t, env.DB, c.name), "nothing skipped, nothing after")
		var status projections.Status
		for _, s := range e.Status() {
			if s.Name == c.name {
				status = s
			}
		}
		require.Equal(t, projections.StateFailed, status.State)
		require.EqualValues(t, 4, status.Retries)
		require.False(t, e.Ready())
		waitHead(t, e, env, facilities.Name) // the others go on

		// Fixed and restarted (a new process): it resumes at the event.
		armed.Store(false)
		e2 := newEngine(t, env, 100, c)
		start(t, e2)
		require.Eventually(t, func() bool {
			pos, err := e2.Reader().Position(context.Background(), c.name)
			return err == nil && pos == head
		}, 30*time.Second, 5*time.Millisecond)
		require.Equal(t, streamVersions(t, env.Store, head), counts(t, env.DB, c.name))
	})
}

// Rebuilding again and again works: no name of the previous generation's
// tables, indexes or constraints is in the way of the next.
func TestRepeatedRebuilds(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 10, 9)
		e := newEngine(t, env, 100, facilities.New())
		start(t, e)
		waitHead(t, e, env, facilities.Name)
		want := dumpFacilities(t, env.DB)
		for range 3 {
			require.NoError(t, e.Rebuild(context.Background(), facilities.Name, nil))
			require.Equal(t, want, dumpFacilities(t, env.DB))
		}
	})
}
