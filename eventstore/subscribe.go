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
	PageReader
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
//
// A filtered subscription reads with ReadPage and goes on from each page's
// Through, so a stretch of the log that holds nothing it wants is looked
// through once, in bounded steps, during catch-up and live alike. Through
// and Head come from the snapshot the page was read from, so an older
// snapshot (a lagging read connection) can only make it wait, never skip.
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
		// next is where the following read starts; more says the snapshot
		// just read already holds events past it.
		var (
			batch []Event
			next  uint64
			more  bool
		)
		if filtered {
			page, err := r.ReadPage(ctx, after, cfg.BatchSize, filter)
			if err != nil {
				return err
			}
			batch, next, more = page.Events, max(after, page.Through), page.Through < page.Head
		} else {
			b, err := r.ReadAll(ctx, after, cfg.BatchSize, filter)
			if err != nil {
				return err
			}
			batch, next, more = b, after, len(b) > 0
			if len(b) > 0 {
				next = b[len(b)-1].Position
			}
		}
		if len(batch) > 0 {
			if err := handler(ctx, batch); err != nil {
				return err
			}
		}
		after = next
		if more {
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
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
