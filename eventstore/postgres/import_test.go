package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/internal/pgtest"
)

func TestImportContract(t *testing.T) {
	t.Parallel()
	eventstoretest.RunImport(t, factory)
}

func TestAnchors(t *testing.T) {
	t.Parallel()
	eventstoretest.RunAnchors(t, factory)
}

func factory(t *testing.T) eventstoretest.Backend {
	url, schema := pgtest.Schema(t)
	st := openTest(t, url, schema, nil)
	return eventstoretest.Backend{Store: st, Tamper: &tamperer{pool: st.Pool(), n: newNames(schema)}}
}

// Rewrite implements eventstoretest.Rewriter: every column of each event,
// and the head's hash where the head is.
func (tp *tamperer) Rewrite(ctx context.Context, events []eventstore.Event) error {
	return pgx.BeginFunc(ctx, tp.pool, func(tx pgx.Tx) error {
		for i := range events {
			e := &events[i]
			_, err := tx.Exec(ctx, `UPDATE `+tp.n.events+` SET stream = $2, version = $3, id = $4, type = $5, data = $6,
				occurred_at = $7, recorded_at = $8, backdate_reason = $9, actor_id = $10, actor_role = $11, actor_org = $12,
				idempotency_key = $13, correlation_id = $14, causation_id = $15, prev_hash = $16, hash = $17
				WHERE position = $1`,
				int64(e.Position), e.Stream, int64(e.Version), e.ID, e.Type, nonNil(e.Data),
				e.OccurredAt, e.RecordedAt, e.BackdateReason, e.Actor.ID, e.Actor.Role, e.Actor.Org,
				e.IdempotencyKey, e.CorrelationID, e.CausationID, e.PrevHash[:], e.Hash[:])
			if err != nil {
				return interpretError(err)
			}
			if _, err := tx.Exec(ctx, `UPDATE `+tp.n.head+` SET hash = $1 WHERE position = $2`, e.Hash[:], int64(e.Position)); err != nil {
				return interpretError(err)
			}
		}
		return nil
	})
}
