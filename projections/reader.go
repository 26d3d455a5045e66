package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// ErrWaitTimeout is matched by every *WaitTimeoutError.
var ErrWaitTimeout = errors.New("projections: read model did not reach the position in time")

// WaitTimeoutError says a read model had not reached a position when
// WaitFor gave up.
type WaitTimeoutError struct {
	Name    string
	Want    uint64 // the position waited for
	Reached uint64 // the position the read model reflected at the end
	Timeout time.Duration
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("projections: %s reflects the log up to position %d, not yet %d, after waiting %s",
		e.Name, e.Reached, e.Want, e.Timeout)
}

// Is makes errors.Is(err, ErrWaitTimeout) true.
func (e *WaitTimeoutError) Is(target error) bool { return target == ErrWaitTimeout }

// Reader tells which position of the log each read model reflects, and
// waits for one to reach a position (read-your-writes: a client that
// appended at position P asks to read a model only once it reflects P).
// It is safe for concurrent use.
type Reader struct {
	db    *DB
	names map[string]string // projector or table name -> projector name
	wake  *eventstore.Signal
	poll  time.Duration
}

// NewReader returns a Reader over the read models of the given projectors.
// It polls their checkpoints; Engine.Reader returns one that is also woken
// by the Engine's commits.
func NewReader(db *DB, projectors ...Projector) *Reader {
	r := &Reader{db: db, names: map[string]string{}, poll: 50 * time.Millisecond}
	for _, p := range projectors {
		r.names[p.Name()] = p.Name()
		for _, t := range p.Tables() {
			r.names[t] = p.Name()
		}
	}
	return r
}

// Reader returns a Reader over the Engine's projections, woken as soon as
// the Engine commits a batch.
func (e *Engine) Reader() *Reader {
	r := NewReader(e.cfg.DB, e.cfg.Projectors...)
	r.wake = e.wake
	return r
}

// Position returns the position of the log the read model (named by
// projector or table) reflects: every event up to it, and none after.
// A projection that never ran is at 0.
func (r *Reader) Position(ctx context.Context, name string) (uint64, error) {
	s, err := r.state(ctx, name)
	return s.Position, err
}

func (r *Reader) state(ctx context.Context, name string) (state, error) {
	p, ok := r.names[name]
	if !ok {
		return state{}, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	s, _, err := loadState(ctx, r.db.Read, r.db.Dialect, p, false)
	if isMissingTable(err) {
		return state{Name: p}, nil
	}
	return s, err
}

// WaitFor returns once the read model reflects position (at once if it
// already does), with the position it reflects. After timeout it returns a
// *WaitTimeoutError naming the position reached; if the projection has
// failed it returns a *FailedError at once; if ctx ends first, ctx's error.
func (r *Reader) WaitFor(ctx context.Context, name string, position uint64, timeout time.Duration) (uint64, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		var wake <-chan struct{}
		if r.wake != nil {
			wake = r.wake.C()
		}
		s, err := r.state(ctx, name)
		if err != nil {
			return 0, err
		}
		if s.Position >= position {
			return s.Position, nil
		}
		if s.Status == StatusFailed {
			return s.Position, &FailedError{Name: s.Name, Position: s.Position, Err: errors.New(s.LastError)}
		}
		poll.Reset(r.poll)
		select {
		case <-ctx.Done():
			return s.Position, ctx.Err()
		case <-deadline.C:
			return s.Position, &WaitTimeoutError{Name: name, Want: position, Reached: s.Position, Timeout: timeout}
		case <-wake:
		case <-poll.C:
		}
	}
}

// ErrNotBuilt says a read model's tables do not exist yet: no Engine has
// run its projector on this database (a fresh database, or an API node
// whose projector processes have not started).
var ErrNotBuilt = errors.New("projections: read model not built yet")

// States returns every projection's checkpoint row as stored, for tools
// that inspect a database no Engine of theirs runs on (payesh projections
// status).
func (r *Reader) States(ctx context.Context) ([]StoredState, error) {
	states, err := loadStates(ctx, r.db.Read)
	if isMissingTable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]StoredState, len(states))
	for i, s := range states {
		out[i] = StoredState(s)
	}
	return out, nil
}

// StoredState is one row of projection_state.
type StoredState struct {
	Name       string
	Version    int
	Generation int64
	Position   uint64
	Status     string // StatusRunning, StatusRebuilding or StatusFailed
	LastError  string
	UpdatedAt  time.Time
	// A rebuild in progress (or interrupted): the version it builds, its
	// generation (0 when none) and how far it has replayed.
	NextVersion    int
	NextGeneration int64
	NextPosition   uint64
	NextFinished   bool // its derived tables are computed (see Finisher)
}
