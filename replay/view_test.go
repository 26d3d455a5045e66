package replay

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/eventstore/memory"
)

// TestView checks the replay's view of the log as a Store: it ends at the
// cut, hides what occurred after the business time behind placeholders at
// the same positions, and is read-only.
func TestView(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	defer st.Close()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 12 {
		evs := eventstoretest.Events(1, "t.v1")
		evs[0].OccurredAt = base.Add(time.Duration(i) * time.Hour)
		evs[0].BackdateReason = "test"
		_, err := st.Append(ctx, fmt.Sprintf("s-%d", i%3), eventstore.Any, evs)
		require.NoError(t, err)
	}
	// Positions 1..10; events 7..12 occurred after base+5h.
	v, err := newView(ctx, st, 10, base.Add(5*time.Hour))
	require.NoError(t, err)

	h, err := v.Head(ctx)
	require.NoError(t, err)
	all, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, eventstore.Head{Position: 10, Hash: all[9].Hash}, h)

	got, err := v.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Len(t, got, 10)
	for i, e := range got {
		require.Equal(t, uint64(i+1), e.Position)
		if i < 6 {
			require.Equal(t, all[i], e)
		} else {
			require.Equal(t, hiddenStream, e.Stream)
			require.Equal(t, hiddenType, e.Type)
			require.Nil(t, e.Data)
		}
	}
	some, err := v.ReadAll(ctx, 2, 3, eventstore.Filter{StreamPrefixes: []string{"s-1"}})
	require.NoError(t, err)
	require.Len(t, some, 1, "s-1 holds positions 2, 5, 8, 11: 5 is after 2 and 8 is hidden")
	require.Equal(t, uint64(5), some[0].Position)

	p, err := v.ReadPage(ctx, 0, 4, eventstore.Filter{})
	require.NoError(t, err)
	require.Len(t, p.Events, 4)
	require.Equal(t, uint64(4), p.Through)
	require.Equal(t, uint64(10), p.Head)
	p, err = v.ReadPage(ctx, 10, 4, eventstore.Filter{})
	require.NoError(t, err)
	require.Empty(t, p.Events)

	n, err := v.StreamVersion(ctx, "s-0")
	require.NoError(t, err)
	require.Equal(t, uint64(2), n, "s-0's positions 1 and 4; 7 and 10 are hidden")
	back, err := v.ReadStream(ctx, "s-0", math.MaxUint64, eventstore.Backwards, 10)
	require.NoError(t, err)
	require.Len(t, back, 2)
	require.Equal(t, uint64(4), back[0].Position)

	_, err = v.Append(ctx, "s-0", eventstore.Any, eventstoretest.Events(1, "t.v1"))
	require.ErrorIs(t, err, ErrReadOnly)

	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var delivered []uint64
	err = v.Subscribe(sctx, 8, eventstore.Filter{}, func(_ context.Context, b []eventstore.Event) error {
		for _, e := range b {
			delivered = append(delivered, e.Position)
		}
		return nil
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, []uint64{9, 10}, delivered, "the view ends at its cut and never grows")

	_, err = newView(ctx, st, 13, time.Time{})
	require.Error(t, err, "no event at position 13")
}
