package eventstore

import (
	"context"
	"fmt"
)

// Reader is the part of Store that Verify needs.
type Reader interface {
	ReadAll(ctx context.Context, after uint64, limit int, filter Filter) ([]Event, error)
}

// TamperError names the first event at which the log stops being the log
// that was written. It matches ErrTampered.
type TamperError struct {
	Position uint64 // position of the first bad event (or where one is missing)
	EventID  string // its ID, when the event is there
	Stream   string
	Version  uint64
	Problem  string
}

func (e *TamperError) Error() string {
	if e.EventID == "" {
		return fmt.Sprintf("eventstore: log tampered at position %d: %s", e.Position, e.Problem)
	}
	return fmt.Sprintf("eventstore: log tampered at position %d (event %s, %s@%d): %s",
		e.Position, e.EventID, e.Stream, e.Version, e.Problem)
}

// Is makes errors.Is(err, ErrTampered) true.
func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// VerifyReport summarises a clean walk of the log.
type VerifyReport struct {
	Events  uint64
	Streams int
	Head    Head
}

// VerifyOptions tunes a Verify walk.
type VerifyOptions struct {
	// BatchSize is how many events to read at a time (default 10,000).
	BatchSize int
	// Progress, if set, is called after each batch with the position reached.
	Progress func(position uint64)
}

// Verify walks the whole log from the first event and checks, for every
// event, that its position follows its predecessor's without a gap, that its
// PrevHash is its predecessor's Hash, that its Hash matches its recomputed
// canonical bytes, and that its stream version follows the stream's previous
// event. It returns the first violation as a *TamperError.
//
// Memory grows with the number of streams (one entry each), not with the
// number of events.
func Verify(ctx context.Context, r Reader, opts VerifyOptions) (VerifyReport, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10_000
	}
	var (
		rep      VerifyReport
		prev     Hash
		pos      uint64
		buf      []byte
		versions = map[string]uint64{}
	)
	for {
		batch, err := r.ReadAll(ctx, pos, opts.BatchSize, Filter{})
		if err != nil {
			return rep, fmt.Errorf("eventstore: verify: read after position %d: %w", pos, err)
		}
		if len(batch) == 0 {
			break
		}
		for i := range batch {
			e := &batch[i]
			bad := func(problem string) error {
				return &TamperError{Position: e.Position, EventID: e.ID, Stream: e.Stream, Version: e.Version, Problem: problem}
			}
			if e.Position != pos+1 {
				return rep, &TamperError{Position: pos + 1, Problem: fmt.Sprintf("event missing: the next stored event is at position %d", e.Position)}
			}
			if e.PrevHash != prev {
				return rep, bad("previous-hash link broken (an earlier event was removed, replaced or reordered)")
			}
			var h Hash
			h, buf = Chain(prev, e, buf)
			if h != e.Hash {
				return rep, bad("content does not match its hash (the event was altered)")
			}
			if want := versions[e.Stream] + 1; e.Version != want {
				return rep, bad(fmt.Sprintf("stream version %d where %d was expected", e.Version, want))
			}
			versions[e.Stream] = e.Version
			prev, pos = e.Hash, e.Position
			rep.Events++
		}
		if opts.Progress != nil {
			opts.Progress(pos)
		}
	}
	rep.Streams = len(versions)
	rep.Head = Head{Position: pos, Hash: prev}
	return rep, nil
}

// Guarded is implemented by backends whose database refuses UPDATE and
// DELETE on stored events. A missing guard is itself evidence of tampering
// (it takes owner rights to drop one), so backends do not quietly re-create
// guards on start; CheckGuards reports them instead.
type Guarded interface {
	// CheckGuards returns nil when every guard is in place, and otherwise
	// a *GuardError naming the missing ones.
	CheckGuards(ctx context.Context) error
}

// GuardError names guards missing from the database. It matches
// ErrTampered.
type GuardError struct {
	Missing []string
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("eventstore: guard triggers missing: %v (someone with owner rights removed the refusal of edits)", e.Missing)
}

// Is makes errors.Is(err, ErrTampered) true.
func (e *GuardError) Is(target error) bool { return target == ErrTampered }
