package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/internal/pgtest"
)

var benchWriters = []int{1, 8, 16, 32}

// BenchmarkAppend measures single-event appends (each a new stream, expected
// version NoStream) through the full store: validation, idempotency and
// version checks, hash chaining, the head lock and group commit.
func BenchmarkAppend(b *testing.B) {
	for _, w := range benchWriters {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			url, schema := pgtest.Schema(b)
			st := openTest(b, url, schema, nil)
			eventstoretest.BenchAppend(b, st, w)
		})
	}
}

// BenchmarkInsertBaseline is the floor to compare BenchmarkAppend with:
// the same payload bytes and columns, one autocommit INSERT per event from
// each writer's own connection, with no chain, no head lock and no checks.
// The table has the same unique indexes (position from a sequence, id,
// stream+version), so the difference is what the ledger's guarantees cost.
func BenchmarkInsertBaseline(b *testing.B) {
	for _, w := range benchWriters {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			url, schema := pgtest.Schema(b)
			ctx := context.Background()
			cfg, err := pgxpool.ParseConfig(url)
			require.NoError(b, err)
			cfg.MaxConns = int32(w)
			cfg.MinConns = int32(w)
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(b, err)
			b.Cleanup(pool.Close)
			table := newNames(schema).qschema + ".baseline"
			_, err = pool.Exec(ctx, `CREATE TABLE `+table+` (
	position        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	stream          TEXT COLLATE "C" NOT NULL,
	version         BIGINT NOT NULL,
	id              TEXT COLLATE "C" NOT NULL UNIQUE,
	type            TEXT COLLATE "C" NOT NULL,
	data            BYTEA NOT NULL,
	occurred_at     TIMESTAMPTZ NOT NULL,
	recorded_at     TIMESTAMPTZ NOT NULL,
	backdate_reason TEXT NOT NULL DEFAULT '',
	actor_id        TEXT NOT NULL DEFAULT '',
	actor_role      TEXT NOT NULL DEFAULT '',
	actor_org       TEXT NOT NULL DEFAULT '',
	idempotency_key TEXT NOT NULL DEFAULT '',
	correlation_id  TEXT NOT NULL DEFAULT '',
	causation_id    TEXT NOT NULL DEFAULT '',
	prev_hash       BYTEA NOT NULL,
	hash            BYTEA NOT NULL,
	UNIQUE (stream, version)
)`)
			require.NoError(b, err)
			insert := `INSERT INTO ` + table + ` (stream, version, id, type, data, occurred_at, recorded_at,
	actor_id, actor_role, actor_org, prev_hash, hash)
VALUES ($1, 1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $9)`
			payload := eventstoretest.Payload()
			zero := make([]byte, 32)

			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, w)
			b.ResetTimer()
			for wi := range w {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						now := time.Now().UTC().Truncate(time.Microsecond)
						_, err := pool.Exec(ctx, insert, fmt.Sprintf("facility-b%d-%d", wi, i), uuid.Must(uuid.NewV7()).String(),
							"facility.registered.v1", payload, now, "tester", "admin", "payesh", zero)
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
