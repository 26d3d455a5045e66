package ledger_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/ledger"
)

// countingStore counts the events ReadStream hands out.
type countingStore struct {
	eventstore.Store
	read atomic.Int64
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.Event, error) {
	events, err := c.Store.ReadStream(ctx, stream, from, dir, limit)
	c.read.Add(int64(len(events)))
	return events, err
}

func cachedLedger(t *testing.T) (*ledger.Ledger, *countingStore) {
	t.Helper()
	reg, err := domain.NewRegistry([]domain.EventType{domain.Type[added]()})
	require.NoError(t, err)
	mem := memory.New()
	t.Cleanup(func() { _ = mem.Close() })
	st := &countingStore{Store: mem}
	return ledger.New(st, reg, ledger.WithStateCache("counter-")), st
}

func TestStateCacheReadsOnlyNewEvents(t *testing.T) {
	l, st := cachedLedger(t)
	ctx := context.Background()
	for range 50 {
		_, err := ledger.Execute(ctx, l, "counter-1", counterDecider(1000), add{N: 1}, ledger.Meta{Actor: actor})
		require.NoError(t, err)
	}
	// Each command read only the event the previous one appended: 49 in
	// all, where reloading the stream would have read 1+2+...+49 = 1225.
	require.Equal(t, int64(49), st.read.Load())

	// Another process appends: the cached ledger picks it up.
	other := ledger.New(st.Store, l.Registry())
	_, err := ledger.Execute(ctx, other, "counter-1", counterDecider(1000), add{N: 10}, ledger.Meta{Actor: actor})
	require.NoError(t, err)
	s, v, err := ledger.State(ctx, l, "counter-1", counterDecider(1000), nil)
	require.NoError(t, err)
	require.Equal(t, 60, s.Total)
	require.Equal(t, uint64(51), v)
}

func TestStateCacheRecognisesRetries(t *testing.T) {
	l, _ := cachedLedger(t)
	ctx := context.Background()
	meta := ledger.Meta{Actor: actor, IdempotencyKey: "k-1"}
	first, err := ledger.Execute(ctx, l, "counter-1", counterDecider(5), add{N: 5}, meta)
	require.NoError(t, err)
	again, err := ledger.Execute(ctx, l, "counter-1", counterDecider(5), add{N: 5}, meta)
	require.NoError(t, err, "the retry is answered from the cache, not refused by the limit")
	require.True(t, again.Duplicate)
	require.Equal(t, first.EventIDs, again.EventIDs)
	require.Equal(t, first.Position, again.Position)
}

func TestStateCacheKeepsInvariantAcrossProcesses(t *testing.T) {
	l, st := cachedLedger(t)
	other := ledger.New(st.Store, l.Registry()) // uncached, like an older process
	ctx := context.Background()
	const writers, limit = 16, 40
	var wg sync.WaitGroup
	var accepted atomic.Int64
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
				switch {
				case err == nil:
					accepted.Add(1)
				case !errors.Is(err, domain.ErrConflict):
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(limit), accepted.Load())
	s, _, err := ledger.State(ctx, l, "counter-hot", counterDecider(limit), nil)
	require.NoError(t, err)
	require.Equal(t, limit, s.Total)
}
