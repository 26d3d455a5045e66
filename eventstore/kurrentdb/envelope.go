package kurrentdb

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/payesh/payesh/eventstore"
)

// envelope is a Payesh event's envelope as KurrentDB stores it: the
// event's custom metadata, as JSON so that KurrentDB's UI and tools can
// show it. The position is not in it: it is the event's revision in the
// log stream plus one.
type envelope struct {
	Stream         string           `json:"stream"`
	Version        uint64           `json:"version"`
	ID             string           `json:"id"`
	OccurredAt     time.Time        `json:"occurred_at"` // RFC 3339, UTC, microseconds
	RecordedAt     time.Time        `json:"recorded_at"`
	BackdateReason string           `json:"backdate_reason,omitempty"`
	Actor          eventstore.Actor `json:"actor"`
	IdempotencyKey string           `json:"idempotency_key,omitempty"`
	CorrelationID  string           `json:"correlation_id,omitempty"`
	CausationID    string           `json:"causation_id,omitempty"`
	PrevHash       string           `json:"prev_hash"` // hex
	Hash           string           `json:"hash"`
}

// idNamespace seeds the KurrentDB event IDs of Payesh IDs that are not
// UUIDs. Changing it changes those IDs, and with them KurrentDB's own
// idempotency for retries that span the change.
var idNamespace = uuid.MustParse("0b4c7a52-3f0e-4f51-9a5e-8d1f7c2b6e94")

// eventID is the KurrentDB event ID of a Payesh event ID: the ID itself
// when it is a UUID in canonical form (lowercase, hyphenated: what
// uuid.String gives, so the mapping is one to one), otherwise a name-based
// (version 5) UUID derived from it. ok says which.
func eventID(id string) (u uuid.UUID, ok bool) {
	if u, ok := canonicalUUID(id); ok {
		return u, true
	}
	return uuid.NewSHA1(idNamespace, []byte(id)), false
}

// canonicalUUID parses id if it is a UUID written as uuid.String writes
// it. uuid.Parse also takes upper case, braces and URNs, which would map
// two different Payesh IDs to one UUID.
func canonicalUUID(id string) (uuid.UUID, bool) {
	if len(id) != 36 {
		return uuid.UUID{}, false
	}
	u, err := uuid.Parse(id)
	return u, err == nil && u.String() == id
}

// encode turns a built event into what is appended to the log stream. The
// content type is binary so that KurrentDB stores the payload byte for
// byte: it is hashed as it is.
func encode(e *eventstore.Event) (esdb.EventData, error) {
	id, _ := eventID(e.ID)
	md, err := json.Marshal(envelope{
		Stream: e.Stream, Version: e.Version, ID: e.ID,
		OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, BackdateReason: e.BackdateReason,
		Actor: e.Actor, IdempotencyKey: e.IdempotencyKey, CorrelationID: e.CorrelationID, CausationID: e.CausationID,
		PrevHash: e.PrevHash.String(), Hash: e.Hash.String(),
	})
	if err != nil {
		return esdb.EventData{}, fmt.Errorf("kurrentdb: encode event %s: %w", e.ID, err)
	}
	return esdb.EventData{EventID: id, EventType: e.Type, ContentType: esdb.ContentTypeBinary, Data: e.Data, Metadata: md}, nil
}

// decode turns an event of the log stream back into the Payesh event.
func decode(r *esdb.RecordedEvent) (eventstore.Event, error) {
	var env envelope
	if err := json.Unmarshal(r.UserMetadata, &env); err != nil {
		return eventstore.Event{}, fmt.Errorf("kurrentdb: event at revision %d of %s: metadata: %w", r.EventNumber, r.StreamID, err)
	}
	prev, err := eventstore.ParseHash(env.PrevHash)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("kurrentdb: event at revision %d of %s: prev_hash: %w", r.EventNumber, r.StreamID, err)
	}
	hash, err := eventstore.ParseHash(env.Hash)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("kurrentdb: event at revision %d of %s: hash: %w", r.EventNumber, r.StreamID, err)
	}
	data := r.Data
	if len(data) == 0 {
		data = nil // the same event whichever way it was read
	}
	return eventstore.Event{
		Position: r.EventNumber + 1, Stream: env.Stream, Version: env.Version, ID: env.ID, Type: r.EventType, Data: data,
		OccurredAt: env.OccurredAt.UTC(), RecordedAt: env.RecordedAt.UTC(), BackdateReason: env.BackdateReason,
		Actor: env.Actor, IdempotencyKey: env.IdempotencyKey, CorrelationID: env.CorrelationID, CausationID: env.CausationID,
		PrevHash: prev, Hash: hash,
	}, nil
}
