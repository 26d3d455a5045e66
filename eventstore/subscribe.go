package eventstore

import (
	"context"
	"sync"
	"time"
)

// Signal wakes goroutines waiting for new events. It is safe for concurrent
// use. A waiter takes the channel from C before checking for events and then
// waits on it, so a Broadcast between the check and the wait is never lost.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewSignal returns a ready Signal.
func NewSignal() *Signal { return &Signal{ch: make(chan struct{})} }

// C returns a channel closed by the next Broadcast.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// Broadcast wakes every current waiter.
func (s *Signal) Broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// PollReader is what the generic subscription loop needs from a backend.
type PollReader interface {
	Reader
	Head(ctx context.Context) (Head, error)
}

// SubscribeConfig tunes PollSubscribe.
type SubscribeConfig struct {
	// BatchSize is the most events handed to the handler at once (default 1000).
	BatchSize int
	// Wake is signalled when new events commit (in this process, or relayed
	// from the database); nil means rely on Poll alone.
	Wake *Signal
	// Poll bounds how long the loop sleeps without a wake-up; it catches
	// appends by other processes the backend cannot hear about (default 1s).
	Poll time.Duration
}

// PollSubscribe implements Store.Subscribe for backends whose ReadAll only
// ever shows a gap-free prefix of the log, which holds for every backend that
// assigns positions under the chain-head lock and commits before releasing
// it: a reader can then never see position N+1 without N. It reads in
// batches until it has caught up, then waits for a wake-up or the poll
// interval.
func PollSubscribe(ctx context.Context, r PollReader, after uint64, filter Filter, handler Handler, cfg SubscribeConfig) error {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	filtered := len(filter.StreamPrefixes) > 0 || len(filter.Types) > 0
	timer := time.NewTimer(cfg.Poll)
	defer timer.Stop()
	for {
		var wake <-chan struct{}
		if cfg.Wake != nil {
			wake = cfg.Wake.C()
		}
		// For a filtered subscription the head read before the scan tells
		// how far the scan is known to have looked, so unmatched stretches
		// of the log are not rescanned on every wake-up.
		var head Head
		if filtered {
			h, err := r.Head(ctx)
			if err != nil {
				return err
			}
			head = h
		}
		batch, err := r.ReadAll(ctx, after, cfg.BatchSize, filter)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := handler(ctx, batch); err != nil {
				return err
			}
			after = batch[len(batch)-1].Position
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		if filtered && head.Position > after {
			after = head.Position
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(cfg.Poll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-timer.C:
		}
	}
}
