// Package ledger is Payesh's command side: it loads an aggregate's stream,
// folds it into state, asks the aggregate's decider what the command means,
// and appends the resulting events with optimistic concurrency. It is the
// only code that turns domain events into stored events and back, so the
// envelope (actor, idempotency key, correlation, backdating) is filled in
// here and nowhere else.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
)

// Meta is what a command carries besides its payload: who sent it and how
// to recognise a retry of it. The actor comes from the caller's credentials.
type Meta struct {
	Actor eventstore.Actor
	// IdempotencyKey identifies the command: executing a command whose key
	// is already recorded in the target stream returns the original outcome
	// and appends nothing.
	IdempotencyKey string
	CorrelationID  string
	CausationID    string
	// OccurredAt is the business time of the command's events; zero means
	// now. A time in the past needs BackdateReason.
	OccurredAt     time.Time
	BackdateReason string
	// Check, when set, is a precondition on the target stream: Execute
	// calls it with the stream's folded state (the decider's state type,
	// e.g. facility.Facility) and version after loading the stream and
	// before Decide, while it holds the stream's lock, and the append then
	// expects exactly that version. So what Check approved (who may act on
	// this facility, which version the client last saw) is the state the
	// command is decided on: a concurrent writer makes the append fail and
	// the whole load, Check, Decide sequence run again. A Check error is
	// returned unchanged and nothing is appended. A retry of a command
	// whose IdempotencyKey is recorded is answered before Check runs, with
	// the original outcome. Check must not modify the state (a cached
	// state is shared) and may be called more than once per command. The
	// Service methods that touch several streams run it on the facility
	// stream only, and also before their first step, so a refused command
	// leaves nothing behind.
	Check func(state any, version uint64) error
}

// Result is the outcome of an executed command.
type Result struct {
	Stream        string
	EventIDs      []string
	FirstVersion  uint64
	Version       uint64 // stream version after the command
	FirstPosition uint64
	Position      uint64 // global position of the last event appended
	// Duplicate is true when the idempotency key had been seen: nothing was
	// appended and the fields describe the original execution.
	Duplicate bool
}

// Ledger executes commands against an event store. It is safe for
// concurrent use.
type Ledger struct {
	store    eventstore.Store
	registry *domain.Registry
	newID    func() string
	// MaxAttempts bounds retries after version conflicts.
	maxAttempts int
	// stripes serialise commands on the same stream within this process, so
	// concurrent commands on a hot stream (a quota ledger during approvals)
	// queue instead of repeatedly losing the optimistic race. Conflicts with
	// other processes are still caught by the expected version and retried.
	stripes [256]chan struct{}
	seed    maphash.Seed

	// cache keeps the folded state of hot streams (see WithStateCache),
	// guarded per stream by the stripe lock and as a map by cacheMu.
	cachePrefixes []string
	cacheMu       sync.Mutex
	cache         map[string]*cached
}

// cached is a stream's folded state at a version, and the outcome of every
// keyed command in it, so a retry is recognised without re-reading the stream.
type cached struct {
	state   any
	version uint64
	keys    map[string]Result
}

// Option configures a Ledger.
type Option func(*Ledger)

// WithIDs replaces the event ID generator (tests use deterministic IDs).
func WithIDs(f func() string) Option { return func(l *Ledger) { l.newID = f } }

// WithStateCache keeps the folded state of streams whose names start with
// one of prefixes in memory, and reads only the events appended since (by
// this process or another) on each command. It is for hot, long streams —
// a quota ledger takes a charge for every approval in its fiscal year and
// program — and it requires their Evolve to be pure: a cached state is
// shared with readers and must never be changed in place.
func WithStateCache(prefixes ...string) Option {
	return func(l *Ledger) { l.cachePrefixes = append(l.cachePrefixes, prefixes...) }
}

// WithMaxAttempts sets how often a command is retried after a concurrent
// writer changed its stream (default 20).
func WithMaxAttempts(n int) Option { return func(l *Ledger) { l.maxAttempts = n } }

// New returns a Ledger over store that decodes events with registry.
func New(store eventstore.Store, registry *domain.Registry, opts ...Option) *Ledger {
	l := &Ledger{
		store:       store,
		registry:    registry,
		newID:       func() string { return uuid.Must(uuid.NewV7()).String() },
		maxAttempts: 20,
		seed:        maphash.MakeSeed(),
		cache:       map[string]*cached{},
	}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Store returns the underlying event store.
func (l *Ledger) Store() eventstore.Store { return l.store }

// Registry returns the event registry.
func (l *Ledger) Registry() *domain.Registry { return l.registry }

// ErrTooMuchContention is returned when a command lost the race for its
// stream MaxAttempts times in a row.
var ErrTooMuchContention = errors.New("ledger: stream too contended, command not applied")

// Execute runs one command against one stream: load, fold, decide, append,
// retrying from the load when another writer appended first. A decider error
// is returned unchanged (it is the caller's input that is wrong); nothing is
// appended then. meta.Check, when set, runs between the fold and Decide (see
// Meta.Check). A command that decides no events returns a Result with no
// event IDs.
func Execute[S, C any](ctx context.Context, l *Ledger, stream string, d domain.Decider[S, C], cmd C, meta Meta) (Result, error) {
	unlock, err := l.lock(ctx, stream)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	for attempt := 0; attempt < l.maxAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return Result{}, err
			}
		}
		state, version, res, ok, err := fold(ctx, l, stream, d, meta.IdempotencyKey)
		if err != nil {
			return Result{}, err
		}
		if ok {
			return res, nil
		}
		if meta.Check != nil {
			if err := meta.Check(state, version); err != nil {
				return Result{}, err
			}
		}
		events, err := d.Decide(state, cmd)
		if err != nil {
			return Result{}, err
		}
		if len(events) == 0 {
			return Result{Stream: stream, Version: version}, nil
		}
		appended, err := l.Append(ctx, stream, eventstore.Exact(version), events, meta)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			continue
		}
		return appended, err
	}
	return Result{}, fmt.Errorf("%w: %s after %d attempts", ErrTooMuchContention, stream, l.maxAttempts)
}

// lock takes the stream's stripe, giving up when ctx ends.
func (l *Ledger) lock(ctx context.Context, stream string) (func(), error) {
	c := l.stripes[maphash.String(l.seed, stream)%uint64(len(l.stripes))]
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// backoff sleeps before retry number attempt: exponential from 1ms, capped
// at 100ms, with full jitter so competing processes spread out.
func backoff(ctx context.Context, attempt int) error {
	ceiling := time.Millisecond << min(attempt, 7)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(ceiling))))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// State loads a stream and folds it, for queries that need an aggregate's
// current (or past) state. until, when non-zero, stops at that global
// position; asOf, when non-zero, ignores events recorded after it.
func State[S, C any](ctx context.Context, l *Ledger, stream string, d domain.Decider[S, C], filter func(Loaded) bool) (S, uint64, error) {
	if filter == nil && l.cacheable(stream) {
		unlock, err := l.lock(ctx, stream)
		if err != nil {
			var zero S
			return zero, 0, err
		}
		defer unlock()
		s, v, _, _, err := fold(ctx, l, stream, d, "")
		return s, v, err
	}
	history, version, err := l.Load(ctx, stream)
	if err != nil {
		var zero S
		return zero, 0, err
	}
	if filter != nil {
		kept := history[:0]
		for _, h := range history {
			if filter(h) {
				kept = append(kept, h)
			}
		}
		history = kept
		version = 0
		if len(history) > 0 {
			version = history[len(history)-1].Envelope.Version
		}
	}
	return d.Fold(recordedOf(history)), version, nil
}

func (l *Ledger) cacheable(stream string) bool {
	for _, p := range l.cachePrefixes {
		if len(stream) >= len(p) && stream[:len(p)] == p {
			return true
		}
	}
	return false
}

// fold returns the stream's current state and version, and the original
// outcome when key names a command already executed on it. For cacheable
// streams it starts from the cached state and reads only newer events. The
// caller holds the stream's stripe lock.
func fold[S, C any](ctx context.Context, l *Ledger, stream string, d domain.Decider[S, C], key string) (S, uint64, Result, bool, error) {
	var zero S
	if !l.cacheable(stream) {
		history, version, err := l.Load(ctx, stream)
		if err != nil {
			return zero, 0, Result{}, false, err
		}
		res, ok := replayed(stream, history, key)
		return d.Fold(recordedOf(history)), version, res, ok, nil
	}
	l.cacheMu.Lock()
	entry := l.cache[stream]
	l.cacheMu.Unlock()
	state, version, keys := d.Initial(), uint64(0), map[string]Result{}
	if entry != nil {
		if s, ok := entry.state.(S); ok {
			state, version, keys = s, entry.version, entry.keys
		}
	}
	delta, _, err := l.loadFrom(ctx, stream, version+1)
	if err != nil {
		return zero, 0, Result{}, false, err
	}
	for _, h := range delta {
		state = d.Evolve(state, h.Recorded)
		version = h.Envelope.Version
		if k := h.Envelope.IdempotencyKey; k != "" {
			r, seen := keys[k]
			if !seen {
				r = Result{Stream: stream, Duplicate: true, FirstVersion: h.Envelope.Version, FirstPosition: h.Envelope.Position}
			}
			r.EventIDs = append(r.EventIDs, h.Envelope.ID)
			r.Version, r.Position = h.Envelope.Version, h.Envelope.Position
			keys[k] = r
		}
	}
	l.cacheMu.Lock()
	l.cache[stream] = &cached{state: state, version: version, keys: keys}
	l.cacheMu.Unlock()
	res, ok := keys[key]
	if key == "" {
		ok = false
	}
	return state, version, res, ok, nil
}

// Loaded is one stored event with its decoded payload.
type Loaded struct {
	Envelope eventstore.Event
	Recorded domain.Recorded
}

// Load reads a whole stream and decodes it. It returns the stream's version.
func (l *Ledger) Load(ctx context.Context, stream string) ([]Loaded, uint64, error) {
	return l.loadFrom(ctx, stream, 1)
}

// loadFrom reads and decodes a stream from version from onwards. It returns
// the version of the last event read (0 if none).
func (l *Ledger) loadFrom(ctx context.Context, stream string, from uint64) ([]Loaded, uint64, error) {
	var out []Loaded
	const page = 1000
	for {
		batch, err := l.store.ReadStream(ctx, stream, from, eventstore.Forwards, page)
		if err != nil {
			return nil, 0, fmt.Errorf("ledger: read %s: %w", stream, err)
		}
		for _, e := range batch {
			ev, err := l.registry.Decode(e.Type, e.Data)
			if err != nil {
				return nil, 0, fmt.Errorf("ledger: %s@%d: %w", e.Stream, e.Version, err)
			}
			out = append(out, Loaded{Envelope: e, Recorded: domain.Recorded{
				ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
				OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Event: ev,
			}})
		}
		if len(batch) < page {
			break
		}
		from = batch[len(batch)-1].Version + 1
		if from == math.MaxUint64 {
			break
		}
	}
	var version uint64
	if len(out) > 0 {
		version = out[len(out)-1].Envelope.Version
	}
	return out, version, nil
}

// Append encodes domain events and appends them with the command's envelope.
// Most callers want Execute; Append is for flows that have already decided,
// and it does not run meta.Check.
func (l *Ledger) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []domain.Event, meta Meta) (Result, error) {
	proposed := make([]eventstore.Proposed, len(events))
	ids := make([]string, len(events))
	for i, ev := range events {
		data, err := domain.Encode(ev)
		if err != nil {
			return Result{}, err
		}
		ids[i] = l.newID()
		proposed[i] = eventstore.Proposed{
			ID: ids[i], Type: ev.EventType(), Data: data,
			OccurredAt: meta.OccurredAt, BackdateReason: meta.BackdateReason,
			Actor: meta.Actor, IdempotencyKey: meta.IdempotencyKey,
			CorrelationID: meta.CorrelationID, CausationID: meta.CausationID,
		}
	}
	res, err := l.store.Append(ctx, stream, expected, proposed)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Stream: stream, EventIDs: ids,
		FirstVersion: res.FirstVersion, Version: res.LastVersion,
		FirstPosition: res.FirstPosition, Position: res.LastPosition,
		Duplicate: res.Duplicate,
	}, nil
}

// Replayed reports the outcome of an earlier execution of the command with
// this idempotency key on stream, if there was one. Flows that check a
// command before executing it call this first, so a retry is answered with
// the original outcome rather than judged against the state it produced.
func (l *Ledger) Replayed(ctx context.Context, stream, key string) (Result, bool, error) {
	if key == "" {
		return Result{}, false, nil
	}
	history, _, err := l.Load(ctx, stream)
	if err != nil {
		return Result{}, false, err
	}
	res, ok := replayed(stream, history, key)
	return res, ok, nil
}

// replayed finds the events an earlier execution of the same command
// appended, identified by the idempotency key.
func replayed(stream string, history []Loaded, key string) (Result, bool) {
	if key == "" {
		return Result{}, false
	}
	res := Result{Stream: stream, Duplicate: true}
	for _, h := range history {
		e := h.Envelope
		if e.IdempotencyKey != key {
			continue
		}
		if len(res.EventIDs) == 0 {
			res.FirstVersion, res.FirstPosition = e.Version, e.Position
		}
		res.EventIDs = append(res.EventIDs, e.ID)
		res.Version, res.Position = e.Version, e.Position
	}
	return res, len(res.EventIDs) > 0
}

func recordedOf(history []Loaded) []domain.Recorded {
	out := make([]domain.Recorded, len(history))
	for i, h := range history {
		out[i] = h.Recorded
	}
	return out
}
