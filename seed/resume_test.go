package seed_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/seed"
)

// crashingStore lets through the first `after` appends of its bulk calls,
// then cancels the run's context and sends the rest with it, as if the
// process were interrupted in the middle of a piece.
type crashingStore struct {
	eventstore.Store
	after  int64
	cancel context.CancelFunc
	seen   atomic.Int64
}

func (s *crashingStore) AppendMany(ctx context.Context, appends []eventstore.StreamAppend) ([]eventstore.AppendResult, []error) {
	m := s.Store.(eventstore.ManyAppender)
	start := s.seen.Add(int64(len(appends))) - int64(len(appends))
	if start+int64(len(appends)) <= s.after {
		return m.AppendMany(ctx, appends)
	}
	k := max(0, s.after-start)
	res, errs := m.AppendMany(ctx, appends[:k])
	s.cancel()
	r2, e2 := m.AppendMany(ctx, appends[k:])
	return append(res, r2...), append(errs, e2...)
}

// logOf lists a store's events outside the reference stream.
func logOf(t *testing.T, st eventstore.Store) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	var after uint64
	for {
		batch, err := st.ReadAll(context.Background(), after, 10_000, eventstore.Filter{})
		require.NoError(t, err)
		if len(batch) == 0 {
			return out
		}
		for _, e := range batch {
			after = e.Position
			if e.Stream != reference.Stream {
				out = append(out, e)
			}
		}
	}
}

// same requires two logs to hold the same events in the same streams and
// order: everything but the recording times, hashes and the applicants'
// ciphertexts (sealed with random nonces).
func same(t *testing.T, want, got []eventstore.Event) {
	t.Helper()
	require.Equal(t, len(want), len(got))
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.ID, g.ID, "position %d", w.Position)
		require.Equal(t, w.Stream, g.Stream, w.ID)
		require.Equal(t, w.Version, g.Version, w.ID)
		require.Equal(t, w.Type, g.Type, w.ID)
		require.Equal(t, w.OccurredAt, g.OccurredAt, w.ID)
		require.Equal(t, w.Actor, g.Actor, w.ID)
		require.Equal(t, w.IdempotencyKey, g.IdempotencyKey, w.ID)
		if w.Type != facility.TypeRegistered {
			require.Equal(t, string(w.Data), string(g.Data), w.ID)
		}
	}
}

func TestInterruptedRunResumes(t *testing.T) {
	ctx := context.Background()
	cfg := config(1200, 9)

	whole := memory.New()
	t.Cleanup(func() { _ = whole.Close() })
	want, err := seed.Run(ctx, whole, applicant.NewMemoryVault(), cfg, seed.Options{})
	require.NoError(t, err)

	for _, after := range []int64{1, 700, 1500, 2200} { // inside the first, second and a later piece
		st := memory.New()
		t.Cleanup(func() { _ = st.Close() })
		vault := applicant.NewMemoryVault()
		runCtx, cancel := context.WithCancel(ctx)
		crash := &crashingStore{Store: st, after: after, cancel: cancel}
		_, err := seed.Run(runCtx, crash, vault, cfg, seed.Options{})
		require.ErrorIs(t, err, context.Canceled, "crash after %d appends", after)
		cancel()
		partial := len(logOf(t, st))
		require.Positive(t, partial)
		require.Less(t, partial, want.Stats.Events)

		got, err := seed.Run(ctx, st, vault, cfg, seed.Options{})
		require.NoError(t, err, "resume after %d appends", after)
		require.Positive(t, got.Duplicates, "the interrupted piece is sent again")
		require.Equal(t, want.Stats, got.Stats)
		require.Equal(t, want.Stats.Events, got.Appended+got.Duplicates+skippedEvents(t, cfg, got.Skipped))
		_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
		require.NoError(t, err)
		same(t, logOf(t, whole), logOf(t, st))
	}
}

// skippedEvents counts the events of a history's first n pieces.
func skippedEvents(t *testing.T, cfg seed.Config, n int) int {
	pieces, _ := generate(t, cfg)
	total := 0
	for _, p := range pieces[:n] {
		total += p.Events()
	}
	return total
}

func TestRunOnSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "seed.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cfg := config(400, 1403)
	res, err := seed.Run(ctx, st, st.Vault(), cfg, seed.Options{})
	require.NoError(t, err)
	require.Equal(t, res.Stats.Events, res.Appended)
	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, uint64(res.Stats.Events)+uint64(len(reference.DefaultEvents())), rep.Events)
	require.Equal(t, res.Stats, statsFromStore(t, st, res.Stats.End))

	again, err := seed.Run(ctx, st, st.Vault(), cfg, seed.Options{})
	require.NoError(t, err)
	require.Equal(t, 2, again.Skipped)
	require.Zero(t, again.Appended)
}
