package natslog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections/pubsub"
)

// Forwarder publishes the event log to JetStream, in order, from where the
// stream ends: the stream is its own checkpoint (its last sequence is the
// last position published), so a restarted or second forwarder picks up
// exactly there.
type Forwarder struct {
	store  eventstore.Store
	leaser pubsub.Leaser
	cfg    Config
}

// LeaseGroup and the stream's name key the forwarder's lease.
const LeaseGroup = "natslog-forwarder"

// NewForwarder returns a forwarder of store's log. leaser, if not nil,
// makes one forwarder active at a time among all that share its scope
// (postgres.Checkpoints: every process on the database); without it
// concurrent forwarders stay correct, since JetStream takes each position
// once, but race for every message.
func NewForwarder(store eventstore.Store, leaser pubsub.Leaser, cfg Config) (*Forwarder, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Forwarder{store: store, leaser: leaser, cfg: cfg}, nil
}

// errBehind says another forwarder published the position this one was
// about to: it starts again from the stream's new end.
var errBehind = errors.New("natslog: another forwarder published ahead")

// Run forwards until ctx ends, starting again after any failure (NATS or
// the store unreachable, the lease lost) with a growing pause. It returns
// ctx's error, or at once an error that retrying cannot mend: a stream
// holding more messages than the log has events, or messages that are not
// the log's.
func (f *Forwarder) Run(ctx context.Context) error {
	log := f.cfg.Logger.With("component", "natslog-forwarder", "stream", f.cfg.Stream)
	for attempt := 0; ; attempt++ {
		err := f.runLeased(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fatal *mismatchError
		if errors.As(err, &fatal) {
			return err
		}
		if errors.Is(err, errBehind) {
			attempt = -1 // not a failure: go on at once
			continue
		}
		log.Warn("forwarding stopped; starting again", "err", err, "in", backoff(attempt))
		if err := pause(ctx, attempt); err != nil {
			return err
		}
	}
}

func (f *Forwarder) runLeased(ctx context.Context) error {
	if f.leaser == nil {
		return f.forward(ctx)
	}
	held, release, err := f.leaser.Lease(ctx, LeaseGroup, f.cfg.Stream)
	if err != nil {
		return err
	}
	defer release()
	return f.forward(held)
}

// mismatchError says the JetStream stream does not hold a prefix of the log.
type mismatchError struct{ msg string }

func (e *mismatchError) Error() string { return "natslog: " + e.msg }

// forward publishes from the stream's end until ctx ends or a publish fails.
func (f *Forwarder) forward(ctx context.Context) error {
	nc, js, err := connect(f.cfg, "payesh-forwarder")
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := ensureStream(ctx, js, f.cfg)
	if err != nil {
		return err
	}
	last, err := f.published(ctx, st)
	if err != nil {
		return err
	}
	// Messages go out as plain NATS publishes, a batch at a time without
	// waiting for each one's acknowledgement (one round trip per event
	// would cap the forwarder at a few thousand a second); the stream
	// takes them as they come. Nats-Expected-Last-Sequence keeps that
	// safe: a message the stream refuses (or that is lost) makes every
	// later one of the batch fail its own check, so the stream can only
	// ever end on a prefix of the batch, and confirm tells where.
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler: &wmnats.NATSMarshaler{},
		JetStream: wmnats.JetStreamConfig{Disabled: true},
	}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	f.cfg.Logger.Info("forwarding the log to JetStream", "stream", f.cfg.Stream, "after", last)
	return f.store.Subscribe(ctx, last, eventstore.Filter{}, func(ctx context.Context, batch []eventstore.Event) error {
		for i := range batch {
			e := &batch[i]
			msg := pubsub.Message(e)
			msg.Metadata.Set(headerMsgID, e.ID)
			msg.Metadata.Set(headerExpectedLastSeq, strconv.FormatUint(e.Position-1, 10))
			if err := pub.Publish(Subject(f.cfg.Subjects, e.Stream), msg); err != nil {
				return fmt.Errorf("natslog: publish position %d: %w", e.Position, err)
			}
		}
		return f.confirm(ctx, nc, st, batch[len(batch)-1].Position)
	})
}

// confirm waits until the stream holds position through. If it stops
// short (a message refused or lost), or another forwarder took the
// stream past it, it returns errBehind, and forwarding starts again from
// where the stream ends.
func (f *Forwarder) confirm(ctx context.Context, nc *nats.Conn, st jetstream.Stream, through uint64) error {
	if err := nc.FlushTimeout(confirmTimeout); err != nil {
		return fmt.Errorf("natslog: flush: %w", err)
	}
	var last uint64
	stalled := time.Now()
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 50*time.Millisecond) {
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("natslog: stream info: %w", err)
		}
		switch seq := info.State.LastSeq; {
		case seq == through:
			return nil
		case seq > through:
			return errBehind
		case seq > last:
			last, stalled = seq, time.Now()
		case time.Since(stalled) > confirmTimeout:
			f.cfg.Logger.Warn("the stream stopped short of the batch; publishing again from its end", "stream", f.cfg.Stream, "at", seq, "want", through)
			return errBehind
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// confirmTimeout is how long the stream may stay short of a batch without
// moving before the forwarder publishes the rest again.
const confirmTimeout = 2 * time.Second

// published returns the last position in the stream, checking that the
// stream is a prefix of this log: its last message carries that position
// and is no further than the log's head.
func (f *Forwarder) published(ctx context.Context, st jetstream.Stream) (uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natslog: stream info: %w", err)
	}
	last := info.State.LastSeq
	if last == 0 {
		return 0, nil
	}
	head, err := f.store.Head(ctx)
	if err != nil {
		return 0, err
	}
	if last > head.Position {
		return 0, &mismatchError{fmt.Sprintf("stream %s holds %d messages but the log only %d events: it carries another log", f.cfg.Stream, last, head.Position)}
	}
	raw, err := st.GetMsg(ctx, last)
	if err != nil {
		return 0, fmt.Errorf("natslog: read message %d: %w", last, err)
	}
	if got := raw.Header.Get(pubsub.MetaPosition); got != strconv.FormatUint(last, 10) {
		return 0, &mismatchError{fmt.Sprintf("message %d of stream %s says position %q: the stream is not a copy of the log", last, f.cfg.Stream, got)}
	}
	events, err := f.store.ReadAll(ctx, last-1, 1, eventstore.Filter{})
	if err != nil {
		return 0, err
	}
	if len(events) != 1 || events[0].ID != raw.Header.Get(headerMsgID) {
		return 0, &mismatchError{fmt.Sprintf("message %d of stream %s is event %q, not the log's event at that position: the stream carries another log", last, f.cfg.Stream, raw.Header.Get(headerMsgID))}
	}
	return last, nil
}
