package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

func TestImportContract(t *testing.T) {
	eventstoretest.RunImport(t, factory)
}

func TestAnchors(t *testing.T) {
	eventstoretest.RunAnchors(t, factory)
}

func factory(t *testing.T) eventstoretest.Backend {
	path := filepath.Join(t.TempDir(), "payesh.db")
	st := openStore(t, Config{Path: path, Poll: 50 * time.Millisecond})
	return eventstoretest.Backend{Store: st, Tamper: openTamperer(t, path)}
}

// Rewrite implements eventstoretest.Rewriter: every column of each event,
// and the head's hash where the head is.
func (tm *tamperer) Rewrite(ctx context.Context, events []eventstore.Event) error {
	tx, err := tm.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for i := range events {
		if err := rewriteRow(ctx, tx, &events[i]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func rewriteRow(ctx context.Context, tx *sql.Tx, e *eventstore.Event) error {
	args := appendEventArgs(nil, e)
	_, err := tx.ExecContext(ctx, `UPDATE events SET stream = ?2, version = ?3, id = ?4, type = ?5, data = ?6,
		occurred_at = ?7, recorded_at = ?8, backdate_reason = ?9, actor_id = ?10, actor_role = ?11, actor_org = ?12,
		idempotency_key = ?13, correlation_id = ?14, causation_id = ?15, prev_hash = ?16, hash = ?17
		WHERE position = ?1`, args...)
	if err != nil {
		return translateError(err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE head SET hash = ? WHERE position = ?`, e.Hash[:], int64(e.Position))
	return translateError(err)
}
