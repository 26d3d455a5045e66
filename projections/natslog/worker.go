package natslog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/pubsub"
)

// Engine is what a Worker needs of projections.Engine.
type Engine interface {
	Prepare(ctx context.Context, name string) error
	Handle(ctx context.Context, name string, events []eventstore.Event) error
}

// Positions tells a read model's checkpoint (projections.Reader).
type Positions interface {
	Position(ctx context.Context, name string) (uint64, error)
}

// Worker applies the log from JetStream to read models, competing with the
// Workers of other processes for each message (see the package doc).
type Worker struct {
	store     eventstore.Store
	engine    Engine
	positions Positions
	names     []string
	cfg       Config

	// Stats, for tests and logs.
	mu    sync.Mutex
	stats WorkerStats
}

// WorkerStats counts what a Worker did with the messages it was handed.
type WorkerStats struct {
	Applied  uint64 // messages whose event this worker applied
	Skipped  uint64 // messages at or before the checkpoint: applied already
	Filled   uint64 // events read from the store to close a gap before a message
	Failures uint64 // messages given back (nak) after a failed apply
}

// NewWorker returns a worker of the named read models of engine.
func NewWorker(store eventstore.Store, engine Engine, positions Positions, names []string, cfg Config) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("natslog: a worker needs at least one read model")
	}
	return &Worker{store: store, engine: engine, positions: positions, names: names, cfg: cfg}, nil
}

// Stats returns the counters so far.
func (w *Worker) Stats() WorkerStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

func (w *Worker) count(f func(s *WorkerStats)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(&w.stats)
}

// Consumer is the durable JetStream consumer of a read model.
func Consumer(name string) string { return "payesh-" + name }

// Run follows every read model until ctx ends, each on its own, starting
// a read model's consumption again after a failure with a growing pause.
// It returns ctx's error.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range w.names {
		wg.Go(func() {
			log := w.cfg.Logger.With("component", "natslog-worker", "projection", name)
			for attempt := 0; ; attempt++ {
				err := w.follow(ctx, name)
				if ctx.Err() != nil {
					return
				}
				pause := min(time.Duration(1<<min(attempt, 6))*100*time.Millisecond, 5*time.Second)
				log.Warn("consumption stopped; starting again", "err", err, "in", pause)
				select {
				case <-ctx.Done():
					return
				case <-time.After(pause):
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// follow consumes one read model's messages until ctx ends or the
// subscription fails.
func (w *Worker) follow(ctx context.Context, name string) error {
	if err := w.engine.Prepare(ctx, name); err != nil {
		return err
	}
	nc, js, err := connect(w.cfg, "payesh-worker-"+name)
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := ensureStream(ctx, js, w.cfg); err != nil {
		return err
	}
	sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
		Conn:                nc,
		Logger:              watermill.NopLogger{},
		AckWaitTimeout:      w.cfg.AckWait,
		ResourceInitializer: w.consumer(name),
		NakDelay:            wmjs.NewStaticDelay(time.Second),
	})
	if err != nil {
		return err
	}
	// The subscription gets a context of its own, ended only once the
	// connection is drained: watermill-nats closes its output channel when
	// that context ends, and a message callback still running then would
	// send on the closed channel (a panic in the library's goroutine).
	subCtx, cancelSub := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(subCtx, w.cfg.Stream)
	if err != nil {
		cancelSub()
		_ = sub.Close()
		return err
	}
	defer func() {
		w.drain(nc, msgs)
		cancelSub()
		_ = sub.Close()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case msg, ok := <-msgs:
			if !ok {
				return errors.New("natslog: the subscription ended")
			}
			if err := w.handle(ctx, name, msg); err != nil {
				w.count(func(s *WorkerStats) { s.Failures++ })
				if ctx.Err() == nil {
					w.cfg.Logger.Warn("message given back", "projection", name, "err", err)
				}
				msg.Nack()
				continue
			}
			msg.Ack()
		}
	}
}

// drain stops the flow of messages: the connection delivers what it holds
// (given back at once, for other workers) and closes.
func (w *Worker) drain(nc *nats.Conn, msgs <-chan *message.Message) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		return // already closed
	}
	for {
		select {
		case <-closed:
			return
		case msg, ok := <-msgs:
			if !ok {
				return
			}
			msg.Nack()
		}
	}
}

// consumer gets the read model's durable consumer, creating it to start
// after the read model's checkpoint when it does not exist yet. A consumer
// that exists is used as it is, wherever it stands: behind the checkpoint
// its messages are skipped, ahead of it the store fills the gap.
func (w *Worker) consumer(name string) wmjs.ResourceInitializer {
	return func(ctx context.Context, js jetstream.JetStream, _ string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
		st, err := js.Stream(ctx, w.cfg.Stream)
		if err != nil {
			return nil, nil, err
		}
		c, err := st.Consumer(ctx, Consumer(name))
		if err == nil || !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return c, nil, err
		}
		at, err := w.positions.Position(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		cfg := jetstream.ConsumerConfig{
			Durable:       Consumer(name),
			Description:   "Payesh read model " + name,
			FilterSubject: w.cfg.Subjects + ".>",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       w.cfg.AckWait,
			MaxAckPending: w.cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		}
		if at > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, at+1
		}
		c, err = st.CreateConsumer(ctx, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) { // another worker made it first
			c, err = st.Consumer(ctx, Consumer(name))
		}
		return c, nil, err
	}
}

// handle applies the log up to the message's event: the events between the
// checkpoint and it from the store, then the event itself.
func (w *Worker) handle(ctx context.Context, name string, msg *message.Message) error {
	e, err := pubsub.EventOf(msg)
	if err != nil {
		return fmt.Errorf("natslog: message %s: %w", msg.UUID, err)
	}
	at, err := w.positions.Position(ctx, name)
	if err != nil {
		return err
	}
	if e.Position <= at {
		w.count(func(s *WorkerStats) { s.Skipped++ })
		return nil
	}
	// Handle skips what another worker applied meanwhile (the checkpoint
	// only moves forward), so filling from an older reading of it is safe.
	for at+1 < e.Position {
		gap, err := w.store.ReadAll(ctx, at, int(min(e.Position-1-at, 1000)), eventstore.Filter{})
		if err != nil {
			return err
		}
		if len(gap) == 0 || gap[0].Position != at+1 {
			return fmt.Errorf("natslog: the store has no event %d", at+1)
		}
		if err := w.engine.Handle(ctx, name, gap); err != nil {
			return err
		}
		w.count(func(s *WorkerStats) { s.Filled += uint64(len(gap)) })
		at = gap[len(gap)-1].Position
	}
	if err := w.engine.Handle(ctx, name, []eventstore.Event{e}); err != nil {
		return err
	}
	w.count(func(s *WorkerStats) { s.Applied++ })
	return nil
}

var _ Engine = (*projections.Engine)(nil)
