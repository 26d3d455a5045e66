package pubsub

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/payesh/payesh/eventstore"
)

// MessageType is the event type under which Publisher stores a Watermill
// message.
const MessageType = "watermill.message.v1"

// AllTopic subscribes to the whole log.
const AllTopic = "$all"

// CorrelationIDKey is the metadata key Watermill's correlation middleware
// uses (middleware.CorrelationIDMetadataKey). Publisher copies it into the
// event envelope's correlation ID; domain events carry theirs under it.
const CorrelationIDKey = "correlation_id"

// Metadata keys under which a domain event's envelope is delivered.
const (
	MetaType           = "payesh_type"
	MetaStream         = "payesh_stream"
	MetaVersion        = "payesh_version"
	MetaPosition       = "payesh_position"
	MetaOccurredAt     = "payesh_occurred_at"
	MetaRecordedAt     = "payesh_recorded_at"
	MetaBackdateReason = "payesh_backdate_reason"
	MetaActorID        = "payesh_actor_id"
	MetaActorRole      = "payesh_actor_role"
	MetaActorOrg       = "payesh_actor_org"
	MetaCausationID    = "payesh_causation_id"
	MetaIdempotencyKey = "payesh_idempotency_key"
)

// envelope is the Data of a MessageType event: the message exactly as
// published. Payload is a []byte, so JSON carries it as base64 and nil and
// empty payloads stay apart (null and "").
type envelope struct {
	UUID     string            `json:"uuid"`
	Payload  []byte            `json:"payload"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// selector is a parsed subscription topic.
type selector struct {
	topic  string
	filter eventstore.Filter
	exact  string // non-empty: only this stream (the prefix filter is wider)
}

var errEmptyTopic = errors.New("pubsub: empty topic")

// parseTopic reads a subscription topic: AllTopic, "prefix*", or a stream.
func parseTopic(topic string) (selector, error) {
	switch {
	case topic == "":
		return selector{}, errEmptyTopic
	case topic == AllTopic:
		return selector{topic: topic}, nil
	case strings.HasSuffix(topic, "*"):
		prefix := strings.TrimSuffix(topic, "*")
		s := selector{topic: topic}
		if prefix != "" {
			s.filter.StreamPrefixes = []string{prefix}
		}
		return s, nil
	case len(topic) > eventstore.MaxStreamLen:
		return selector{}, fmt.Errorf("pubsub: topic is %d bytes, a stream name is at most %d", len(topic), eventstore.MaxStreamLen)
	}
	return selector{topic: topic, filter: eventstore.Filter{StreamPrefixes: []string{topic}}, exact: topic}, nil
}

// matches is the check beyond the store's filter (which ReadAll applied).
func (s selector) matches(e *eventstore.Event) bool {
	return s.exact == "" || e.Stream == s.exact
}

// selects reports whether e belongs to the topic.
func (s selector) selects(e *eventstore.Event) bool {
	return s.filter.Matches(e) && s.matches(e)
}

// checkPublishTopic refuses topics that do not name one stream.
func checkPublishTopic(topic string) error {
	switch {
	case topic == "":
		return errEmptyTopic
	case topic == AllTopic:
		return fmt.Errorf("pubsub: cannot publish to %s, it names the whole log", AllTopic)
	case strings.HasSuffix(topic, "*"):
		return fmt.Errorf("pubsub: cannot publish to %q, a topic ending in * names a set of streams", topic)
	}
	return nil
}

// eventID derives the event ID of a message published to topic: a
// name-based (version 5 layout, SHA-256) UUID of topic and message UUID.
// Watermill message UUIDs are only unique per topic (msg.Copy keeps the UUID,
// and Watermill's own tests publish copies to several topics) while event IDs
// are unique in the whole log; deriving keeps a retried Publish idempotent.
func eventID(topic, uuid string) string {
	h := sha256.New()
	h.Write([]byte("payesh.pubsub.message\x00"))
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write([]byte(uuid))
	var b [16]byte
	copy(b[:], h.Sum(nil))
	b[6] = (b[6] & 0x0f) | 0x50 // version 5 (name-based)
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// decoded is an event turned into what every delivery attempt copies.
type decoded struct {
	uuid     string
	payload  []byte
	metadata map[string]string
}

// decode turns a stored event into message contents. A MessageType event
// gives back the message as published; any other event (and a MessageType
// event whose envelope cannot be read, which is then delivered as stored
// rather than blocking the subscription) gives its data as payload and its
// envelope as metadata.
func decode(e *eventstore.Event) decoded {
	if e.Type == MessageType {
		var env envelope
		if err := json.Unmarshal(e.Data, &env); err == nil && env.UUID != "" {
			return decoded{uuid: env.UUID, payload: env.Payload, metadata: env.Metadata}
		}
	}
	md := map[string]string{
		MetaType:       e.Type,
		MetaStream:     e.Stream,
		MetaVersion:    strconv.FormatUint(e.Version, 10),
		MetaPosition:   strconv.FormatUint(e.Position, 10),
		MetaOccurredAt: e.OccurredAt.UTC().Format(time.RFC3339Nano),
		MetaRecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano),
		MetaActorID:    e.Actor.ID,
		MetaActorRole:  e.Actor.Role,
	}
	for k, v := range map[string]string{
		MetaActorOrg:       e.Actor.Org,
		MetaBackdateReason: e.BackdateReason,
		CorrelationIDKey:   e.CorrelationID,
		MetaCausationID:    e.CausationID,
		MetaIdempotencyKey: e.IdempotencyKey,
	} {
		if v != "" {
			md[k] = v
		}
	}
	return decoded{uuid: e.ID, payload: bytes.Clone(e.Data), metadata: md}
}

// message builds a fresh Watermill message; every delivery attempt gets one.
func (d decoded) message() *message.Message {
	var payload message.Payload
	if d.payload != nil {
		payload = bytes.Clone(d.payload)
	}
	msg := message.NewMessage(d.uuid, payload)
	for k, v := range d.metadata {
		msg.Metadata[k] = v
	}
	return msg
}

// Message is the Watermill message a Subscriber delivers for e: what
// another transport (natslog, over NATS JetStream) carries, so that EventOf
// gives the event back at the other end.
func Message(e *eventstore.Event) *message.Message { return decode(e).message() }

// ErrNotAnEvent says a message does not carry a stored domain event's
// envelope: it was published through Publisher (a MessageType event, which
// is delivered as published) or came from elsewhere.
var ErrNotAnEvent = errors.New("pubsub: the message carries no event envelope")

// EventOf rebuilds the stored event a message delivers from its payload and
// metadata: the inverse of what Subscriber does to a domain event, whatever
// transport carried the message since (the hash fields stay zero). A
// message without the envelope's metadata gives ErrNotAnEvent; one whose
// metadata is malformed gives an error naming the key.
func EventOf(msg *message.Message) (eventstore.Event, error) {
	md := msg.Metadata
	if md.Get(MetaType) == "" || md.Get(MetaPosition) == "" {
		return eventstore.Event{}, ErrNotAnEvent
	}
	e := eventstore.Event{
		Stream: md.Get(MetaStream), ID: msg.UUID, Type: md.Get(MetaType), Data: msg.Payload,
		BackdateReason: md.Get(MetaBackdateReason),
		Actor:          eventstore.Actor{ID: md.Get(MetaActorID), Role: md.Get(MetaActorRole), Org: md.Get(MetaActorOrg)},
		IdempotencyKey: md.Get(MetaIdempotencyKey), CorrelationID: md.Get(CorrelationIDKey), CausationID: md.Get(MetaCausationID),
	}
	var err error
	if e.Position, err = metaUint(md, MetaPosition); err != nil {
		return eventstore.Event{}, err
	}
	if e.Version, err = metaUint(md, MetaVersion); err != nil {
		return eventstore.Event{}, err
	}
	if e.OccurredAt, err = metaTime(md, MetaOccurredAt); err != nil {
		return eventstore.Event{}, err
	}
	if e.RecordedAt, err = metaTime(md, MetaRecordedAt); err != nil {
		return eventstore.Event{}, err
	}
	return e, nil
}

func metaUint(md message.Metadata, key string) (uint64, error) {
	n, err := strconv.ParseUint(md.Get(key), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("pubsub: metadata %s: %q is not a positive integer", key, md.Get(key))
	}
	return n, nil
}

func metaTime(md message.Metadata, key string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, md.Get(key))
	if err != nil {
		return time.Time{}, fmt.Errorf("pubsub: metadata %s: %q is not an RFC 3339 time", key, md.Get(key))
	}
	return t.UTC(), nil
}
