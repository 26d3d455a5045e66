package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Rebuild rebuilds one projection (named by projector or by one of its
// tables) from the whole log, blue/green; it is RebuildAll of that one.
func (e *Engine) Rebuild(ctx context.Context, name string, progress func(pos, head uint64)) error {
	r, err := e.runner(name)
	if err != nil {
		return err
	}
	return e.rebuild(ctx, []*runner{r}, progress, false)
}

// RebuildAll rebuilds the named projections (by projector or by one of
// their tables; every projection when names is empty) from the whole log,
// blue/green, reading the log once for all of them:
//
//  1. each projector's tables are created again beside the live ones, as
//     <table>__next, without their indexes, and its checkpoint row records
//     the rebuild (or an interrupted rebuild of the same version is
//     resumed where it stopped);
//  2. the log is read once, from the least of their checkpoints, in
//     batches; each event is decoded once, if some projector selects it,
//     and each batch goes to every projector, which applies it in its own
//     goroutine and transaction, with its own checkpoint (next_position),
//     skipping what it already has; the live tables go on serving queries
//     and following the log meanwhile. The slowest projector paces the
//     read: each may queue Config.ReadAhead batches;
//  3. each projector's derived tables are computed (see Finisher) and its
//     indexes built, the projectors side by side;
//  4. for each projector in turn, in one transaction, with its live runner
//     paused (in this process by a mutex, in others by the checkpoint
//     row's lock), the events appended meanwhile are applied, the live
//     tables are renamed aside (and dropped after the commit), the __next
//     tables take their names, and the checkpoint row takes the rebuild's
//     version and position.
//
// Projectors are rebuilt independently: one that fails (its batch kept
// failing, or an event it selects does not decode) drops out, keeping its
// live tables and its rebuild's checkpoint, and the others go on to their
// swap; RebuildAll then returns an error naming each that failed. An
// interrupted RebuildAll (ctx cancelled, process killed) resumes each
// projector from its own checkpoint when it is called again for the same
// versions; one that another process finished meanwhile is left as it is.
//
// progress, if not nil, is called, from one goroutine at a time, whenever
// the least position the projectors still running have reached moves on,
// with that position and the log's head. RebuildAll blocks until every
// new table is live or its projector has failed.
func (e *Engine) RebuildAll(ctx context.Context, names []string, progress func(pos, head uint64)) error {
	rs, err := e.runnersNamed(names)
	if err != nil {
		return err
	}
	return e.rebuild(ctx, rs, progress, false)
}

// runnersNamed returns the runners of names (all when it is empty), each
// once, in the Engine's order.
func (e *Engine) runnersNamed(names []string) ([]*runner, error) {
	if len(names) == 0 {
		return e.runners, nil
	}
	want := map[*runner]bool{}
	var errs []error
	for _, n := range names {
		r, err := e.runner(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want[r] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var rs []*runner
	for _, r := range e.runners {
		if want[r] {
			rs = append(rs, r)
		}
	}
	return rs, nil
}

// rebuild runs a rebuild of rs, which are in the Engine's order;
// onlyIfStale skips each whose stored version is, once this caller has its
// turn, already the projector's (another rebuild got there first).
func (e *Engine) rebuild(ctx context.Context, rs []*runner, progress func(pos, head uint64), onlyIfStale bool) error {
	// One rebuild of a projection at a time. The locks are taken in the
	// Engine's order, so rebuilds of overlapping sets cannot deadlock.
	for _, r := range rs {
		r.rebuild.Lock()
		defer r.rebuild.Unlock()
	}
	if err := ensureStateTable(ctx, e.cfg.DB); err != nil {
		return err
	}
	var (
		sinks []*sink
		gens  []int64
	)
	for _, r := range rs {
		gen, from, skip, err := e.startRebuild(ctx, r, onlyIfStale)
		if err != nil {
			return err // those started already resume next time
		}
		if skip {
			continue
		}
		e.cfg.Logger.Info("rebuild started", "projection", r.p.Name(), "generation", gen, "from", from)
		r.update(func(s *Status) { s.Rebuild = &RebuildProgress{Position: from} })
		defer r.update(func(s *Status) { s.Rebuild = nil })
		sinks = append(sinks, newSink(r, target{tables: NextTables(gen)}, from))
		gens = append(gens, gen)
	}
	m := newMeter(sinks, progress)
	e.pump(ctx, sinks, m)

	// Derived tables and indexes side by side; the swaps one at a time,
	// since each holds a connection while it reads the log's tail on
	// another: together they could take the whole pool and wait for it.
	errs := make([]error, len(sinks))
	var (
		wg     sync.WaitGroup
		swapMu sync.Mutex
	)
	for i, s := range sinks {
		if s.err != nil {
			errs[i] = s.err
			continue
		}
		wg.Go(func() {
			errs[i] = e.finishAndSwap(ctx, s.r, gens[i], &swapMu, func(pos, head uint64) { m.set(i, pos, head) })
		})
	}
	wg.Wait()

	var (
		failed      []error
		interrupted error
	)
	for i, s := range sinks {
		name, err := s.r.p.Name(), errs[i]
		if errors.Is(err, errRebuiltElsewhere) {
			// Another process resumed this rebuild and swapped it in first.
			e.cfg.Logger.Info("rebuild completed by another process", "projection", name, "generation", gens[i])
			err = nil
		}
		if err == nil {
			select { // a runner stopped by a failure may go on with the new tables
			case s.r.restart <- struct{}{}:
			default:
			}
			continue
		}
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			interrupted = cerr // reported once, below
			continue
		}
		failed = append(failed, fmt.Errorf("projections: rebuild of %s: %w", name, err))
	}
	if interrupted != nil {
		failed = append(failed, fmt.Errorf("projections: rebuild interrupted (it resumes where it stopped): %w", interrupted))
	}
	return errors.Join(failed...)
}

// finishAndSwap runs a rebuild whose replay reached the head to its end:
// derived tables, indexes, then the swap, holding swapMu.
func (e *Engine) finishAndSwap(ctx context.Context, r *runner, gen int64, swapMu *sync.Mutex, progress func(pos, head uint64)) error {
	name := r.p.Name()
	next := NextTables(gen)
	e.cfg.Logger.Debug("rebuild replayed: computing derived tables and indexes", "projection", name, "generation", gen)
	if err := e.inTx(ctx, func(tx *Tx) error {
		st, ok, err := loadState(ctx, tx.tx, tx.d, name, true)
		if err != nil {
			return err
		}
		if !ok {
			return ErrRebuildSuperseded
		}
		if err := rebuildGone(st, r.p, gen); err != nil {
			return err
		}
		if err := e.finish(ctx, tx, r.p, next); err != nil {
			return err
		}
		for _, q := range r.p.Schema(tx.d, next).Indexes {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("index: %w", err)
			}
		}
		// Statistics before the tables go live: without them the
		// planner takes every filter for a few rows (PostgreSQL's
		// autovacuum gets to a new table only later, SQLite never) and
		// picks plans hundreds of times slower, e.g. a bitmap of two
		// low-selectivity indexes and a sort of 100k rows for a page of
		// 100 that one index scan in key order finds in a millisecond.
		return analyzeTables(ctx, tx, r.p, next)
	}); err != nil {
		return err
	}
	e.cfg.Logger.Debug("rebuild indexed: swapping in", "projection", name, "generation", gen)
	swapMu.Lock()
	pos, err := e.swap(ctx, r, gen, progress)
	swapMu.Unlock()
	if err != nil {
		return err
	}
	r.update(func(s *Status) { s.Position = pos })
	e.wake.Broadcast()
	e.cfg.Logger.Info("rebuild swapped in", "projection", name, "generation", gen, "position", pos)
	return nil
}

// finish computes a rebuild's derived tables (Finisher) and records that it
// did, so every later batch of the rebuild, in any process, maintains them.
// The caller holds the checkpoint row's lock.
func (e *Engine) finish(ctx context.Context, tx *Tx, p Projector, next TableNames) error {
	if f, ok := p.(Finisher); ok {
		if err := f.Finish(ctx, tx, next); err != nil {
			return fmt.Errorf("finish: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `UPDATE `+stateTable+` SET next_finished = 1 WHERE name = ?`, p.Name())
	return err
}

// errRebuiltElsewhere: the rebuild this process was running was resumed by
// another process (an Engine starting with the new version resumes an
// interrupted rebuild) and swapped in; there is nothing left to do.
var errRebuiltElsewhere = errors.New("projections: rebuild completed by another process")

// rebuildGone checks, with the checkpoint row read under its lock, that the
// rebuild of generation gen is still the one in progress.
func rebuildGone(st state, p Projector, gen int64) error {
	switch {
	case st.NextGeneration == gen:
		return nil
	case st.Generation == gen && st.Version == p.Version():
		return errRebuiltElsewhere
	}
	return ErrRebuildSuperseded
}

// startRebuild creates the __next tables of a new generation and records
// the rebuild in the checkpoint row, or finds an interrupted rebuild of the
// same version to resume.
func (e *Engine) startRebuild(ctx context.Context, r *runner, onlyIfStale bool) (gen int64, from uint64, skip bool, err error) {
	p := r.p
	err = e.inTx(ctx, func(tx *Tx) error {
		if err := lockRow(ctx, tx, p.Name()); err != nil {
			return err
		}
		st, ok, err := loadState(ctx, tx.tx, tx.d, p.Name(), true)
		if err != nil {
			return err
		}
		if onlyIfStale && ok && st.Version == p.Version() && st.NextGeneration == 0 {
			skip = true
			return nil
		}
		if ok && st.NextGeneration != 0 && st.NextVersion == p.Version() {
			all := true
			for _, t := range p.Tables() {
				exists, err := tableExists(ctx, tx, NextTables(st.NextGeneration).Table(t))
				if err != nil {
					return err
				}
				all = all && exists
			}
			if all {
				gen, from = st.NextGeneration, st.NextPosition
				return nil
			}
		}
		gen = 1
		if ok {
			gen = max(st.Generation, st.NextGeneration) + 1
		}
		next := NextTables(gen)
		for _, t := range p.Tables() {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+next.Table(t)); err != nil {
				return err
			}
		}
		if err := e.createTables(ctx, tx, p, next, false); err != nil {
			return err
		}
		now := e.cfg.Now().UnixMicro()
		if !ok {
			// No live tables yet: version 0 makes a starting runner wait
			// for this rebuild instead of writing tables that do not exist.
			return insertState(ctx, tx, state{
				Name: p.Name(), Status: StatusRebuilding, UpdatedAt: e.cfg.Now(),
				NextVersion: p.Version(), NextGeneration: gen,
			})
		}
		_, err = tx.Exec(ctx, `UPDATE `+stateTable+` SET status = ?, next_version = ?, next_generation = ?, next_position = 0, next_finished = 0, updated_at = ? WHERE name = ?`,
			StatusRebuilding, p.Version(), gen, now, p.Name())
		return err
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("projections: start rebuild of %s: %w", p.Name(), err)
	}
	return gen, from, skip, nil
}

// swap applies what was appended since the replay ended and puts the
// __next tables in place of the live ones, in one transaction.
func (e *Engine) swap(ctx context.Context, r *runner, gen int64, progress func(pos, head uint64)) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.p
	next := NextTables(gen)
	var pos uint64
	err := e.inTx(ctx, func(tx *Tx) error {
		st, ok, err := loadState(ctx, tx.tx, tx.d, p.Name(), true)
		if err != nil {
			return err
		}
		if !ok {
			return ErrRebuildSuperseded
		}
		if err := rebuildGone(st, p, gen); err != nil {
			return err
		}
		if !st.NextFinished { // not reached here by this process's rebuild
			if err := e.finish(ctx, tx, p, next); err != nil {
				return err
			}
		}
		// The row is locked: no runner anywhere can move the live tables
		// on, so reading to the head now reaches at least their position.
		pos = st.NextPosition
		for {
			c, err := e.readChunk(ctx, filters{p.Filter()}, pos)
			if err != nil {
				return err
			}
			envs, err := c.envsFor(0, pos)
			if err != nil {
				return err
			}
			if len(envs) > 0 {
				if err := p.Apply(ctx, tx, next, envs); err != nil {
					return err
				}
			}
			pos = c.end
			if progress != nil {
				progress(pos, c.head)
			}
			if c.last {
				break
			}
		}
		if pos < st.Position {
			return fmt.Errorf("projections: rebuild of %s reached position %d, behind the live tables' %d", p.Name(), pos, st.Position)
		}
		// The old tables are renamed aside and dropped after the commit:
		// dropping a large table takes a while, and here it would hold the
		// write lock (on SQLite, the store's appends wait for it).
		for _, t := range p.Tables() {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+t+oldSuffix); err != nil {
				return err
			}
			live, err := tableExists(ctx, tx, t)
			if err != nil {
				return err
			}
			if live {
				if _, err := tx.Exec(ctx, `ALTER TABLE `+t+` RENAME TO `+t+oldSuffix); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE `+next.Table(t)+` RENAME TO `+t); err != nil {
				return err
			}
			if err := moveStatistics(ctx, tx, next.Table(t), t); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE `+stateTable+` SET version = ?, generation = ?, position = ?, status = ?, last_error = '',
			next_version = 0, next_generation = 0, next_position = 0, next_finished = 0, updated_at = ? WHERE name = ?`,
			p.Version(), gen, int64(pos), StatusRunning, e.cfg.Now().UnixMicro(), p.Name())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("swap: %w", err)
	}
	e.dropOld(ctx, p)
	return pos, nil
}

// moveStatistics makes the planner statistics gathered for the table from
// (finishAndSwap's ANALYZE) those of the table it was renamed to. SQLite
// keeps them by table name in sqlite_stat1 and a rename leaves them
// behind; PostgreSQL keeps them by the table's identity, so there is
// nothing to do.
func moveStatistics(ctx context.Context, tx *Tx, from, to string) error {
	if tx.d.IsPostgres() {
		return nil
	}
	stats, err := tableExists(ctx, tx, "sqlite_stat1")
	if err != nil || !stats {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM sqlite_stat1 WHERE tbl = ?`, to); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE sqlite_stat1 SET tbl = ? WHERE tbl = ?`, to, from)
	return err
}

// oldSuffix marks the tables a swap replaced, until they are dropped.
const oldSuffix = "__old"

// dropOld drops the tables a swap replaced. A failure only leaves them
// behind until the next rebuild drops them.
func (e *Engine) dropOld(ctx context.Context, p Projector) {
	for _, t := range p.Tables() {
		err := e.inTx(ctx, func(tx *Tx) error {
			_, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+t+oldSuffix)
			return err
		})
		if err != nil {
			e.cfg.Logger.Warn("cannot drop the replaced table", "table", t+oldSuffix, "err", err)
		}
	}
}
