package projections

import (
	"context"
	"errors"
	"fmt"
)

// Rebuild rebuilds a projection (named by projector or by one of its
// tables) from the whole log, blue/green:
//
//  1. its tables are created again beside the live ones, as <table>__next,
//     without their indexes;
//  2. the log is replayed into them from position 0 in batches, each
//     committed with the rebuild's own checkpoint (next_position), while
//     the live tables go on serving queries and following the log;
//  3. derived tables are computed (see Finisher) and the indexes built;
//  4. in one transaction, with the live runner paused (in this process by
//     a mutex, in others by the checkpoint row's lock), the events
//     appended meanwhile are applied, the live tables are renamed aside
//     (and dropped after the commit), the __next tables take their names,
//     and the checkpoint row takes the rebuild's version and position.
//
// A rebuild that is interrupted (ctx cancelled, process killed) resumes
// from its checkpoint when Rebuild is called again for the same version.
// progress, if not nil, is called after each batch with the position
// reached and the log's head. Rebuild blocks until the new tables are live.
func (e *Engine) Rebuild(ctx context.Context, name string, progress func(pos, head uint64)) error {
	r, err := e.runner(name)
	if err != nil {
		return err
	}
	return e.rebuild(ctx, r, progress, false)
}

// rebuild runs a rebuild; onlyIfStale skips it when, once this caller has
// its turn, the stored version is already the projector's (another rebuild
// got there first).
func (e *Engine) rebuild(ctx context.Context, r *runner, progress func(pos, head uint64), onlyIfStale bool) error {
	r.rebuild.Lock()
	defer r.rebuild.Unlock()
	name := r.p.Name()
	if err := ensureStateTable(ctx, e.cfg.DB); err != nil {
		return err
	}
	gen, from, skip, err := e.startRebuild(ctx, r, onlyIfStale)
	if err != nil || skip {
		return err
	}
	e.cfg.Logger.Info("rebuild started", "projection", name, "generation", gen, "from", from)
	r.update(func(s *Status) { s.Rebuild = &RebuildProgress{Position: from} })
	defer r.update(func(s *Status) { s.Rebuild = nil })

	err = e.replayAndSwap(ctx, r, gen, from, progress)
	if errors.Is(err, errRebuiltElsewhere) {
		// Another process resumed this rebuild and swapped it in first.
		e.cfg.Logger.Info("rebuild completed by another process", "projection", name, "generation", gen)
		err = nil
	}
	if err != nil {
		return err
	}
	select { // a runner stopped by a failure may go on with the new tables
	case r.restart <- struct{}{}:
	default:
	}
	return nil
}

// replayAndSwap runs a started rebuild to its end.
func (e *Engine) replayAndSwap(ctx context.Context, r *runner, gen int64, from uint64, progress func(pos, head uint64)) error {
	name := r.p.Name()
	next := NextTables(gen)
	if _, err := e.pump(ctx, r, from, target{tables: next}, progress); err != nil {
		return err
	}
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
				return fmt.Errorf("projections: %s index: %w", name, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	pos, err := e.swap(ctx, r, gen, progress)
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
			return fmt.Errorf("projections: %s finish: %w", p.Name(), err)
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
			c, err := e.readChunk(ctx, p.Filter(), pos)
			if err != nil {
				return err
			}
			if len(c.envs) > 0 {
				if err := p.Apply(ctx, tx, next, c.envs); err != nil {
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
		}
		_, err = tx.Exec(ctx, `UPDATE `+stateTable+` SET version = ?, generation = ?, position = ?, status = ?, last_error = '',
			next_version = 0, next_generation = 0, next_position = 0, next_finished = 0, updated_at = ? WHERE name = ?`,
			p.Version(), gen, int64(pos), StatusRunning, e.cfg.Now().UnixMicro(), p.Name())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("projections: swap in the rebuild of %s: %w", p.Name(), err)
	}
	e.dropOld(ctx, p)
	return pos, nil
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
