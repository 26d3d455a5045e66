package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/ledger"
)

// A counter aggregate that refuses to go above a limit: enough to exercise
// load–decide–append, retries and idempotency without the real domain.
type added struct {
	N int `json:"n"`
}

func (added) EventType() string { return "test.added.v1" }

type add struct{ N int }

type counter struct{ Total, Appends int }

func counterDecider(limit int) domain.Decider[counter, add] {
	return domain.Decider[counter, add]{
		Initial: func() counter { return counter{} },
		Decide: func(s counter, c add) ([]domain.Event, error) {
			if c.N == 0 {
				return nil, nil
			}
			if s.Total+c.N > limit {
				return nil, &domain.ConflictError{Reason: fmt.Sprintf("total would be %d, limit %d", s.Total+c.N, limit)}
			}
			return []domain.Event{added(c)}, nil
		},
		Evolve: func(s counter, e domain.Recorded) counter {
			if a, ok := e.Event.(added); ok {
				s.Total += a.N
				s.Appends++
			}
			return s
		},
	}
}

func newLedger(t *testing.T) *ledger.Ledger {
	t.Helper()
	reg, err := domain.NewRegistry([]domain.EventType{domain.Type[added]()})
	require.NoError(t, err)
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	return ledger.New(st, reg)
}

var actor = eventstore.Actor{ID: "u1", Role: "ministry"}

func TestExecuteAppendsDecidedEvents(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	res, err := ledger.Execute(ctx, l, "counter-1", counterDecider(10), add{N: 3}, ledger.Meta{Actor: actor, CorrelationID: "c1"})
	require.NoError(t, err)
	require.Len(t, res.EventIDs, 1)
	require.Equal(t, uint64(1), res.Version)
	require.Equal(t, uint64(1), res.Position)

	events, err := l.Store().ReadStream(ctx, "counter-1", 1, eventstore.Forwards, 10)
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, "test.added.v1", events[0].Type)
	require.JSONEq(t, `{"n":3}`, string(events[0].Data))
	require.Equal(t, actor, events[0].Actor)
	require.Equal(t, "c1", events[0].CorrelationID)
	require.Equal(t, res.EventIDs[0], events[0].ID)
}

func TestDeciderErrorAppendsNothing(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	_, err := ledger.Execute(ctx, l, "counter-1", counterDecider(2), add{N: 5}, ledger.Meta{Actor: actor})
	require.ErrorIs(t, err, domain.ErrConflict)
	head, err := l.Store().Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head.Position)

	res, err := ledger.Execute(ctx, l, "counter-1", counterDecider(2), add{N: 0}, ledger.Meta{Actor: actor})
	require.NoError(t, err)
	require.Empty(t, res.EventIDs, "a command deciding nothing appends nothing")
}

func TestIdempotencyKeyReturnsOriginalResult(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	meta := ledger.Meta{Actor: actor, IdempotencyKey: "cmd-42"}
	first, err := ledger.Execute(ctx, l, "counter-1", counterDecider(10), add{N: 4}, meta)
	require.NoError(t, err)
	_, err = ledger.Execute(ctx, l, "counter-1", counterDecider(10), add{N: 1}, ledger.Meta{Actor: actor})
	require.NoError(t, err)

	// The retry would now break the limit if it were applied again; it is
	// recognised instead and returns the first outcome.
	again, err := ledger.Execute(ctx, l, "counter-1", counterDecider(5), add{N: 4}, meta)
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.EventIDs, again.EventIDs)
	require.Equal(t, first.Position, again.Position)

	s, version, err := ledger.State(ctx, l, "counter-1", counterDecider(10), nil)
	require.NoError(t, err)
	require.Equal(t, counter{Total: 5, Appends: 2}, s)
	require.Equal(t, uint64(2), version)
}

func TestConcurrentCommandsRetryAndKeepInvariant(t *testing.T) {
	l := newLedger(t)
	// A second ledger on the same store stands for another payeshd process:
	// its commands do not share the first one's per-stream locks, so they
	// meet only through the store's expected-version check.
	other := ledger.New(l.Store(), l.Registry())
	ctx := context.Background()
	const writers, limit = 16, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lw := l
			if w%2 == 1 {
				lw = other
			}
			for range 5 {
				_, err := ledger.Execute(ctx, lw, "counter-hot", counterDecider(limit), add{N: 1}, ledger.Meta{Actor: actor})
				mu.Lock()
				switch {
				case err == nil:
					accepted++
				case errors.Is(err, domain.ErrConflict):
					refused++
				default:
					t.Errorf("unexpected error: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, limit, accepted, "exactly the limit is accepted, however the writers race")
	require.Equal(t, writers*5-limit, refused)
	s, _, err := ledger.State(ctx, l, "counter-hot", counterDecider(limit), nil)
	require.NoError(t, err)
	require.Equal(t, limit, s.Total)
}

func TestStateAsOf(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	for _, n := range []int{1, 2, 3} {
		_, err := ledger.Execute(ctx, l, "counter-1", counterDecider(100), add{N: n}, ledger.Meta{Actor: actor})
		require.NoError(t, err)
	}
	s, version, err := ledger.State(ctx, l, "counter-1", counterDecider(100), func(e ledger.Loaded) bool {
		return e.Envelope.Position <= 2
	})
	require.NoError(t, err)
	require.Equal(t, 3, s.Total)
	require.Equal(t, uint64(2), version)
}

func TestBackdatedCommandNeedsReason(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	past := time.Now().AddDate(0, -2, 0)
	_, err := ledger.Execute(ctx, l, "counter-1", counterDecider(10), add{N: 1}, ledger.Meta{Actor: actor, OccurredAt: past})
	require.ErrorIs(t, err, eventstore.ErrInvalidEvent)
	res, err := ledger.Execute(ctx, l, "counter-1", counterDecider(10), add{N: 1}, ledger.Meta{Actor: actor, OccurredAt: past, BackdateReason: "paper register"})
	require.NoError(t, err)
	require.Len(t, res.EventIDs, 1)
}
