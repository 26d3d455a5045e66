package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/payesh/payesh/eventstore"
)

var _ eventstore.Importer = (*Store)(nil)

// Import implements eventstore.Importer: one IMMEDIATE transaction on the
// write connection, so the file's write lock is held from the emptiness
// check to the commit and no append, by this Store or another process, can
// interleave. Appends wait for the connection meanwhile (this Store's
// committer shares it), so an import should run before anyone appends. A
// refused or interrupted import rolls back: SQLite never shows a reader any
// of it, and the file is left as it was.
func (s *Store) Import(ctx context.Context, next eventstore.NextEvent, opts eventstore.ImportOptions) (eventstore.Head, error) {
	if s.closed.Load() {
		return eventstore.Head{}, eventstore.ErrClosed
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return eventstore.Head{}, translateError(err)
	}
	head, err := eventstore.RunImport(ctx, &importTx{tx: tx}, next, opts)
	if err != nil {
		return eventstore.Head{}, err
	}
	s.wake.Broadcast()
	return head, nil
}

// importTx is an eventstore.ImportTx over the write connection. It reuses
// the committer's statements through a batchTx of its own, with its own
// statement cache (the committer's is not shared between goroutines).
type importTx struct {
	tx      *sql.Tx
	inserts insertStatements
}

func (t *importTx) batch() *batchTx { return &batchTx{tx: t.tx, inserts: &t.inserts} }

// Lock implements eventstore.ImportTx. BEGIN IMMEDIATE took the lock; the
// store is empty when the head is at 0 and no event row exists (a head row
// moved back by hand is not taken on trust).
func (t *importTx) Lock(ctx context.Context) (bool, error) {
	head, err := readHead(ctx, t.tx)
	if err != nil {
		return false, err
	}
	var stored bool
	if err := t.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events)`).Scan(&stored); err != nil {
		return false, translateError(err)
	}
	return head.Position == 0 && !stored, nil
}

// StoredIDs implements eventstore.ImportTx.
func (t *importTx) StoredIDs(ctx context.Context, ids []string) (map[string]bool, error) {
	found, err := t.batch().storedIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(found))
	for id := range found {
		out[id] = true
	}
	return out, nil
}

// Insert implements eventstore.ImportTx with the committer's multi-row
// INSERTs and head update.
func (t *importTx) Insert(ctx context.Context, events []eventstore.Event, head eventstore.Head) error {
	return t.batch().Insert(ctx, events, head)
}

func (t *importTx) Commit(context.Context) error {
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: import: %w", translateError(err))
	}
	return nil
}

func (t *importTx) Rollback(context.Context) error { return translateError(t.tx.Rollback()) }
