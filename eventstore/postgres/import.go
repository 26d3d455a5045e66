package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/payesh/payesh/eventstore"
)

var _ eventstore.Importer = (*Store)(nil)

// Import implements eventstore.Importer: one READ COMMITTED transaction
// that locks the chain-head row first, as every append does, so no append
// from any process interleaves, and that COPYs the events batch by batch.
// The head moves (and subscribers are notified) only at the commit; a
// refused or interrupted import rolls back and leaves the schema as it was.
func (s *Store) Import(ctx context.Context, next eventstore.NextEvent, opts eventstore.ImportOptions) (eventstore.Head, error) {
	if err := s.usable(ctx); err != nil {
		return eventstore.Head{}, err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return eventstore.Head{}, s.fail(err)
	}
	head, err := eventstore.RunImport(ctx, &importTx{s: s, tx: tx}, next, opts)
	if err != nil {
		return eventstore.Head{}, err
	}
	s.wake.Broadcast()
	return head, nil
}

// importTx is an eventstore.ImportTx on one pgx transaction.
type importTx struct {
	s    *Store
	tx   pgx.Tx
	head eventstore.Head // where Commit moves the head
}

// Lock implements eventstore.ImportTx: the same row lock as appends take.
func (t *importTx) Lock(ctx context.Context) (bool, error) {
	// See batchTx.Prepare: plans for id = ANY($1) must follow the table
	// as it grows within this very transaction.
	if _, err := t.tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_custom_plan"); err != nil {
		return false, t.s.fail(err)
	}
	var (
		pos  int64
		hash []byte
	)
	if err := t.tx.QueryRow(ctx, t.s.sql.lockHead).Scan(&pos, &hash); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return false, errHeadMissing
		}
		return false, t.s.fail(err)
	}
	var stored bool
	if err := t.tx.QueryRow(ctx, fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s)`, t.s.n.events)).Scan(&stored); err != nil {
		return false, t.s.fail(err)
	}
	return pos == 0 && !stored, nil
}

// StoredIDs implements eventstore.ImportTx.
func (t *importTx) StoredIDs(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT id FROM %s WHERE id = ANY($1::text[])`, t.s.n.events), ids)
	if err != nil {
		return nil, t.s.fail(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, t.s.fail(err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// Insert implements eventstore.ImportTx with COPY; the head itself moves at
// Commit, since nothing is visible before it anyway.
func (t *importTx) Insert(ctx context.Context, events []eventstore.Event, head eventstore.Head) error {
	src := pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
		e := &events[i]
		return []any{
			int64(e.Position), e.Stream, int64(e.Version), e.ID, e.Type, nonNil(e.Data),
			e.OccurredAt, e.RecordedAt, e.BackdateReason,
			e.Actor.ID, e.Actor.Role, e.Actor.Org,
			e.IdempotencyKey, e.CorrelationID, e.CausationID,
			e.PrevHash[:], e.Hash[:],
		}, nil
	})
	n, err := t.tx.CopyFrom(ctx, pgx.Identifier{t.s.n.schema, "events"}, eventColumns, src)
	if err != nil {
		return t.s.fail(err)
	}
	if n != int64(len(events)) {
		return fmt.Errorf("postgres: import: copied %d of %d events", n, len(events))
	}
	t.head = head
	return nil
}

// Commit implements eventstore.ImportTx: it moves the head, with the
// notification that wakes subscribers in every process, and commits.
func (t *importTx) Commit(ctx context.Context) error {
	if t.head.Position > 0 {
		tag, err := t.tx.Exec(ctx, t.s.sql.moveHead, int64(t.head.Position), t.head.Hash[:], t.s.n.channel)
		if err != nil {
			return t.s.fail(err)
		}
		if tag.RowsAffected() != 1 {
			return errHeadMissing
		}
	}
	return t.s.fail(t.tx.Commit(ctx))
}

// Rollback implements eventstore.ImportTx; after Commit it does nothing.
func (t *importTx) Rollback(ctx context.Context) error {
	err := t.tx.Rollback(ctx)
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return t.s.fail(err)
}
