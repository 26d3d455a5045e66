package pubsub_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/projections/pubsub"
)

// staleStore answers half of its ReadAll calls from an older snapshot of the
// log (the head as it was at some earlier read), as a pooled SQLite read
// connection left inside an old read transaction does. Every answer is
// still a gap-free prefix of the log as it was at some moment.
type staleStore struct {
	eventstore.Store
	mu    sync.Mutex
	heads []uint64
}

func (s *staleStore) ReadAll(ctx context.Context, after uint64, limit int, f eventstore.Filter) ([]eventstore.Event, error) {
	h, err := s.Store.Head(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.heads = append(s.heads, h.Position)
	snapshot := h.Position
	if rand.IntN(2) == 0 {
		snapshot = s.heads[rand.IntN(len(s.heads))]
	}
	s.mu.Unlock()
	evs, err := s.Store.ReadAll(ctx, after, limit, f)
	for i, e := range evs {
		if e.Position > snapshot {
			return evs[:i], err
		}
	}
	return evs, err
}

func (s *staleStore) Subscribe(ctx context.Context, after uint64, f eventstore.Filter, h eventstore.Handler) error {
	return eventstore.PollSubscribe(ctx, s, after, f, h, eventstore.SubscribeConfig{Poll: 2 * time.Millisecond})
}

// TestStaleReads: reads from older snapshots delay delivery but never make
// a subscription skip an event.
func TestStaleReads(t *testing.T) {
	ctx := context.Background()
	inner := memory.New()
	t.Cleanup(func() { _ = inner.Close() })
	store := &staleStore{Store: inner}
	cps := pubsub.NewMemoryCheckpoints()

	const streams, events = 4, 400
	go func() {
		for i := range events {
			if _, err := store.Append(ctx, fmt.Sprintf("s-%d", i%streams), eventstore.Any, []eventstore.Proposed{domainEvent("t.v1", `{}`)}); err != nil {
				t.Error(err)
				return
			}
			if i%20 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var wg sync.WaitGroup
	for k := range streams {
		wg.Go(func() {
			sub, err := pubsub.NewSubscriber(store, cps, pubsub.SubscriberConfig{ConsumerGroup: "g", PollInterval: 20 * time.Millisecond})
			require.NoError(t, err)
			defer sub.Close()
			ch, err := sub.Subscribe(ctx, fmt.Sprintf("s-%d", k))
			require.NoError(t, err)
			for v := 1; v <= events/streams; v++ {
				select {
				case m := <-ch:
					if got := m.Metadata.Get("payesh_version"); got != fmt.Sprint(v) {
						t.Errorf("s-%d: version %s, want %d", k, got, v)
						return
					}
					m.Ack()
				case <-time.After(waitFor):
					t.Errorf("s-%d: version %d not delivered", k, v)
					return
				}
			}
		})
	}
	wg.Wait()
}
