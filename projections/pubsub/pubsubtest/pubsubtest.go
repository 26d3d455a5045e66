// Package pubsubtest is the contract suite for pubsub.CheckpointStore (and
// pubsub.Leaser, where implemented): every checkpoint store runs it.
package pubsubtest

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections/pubsub"
)

// RunCheckpoints runs the contract against fresh, empty stores made by
// newStore.
func RunCheckpoints(t *testing.T, newStore func(t *testing.T) pubsub.CheckpointStore) {
	ctx := context.Background()

	t.Run("UnknownIsZero", func(t *testing.T) {
		t.Parallel()
		cs := newStore(t)
		pos, err := cs.Load(ctx, "g", "facility-*")
		require.NoError(t, err)
		require.Zero(t, pos)
	})

	t.Run("SaveLoad", func(t *testing.T) {
		t.Parallel()
		cs := newStore(t)
		require.NoError(t, cs.Save(ctx, "g", "t", 7))
		pos, err := cs.Load(ctx, "g", "t")
		require.NoError(t, err)
		require.EqualValues(t, 7, pos)
		require.NoError(t, cs.Save(ctx, "g", "t", 9))
		pos, err = cs.Load(ctx, "g", "t")
		require.NoError(t, err)
		require.EqualValues(t, 9, pos)
	})

	t.Run("Monotonic", func(t *testing.T) {
		t.Parallel()
		cs := newStore(t)
		require.NoError(t, cs.Save(ctx, "g", "t", 10))
		require.NoError(t, cs.Save(ctx, "g", "t", 3))
		require.NoError(t, cs.Save(ctx, "g", "t", 10))
		pos, err := cs.Load(ctx, "g", "t")
		require.NoError(t, err)
		require.EqualValues(t, 10, pos)
	})

	t.Run("KeysIndependent", func(t *testing.T) {
		t.Parallel()
		cs := newStore(t)
		keys := [][2]string{
			{"", "t"}, {"g", "t"}, {"g", "t2"}, {"gt", ""}, {"g", ""},
			{"", "$all"}, {"proj", "facility-*"}, {"پایش", "quota-1403-*"}, {"G", "t"},
		}
		for i, k := range keys {
			require.NoError(t, cs.Save(ctx, k[0], k[1], uint64(i+1)))
		}
		for i, k := range keys {
			pos, err := cs.Load(ctx, k[0], k[1])
			require.NoError(t, err)
			require.EqualValues(t, i+1, pos, "group %q topic %q", k[0], k[1])
		}
	})

	t.Run("LargePosition", func(t *testing.T) {
		t.Parallel()
		cs := newStore(t)
		require.NoError(t, cs.Save(ctx, "g", "t", math.MaxInt64))
		pos, err := cs.Load(ctx, "g", "t")
		require.NoError(t, err)
		require.EqualValues(t, uint64(math.MaxInt64), pos)
	})

	t.Run("ConcurrentSavesKeepMax", func(t *testing.T) {
		t.Parallel()
		cs := newStore(t)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 25 {
					if err := cs.Save(ctx, "g", "t", uint64(1+w+8*i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		pos, err := cs.Load(ctx, "g", "t")
		require.NoError(t, err)
		require.EqualValues(t, 8*25, pos)
	})

	t.Run("Lease", func(t *testing.T) {
		t.Parallel()
		l, ok := newStore(t).(pubsub.Leaser)
		if !ok {
			t.Skip("not a Leaser")
		}
		held, release, err := l.Lease(ctx, "g", "t")
		require.NoError(t, err)
		require.NoError(t, held.Err())

		// Another key is independent.
		_, releaseOther, err := l.Lease(ctx, "g", "t2")
		require.NoError(t, err)
		releaseOther()
		_, releaseOther, err = l.Lease(ctx, "g2", "t")
		require.NoError(t, err)
		releaseOther()

		// The same key waits; a waiter whose context ends gives up.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, _, err = l.Lease(short, "g", "t")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)

		got := make(chan func(), 1)
		go func() {
			_, r, err := l.Lease(ctx, "g", "t")
			if err != nil {
				t.Error(err)
				close(got)
				return
			}
			got <- r
		}()
		select {
		case <-got:
			t.Fatal("two holders of one lease")
		case <-time.After(200 * time.Millisecond):
		}
		release()
		release() // harmless
		require.Error(t, held.Err(), "the held context ends at release")
		select {
		case r := <-got:
			require.NotNil(t, r)
			r()
		case <-time.After(5 * time.Second):
			t.Fatal("the waiter did not get the released lease")
		}
	})
}
