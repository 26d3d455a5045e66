package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
)

// Errors callers branch on.
var (
	// ErrUnknownProjection: no projector (or read-model table) has the name.
	ErrUnknownProjection = errors.New("projections: unknown projection")
	// ErrFailed is matched by every *FailedError.
	ErrFailed = errors.New("projections: projection failed")
	// ErrVersionChanged: the stored tables belong to another version of the
	// projector (another process swapped in a rebuild of it). The runner
	// stops rather than write tables it does not understand.
	ErrVersionChanged = errors.New("projections: stored version differs from the projector's")
	// ErrRebuildSuperseded: another rebuild of the same projection started
	// (in another process) and took over the __next tables.
	ErrRebuildSuperseded = errors.New("projections: rebuild superseded by another")
)

// FailedError says a projection stopped at a batch it could not apply.
type FailedError struct {
	Name     string
	Position uint64 // the checkpoint: every event up to here is applied
	Err      error  // the last attempt's error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("projections: %s failed after position %d: %v", e.Name, e.Position, e.Err)
}

// Unwrap returns the cause.
func (e *FailedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrFailed) true.
func (e *FailedError) Is(target error) bool { return target == ErrFailed }

// Config configures an Engine.
type Config struct {
	Store      eventstore.Store
	DB         *DB
	Projectors []Projector
	// Registry decodes payloads (default schema.Registry()).
	Registry *domain.Registry
	// BatchSize is the most events per transaction in catch-up and rebuild
	// (default 10,000 on PostgreSQL, where 2,000 and 5,000 measured 25-50%
	// slower and 20,000 no faster; 2,000 on SQLite, whose single writer is
	// shared with appends, which wait for each transaction). Memory grows
	// with it: a few batches are in flight. Live batches are what the
	// subscription delivers.
	BatchSize int
	// ReadAhead is how many batches catch-up and rebuild read (and decode)
	// at once, ahead of the one being written (default 2). It is also how
	// many batches each projector of a rebuild of several may queue: the
	// most the fastest gets ahead of the slowest, which paces the read.
	ReadAhead int
	// MaxAttempts is how many times a batch is tried before the projection
	// is marked failed (default 5).
	MaxAttempts int
	// RetryBackoff is the wait after the first failed attempt; it doubles
	// with each further one, up to 10s (default 100ms). It also paces
	// restarts after the store or database becomes unreachable.
	RetryBackoff time.Duration
	// AnalyzeAfter is how many events a catch-up must apply for the
	// projection's tables to be analysed when it ends (default 10,000):
	// a first build that went through catch-up rather than a rebuild,
	// or a long outage, leaves tables whose planner statistics (none, on
	// a new table) no longer describe them.
	AnalyzeAfter uint64
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now stamps projection_state.updated_at (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Registry == nil {
		c.Registry = schema.Registry()
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 10_000
		if c.DB != nil && !c.DB.Dialect.IsPostgres() {
			// SQLite's one writer is shared with appends: shorter
			// transactions keep their latency down during a rebuild.
			c.BatchSize = 2000
		}
	}
	if c.ReadAhead <= 0 {
		c.ReadAhead = 2
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.AnalyzeAfter == 0 {
		c.AnalyzeAfter = 10_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("projections: Config.Store is required"))
	}
	if c.DB == nil {
		errs = append(errs, errors.New("projections: Config.DB is required"))
	}
	seen := map[string]int{} // name -> index of the projector using it
	for i, p := range c.Projectors {
		if p == nil {
			errs = append(errs, errors.New("projections: nil projector"))
			continue
		}
		if len(p.Tables()) == 0 {
			errs = append(errs, fmt.Errorf("projections: projector %s owns no table", p.Name()))
		}
		for _, n := range append([]string{p.Name()}, p.Tables()...) {
			j, dup := seen[n]
			switch {
			case dup && j == i:
				continue // a projector named after its table
			case dup:
				errs = append(errs, fmt.Errorf("projections: name %q used by projectors %s and %s", n, c.Projectors[j].Name(), p.Name()))
			case !validName(n):
				errs = append(errs, fmt.Errorf("projections: %q is not a valid name (lower-case letters, digits, _; at most 40)", n))
			}
			seen[n] = i
		}
	}
	return errors.Join(errs...)
}

// validName keeps table names safe to splice into SQL and short enough for
// PostgreSQL's 63-byte identifiers once suffixed.
func validName(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return s != stateTable
}

// Engine runs projectors: each keeps its tables and its checkpoint in one
// transaction per batch, catches up from its checkpoint in batches, then
// follows the log live. It also rebuilds a projection blue/green.
//
// An Engine is safe for concurrent use: Run, Rebuild, RebuildAll and
// Status may be called from different goroutines, and several Engines (in
// several processes) may share a database; the checkpoint row's lock
// serialises their writes, so each event is applied once whoever applies
// it.
type Engine struct {
	cfg     Config
	runners []*runner
	byName  map[string]*runner
	wake    *eventstore.Signal // broadcast after every committed batch
	running atomic.Bool
}

// runner is one projector's machinery.
type runner struct {
	p Projector
	// mu is held for the whole of each live transaction and of a rebuild's
	// swap: the swap pauses the live runner this way.
	mu sync.Mutex
	// rebuild allows one rebuild of the projection at a time.
	rebuild sync.Mutex
	restart chan struct{} // a rebuild finished: a stopped runner may go on

	stMu   sync.Mutex
	status Status

	applied atomic.Uint64 // events applied to the live tables by this Engine
	retries atomic.Uint64 // failed attempts at a batch that were tried again
}

// Status is one projection's state as an Engine sees it.
type Status struct {
	Name     string
	Version  int
	State    string // StateStarting, StateCatchingUp, StateLive, StateFailed, StateStopped
	Position uint64 // every event up to here is reflected in the live tables
	// LastError is the latest error, also a transient one that was retried.
	LastError string
	// Rebuild is set while a rebuild is in progress in this Engine.
	Rebuild *RebuildProgress
	// Applied counts the events this Engine applied to the live tables,
	// Retries the failed attempts it tried again (for the metrics).
	Applied, Retries uint64
}

// RebuildProgress is how far a rebuild has replayed the log.
type RebuildProgress struct {
	Position, Head uint64
}

// The states of Status.State.
const (
	StateStarting   = "starting"
	StateCatchingUp = "catching_up"
	StateLive       = "live"
	StateFailed     = "failed"
	StateStopped    = "stopped" // the stored version is another; see ErrVersionChanged
)

// Ready reports whether the projection follows the log.
func (s Status) Ready() bool { return s.State == StateLive }

// New returns an Engine; nothing runs until Run or Rebuild.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, byName: map[string]*runner{}, wake: eventstore.NewSignal()}
	for _, p := range cfg.Projectors {
		r := &runner{p: p, restart: make(chan struct{}, 1)}
		r.status = Status{Name: p.Name(), Version: p.Version(), State: StateStarting}
		e.runners = append(e.runners, r)
		e.byName[p.Name()] = r
		for _, t := range p.Tables() {
			e.byName[t] = r
		}
	}
	return e, nil
}

// Status returns every projection's status, in the order of Config.Projectors.
func (e *Engine) Status() []Status {
	out := make([]Status, len(e.runners))
	for i, r := range e.runners {
		out[i] = r.snapshot()
	}
	return out
}

// Ready reports whether every projection follows the log live (for
// /readyz).
func (e *Engine) Ready() bool {
	for _, s := range e.Status() {
		if !s.Ready() {
			return false
		}
	}
	return true
}

func (r *runner) snapshot() Status {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	s := r.status
	s.Applied, s.Retries = r.applied.Load(), r.retries.Load()
	if s.Rebuild != nil {
		p := *s.Rebuild
		s.Rebuild = &p
	}
	return s
}

func (r *runner) update(f func(s *Status)) {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	f(&r.status)
}

func (e *Engine) runner(name string) (*runner, error) {
	r, ok := e.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProjection, name)
	}
	return r, nil
}

// Run prepares every projection (creating its tables, or rebuilding them
// when the stored version is another), catches each up and follows the log
// until ctx ends; then it returns ctx's error. Projections run
// independently: one that fails stops (see Status) and the others go on. A
// failed projection is tried again by the next Run, or after a successful
// Rebuild of it. Errors reaching the store or the database are retried,
// with backoff, for as long as Run runs.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("projections: Engine.Run is already running")
	}
	defer e.running.Store(false)
	var wg sync.WaitGroup
	for _, r := range e.runners {
		wg.Go(func() { e.supervise(ctx, r) })
	}
	wg.Wait()
	return ctx.Err()
}

func (e *Engine) supervise(ctx context.Context, r *runner) {
	log := e.cfg.Logger.With("projection", r.p.Name())
	for attempt := 0; ; attempt++ {
		err := e.follow(ctx, r)
		if ctx.Err() != nil {
			return
		}
		var failed *FailedError
		if errors.As(err, &failed) || errors.Is(err, ErrVersionChanged) {
			state := StateFailed
			if !errors.As(err, &failed) {
				state = StateStopped
			}
			r.update(func(s *Status) { s.State, s.LastError = state, err.Error() })
			log.Error("projection stopped", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-r.restart:
				attempt = 0
				continue
			}
		}
		if r.snapshot().State == StateLive {
			attempt = 0 // it had been running well: a fresh problem
		}
		r.update(func(s *Status) { s.State, s.LastError = StateStarting, err.Error() })
		log.Warn("projection interrupted, starting over", "err", err)
		if sleep(ctx, e.backoff(attempt)) != nil {
			return
		}
	}
}

func (e *Engine) backoff(attempt int) time.Duration {
	d := e.cfg.RetryBackoff
	for range min(attempt, 10) {
		d *= 2
	}
	return min(d, 10*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// follow prepares the projection, catches it up in large batches and then
// follows the log live. It returns only with an error.
func (e *Engine) follow(ctx context.Context, r *runner) error {
	st, err := e.prepareCurrent(ctx, r)
	if err != nil {
		return err
	}
	r.update(func(s *Status) { s.State, s.Position = StateCatchingUp, st.Position })
	pos, err := e.catchUp(ctx, r, st.Position)
	if err != nil {
		return err
	}
	e.cfg.Logger.Debug("projection caught up", "projection", r.p.Name(), "position", pos)
	if pos-st.Position >= e.cfg.AnalyzeAfter {
		if err := e.analyze(ctx, r.p); err != nil {
			return err
		}
	}
	return e.live(ctx, r)
}

// analyze gathers planner statistics for the projector's live tables (see
// Config.AnalyzeAfter; a rebuild analyses its tables before the swap).
func (e *Engine) analyze(ctx context.Context, p Projector) error {
	return e.inTx(ctx, func(tx *Tx) error { return analyzeTables(ctx, tx, p, LiveTables(0)) })
}

// analyzeTables gathers planner statistics for the projector's tables of
// one generation.
func analyzeTables(ctx context.Context, tx *Tx, p Projector, t TableNames) error {
	for _, name := range p.Tables() {
		if _, err := tx.Exec(ctx, `ANALYZE `+t.Table(name)); err != nil {
			return fmt.Errorf("projections: analyze %s: %w", t.Table(name), err)
		}
	}
	return nil
}

// prepare makes sure projection_state, the projector's row and its tables
// exist, clears a failed status (this is a new attempt), and returns the
// row.
func (e *Engine) prepare(ctx context.Context, r *runner) (state, error) {
	if err := ensureStateTable(ctx, e.cfg.DB); err != nil {
		return state{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var st state
	err := e.inTx(ctx, func(tx *Tx) error {
		if err := lockRow(ctx, tx, r.p.Name()); err != nil {
			return err
		}
		s, ok, err := loadState(ctx, tx.tx, tx.d, r.p.Name(), true)
		if err != nil {
			return err
		}
		if !ok {
			s = state{Name: r.p.Name(), Version: r.p.Version(), Generation: 1, Status: StatusRunning, UpdatedAt: e.cfg.Now()}
			if err := e.createTables(ctx, tx, r.p, LiveTables(1), true); err != nil {
				return err
			}
			if err := insertState(ctx, tx, s); err != nil {
				return err
			}
		} else if s.Status == StatusFailed {
			s.Status, s.LastError = StatusRunning, ""
			if _, err := tx.Exec(ctx, `UPDATE `+stateTable+` SET status = ?, last_error = '', updated_at = ? WHERE name = ?`,
				StatusRunning, e.cfg.Now().UnixMicro(), s.Name); err != nil {
				return err
			}
		}
		st = s
		return nil
	})
	if err != nil {
		return state{}, fmt.Errorf("projections: prepare %s: %w", r.p.Name(), err)
	}
	r.update(func(s *Status) { s.Position = st.Position })
	return st, nil
}

// prepareCurrent prepares the projection and, when its tables are of
// another version than the projector's, rebuilds them from the log
// (blue/green) and prepares it again: the state it returns is always the
// projector's version.
func (e *Engine) prepareCurrent(ctx context.Context, r *runner) (state, error) {
	st, err := e.prepare(ctx, r)
	if err != nil || st.Version == r.p.Version() {
		return st, err
	}
	e.cfg.Logger.Info("projection version changed: rebuilding", "projection", r.p.Name(), "stored", st.Version, "version", r.p.Version())
	if err := e.rebuild(ctx, []*runner{r}, nil, true); err != nil {
		return state{}, err
	}
	return e.prepare(ctx, r)
}

// createTables runs the projector's DDL for one generation.
func (e *Engine) createTables(ctx context.Context, tx *Tx, p Projector, t TableNames, indexes bool) error {
	sc := p.Schema(tx.d, t)
	stmts := sc.Tables
	if indexes {
		stmts = append(slices.Clip(stmts), sc.Indexes...)
	}
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("projections: %s schema: %w", p.Name(), err)
		}
	}
	return nil
}

// inTx runs f in a write transaction, committed if f returns nil and
// rolled back otherwise, also when f panics: the panic goes on up (the live
// path's Recoverer turns it into an error), but SQLite's single write
// connection must not be left inside an open transaction.
func (e *Engine) inTx(ctx context.Context, f func(tx *Tx) error) (err error) {
	sqlTx, err := e.cfg.DB.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	if err := f(&Tx{tx: sqlTx, d: e.cfg.DB.Dialect}); err != nil {
		return err
	}
	committed = true
	return sqlTx.Commit()
}

// target is where a batch goes: the live tables (the zero value), or a
// rebuild's.
type target struct {
	tables TableNames
}

// Prepare makes a projection ready to take events through Handle: its
// checkpoint row and tables exist, at the projector's version (rebuilding
// them blue/green if another version is stored). Run does this itself.
func (e *Engine) Prepare(ctx context.Context, name string) error {
	r, err := e.runner(name)
	if err != nil {
		return err
	}
	st, err := e.prepareCurrent(ctx, r)
	if err != nil {
		return err
	}
	// From here the projection follows the log through Handle's caller.
	r.update(func(s *Status) { s.State, s.Position, s.LastError = StateLive, st.Position, "" })
	return nil
}

// Handle applies events delivered by another transport (the Watermill
// Router over projections/pubsub) to one projection, exactly once: in one
// transaction with its checkpoint, skipping those at or before it. events
// must be in global order and must not leave out any event the projector's
// Filter selects; those it does not select only move the checkpoint. A
// batch of one event is fine. Handle makes one attempt and does not mark the
// projection failed: retrying and giving up belong to the caller (the
// Router's middleware). An event that cannot be decoded gives a
// *DecodeError. Call Prepare first.
//
// The checkpoint only moves as far as the events handed over: for WaitFor
// to see every position, subscribe to the whole log (pubsub's $all topic),
// not to the projector's streams alone.
func (e *Engine) Handle(ctx context.Context, name string, events []eventstore.Event) error {
	r, err := e.runner(name)
	if err != nil || len(events) == 0 {
		return err
	}
	filter := r.p.Filter()
	envs := make([]Envelope, 0, len(events))
	for i := range events {
		if !filter.Matches(&events[i]) {
			continue
		}
		env, err := Decode(e.cfg.Registry, &events[i])
		if err != nil {
			return err
		}
		envs = append(envs, env)
	}
	pos, err := e.applyOnce(ctx, r, target{}, envs, events[len(events)-1].Position)
	if err != nil {
		return err
	}
	r.update(func(s *Status) { s.Position = pos })
	e.wake.Broadcast()
	return nil
}

// apply applies one batch ending at position end, retrying it; a batch that
// keeps failing marks a live projection failed.
func (e *Engine) apply(ctx context.Context, r *runner, t target, envs []Envelope, end uint64) (uint64, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var pos uint64
		pos, err = e.applyOnce(ctx, r, t, envs, end)
		if err == nil {
			if !t.tables.Next() {
				r.update(func(s *Status) { s.Position = pos })
				e.wake.Broadcast()
			}
			return pos, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if errors.Is(err, ErrVersionChanged) || errors.Is(err, ErrRebuildSuperseded) || errors.Is(err, errRebuiltElsewhere) {
			return 0, err
		}
		r.update(func(s *Status) { s.LastError = err.Error() })
		e.cfg.Logger.Warn("batch failed", "projection", r.p.Name(), "attempt", attempt, "through", end, "err", err)
		if attempt >= e.cfg.MaxAttempts {
			break
		}
		if err := sleep(ctx, e.backoff(attempt-1)); err != nil {
			return 0, err
		}
	}
	if t.tables.Next() { // the rebuild names the projection
		return 0, fmt.Errorf("gave up after %d attempts at the batch through position %d: %w", e.cfg.MaxAttempts, end, err)
	}
	first := end
	if len(envs) > 0 {
		first = envs[0].Position
	}
	return 0, e.fail(ctx, r, first-1, err)
}

// fail records that the batch after position at cannot be applied.
func (e *Engine) fail(ctx context.Context, r *runner, at uint64, cause error) error {
	ctx = context.WithoutCancel(ctx) // record it even when stopping
	var pos uint64
	err := e.inTx(ctx, func(tx *Tx) error {
		s, _, err := loadState(ctx, tx.tx, tx.d, r.p.Name(), true)
		if err != nil {
			return err
		}
		pos = s.Position
		_, err = tx.Exec(ctx, `UPDATE `+stateTable+` SET status = ?, last_error = ?, updated_at = ? WHERE name = ?`,
			StatusFailed, cause.Error(), e.cfg.Now().UnixMicro(), r.p.Name())
		return err
	})
	if err != nil {
		e.cfg.Logger.Error("cannot record the failure", "projection", r.p.Name(), "err", err)
		pos = at
	}
	return &FailedError{Name: r.p.Name(), Position: pos, Err: cause}
}

// applyOnce applies envs (the matching events of the log up to end) in one
// transaction with the checkpoint. Events at or before the stored
// checkpoint are skipped: they are already in the tables (a redelivery, a
// concurrent runner in another process, or a rebuild swapped in ahead).
func (e *Engine) applyOnce(ctx context.Context, r *runner, t target, envs []Envelope, end uint64) (uint64, error) {
	if !t.tables.Next() {
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	var pos uint64
	err := e.inTx(ctx, func(tx *Tx) error {
		st, ok, err := loadState(ctx, tx.tx, tx.d, r.p.Name(), true)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("projections: %s has no row in %s", r.p.Name(), stateTable)
		}
		at, column := st.Position, "position"
		if t.tables.Next() {
			if err := rebuildGone(st, r.p, t.tables.Generation()); err != nil {
				return err
			}
			at, column = st.NextPosition, "next_position"
		} else if st.Version != r.p.Version() {
			return fmt.Errorf("%w: %s is at version %d in the database, this projector is version %d",
				ErrVersionChanged, r.p.Name(), st.Version, r.p.Version())
		}
		pos = at
		if end <= at {
			return nil
		}
		tables := t.tables
		if !tables.Next() {
			tables = LiveTables(st.Generation)
		} else {
			// Bulk until the derived tables are computed, whoever
			// (in whichever process) computes them.
			tables.bulk = !st.NextFinished
		}
		i := sort.Search(len(envs), func(i int) bool { return envs[i].Position > at })
		if rest := envs[i:]; len(rest) > 0 {
			if err := r.p.Apply(ctx, tx, tables, rest); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE `+stateTable+` SET `+column+` = ?, updated_at = ? WHERE name = ?`,
			int64(end), e.cfg.Now().UnixMicro(), r.p.Name()); err != nil {
			return err
		}
		pos = end
		return nil
	})
	return pos, err
}
