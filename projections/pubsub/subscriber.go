package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/payesh/payesh/eventstore"
)

// ErrSubscriberClosed is returned by Subscribe after Close.
var ErrSubscriberClosed = errors.New("pubsub: subscriber closed")

var errLeaseLost = errors.New("pubsub: lease lost")

// SubscriberConfig configures NewSubscriber.
type SubscriberConfig struct {
	// ConsumerGroup names the group whose checkpoint the subscriptions
	// advance (a projection is a group). The empty group is a valid group,
	// shared by every Subscriber configured without one.
	ConsumerGroup string
	// NackBackoff is how long a nacked message waits before it is delivered
	// again (default 100ms).
	NackBackoff time.Duration
	// CheckpointInterval is the least time between two checkpoint writes of
	// one subscription (default 50ms). Acks in between are coalesced into
	// one write; the last is written when the subscription ends.
	CheckpointInterval time.Duration
	// RetryBackoff is how long a subscription waits before starting over
	// after an error from the store or the checkpoint store, or after
	// losing its lease (default 1s).
	RetryBackoff time.Duration
	// PollInterval bounds how long a subscription whose checkpoint lies
	// before this process started following the log waits before looking
	// for new events without being woken (default 1s); see the package
	// documentation. New events are otherwise announced at once.
	PollInterval time.Duration
	// BatchSize is the most events read from the store at once (default 1000).
	BatchSize int
	// Leaser decides which of the subscribers of one (group, topic) may
	// deliver. Nil means the checkpoint store, which must then implement
	// Leaser (all of Payesh's do).
	Leaser Leaser
	// Logger defaults to watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

func (c *SubscriberConfig) setDefaults() {
	if c.NackBackoff <= 0 {
		c.NackBackoff = 100 * time.Millisecond
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 50 * time.Millisecond
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Second
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Subscriber is a message.Subscriber over the event store's global log; see
// the package documentation for topics, groups and guarantees. It does not
// own the store or the checkpoint store: Close leaves them open.
type Subscriber struct {
	store       eventstore.Store
	checkpoints CheckpointStore
	leaser      Leaser
	cfg         SubscriberConfig

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	closing context.Context // cancelled by Close
	stop    context.CancelFunc
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a Subscriber reading store and keeping its
// progress in checkpoints.
func NewSubscriber(store eventstore.Store, checkpoints CheckpointStore, cfg SubscriberConfig) (*Subscriber, error) {
	if store == nil || checkpoints == nil {
		return nil, errors.New("pubsub: NewSubscriber needs a store and a checkpoint store")
	}
	cfg.setDefaults()
	leaser := cfg.Leaser
	if leaser == nil {
		l, ok := checkpoints.(Leaser)
		if !ok {
			return nil, fmt.Errorf("pubsub: the checkpoint store %T cannot lease; set SubscriberConfig.Leaser (e.g. one LocalLeases shared by every Subscriber of the store)", checkpoints)
		}
		leaser = l
	}
	closing, stop := context.WithCancel(context.Background())
	s := &Subscriber{
		store:       store,
		checkpoints: checkpoints,
		leaser:      leaser,
		cfg:         cfg,
		closing:     closing,
		stop:        stop,
	}
	return s, nil
}

// Subscribe delivers the events selected by topic, in global order, from
// the group's checkpoint on: catch-up, then live. The next message comes
// only after the previous one is acked; a nacked one comes again (a new
// *message.Message with the same UUID) after NackBackoff. The channel is
// closed when ctx ends or Close is called. While another subscriber of the
// same group and topic holds the lease, the channel stays open and silent.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	sel, err := parseTopic(topic)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()

	subCtx, cancel := context.WithCancel(ctx)
	unlink := context.AfterFunc(s.closing, cancel)
	out := make(chan *message.Message)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		defer unlink()
		s.consume(subCtx, sel, out)
	}()
	return out, nil
}

// Close ends every subscription, closing their channels, writes their last
// checkpoints and releases their leases; it returns when all that is done.
// It is idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	return nil
}

func (s *Subscriber) consume(ctx context.Context, sel selector, out chan<- *message.Message) {
	log := s.cfg.Logger.With(watermill.LogFields{"topic": sel.topic, "consumer_group": s.cfg.ConsumerGroup})
	h := hubFor(s.store, s, s.cfg.Logger)
	defer h.release()
	for {
		err := s.consumeOnce(ctx, h, sel, out, log)
		if ctx.Err() != nil {
			log.Debug("Subscription ended", nil)
			return
		}
		if errors.Is(err, eventstore.ErrClosed) {
			log.Info("Subscription ended: the store is closed", nil)
			return
		}
		log.Error("Subscription interrupted, starting over", err, watermill.LogFields{"retry_in": s.cfg.RetryBackoff})
		t := time.NewTimer(s.cfg.RetryBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// consumeOnce takes the lease, then delivers from the checkpoint until ctx
// ends, the lease is lost or something fails. The last checkpoint is
// written before the lease is given back.
func (s *Subscriber) consumeOnce(ctx context.Context, h *hub, sel selector, out chan<- *message.Message, log watermill.LoggerAdapter) error {
	group := s.cfg.ConsumerGroup
	held, release, err := s.leaser.Lease(ctx, group, sel.topic)
	if err != nil {
		return fmt.Errorf("pubsub: lease: %w", err)
	}
	defer release()
	log.Debug("Lease taken", nil)

	after, err := s.checkpoints.Load(held, group, sel.topic)
	if err != nil {
		return fmt.Errorf("pubsub: load checkpoint: %w", err)
	}
	cp := startCheckpointer(s.checkpoints, group, sel.topic, after, s.cfg.CheckpointInterval, log)
	defer cp.stop() // runs before release: the next holder starts where this one ended

	w := h.watch(sel)
	defer w.close()
	err = w.stream(held, after, s.cfg.BatchSize, s.cfg.PollInterval, func(batch []eventstore.Event) error {
		for i := range batch {
			e := &batch[i]
			if sel.matches(e) {
				if err := s.deliver(held, decode(e), out); err != nil {
					return err
				}
			}
			cp.advance(e.Position)
		}
		return nil
	})
	if ctx.Err() == nil && held.Err() != nil {
		return errLeaseLost
	}
	return err
}

// deliver hands one event to the consumer until it is acked.
func (s *Subscriber) deliver(ctx context.Context, d decoded, out chan<- *message.Message) error {
	for {
		msg := d.message()
		msgCtx, cancel := context.WithCancel(ctx)
		msg.SetContext(msgCtx)
		select {
		case out <- msg:
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		}
		select {
		case <-msg.Acked():
			cancel()
			return nil
		case <-msg.Nacked():
			cancel()
		case <-ctx.Done():
			cancel()
			return ctx.Err()
		}
		t := time.NewTimer(s.cfg.NackBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// checkpointer coalesces a subscription's checkpoint writes: the first
// advance is written at once, later ones at most every interval, and the
// last when it stops.
type checkpointer struct {
	store        CheckpointStore
	group, topic string
	interval     time.Duration
	log          watermill.LoggerAdapter

	mu             sync.Mutex
	pending, saved uint64

	kick  chan struct{}
	quit  chan struct{}
	done  chan struct{}
	close sync.Once
}

func startCheckpointer(store CheckpointStore, group, topic string, from uint64, interval time.Duration, log watermill.LoggerAdapter) *checkpointer {
	c := &checkpointer{
		store: store, group: group, topic: topic, interval: interval, log: log,
		pending: from, saved: from,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	go c.run()
	return c
}

func (c *checkpointer) advance(position uint64) {
	c.mu.Lock()
	if position > c.pending {
		c.pending = position
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			c.flush()
			return
		}
		c.flush()
		t := time.NewTimer(c.interval)
		select {
		case <-t.C:
		case <-c.quit:
			t.Stop()
			c.flush()
			return
		}
	}
}

func (c *checkpointer) flush() {
	c.mu.Lock()
	pos, saved := c.pending, c.saved
	c.mu.Unlock()
	if pos <= saved {
		return
	}
	// Not the subscription's context: the last write happens after it ended.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.store.Save(ctx, c.group, c.topic, pos); err != nil {
		// The next flush retries; meanwhile a restart would redeliver.
		c.log.Error("Cannot save checkpoint", err, watermill.LogFields{"position": pos})
		return
	}
	c.mu.Lock()
	c.saved = max(c.saved, pos)
	c.mu.Unlock()
}

// stop writes the last checkpoint and returns when it is written (or failed).
func (c *checkpointer) stop() {
	c.close.Do(func() { close(c.quit) })
	<-c.done
}
