package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNotEmpty is returned by Import into a store that already holds events.
var ErrNotEmpty = errors.New("eventstore: the store is not empty")

// Importer is implemented by stores that can load a log written elsewhere
// (an export of another store) with every envelope as it was stored: the
// same IDs, positions, versions, times, actors and hashes. Append cannot do
// that, since it stamps its own positions and recording times.
//
// Import keeps the append path's guarantees by checking what Append would
// have made true: see RunImport. It is one transaction: it commits every
// event or, on any error (a bad event, a failing source, a cancelled ctx),
// none, and the store stays empty. It takes the chain-head lock, so appends
// by anyone wait for it and then continue the imported chain. It is safe
// to call concurrently with other methods, but appends wait for the whole
// import: import into a store no one is writing to yet.
type Importer interface {
	// Import loads the events next yields, in position order from 1, into
	// the store, which must hold no event (ErrNotEmpty otherwise), and
	// returns the new head. A bad event is refused with an *ImportError.
	Import(ctx context.Context, next NextEvent, opts ImportOptions) (Head, error)
}

// NextEvent yields the events to import one at a time, and io.EOF after the
// last. Any other error aborts the import and is returned by it unchanged.
// The event returned may be reused by the source after the following call.
type NextEvent func() (*Event, error)

// ImportOptions tunes an import.
type ImportOptions struct {
	// BatchSize is how many events are written per statement round
	// (default 2,000).
	BatchSize int
	// Progress, if set, is called after each batch with the position
	// written so far.
	Progress func(position uint64)
}

// ImportError names the event an import refused. Ordinal counts the events
// the source yielded, from 1, so a caller reading a file with one event per
// line can name the line. It unwraps to the reason: a *TamperError (broken
// chain, hash or version sequence), or an error matching ErrInvalidEvent or
// ErrDuplicateEventID.
type ImportError struct {
	Ordinal  uint64
	Position uint64
	EventID  string
	Err      error
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("eventstore: import refused event %d (position %d, id %q): %v", e.Ordinal, e.Position, e.EventID, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// ImportTx is one import transaction of a backend, holding the chain-head
// lock from Lock until Commit or Rollback. Its methods are called from one
// goroutine.
type ImportTx interface {
	// Lock takes the exclusive chain-head lock and reports whether the
	// store holds any event (or a head beyond position 0).
	Lock(ctx context.Context) (empty bool, err error)
	// StoredIDs returns which of ids are stored already.
	StoredIDs(ctx context.Context, ids []string) (map[string]bool, error)
	// Insert writes events, in position order, and moves the head to head.
	Insert(ctx context.Context, events []Event, head Head) error
	// Commit ends the transaction, publishing the events.
	Commit(ctx context.Context) error
	// Rollback ends the transaction without writing; it is harmless after
	// Commit.
	Rollback(ctx context.Context) error
}

// RunImport drives an import through tx, for backends implementing
// Importer: it locks the head, refuses a store that is not empty, and then
// checks every event before writing it:
//
//   - the chain: position, link, own hash and stream version (Checker), so
//     the store holds exactly a log that Verify passes;
//   - the envelope: what Validate demands of an append (non-empty ID and
//     type, stream name and text fields within bounds and valid UTF-8
//     without NUL, payload within MaxEventSize), and UTC times of
//     microsecond precision as every backend stores them;
//   - unique event IDs, against the events written so far, as the
//     database's unique index would, but naming the event.
//
// Events go to the database in batches, all in tx; RunImport commits at the
// end and rolls back on any error, including ctx's end, so a refused import
// leaves nothing. Memory is one batch plus one entry per stream.
func RunImport(ctx context.Context, tx ImportTx, next NextEvent, opts ImportOptions) (head Head, err error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2_000
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	empty, err := tx.Lock(ctx)
	if err != nil {
		return Head{}, err
	}
	if !empty {
		return Head{}, ErrNotEmpty
	}
	var (
		c       = NewChecker()
		batch   = make([]Event, 0, opts.BatchSize)
		ordinal uint64
		first   uint64 // ordinal of batch[0]
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ids := make([]string, len(batch))
		inBatch := make(map[string]bool, len(batch))
		for i := range batch {
			ids[i] = batch[i].ID
			if inBatch[ids[i]] {
				return importDuplicate(first+uint64(i), &batch[i])
			}
			inBatch[ids[i]] = true
		}
		stored, err := tx.StoredIDs(ctx, ids)
		if err != nil {
			return err
		}
		for i := range batch {
			if stored[batch[i].ID] {
				return importDuplicate(first+uint64(i), &batch[i])
			}
		}
		if err := tx.Insert(ctx, batch, c.Head()); err != nil {
			return err
		}
		if opts.Progress != nil {
			opts.Progress(c.Head().Position)
		}
		batch = batch[:0]
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return Head{}, err
		}
		e, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Head{}, err
		}
		ordinal++
		if len(batch) == 0 {
			first = ordinal
		}
		refuse := func(err error) error {
			return &ImportError{Ordinal: ordinal, Position: e.Position, EventID: e.ID, Err: err}
		}
		if err := ValidateStored(e); err != nil {
			return Head{}, refuse(err)
		}
		if err := c.Check(e); err != nil {
			return Head{}, refuse(err)
		}
		ev := *e
		ev.Data = append([]byte(nil), e.Data...) // the source may reuse its buffer
		batch = append(batch, ev)
		if len(batch) == opts.BatchSize {
			if err := flush(); err != nil {
				return Head{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return Head{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Head{}, fmt.Errorf("eventstore: import: commit: %w", err)
	}
	return c.Head(), nil
}

func importDuplicate(ordinal uint64, e *Event) error {
	return &ImportError{Ordinal: ordinal, Position: e.Position, EventID: e.ID,
		Err: fmt.Errorf("%w: event ID %s appears earlier in the log", ErrDuplicateEventID, e.ID)}
}

// ValidateStored checks a stored event's envelope as Validate checks an
// append, for events that arrive with their envelope already filled in (an
// import). The business-time rules of an append (no future occurred-at,
// a reason for backdating) are not checked: they were judged against the
// clock when the event was appended, and its recorded-at is not that clock.
func ValidateStored(e *Event) error {
	switch {
	case e.Position == 0:
		return fmt.Errorf("%w: position 0", ErrInvalidEvent)
	case e.Version == 0:
		return fmt.Errorf("%w: stream version 0", ErrInvalidEvent)
	case e.Stream == "" || len(e.Stream) > MaxStreamLen || !validText(e.Stream):
		return fmt.Errorf("%w: stream name must be 1 to %d bytes of UTF-8 without NUL", ErrInvalidEvent, MaxStreamLen)
	case e.ID == "":
		return fmt.Errorf("%w: no ID", ErrInvalidEvent)
	case e.Type == "":
		return fmt.Errorf("%w: no type", ErrInvalidEvent)
	case len(e.Data) > MaxEventSize:
		return fmt.Errorf("%w: payload is %d bytes, limit %d", ErrInvalidEvent, len(e.Data), MaxEventSize)
	}
	for _, t := range [...]struct {
		name string
		v    time.Time
	}{{"occurred-at", e.OccurredAt}, {"recorded-at", e.RecordedAt}} {
		if !t.v.Equal(Normalize(t.v)) || t.v.Before(MinOccurredAt) {
			return fmt.Errorf("%w: %s %s is not a stored time (UTC, microseconds, from %s)", ErrInvalidEvent, t.name, t.v.Format(time.RFC3339Nano), MinOccurredAt.Format("2006"))
		}
	}
	for _, f := range [...]struct{ name, v string }{
		{"ID", e.ID}, {"type", e.Type}, {"backdate reason", e.BackdateReason},
		{"actor ID", e.Actor.ID}, {"actor role", e.Actor.Role}, {"actor org", e.Actor.Org},
		{"idempotency key", e.IdempotencyKey}, {"correlation ID", e.CorrelationID}, {"causation ID", e.CausationID},
	} {
		if !validText(f.v) {
			return fmt.Errorf("%w: %s contains a NUL byte or invalid UTF-8", ErrInvalidEvent, f.name)
		}
	}
	return nil
}
