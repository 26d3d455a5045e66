// Package eventstore defines the append-only, hash-chained log that every
// Payesh fact is written to, and the contract its backends keep.
//
// The log is a sequence of events, each in exactly one stream (a facility, a
// quota ledger, a reference catalogue) and each with a gap-free global
// position. Streams give optimistic concurrency: an append names the version it
// expects the stream to be at. The global log gives auditors and projections
// one total order: position N+1 is committed after position N, and a reader
// that has seen position N will never later see an event with a smaller one.
//
// Every event carries a SHA-256 hash over its canonical bytes (see Canonical),
// chained to the hash of the event before it in the global log. Altering,
// removing or reordering a stored event breaks the chain at that event, and
// Verify names it. Backends also refuse UPDATE and DELETE on the events table
// with triggers, so tampering needs deliberate privilege, and Verify catches
// what triggers cannot prevent.
//
// Backends live in subpackages (sqlite, postgres, kurrentdb) and all pass the
// contract suite in eventstoretest.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Actor is who caused an event: taken from the caller's credentials, never
// from a request body.
type Actor struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	Org  string `json:"org,omitempty"`
}

// Proposed is an event offered to Append. The store fills in stream, version,
// position, recorded-at and hashes.
type Proposed struct {
	ID         string    // UUIDv7, chosen by the writer so a retry can reuse it
	Type       string    // stable, versioned name, e.g. "facility.registered.v1"
	Data       []byte    // JSON payload, stored and hashed byte for byte
	OccurredAt time.Time // business time; zero means "now"
	// BackdateReason must be given when OccurredAt is earlier than the
	// moment of recording by more than BackdateTolerance.
	BackdateReason string
	Actor          Actor
	IdempotencyKey string // the command's idempotency key, if any
	CorrelationID  string
	CausationID    string
}

// BackdateTolerance is how far in the past OccurredAt may lie without a
// BackdateReason; it absorbs clock skew between clients and the server.
const BackdateTolerance = 5 * time.Minute

// Event is a stored event with its full envelope.
type Event struct {
	Position       uint64 // 1-based, gap-free position in the global log
	Stream         string
	Version        uint64 // 1-based version within the stream
	ID             string
	Type           string
	Data           []byte
	OccurredAt     time.Time // UTC, microsecond precision
	RecordedAt     time.Time // UTC, microsecond precision, set by the store
	BackdateReason string
	Actor          Actor
	IdempotencyKey string
	CorrelationID  string
	CausationID    string
	PrevHash       Hash // hash of the event at Position-1; zero for the first
	Hash           Hash // Chain(PrevHash, Canonical(event))
}

// ExpectedVersion is the stream state an append requires. Versions count
// events: a stream with three events is at version 3; an absent stream is
// at version 0.
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExists
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream requires that the stream has no events.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists requires at least one event in the stream.
	StreamExists = ExpectedVersion{kind: expectExists}
)

// Exact requires the stream to be at version v. Exact(0) is NoStream.
func Exact(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: v}
}

// Matches reports whether a stream at version current satisfies e.
func (e ExpectedVersion) Matches(current uint64) bool {
	switch e.kind {
	case expectNoStream:
		return current == 0
	case expectExists:
		return current > 0
	case expectExact:
		return current == e.version
	default:
		return true
	}
}

// Version returns the exact version required and whether e is exact (Exact or
// NoStream).
func (e ExpectedVersion) Version() (uint64, bool) {
	switch e.kind {
	case expectNoStream:
		return 0, true
	case expectExact:
		return e.version, true
	}
	return 0, false
}

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectExists:
		return "stream exists"
	case expectExact:
		return fmt.Sprintf("version %d", e.version)
	}
	return "any"
}

// AppendResult says where an append landed.
type AppendResult struct {
	FirstVersion  uint64 // stream version of the first appended event
	LastVersion   uint64 // stream version after the append
	FirstPosition uint64 // global position of the first appended event
	LastPosition  uint64 // global position of the last appended event
	// Duplicate is true when every event ID was already stored by an earlier
	// identical append: nothing was written and the positions are the
	// original ones.
	Duplicate bool
}

// Direction of a stream read.
type Direction uint8

const (
	Forwards Direction = iota
	Backwards
)

// Filter selects events from the global log. Empty fields match everything;
// within a field any entry may match.
type Filter struct {
	StreamPrefixes []string
	Types          []string
}

// Matches reports whether an event passes the filter.
func (f Filter) Matches(e *Event) bool {
	if len(f.StreamPrefixes) > 0 {
		ok := false
		for _, p := range f.StreamPrefixes {
			if len(e.Stream) >= len(p) && e.Stream[:len(p)] == p {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.Types) > 0 {
		for _, t := range f.Types {
			if e.Type == t {
				return true
			}
		}
		return false
	}
	return true
}

// Head is the newest event in the global log: its position and hash.
// An empty log has position 0 and a zero hash.
type Head struct {
	Position uint64
	Hash     Hash
}

// Page is a stretch of the global log as ReadPage returns it.
type Page struct {
	// Events are the events with a position in (after, Through] that
	// match the filter, every one of them, in global order.
	Events []Event
	// Through is how far the read looked: at least the after it was
	// given, and at most Head unless after was beyond it.
	Through uint64
	// Head is the newest position in the snapshot the page was read from.
	Head uint64
}

// DefaultScanWindow is the SQL backends' ReadPage window: the most
// positions a page looks through (limit, when that is larger). A window is
// a range of the position index checked row by row against the filter,
// 1-3 ms on PostgreSQL, so a sparse filter costs a call per 10,000 events
// of log while a dense one fills its limit well before the window ends.
const DefaultScanWindow = 10_000

// PageReader is what ReadAllPaged needs.
type PageReader interface {
	ReadPage(ctx context.Context, after uint64, limit int, filter Filter) (Page, error)
}

// ReadAllPaged implements ReadAll on top of ReadPage, for backends: it
// reads page after page, each from where the last one stopped, until it
// has limit events or has caught up with the head. Every page is bounded,
// so no single statement scans far, and the pages together cover the log
// without a gap: the log is append-only and positions are gap-free, so
// what one page saw up to its Through any later snapshot shows the same.
func ReadAllPaged(ctx context.Context, r PageReader, after uint64, limit int, filter Filter) ([]Event, error) {
	out := []Event{}
	for len(out) < limit {
		p, err := r.ReadPage(ctx, after, limit-len(out), filter)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Events...)
		if p.Through >= p.Head {
			break
		}
		if p.Through <= after {
			return nil, fmt.Errorf("eventstore: a page after position %d did not advance (through %d, head %d)", after, p.Through, p.Head)
		}
		after = p.Through
	}
	return out, nil
}

// Handler receives batches of events from a subscription, in global order.
// A batch is never empty. Returning an error ends the subscription with that
// error. The slice is only valid until Handler returns.
type Handler func(ctx context.Context, batch []Event) error

// Store is the append-only event log.
//
// All methods are safe for concurrent use by many goroutines and, for the
// SQL backends, by many processes sharing one database. Cancelling ctx
// abandons the call: an append either committed completely or not at all, and
// the caller cannot tell which unless it retries with the same event IDs,
// which is always safe.
type Store interface {
	// Append adds events to the end of stream, atomically, if the stream is
	// at the expected version; otherwise it returns a *VersionError that
	// matches ErrWrongExpectedVersion and writes nothing.
	//
	// Appends are idempotent by event ID: if the events' IDs were already
	// appended to this stream, in this order, by an earlier call, Append
	// returns that call's result with Duplicate set and writes nothing, in
	// every expected-version mode. If only some of the IDs are stored, or
	// they are stored in another stream, it returns ErrDuplicateEventID.
	//
	// Invalid input (no events, an empty or oversized stream name, a
	// missing ID or type, a backdated event without a reason, an event from
	// the future) returns an error matching ErrInvalidEvent.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []Proposed) (AppendResult, error)

	// ReadStream returns up to limit events of stream starting at version
	// from (inclusive) and going in dir. Reading backwards from
	// math.MaxUint64 starts at the newest event. A stream with no events
	// returns an empty slice and no error; use StreamVersion to tell
	// absence apart.
	ReadStream(ctx context.Context, stream string, from uint64, dir Direction, limit int) ([]Event, error)

	// StreamVersion returns the stream's current version (0 when absent).
	StreamVersion(ctx context.Context, stream string) (uint64, error)

	// ReadAll returns up to limit events with position > after that match
	// filter, in global order. Filtered-out events are skipped without
	// counting against limit, so with a filter that matches sparsely a call
	// looks through as much of the log as it takes to find limit events,
	// up to the head; readers that page through the log with a filter
	// should use ReadPage, whose cost is bounded.
	ReadAll(ctx context.Context, after uint64, limit int, filter Filter) ([]Event, error)

	// ReadPage reads the log after position after like ReadAll, but does
	// a bounded amount of work and says how far it got: it returns every
	// event matching filter up to a position of its choosing, Page.Through,
	// and stops at limit events, at the head, or where its bound falls,
	// after a window of positions (at least limit) unless an index finds
	// the filter's few events directly. A page may therefore be empty and
	// yet advanced (Through > after) when nothing in the window matched.
	// So a page costs about a window of the log whatever the log's length
	// and the filter's selectivity, and a reader that goes on from Through
	// never looks at a position twice.
	//
	// Page.Head is the head of the same snapshot of the log. Through <
	// Head means more of the log is already there to read; Through >= Head
	// means the reader has caught up. Through > after whenever Head >
	// after. A page that holds limit events ends at the last of them.
	ReadPage(ctx context.Context, after uint64, limit int, filter Filter) (Page, error)

	// Subscribe delivers every event with position > after that matches
	// filter, in global order, exactly once: first those already stored
	// (catch-up), then each new one as it commits (live). It blocks until
	// ctx ends (returning ctx.Err()) or handler fails (returning that error).
	// No event is skipped or reordered whatever the number of concurrent
	// writers.
	Subscribe(ctx context.Context, after uint64, filter Filter, handler Handler) error

	// Head returns the newest event's position and hash.
	Head(ctx context.Context) (Head, error)

	// Close releases the store's resources. Calls after Close fail.
	Close() error
}

// Errors that callers branch on.
var (
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")
	ErrDuplicateEventID     = errors.New("eventstore: event ID already used")
	ErrInvalidEvent         = errors.New("eventstore: invalid event")
	ErrClosed               = errors.New("eventstore: store closed")
	// ErrTampered is matched by every *TamperError Verify returns.
	ErrTampered = errors.New("eventstore: log tampered")
)

// VersionError reports an optimistic concurrency failure.
type VersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("eventstore: stream %q expected %s, is at version %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// MaxStreamLen bounds stream names; longer names are refused.
const MaxStreamLen = 200

// MaxEventSize bounds one event's payload.
const MaxEventSize = 1 << 20
