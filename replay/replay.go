// Package replay recomputes read models from the log alone, as they stood
// at a past moment, on either of the log's two time axes:
//
//   - system time: what the ledger had recorded. Cut.Position keeps the
//     log up to a global position; Cut.RecordedAt keeps the longest prefix
//     of the log whose events were all recorded at or before an instant
//     (the log as it stood at that moment: positions are commit order, so
//     the first event recorded later ends it).
//   - business time: what was true. Cut.OccurredAt keeps, of those, the
//     events whose occurred_at is at or before an instant, in log order:
//     backdated events and corrections dated up to it included, "what was
//     true at T by what the ledger knew at the cut".
//
// The axes combine: Position (or RecordedAt) and OccurredAt together ask
// what was true at T as the ledger knew it at position N.
//
// How: Run runs the real projectors, with the projection Engine's own
// rebuild (projections.Engine.RebuildAll), into a fresh SQLite database in
// a temporary directory, fed from a read-only view of the log that ends at
// the cut. Events the business-time cut leaves out are replaced in that
// view by placeholders no projector selects, so positions stay gap-free
// and the read models reflect the cut's position. The live read-model
// tables are never read: a replay depends on the log and the projector
// code only, and at the head it equals the live read models row for row.
// The Snapshot's database is queried with the read models' own Readers.
//
// Cost: a replay folds every event up to the cut, so it takes time
// proportional to the cut's position (events per second are measured in
// docs/BENCHMARKS.md and the README), and disk about the size of the
// replayed read models. Cache keeps a few recent snapshots for the API's
// as_of queries, builds each once however many requests ask for it, and
// refuses cuts beyond a size limit.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/projections"
)

// Log is what a replay reads: a log from position 1 with gap-free
// positions, such as an eventstore.Store or an export file (OpenFile).
// Both methods must be safe for concurrent use: a replay reads a few
// stretches of the log at once.
type Log interface {
	// ReadAll returns up to limit events with position > after that
	// match filter, in global order.
	ReadAll(ctx context.Context, after uint64, limit int, filter eventstore.Filter) ([]eventstore.Event, error)
	// Head returns the newest event's position and hash.
	Head(ctx context.Context) (eventstore.Head, error)
}

// Cut is the point of the log a replay stops at. The zero Cut is the
// log's head. See the package documentation for the two time axes.
type Cut struct {
	// Position keeps the events at or before this global position (system
	// time); 0 means the head.
	Position uint64
	// RecordedAt, if not zero, keeps only the longest prefix of that whose
	// events were all recorded at or before it (system time).
	RecordedAt time.Time
	// OccurredAt, if not zero, keeps only the events whose business time is
	// at or before it (business time).
	OccurredAt time.Time
}

// String describes the cut for messages.
func (c Cut) String() string {
	s := "the head"
	if c.Position > 0 {
		s = fmt.Sprintf("position %d", c.Position)
	}
	if !c.RecordedAt.IsZero() {
		s += ", recorded at or before " + c.RecordedAt.UTC().Format(time.RFC3339Nano)
	}
	if !c.OccurredAt.IsZero() {
		s += ", occurred at or before " + c.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	return s
}

// Errors callers branch on.
var (
	// ErrBeyondHead is matched by every *BeyondHeadError.
	ErrBeyondHead = errors.New("replay: position beyond the log's head")
	// ErrReadOnly: something tried to append to a replay's view of the log.
	ErrReadOnly = errors.New("replay: the replayed log is read-only")
	// ErrNotReplayable: a projector would select the placeholders of events
	// a business-time cut leaves out (its Filter selects every event).
	ErrNotReplayable = errors.New("replay: projector cannot be replayed on business time")
)

// BeyondHeadError says a cut's position is past the log's head.
type BeyondHeadError struct {
	Position, Head uint64
}

func (e *BeyondHeadError) Error() string {
	return fmt.Sprintf("replay: position %d is beyond the log's head at %d", e.Position, e.Head)
}

// Is makes errors.Is(err, ErrBeyondHead) true.
func (e *BeyondHeadError) Is(target error) bool { return target == ErrBeyondHead }

// Config configures Run.
type Config struct {
	// Log is the log replayed. Required.
	Log Log
	// Projectors are the read models to recompute (cmd/internal/readmodels
	// lists them all; a query needs only its own). Required.
	Projectors []projections.Projector
	// Cut is where the replay stops.
	Cut Cut
	// Registry decodes payloads (default: projections.Config's default).
	Registry *domain.Registry
	// TempDir is where the snapshot's directory is made (default
	// os.TempDir()).
	TempDir string
	// BatchSize is how many events each projector applies per transaction
	// (default 10,000: the database is private to the replay, so nothing
	// waits for its transactions).
	BatchSize int
	// Progress, if set, is called as the replay advances, with the position
	// reached and the cut's position.
	Progress func(pos, end uint64)
	// Logger defaults to discarding.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 10_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Log == nil {
		errs = append(errs, errors.New("replay: Config.Log is required"))
	}
	if len(c.Projectors) == 0 {
		errs = append(errs, errors.New("replay: Config.Projectors is empty"))
	}
	if !c.Cut.OccurredAt.IsZero() {
		probe := placeholder(eventstore.Event{Position: 1})
		for _, p := range c.Projectors {
			if p != nil && p.Filter().Matches(&probe) {
				errs = append(errs, fmt.Errorf("%w: %s selects every event, so the events a business-time cut leaves out cannot be hidden from it",
					ErrNotReplayable, p.Name()))
			}
		}
	}
	return errors.Join(errs...)
}

// Snapshot is read models recomputed from the log up to a cut, in a
// SQLite database of their own. Query DB with the read models' Readers
// (quotas.NewReader(s.DB) ...); every Reader reports Position. Close
// removes the database.
type Snapshot struct {
	// DB holds the recomputed read models; their checkpoints are at
	// Position.
	DB *projections.DB
	// Position is the last position of the log the replay read: the cut's
	// position, or the prefix RecordedAt allowed.
	Position uint64
	// Head is the log's head when the replay started.
	Head uint64
	// Cut is the cut as asked.
	Cut Cut
	// Elapsed is how long the replay took.
	Elapsed time.Duration

	store *sqlite.Store
	dir   string
}

// Close closes the database and removes its directory.
func (s *Snapshot) Close() error {
	var errs []error
	if s.DB != nil {
		errs = append(errs, s.DB.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	s.DB, s.store, s.dir = nil, nil, ""
	return errors.Join(errs...)
}

// Resolve returns the position a cut's system-time axis ends at, with the
// log's head: Position (or the head), shortened by RecordedAt to the
// events before the first one recorded later. Finding that event reads
// the log up to it.
func Resolve(ctx context.Context, log Log, cut Cut) (end, head uint64, err error) {
	h, err := log.Head(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("replay: read the head: %w", err)
	}
	end = h.Position
	if cut.Position > 0 {
		if cut.Position > h.Position {
			return 0, h.Position, &BeyondHeadError{Position: cut.Position, Head: h.Position}
		}
		end = cut.Position
	}
	if cut.RecordedAt.IsZero() {
		return end, h.Position, nil
	}
	at := eventstore.Normalize(cut.RecordedAt)
	const page = 10_000
	for after := uint64(0); after < end; {
		batch, err := log.ReadAll(ctx, after, int(min(page, end-after)), eventstore.Filter{})
		if err != nil {
			return 0, h.Position, fmt.Errorf("replay: read after position %d: %w", after, err)
		}
		if len(batch) == 0 {
			return 0, h.Position, fmt.Errorf("replay: the log ends at position %d, before its head %d", after, end)
		}
		for i := range batch {
			if batch[i].RecordedAt.After(at) {
				return batch[i].Position - 1, h.Position, nil
			}
		}
		after = batch[len(batch)-1].Position
	}
	return end, h.Position, nil
}

// Run recomputes cfg.Projectors' read models from cfg.Log up to cfg.Cut
// and returns them in a Snapshot, which the caller must Close. Cancelling
// ctx abandons the replay and removes what it wrote.
func Run(ctx context.Context, cfg Config) (snap *Snapshot, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	end, head, err := Resolve(ctx, cfg.Log, cfg.Cut)
	if err != nil {
		return nil, err
	}
	view, err := newView(ctx, cfg.Log, end, cfg.Cut.OccurredAt)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "payesh-replay-*")
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	s := &Snapshot{Position: end, Head: head, Cut: cfg.Cut, dir: dir}
	snap = s
	defer func() {
		// s, not snap: a failed return has set snap to nil already.
		if err != nil {
			_ = s.Close()
			snap = nil
		}
	}()
	// The read-model database is the embedded store's own kind, opened as
	// the live SQLite read models are (WAL, BEGIN IMMEDIATE), without
	// flushing each commit: the file is disposable.
	snap.store, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "readmodels.db"), Synchronous: "NORMAL"})
	if err != nil {
		return nil, fmt.Errorf("replay: open the snapshot database: %w", err)
	}
	if snap.DB, err = projections.OpenDB(snap.store); err != nil {
		return nil, err
	}
	engine, err := projections.New(projections.Config{
		Store: view, DB: snap.DB, Projectors: cfg.Projectors, Registry: cfg.Registry,
		BatchSize: cfg.BatchSize, MaxAttempts: 1, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	var progress func(pos, head uint64)
	if cfg.Progress != nil {
		progress = func(pos, _ uint64) { cfg.Progress(pos, end) }
	}
	if err := engine.RebuildAll(ctx, nil, progress); err != nil {
		return nil, fmt.Errorf("replay to %s: %w", cfg.Cut, err)
	}
	if cfg.Progress != nil {
		cfg.Progress(end, end)
	}
	snap.Elapsed = time.Since(start)
	return snap, nil
}
