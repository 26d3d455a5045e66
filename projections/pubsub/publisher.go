package pubsub

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/payesh/payesh/eventstore"
)

// ErrPublisherClosed is returned by Publish after Close.
var ErrPublisherClosed = errors.New("pubsub: publisher closed")

// PublisherConfig configures NewPublisher.
type PublisherConfig struct {
	// Actor is recorded as the author of every published event (required:
	// ID and Role). The log attributes every fact to someone; a publisher is
	// a service acting under its own identity.
	Actor eventstore.Actor
}

// Publisher is a message.Publisher that appends to the event store: each
// Publish call is one atomic Append of all its messages to the stream named
// by the topic. It does not own the store: Close leaves it open.
type Publisher struct {
	store eventstore.Store
	actor eventstore.Actor

	mu     sync.RWMutex // held for reading by Publish, so Close waits for them
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher appending to store.
func NewPublisher(store eventstore.Store, cfg PublisherConfig) (*Publisher, error) {
	if store == nil {
		return nil, errors.New("pubsub: NewPublisher needs a store")
	}
	if cfg.Actor.ID == "" || cfg.Actor.Role == "" {
		return nil, errors.New("pubsub: PublisherConfig.Actor needs an ID and a role")
	}
	return &Publisher{store: store, actor: cfg.Actor}, nil
}

// Publish appends msgs, in order, to the stream named topic, atomically:
// all of them or none. Each becomes a MessageType event whose data is the
// message (UUID, payload, metadata) as JSON, so a Subscriber gives it back
// exactly; its event ID is derived from topic and message UUID, so
// publishing the same messages again to the same topic (a retry after an
// uncertain failure) writes nothing and succeeds. A message's
// "correlation_id" metadata also becomes the event's correlation ID. The
// append runs under the first message's context.
//
// topic must name one stream: not AllTopic, not ending in "*".
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := checkPublishTopic(topic); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	events := make([]eventstore.Proposed, len(msgs))
	for i, m := range msgs {
		if m.UUID == "" {
			return fmt.Errorf("pubsub: message %d has no UUID", i)
		}
		for k, v := range m.Metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				// JSON would replace the bad bytes: refuse rather than
				// deliver something else than was published.
				return fmt.Errorf("pubsub: message %s: metadata %q is not valid UTF-8", m.UUID, k)
			}
		}
		data, err := json.Marshal(envelope{UUID: m.UUID, Payload: m.Payload, Metadata: m.Metadata})
		if err != nil {
			return fmt.Errorf("pubsub: encode message %s: %w", m.UUID, err)
		}
		events[i] = eventstore.Proposed{
			ID:            eventID(topic, m.UUID),
			Type:          MessageType,
			Data:          data,
			Actor:         p.actor,
			CorrelationID: m.Metadata.Get(CorrelationIDKey),
		}
	}
	if _, err := p.store.Append(msgs[0].Context(), topic, eventstore.Any, events); err != nil {
		return fmt.Errorf("pubsub: publish %d messages to %q: %w", len(msgs), topic, err)
	}
	return nil
}

// Close makes further Publish calls fail, after waiting for those in
// flight. It is idempotent and leaves the store open.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}
