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
	// Anchors are heads known from outside the database, such as signed
	// checkpoints: the log must reach each anchor's position and hold
	// there an event with the anchor's hash. A chain that verifies on its
	// own can still have been rewritten and re-hashed from some event on,
	// or cut short; an anchor taken before that catches both, because no
	// one can recompute the chain to its hash without a collision.
	Anchors []Head
}

// Verify walks the whole log from the first event and checks every event
// with a Checker: its position follows its predecessor's without a gap, its
// PrevHash is its predecessor's Hash, its Hash matches its recomputed
// canonical bytes, and its stream version follows the stream's previous
// event. With Anchors it also checks the log against each of them. It
// returns the first violation as a *TamperError.
//
// The walk goes on to whatever head the log has when it gets there, so
// events appended during the walk are checked too.
//
// Memory grows with the number of streams (one entry each), not with the
// number of events.
func Verify(ctx context.Context, r Reader, opts VerifyOptions) (VerifyReport, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10_000
	}
	c := NewChecker()
	anchors := newAnchorSet(opts.Anchors)
	var pos uint64
	for {
		batch, err := r.ReadAll(ctx, pos, opts.BatchSize, Filter{})
		if err != nil {
			return c.report(), fmt.Errorf("eventstore: verify: read after position %d: %w", pos, err)
		}
		if len(batch) == 0 {
			break
		}
		for i := range batch {
			e := &batch[i]
			if err := c.Check(e); err != nil {
				return c.report(), err
			}
			if err := anchors.check(e); err != nil {
				return c.report(), err
			}
			pos = e.Position
		}
		if opts.Progress != nil {
			opts.Progress(pos)
		}
	}
	if err := anchors.reached(pos); err != nil {
		return c.report(), err
	}
	return c.report(), nil
}

// Checker checks a log event by event, in position order from the first:
// the chain Verify walks, for callers that get the events from elsewhere
// (an import, an export file). The zero value is not usable; use
// NewChecker. A Checker is not safe for concurrent use.
type Checker struct {
	prev     Hash
	pos      uint64
	buf      []byte
	events   uint64
	versions map[string]uint64
}

// NewChecker returns a Checker expecting the event at position 1.
func NewChecker() *Checker {
	return &Checker{versions: map[string]uint64{}}
}

// Check checks e as the next event of the log: its position, its link to
// the previous event, its own hash and its stream version. It returns a
// *TamperError naming e (or the missing position) and then must not be
// called again; otherwise e becomes the head the next event must follow.
func (c *Checker) Check(e *Event) error {
	bad := func(problem string) error {
		return &TamperError{Position: e.Position, EventID: e.ID, Stream: e.Stream, Version: e.Version, Problem: problem}
	}
	if e.Position != c.pos+1 {
		if e.Position <= c.pos {
			return bad(fmt.Sprintf("position %d where %d was expected (events out of order or repeated)", e.Position, c.pos+1))
		}
		return &TamperError{Position: c.pos + 1, Problem: fmt.Sprintf("event missing: the next stored event is at position %d", e.Position)}
	}
	if e.PrevHash != c.prev {
		return bad("previous-hash link broken (an earlier event was removed, replaced or reordered)")
	}
	var h Hash
	h, c.buf = Chain(c.prev, e, c.buf)
	if h != e.Hash {
		return bad("content does not match its hash (the event was altered)")
	}
	if want := c.versions[e.Stream] + 1; e.Version != want {
		return bad(fmt.Sprintf("stream version %d where %d was expected", e.Version, want))
	}
	c.versions[e.Stream] = e.Version
	c.prev, c.pos = e.Hash, e.Position
	c.events++
	return nil
}

// Head returns the last event checked (position 0 and a zero hash before
// the first).
func (c *Checker) Head() Head { return Head{Position: c.pos, Hash: c.prev} }

// Version returns the version of stream's last event checked (0 if none).
func (c *Checker) Version(stream string) uint64 { return c.versions[stream] }

func (c *Checker) report() VerifyReport {
	return VerifyReport{Events: c.events, Streams: len(c.versions), Head: c.Head()}
}

// anchorSet checks events against heads known from outside the log.
type anchorSet map[uint64]Hash

func newAnchorSet(anchors []Head) anchorSet {
	s := anchorSet{}
	for _, a := range anchors {
		if a.Position > 0 {
			s[a.Position] = a.Hash
		}
	}
	return s
}

func (s anchorSet) check(e *Event) error {
	want, ok := s[e.Position]
	if !ok || want == e.Hash {
		return nil
	}
	return &TamperError{Position: e.Position, EventID: e.ID, Stream: e.Stream, Version: e.Version,
		Problem: fmt.Sprintf("hash %s differs from the checkpoint's %s: the log up to here was rewritten and its chain recomputed", e.Hash, want)}
}

// reached reports the first anchor beyond the last position of the log.
func (s anchorSet) reached(last uint64) error {
	var first uint64
	for p := range s {
		if p > last && (first == 0 || p < first) {
			first = p
		}
	}
	if first == 0 {
		return nil
	}
	return &TamperError{Position: first,
		Problem: fmt.Sprintf("the log ends at position %d, before the checkpoint at position %d: events were removed from its end", last, first)}
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
