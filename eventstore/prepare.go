package eventstore

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Validate checks an append's arguments before a backend touches storage, so
// every backend refuses the same bad input with the same error. now is the
// recording time the backend will use.
func Validate(stream string, events []Proposed, now time.Time) error {
	if stream == "" || len(stream) > MaxStreamLen || !validText(stream) {
		return fmt.Errorf("%w: stream name must be 1 to %d bytes of UTF-8 without NUL", ErrInvalidEvent, MaxStreamLen)
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events to append", ErrInvalidEvent)
	}
	seen := make(map[string]struct{}, len(events))
	for i := range events {
		p := &events[i]
		switch {
		case p.ID == "":
			return fmt.Errorf("%w: event %d has no ID", ErrInvalidEvent, i)
		case p.Type == "":
			return fmt.Errorf("%w: event %d has no type", ErrInvalidEvent, i)
		case len(p.Data) > MaxEventSize:
			return fmt.Errorf("%w: event %d payload is %d bytes, limit %d", ErrInvalidEvent, i, len(p.Data), MaxEventSize)
		case !p.OccurredAt.IsZero() && p.OccurredAt.After(now.Add(BackdateTolerance)):
			return fmt.Errorf("%w: event %d occurred-at %s is in the future", ErrInvalidEvent, i, p.OccurredAt.Format(time.RFC3339))
		case !p.OccurredAt.IsZero() && p.OccurredAt.Before(now.Add(-BackdateTolerance)) && p.BackdateReason == "":
			return fmt.Errorf("%w: event %d is backdated to %s without a reason", ErrInvalidEvent, i, p.OccurredAt.Format(time.RFC3339))
		}
		if !p.OccurredAt.IsZero() && p.OccurredAt.Before(MinOccurredAt) {
			return fmt.Errorf("%w: event %d occurred-at %s is before %s", ErrInvalidEvent, i, p.OccurredAt.Format(time.RFC3339), MinOccurredAt.Format("2006"))
		}
		// Every backend stores these as text; a NUL byte or invalid UTF-8
		// would be refused by some databases mid-batch, failing the other
		// appends sharing the transaction, so all backends refuse it here.
		for _, f := range [...]struct{ name, v string }{
			{"ID", p.ID}, {"type", p.Type}, {"backdate reason", p.BackdateReason},
			{"actor ID", p.Actor.ID}, {"actor role", p.Actor.Role}, {"actor org", p.Actor.Org},
			{"idempotency key", p.IdempotencyKey}, {"correlation ID", p.CorrelationID}, {"causation ID", p.CausationID},
		} {
			if !validText(f.v) {
				return fmt.Errorf("%w: event %d: %s contains a NUL byte or invalid UTF-8", ErrInvalidEvent, i, f.name)
			}
		}
		if _, dup := seen[p.ID]; dup {
			return fmt.Errorf("%w: event ID %s appears twice in one append", ErrInvalidEvent, p.ID)
		}
		seen[p.ID] = struct{}{}
	}
	return nil
}

// MinOccurredAt is the earliest business time accepted: nothing in these
// programmes predates it, and it keeps every backend's time type in range.
var MinOccurredAt = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Build turns proposed events into stored ones, numbering them from the
// stream version and global position given, stamping the recording time and
// chaining their hashes from prev. It returns the new chain head.
func Build(stream string, version, position uint64, prev Hash, now time.Time, events []Proposed) ([]Event, Hash) {
	now = Normalize(now)
	out := make([]Event, len(events))
	var buf []byte
	for i, p := range events {
		occurred := now
		if !p.OccurredAt.IsZero() {
			occurred = Normalize(p.OccurredAt)
		}
		e := &out[i]
		*e = Event{
			Position:       position + uint64(i) + 1,
			Stream:         stream,
			Version:        version + uint64(i) + 1,
			ID:             p.ID,
			Type:           p.Type,
			Data:           p.Data,
			OccurredAt:     occurred,
			RecordedAt:     now,
			BackdateReason: p.BackdateReason,
			Actor:          p.Actor,
			IdempotencyKey: p.IdempotencyKey,
			CorrelationID:  p.CorrelationID,
			CausationID:    p.CausationID,
			PrevHash:       prev,
		}
		e.Hash, buf = Chain(prev, e, buf)
		prev = e.Hash
	}
	return out, prev
}

// CheckDuplicate decides what an append should do when some of its event IDs
// are already stored. stored holds the stored events found for those IDs,
// keyed by ID. It returns the original result when the append is an exact
// retry (all IDs stored, in this stream, consecutively and in this order),
// and ErrDuplicateEventID otherwise.
func CheckDuplicate(stream string, events []Proposed, stored map[string]Event) (AppendResult, error) {
	if len(stored) != len(events) {
		return AppendResult{}, fmt.Errorf("%w: %d of %d event IDs were already appended", ErrDuplicateEventID, len(stored), len(events))
	}
	first := stored[events[0].ID]
	for i, p := range events {
		e := stored[p.ID]
		if e.Stream != stream || e.Version != first.Version+uint64(i) {
			return AppendResult{}, fmt.Errorf("%w: event %s is stored as %s@%d", ErrDuplicateEventID, p.ID, e.Stream, e.Version)
		}
	}
	last := stored[events[len(events)-1].ID]
	return AppendResult{
		FirstVersion: first.Version, LastVersion: last.Version,
		FirstPosition: first.Position, LastPosition: last.Position,
		Duplicate: true,
	}, nil
}
