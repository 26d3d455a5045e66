package natslog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
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

	mu          sync.Mutex
	stats       WorkerStats
	checkpoints map[string]uint64 // read model -> checkpoint known to be reached
}

// WorkerStats counts what a Worker did with the messages it was handed.
type WorkerStats struct {
	Batches  uint64 // batches of the log it handed to the Engine
	Events   uint64 // events in them (some may have been applied by another worker first)
	Skipped  uint64 // messages at or before the checkpoint: applied already
	Failures uint64 // messages given back (nak) after a failed apply
	Foreign  uint64 // messages dropped: not the forwarder's
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
	return &Worker{store: store, engine: engine, positions: positions, names: names, cfg: cfg, checkpoints: map[string]uint64{}}, nil
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

// Consumer is the durable JetStream consumer that the workers of a set of
// read models share: workers of the same set compete for its messages.
func Consumer(names []string) string {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	return "payesh-" + strings.Join(sorted, "-")
}

// Run follows the read models until ctx ends, starting again after a
// failure with a growing pause. It returns ctx's error.
func (w *Worker) Run(ctx context.Context) error {
	log := w.cfg.Logger.With("component", "natslog-worker", "consumer", Consumer(w.names))
	for attempt := 0; ; attempt++ {
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("consumption stopped; starting again", "err", err, "in", backoff(attempt))
		if err := pause(ctx, attempt); err != nil {
			return err
		}
	}
}

// follow consumes the messages until ctx ends or the subscription fails.
// One subscription serves every read model of the worker: a message is
// delivered once, not once per read model (deliveries, not transactions,
// were what bounded a worker's rate with a consumer per read model).
func (w *Worker) follow(ctx context.Context) error {
	for _, name := range w.names {
		if err := w.engine.Prepare(ctx, name); err != nil {
			return err
		}
	}
	nc, js, err := connect(w.cfg, "payesh-worker")
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
		ResourceInitializer: w.consumer(),
		NakDelay:            wmjs.NewStaticDelay(time.Second),
		// An acknowledgement lost on the way only redelivers a message,
		// which the checkpoint then skips: no need to wait for each.
		AckAsync: true,
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
			if err := w.handle(ctx, msg); err != nil {
				w.count(func(s *WorkerStats) { s.Failures++ })
				if ctx.Err() == nil {
					w.cfg.Logger.Warn("message given back", "err", err)
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

// consumer gets the durable consumer, creating it to start after the
// lowest of the read models' checkpoints when it does not exist yet. A
// consumer that exists is used as it is, wherever it stands: behind a
// checkpoint its messages are skipped, ahead of it the store fills the gap.
func (w *Worker) consumer() wmjs.ResourceInitializer {
	return func(ctx context.Context, js jetstream.JetStream, _ string) (jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error) {
		st, err := js.Stream(ctx, w.cfg.Stream)
		if err != nil {
			return nil, nil, err
		}
		durable := Consumer(w.names)
		c, err := st.Consumer(ctx, durable)
		if err == nil || !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return c, nil, err
		}
		at := uint64(math.MaxUint64)
		for _, name := range w.names {
			pos, err := w.positions.Position(ctx, name)
			if err != nil {
				return nil, nil, err
			}
			at = min(at, pos)
		}
		cfg := jetstream.ConsumerConfig{
			Durable:       durable,
			Description:   "Payesh read models " + strings.Join(w.names, ", "),
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
			c, err = st.Consumer(ctx, durable)
		}
		return c, nil, err
	}
}

// handle brings the read model to the message's position and, while the
// log already holds more, up to ReadAhead events beyond it: the events
// come from the store, in batches, each applied in one transaction with
// the checkpoint (Handle skips what another worker applied meanwhile, and
// the checkpoint only moves forward, so starting from an older reading of
// it is safe). A message at or before what this worker knows the checkpoint
// to be costs nothing but its acknowledgement. One transaction per message
// would cap a read model at a few hundred events a second (measured, see
// the package doc); reading ahead lets a backlog go at the rate of the
// Engine's batches while the messages spread the work and detect a dead
// worker's.
func (w *Worker) handle(ctx context.Context, msg *message.Message) error {
	e, err := pubsub.EventOf(msg)
	if err != nil {
		// Not the forwarder's (someone else publishing on the log's
		// subjects): dropping it loses nothing, since the log is read
		// from the store and the next message of the log leads there.
		w.count(func(s *WorkerStats) { s.Foreign++ })
		w.cfg.Logger.Warn("message dropped: it carries no event of the log", "uuid", msg.UUID, "err", err)
		return nil
	}
	// Most messages of a backlog are behind what this worker already
	// applied: those cost neither a goroutine nor a query.
	errs := make([]error, len(w.names))
	var wg sync.WaitGroup
	for i, name := range w.names {
		if e.Position <= w.known(name) {
			w.count(func(s *WorkerStats) { s.Skipped++ })
			continue
		}
		wg.Go(func() { errs[i] = w.advance(ctx, name, e.Position) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// advance brings one read model to position (and beyond, see handle).
func (w *Worker) advance(ctx context.Context, name string, position uint64) error {
	at, err := w.positions.Position(ctx, name)
	if err != nil {
		return err
	}
	w.saw(name, at)
	if position <= at {
		w.count(func(s *WorkerStats) { s.Skipped++ })
		return nil
	}
	through := max(position, at+uint64(w.cfg.ReadAhead))
	for at < through {
		batch, err := w.store.ReadAll(ctx, at, int(min(through-at, uint64(w.cfg.BatchSize))), eventstore.Filter{})
		if err != nil {
			return err
		}
		if len(batch) == 0 || batch[0].Position != at+1 {
			if at < position {
				return fmt.Errorf("natslog: %s: the store has no event %d", name, at+1)
			}
			break // the log ends here
		}
		if err := w.engine.Handle(ctx, name, batch); err != nil {
			return err
		}
		at = batch[len(batch)-1].Position
		w.saw(name, at)
		w.count(func(s *WorkerStats) { s.Batches++; s.Events += uint64(len(batch)) })
	}
	return nil
}

// known is the highest checkpoint of the read model this worker has seen
// or made: the real one is at least that.
func (w *Worker) known(name string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checkpoints[name]
}

func (w *Worker) saw(name string, position uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checkpoints[name] = max(w.checkpoints[name], position)
}

var _ Engine = (*projections.Engine)(nil)
