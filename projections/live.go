package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/payesh/payesh/projections/pubsub"
)

// The live path: once a projection has caught up in batches, it follows
// the log through a Watermill Router, one per projection, whose handler
// takes the store's global log from projections/pubsub (topic $all,
// consumer group = the projection's name) and applies each event with its
// checkpoint in one transaction (Engine.applyOnce, as Handle does).
//
// The Router's middleware, outermost first:
//
//   - stop: an error that survives the retries marks the projection failed
//     (projection_state, Status, so /readyz and the metrics show it) and
//     holds the message, unacknowledged, until the Router stops: the
//     subscription delivers the next event only after an ack, so nothing
//     after the failed event is applied, and nothing is skipped;
//   - CorrelationID: the event's correlation id (carried in the message's
//     correlation_id metadata) follows anything a handler produces, and
//     the stop middleware logs it with the failure;
//   - Retry: Config.MaxAttempts attempts, backing off from
//     Config.RetryBackoff, doubling, up to 10s; errors that cannot heal by
//     retrying (a payload that does not decode, a changed version) are not
//     retried;
//   - Recoverer: a panicking projector is an error like any other (retried,
//     then failed), not a crashed process.
//
// The subscription starts from the projection's own checkpoint: the
// checkpoint store the Subscriber is given reads projection_state and
// ignores the Subscriber's saves, because the checkpoint that counts is the
// one committed with the read model. A redelivered event is at or before
// that checkpoint and is skipped. If the projection falls far behind the
// head while live (a burst of appends outpacing one transaction per
// event), the handler catches up in batches, as at start, and the events
// delivered meanwhile are skipped without a transaction.

// headCheckEvery is the least time between two looks at the log's head from
// the live handler, to notice that it has fallen behind.
const headCheckEvery = 250 * time.Millisecond

// live follows the log from the projection's checkpoint until ctx ends or
// the projection fails (*FailedError) or finds another version stored
// (ErrVersionChanged).
func (e *Engine) live(ctx context.Context, r *runner) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := watermill.NewSlogLogger(e.cfg.Logger.With("projection", r.p.Name()))
	sub, err := pubsub.NewSubscriber(e.cfg.Store, stateCheckpoints{e}, pubsub.SubscriberConfig{
		ConsumerGroup: r.p.Name(),
		NackBackoff:   e.cfg.RetryBackoff,
		RetryBackoff:  e.cfg.RetryBackoff,
		BatchSize:     min(e.cfg.BatchSize, 1000),
		Leaser:        new(pubsub.LocalLeases), // projection_state's row lock is what excludes
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	defer sub.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	router.AddMiddleware(
		e.stopOnFailure(r, stopped),
		middleware.CorrelationID,
		middleware.Retry{
			MaxRetries:      e.cfg.MaxAttempts - 1,
			InitialInterval: e.cfg.RetryBackoff,
			Multiplier:      2,
			MaxInterval:     10 * time.Second,
			ShouldRetry:     func(p middleware.RetryParams) bool { return retriable(p.Err) },
			OnRetryHook:     func(int, time.Duration) { r.retries.Add(1) },
			Logger:          logger,
		}.Middleware,
		middleware.Recoverer,
	)
	router.AddConsumerHandler(r.p.Name(), pubsub.AllTopic, sub, e.liveHandler(r))

	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(ctx) }()
	select {
	case <-router.Running():
		r.update(func(s *Status) { s.State, s.LastError = StateLive, "" })
	case err := <-runErr:
		return fmt.Errorf("projections: router of %s: %w", r.p.Name(), err)
	}
	var result error
	select {
	case result = <-stopped:
	case <-ctx.Done():
		result = ctx.Err()
	case err := <-runErr:
		runErr <- err
		if result = ctx.Err(); result == nil {
			result = fmt.Errorf("projections: router of %s stopped: %v", r.p.Name(), err)
		}
	}
	cancel()
	_ = router.Close()
	<-runErr
	return result
}

// liveHandler applies one delivered event.
func (e *Engine) liveHandler(r *runner) message.NoPublishHandlerFunc {
	var lastHeadCheck time.Time
	return func(msg *message.Message) error {
		ev, err := pubsub.EventOf(msg)
		if errors.Is(err, pubsub.ErrNotAnEvent) {
			// A message published through pubsub.Publisher, not a domain
			// event: no projector reads those. The checkpoint moves past it
			// with the next domain event.
			return nil
		}
		if err != nil {
			return &DecodeError{Err: err}
		}
		if ev.Position <= r.snapshot().Position {
			return nil // already applied (a redelivery, or a catch-up ran ahead)
		}
		ctx := msg.Context()
		if time.Since(lastHeadCheck) > headCheckEvery {
			lastHeadCheck = time.Now()
			head, err := e.cfg.Store.Head(ctx)
			if err != nil {
				return err
			}
			if head.Position > ev.Position+uint64(e.cfg.BatchSize) {
				_, err := e.catchUp(ctx, r, ev.Position-1)
				return err
			}
		}
		var envs []Envelope
		if r.p.Filter().Matches(&ev) {
			env, err := Decode(e.cfg.Registry, &ev)
			if err != nil {
				return err
			}
			envs = []Envelope{env}
		}
		pos, err := e.applyOnce(ctx, r, target{}, envs, ev.Position)
		if err != nil {
			return err
		}
		r.applied.Add(uint64(len(envs)))
		r.update(func(s *Status) { s.Position = pos })
		e.wake.Broadcast()
		return nil
	}
}

// stopOnFailure is the outermost middleware: see live.
func (e *Engine) stopOnFailure(r *runner, stopped chan<- error) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := next(msg)
			if err == nil {
				return out, nil
			}
			ctx := msg.Context()
			if ctx.Err() != nil {
				return nil, err // stopping: the event is delivered again next time
			}
			if errors.Is(err, ErrVersionChanged) || errors.Is(err, ErrFailed) {
				stopped <- err // a batched catch-up already recorded its failure
			} else {
				e.cfg.Logger.Error("event cannot be applied: projection stopped",
					"projection", r.p.Name(), "event_id", msg.UUID,
					"position", msg.Metadata.Get(pubsub.MetaPosition),
					"correlation_id", middleware.MessageCorrelationID(msg), "err", err)
				at := r.snapshot().Position
				stopped <- e.fail(ctx, r, at, err)
			}
			<-ctx.Done() // hold the event: nothing after it is delivered
			return nil, err
		}
	}
}

// retriable reports whether an error may heal by trying again.
func retriable(err error) bool {
	var de *DecodeError
	return !errors.As(err, &de) && !errors.Is(err, ErrVersionChanged) && !errors.Is(err, ErrFailed) &&
		!errors.Is(err, context.Canceled)
}

// stateCheckpoints is the live Subscriber's checkpoint store: the position
// committed with the read model. Saves are ignored: acks are not atomic
// with the read model, the engine's own checkpoint is.
type stateCheckpoints struct{ e *Engine }

// Load implements pubsub.CheckpointStore: group is the projection's name.
func (c stateCheckpoints) Load(ctx context.Context, group, _ string) (uint64, error) {
	r, err := c.e.runner(group)
	if err != nil {
		return 0, err
	}
	st, ok, err := loadState(ctx, c.e.cfg.DB.Read, c.e.cfg.DB.Dialect, r.p.Name(), false)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("projections: %s has no row in %s", r.p.Name(), stateTable)
	}
	return st.Position, nil
}

// Save implements pubsub.CheckpointStore; see stateCheckpoints.
func (stateCheckpoints) Save(context.Context, string, string, uint64) error { return nil }

var _ pubsub.CheckpointStore = stateCheckpoints{}
