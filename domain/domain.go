// Package domain is the ledger's language: the events that make up a facility's
// and a quota's history, the deciders that turn commands into events, and the
// errors those deciders return. Its subpackages hold one aggregate or one kind of
// reference data each. Nothing here does I/O and nothing here depends on
// infrastructure; eventstore, projections and api depend on domain, never the
// reverse.
package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is one immutable fact. Implementations are plain structs serialised as
// JSON; EventType returns a stable name with a schema version, such as
// "facility.registered.v1". A name is never reused for a different shape: a
// changed payload gets a new version suffix.
type Event interface {
	EventType() string
}

// Recorded is an event as the ledger stored it, with the envelope fields a
// decider may need: corrections refer to earlier events by ID, and some rules
// depend on when something happened.
type Recorded struct {
	ID         string    // UUIDv7 of the event
	Stream     string    // stream the event belongs to
	Version    uint64    // 1-based version of the event within its stream
	Position   uint64    // 1-based position in the global log
	OccurredAt time.Time // business time
	RecordedAt time.Time // system time
	Event      Event
}

// Decider is an aggregate as three pure functions. Decide checks a command
// against the current state and returns the events that record its outcome,
// or an error (usually *ValidationError or *TransitionError) and no events.
// Evolve folds one recorded event into the state; it never fails, because the
// event is already a fact.
type Decider[S any, C any] struct {
	Initial func() S
	Decide  func(state S, cmd C) ([]Event, error)
	Evolve  func(state S, e Recorded) S
}

// Fold replays events onto the initial state.
func (d Decider[S, C]) Fold(events []Recorded) S {
	s := d.Initial()
	for _, e := range events {
		s = d.Evolve(s, e)
	}
	return s
}

// EventType describes one event type for the registry: its stable name and
// how to decode a stored payload of that type.
type EventType struct {
	Name   string
	decode func(data []byte) (Event, error)
}

// Type builds the EventType for a payload struct T. Decoded events are
// values of type T, exactly what deciders produce, so Evolve and projections
// see one representation whether an event came from Decide or from storage.
func Type[T Event]() EventType {
	var zero T
	return EventType{Name: zero.EventType(), decode: func(data []byte) (Event, error) {
		var v T
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if dec.More() {
			return nil, errors.New("trailing data after the payload")
		}
		return v, nil
	}}
}

// Registry decodes stored payloads back into typed events. It is read-only
// after construction and safe for concurrent use.
type Registry struct {
	types map[string]func([]byte) (Event, error)
	names []string
}

// NewRegistry builds a registry from lists of event types. A name that appears
// twice is a programming error and is reported.
func NewRegistry(lists ...[]EventType) (*Registry, error) {
	r := &Registry{types: map[string]func([]byte) (Event, error){}}
	for _, list := range lists {
		for _, t := range list {
			if _, dup := r.types[t.Name]; dup {
				return nil, fmt.Errorf("domain: event type %q registered twice", t.Name)
			}
			r.types[t.Name] = t.decode
			r.names = append(r.names, t.Name)
		}
	}
	return r, nil
}

// Names lists the registered event type names in registration order.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// Has reports whether name is a registered event type.
func (r *Registry) Has(name string) bool {
	_, ok := r.types[name]
	return ok
}

// Decode turns a stored payload into its typed event value. Unknown fields
// are refused: a payload that does not match its declared schema version is
// a fault, not something to guess about.
func (r *Registry) Decode(name string, data []byte) (Event, error) {
	decode, ok := r.types[name]
	if !ok {
		return nil, fmt.Errorf("domain: unknown event type %q", name)
	}
	e, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("domain: decode %s: %w", name, err)
	}
	return e, nil
}

// Encode serialises an event payload. encoding/json sorts nothing but emits
// struct fields in declaration order, so the bytes are deterministic for a
// given value; the event store hashes exactly these bytes.
func Encode(e Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("domain: encode %s: %w", e.EventType(), err)
	}
	return b, nil
}
