package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

	seen sync.Map // projector name -> *atomic.Pointer[seenCheckpoint], see Current
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

// Checkpoint is what a read model's content is a function of: the
// position of the log it reflects, and which build of it holds that
// (its projector's version and the generation of its tables, which a
// blue/green rebuild's swap moves on). Two answers read at the same
// Checkpoint are the same answer.
type Checkpoint struct {
	Position   uint64
	Version    int
	Generation int64
}

// seenCheckpoint is a checkpoint as Current last read it.
type seenCheckpoint struct {
	cp   Checkpoint
	at   time.Time
	wake <-chan struct{} // closed by the Engine's next commit; nil without an Engine
}

// Current returns the read model's checkpoint as recently read: read
// again from the database when the Engine behind the Reader (if any) has
// committed since, and at least once per poll interval (50 ms) whatever
// the Engine says, for what other processes commit (a projector process,
// a rebuild's swap). It costs a database read at most once per commit or
// interval, so it can be asked on every request: an answer cache keyed by
// it serves answers at most one interval older than the database has,
// each with the position it reflects.
//
// A projection that never ran is at the zero Checkpoint.
func (r *Reader) Current(ctx context.Context, name string) (Checkpoint, error) {
	p, ok := r.names[name]
	if !ok {
		return Checkpoint{}, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	v, _ := r.seen.LoadOrStore(p, new(atomic.Pointer[seenCheckpoint]))
	slot := v.(*atomic.Pointer[seenCheckpoint])
	if s := slot.Load(); s != nil && time.Since(s.at) < r.poll && !closed(s.wake) {
		return s.cp, nil
	}
	// The wake channel is taken before the read, so that a commit after
	// the read closes it and the next call reads again.
	next := &seenCheckpoint{at: time.Now()}
	if r.wake != nil {
		next.wake = r.wake.C()
	}
	st, err := r.state(ctx, p)
	if err != nil {
		return Checkpoint{}, err
	}
	next.cp = Checkpoint{Position: st.Position, Version: st.Version, Generation: st.Generation}
	slot.Store(next)
	return next.cp, nil
}

func closed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
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
