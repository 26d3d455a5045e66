package projections_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/projections/quotas"
)

// readModels are the real read models, each with another filter, and two
// counters: one reading every event, one a few types of facility event.
func readModels() []projections.Projector {
	return []projections.Projector{
		facilities.New(), quotas.New(), inspections.New(), deviations.New(),
		&counter{name: "all_counts", version: 1},
		&counter{name: "some_counts", version: 1, filter: eventstore.Filter{
			StreamPrefixes: []string{"facility-"}, Types: []string{facility.TypeRegistered, facility.TypeInspected},
		}},
	}
}

// dumpAll dumps every table of ps, each row in full, rows in order.
func dumpAll(t *testing.T, db *projections.DB, ps []projections.Projector) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range ps {
		for _, table := range p.Tables() {
			dump := projectionstest.Dump(t, db, table, "1")
			require.NotEmpty(t, dump, "%s is empty: the history does not exercise it", table)
			slices.Sort(dump) // by every column: the first may repeat
			out[table] = dump
		}
	}
	return out
}

func waitAll(t *testing.T, e *projections.Engine, env *projectionstest.Env, ps []projections.Projector) {
	t.Helper()
	for _, p := range ps {
		waitHead(t, e, env, p.Name())
	}
}

// requireSwappedIn checks that every projection of ps was rebuilt as
// generation gen and is live at position at least pos.
func requireSwappedIn(t *testing.T, env *projectionstest.Env, ps []projections.Projector, gen int64, pos uint64) {
	t.Helper()
	for _, p := range ps {
		st := storedState(t, env.DB, p.Name())
		require.Equal(t, gen, st.Generation, p.Name())
		require.Equal(t, projections.StatusRunning, st.Status, p.Name())
		require.Zero(t, st.NextGeneration, p.Name())
		require.GreaterOrEqual(t, st.Position, pos, p.Name())
		for _, table := range p.Tables() {
			require.False(t, projectionstest.TableExists(t, env.DB, table+"__next"), table)
			require.False(t, projectionstest.TableExists(t, env.DB, table+"__old"), table)
		}
	}
}

// One read of the log rebuilds every projection to exactly what live
// processing built and what a rebuild of each alone builds, also while
// the live runners run and the log grows.
func TestRebuildAllEqualsLiveProcessingAndSeparateRebuilds(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 24, 31)
		h.Register(6)
		h.Step() // some referred and waiting for a bank (quotas' unmet demand)
		ps := readModels()
		e := newEngine(t, env, 37, ps...) // batches cut facilities' histories anywhere
		start(t, e)
		waitAll(t, e, env, ps)
		live := dumpAll(t, env.DB, ps)
		head := env.Head(t)
		for _, c := range ps[4:] {
			c := c.(*counter)
			require.Equal(t, streamCounts(t, env.Store, head, c.filter), counts(t, env.DB, c.name), c.name)
		}

		// Progress: one caller at a time, never backwards, up to the head.
		var (
			inside atomic.Bool
			seen   []uint64
		)
		progress := func(pos, logHead uint64) {
			require.True(t, inside.CompareAndSwap(false, true), "progress called concurrently")
			defer inside.Store(false)
			require.LessOrEqual(t, pos, logHead)
			seen = append(seen, pos)
		}
		require.NoError(t, e.RebuildAll(context.Background(), nil, progress))
		require.True(t, slices.IsSorted(seen), "progress went back: %v", seen)
		require.Greater(t, len(seen), 5, "reported batch by batch")
		require.Equal(t, head, seen[len(seen)-1])
		requireSwappedIn(t, env, ps, 2, head)
		require.Equal(t, live, dumpAll(t, env.DB, ps), "RebuildAll equals live processing")

		// Again while the log grows and the live runners follow it: what
		// the swap finds appended since the replay is applied too. Each
		// rebuilt alone gives the same.
		rebuilt := make(chan error, 1)
		go func() { rebuilt <- e.RebuildAll(context.Background(), nil, nil) }()
		h.Register(4)
		h.Step()
		h.QuotaStep()
		require.NoError(t, <-rebuilt)
		waitAll(t, e, env, ps)
		grown := dumpAll(t, env.DB, ps)
		require.NotEqual(t, live, grown)
		for _, p := range ps {
			require.NoError(t, e.Rebuild(context.Background(), p.Name(), nil), p.Name())
		}
		requireSwappedIn(t, env, ps, 4, env.Head(t))
		require.Equal(t, grown, dumpAll(t, env.DB, ps), "separate rebuilds equal RebuildAll")
		for _, c := range ps[4:] {
			c := c.(*counter)
			require.Equal(t, streamCounts(t, env.Store, env.Head(t), c.filter), counts(t, env.DB, c.name), c.name)
		}

		// Names: projector or table names, each projection once; unknown
		// names are refused before anything starts.
		require.NoError(t, e.RebuildAll(context.Background(), []string{facilities.JobCountsTable, facilities.Name, "some_counts"}, nil))
		require.EqualValues(t, 5, storedState(t, env.DB, facilities.Name).Generation)
		require.EqualValues(t, 5, storedState(t, env.DB, "some_counts").Generation)
		require.EqualValues(t, 4, storedState(t, env.DB, quotas.Name).Generation)
		err := e.RebuildAll(context.Background(), []string{facilities.Name, "nope", "nada"}, nil)
		require.ErrorIs(t, err, projections.ErrUnknownProjection)
		require.Contains(t, err.Error(), `"nope"`)
		require.Contains(t, err.Error(), `"nada"`)
		require.EqualValues(t, 5, storedState(t, env.DB, facilities.Name).Generation)
		require.Zero(t, storedState(t, env.DB, facilities.Name).NextGeneration)
	})
}

// A RebuildAll killed while its projectors are at different batches
// resumes each from its own checkpoint: nothing applied twice, nothing
// left out, every rebuild in the generation it started.
func TestRebuildAllInterruptedResumesEachProjector(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 30, 32)
		const batch = 25
		slow := &counter{name: "slow_counts", version: 1}
		fast := &counter{name: "fast_counts", version: 1}
		ps := []projections.Projector{slow, facilities.New(), fast}

		// The hooks act on rebuild batches only: in the first rebuild the
		// slow counter stops in its third batch until the fast one has gone
		// two batches further, and then the process dies; in the second,
		// they note where each resumed.
		const (
			kill   = 1
			resume = 2
		)
		var (
			phase       atomic.Int32
			fastBatches atomic.Int32
			slowBatches int
			mu          sync.Mutex
			firsts      = map[string]uint64{}
		)
		ctx, cancel := context.WithCancel(context.Background())
		noteFirst := func(name string, b []projections.Envelope) {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := firsts[name]; !ok && len(b) > 0 {
				firsts[name] = b[0].Position
			}
		}
		fast.hook = func(_ context.Context, _ *projections.Tx, tn projections.TableNames, b []projections.Envelope) error {
			switch {
			case !tn.Next():
			case phase.Load() == kill:
				fastBatches.Add(1)
			case phase.Load() == resume:
				noteFirst(fast.name, b)
			}
			return nil
		}
		slow.hook = func(ctx context.Context, tx *projections.Tx, tn projections.TableNames, b []projections.Envelope) error {
			switch {
			case !tn.Next():
			case phase.Load() == resume:
				noteFirst(slow.name, b)
			case phase.Load() == kill:
				if slowBatches++; slowBatches < 3 {
					return nil
				}
				if fastBatches.Load() < 5 { // its fifth started: four committed
					// Retried after a backoff, outside the transaction:
					// SQLite has one writer.
					return errors.New("not yet")
				}
				require.NoError(t, slow.count(ctx, tx, tn, b[:len(b)/2])) // half a batch, rolled back
				cancel()
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
		e, err := projections.New(projections.Config{
			Store: env.Store, DB: env.DB, Projectors: ps, BatchSize: batch, RetryBackoff: time.Millisecond, MaxAttempts: 1000,
		})
		require.NoError(t, err)
		start(t, e)
		waitAll(t, e, env, ps)
		live := dumpAll(t, env.DB, ps)
		head := env.Head(t)
		require.Greater(t, head, uint64(10*batch))

		phase.Store(kill)
		err = e.RebuildAll(ctx, nil, nil)
		require.ErrorIs(t, err, context.Canceled)
		require.NotContains(t, err.Error(), "rebuild of", "an interruption is not a failure")

		at := map[string]uint64{}
		for _, p := range ps {
			st := storedState(t, env.DB, p.Name())
			require.Equal(t, projections.StatusRebuilding, st.Status, p.Name())
			require.EqualValues(t, 2, st.NextGeneration, p.Name())
			at[p.Name()] = st.NextPosition
		}
		require.EqualValues(t, 2*batch, at[slow.name], "two whole batches, none of the third")
		require.GreaterOrEqual(t, at[fast.name], uint64(4*batch), "the fast one went on meanwhile")
		require.LessOrEqual(t, at[fast.name], uint64(8*batch), "within its queue of the slow one")
		require.Equal(t, streamVersions(t, env.Store, at[slow.name]), counts(t, env.DB, slow.name+"__next"))
		require.Equal(t, streamVersions(t, env.Store, at[fast.name]), counts(t, env.DB, fast.name+"__next"))
		require.Equal(t, live, dumpAll(t, env.DB, ps), "the live tables are untouched")

		// Resumed, as another process: each takes up from its own
		// checkpoint, while the first process's runners go on live.
		phase.Store(resume)
		e2 := newEngine(t, env.Another(t), batch, ps...)
		var first uint64
		require.NoError(t, e2.RebuildAll(context.Background(), nil, func(pos, _ uint64) {
			if first == 0 {
				first = pos
			}
		}))
		require.Equal(t, at[slow.name]+1, firsts[slow.name], "the slow one resumed after its checkpoint")
		require.Equal(t, at[fast.name]+1, firsts[fast.name], "the fast one resumed after its own")
		require.Greater(t, first, at[slow.name], "progress starts from the slowest checkpoint")
		requireSwappedIn(t, env, ps, 2, head)
		require.Equal(t, live, dumpAll(t, env.DB, ps))
		require.Equal(t, streamVersions(t, env.Store, head), counts(t, env.DB, slow.name))
		require.Equal(t, streamVersions(t, env.Store, head), counts(t, env.DB, fast.name))
	})
}

// A projector that fails its rebuild fails the RebuildAll with an error
// naming it and keeps its live tables, which go on following the log; the
// others are rebuilt and swapped in. Fixed, it resumes its rebuild.
func TestRebuildAllFailingProjectorKeepsItsLiveTables(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 20, 33)
		broken := &counter{name: "broken_counts", version: 1}
		var (
			armed    atomic.Bool
			attempts atomic.Int32
			failFrom atomic.Uint64
		)
		broken.hook = func(_ context.Context, _ *projections.Tx, tn projections.TableNames, b []projections.Envelope) error {
			if armed.Load() && tn.Next() && b[len(b)-1].Position > failFrom.Load() {
				attempts.Add(1)
				return errors.New("cannot count this today")
			}
			return nil
		}
		ps := []projections.Projector{facilities.New(), broken, &counter{name: "all_counts", version: 1}}
		e := newEngine(t, env, 30, ps...)
		start(t, e)
		waitAll(t, e, env, ps)
		live := dumpAll(t, env.DB, ps)
		head := env.Head(t)

		failFrom.Store(head / 2)
		armed.Store(true)
		err := e.RebuildAll(context.Background(), nil, nil)
		require.Error(t, err)
		require.Contains(t, err.Error(), "rebuild of broken_counts")
		require.Contains(t, err.Error(), "cannot count this today")
		require.NotContains(t, err.Error(), "rebuild of facilities")
		require.NotContains(t, err.Error(), "rebuild of all_counts")
		require.EqualValues(t, 5, attempts.Load(), "retried MaxAttempts times")

		st := storedState(t, env.DB, broken.name)
		require.EqualValues(t, 1, st.Generation, "not swapped in")
		require.EqualValues(t, 2, st.NextGeneration, "its rebuild stays, to resume")
		require.Less(t, st.NextPosition, head)
		require.Equal(t, live[broken.name], dumpAll(t, env.DB, ps)[broken.name], "its live tables are untouched")
		requireSwappedIn(t, env, []projections.Projector{ps[0], ps[2]}, 2, head)
		require.Equal(t, live, dumpAll(t, env.DB, ps), "the others rebuilt to the same tables")

		// Its live tables still follow the log.
		h.Step()
		waitAll(t, e, env, ps)
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, broken.name))

		// Fixed: the next RebuildAll resumes its rebuild where it stopped.
		armed.Store(false)
		require.NoError(t, e.RebuildAll(context.Background(), []string{broken.name}, nil))
		st = storedState(t, env.DB, broken.name)
		require.EqualValues(t, 2, st.Generation, "the same generation, resumed")
		require.Equal(t, streamVersions(t, env.Store, env.Head(t)), counts(t, env.DB, broken.name))
	})
}

// Projectors whose Filters select nothing in common each see only their
// own events, also in a batch shared with others.
func TestRebuildAllHandsEachProjectorItsOwnEvents(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 10, 34)
		filters := []eventstore.Filter{
			{StreamPrefixes: []string{"quota-"}},
			{Types: []string{facility.TypeInspected}},
			{StreamPrefixes: []string{"facility-"}, Types: []string{facility.TypeRegistered}},
		}
		var ps []projections.Projector
		var bad atomic.Value
		for i, f := range filters {
			c := &counter{name: fmt.Sprintf("only_%d", i), version: 1, filter: f}
			c.hook = func(_ context.Context, _ *projections.Tx, _ projections.TableNames, batch []projections.Envelope) error {
				for _, env := range batch {
					if !f.Matches(&eventstore.Event{Stream: env.Stream, Type: env.Type}) {
						bad.Store(fmt.Sprintf("%s got %s of %s", c.name, env.Type, env.Stream))
					}
				}
				return nil
			}
			ps = append(ps, c)
		}
		e := newEngine(t, env, 40, ps...)
		require.NoError(t, e.RebuildAll(context.Background(), nil, nil))
		require.Nil(t, bad.Load())
		head := env.Head(t)
		for i, p := range ps {
			want := streamCounts(t, env.Store, head, filters[i])
			require.NotEmpty(t, want, p.Name())
			require.Equal(t, want, counts(t, env.DB, p.Name()), p.Name())
			require.Equal(t, head, storedState(t, env.DB, p.Name()).Position, "the checkpoint reaches every position")
		}
	})
}
