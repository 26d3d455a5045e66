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

// BenchmarkFilteredCatchUp reads a synthetic log through filters of every
// selectivity (eventstoretest.CatchUpFilters), from position 0 to the end,
// at two log sizes, on freshly analysed statistics and on none at all (a
// log just bulk-loaded, before autovacuum has analysed it). What it shows
// is how the time to get through the log grows with the log.
//
//	go test -run '^$' -bench FilteredCatchUp -benchtime 1x ./eventstore/postgres/
func BenchmarkFilteredCatchUp(b *testing.B) {
	for _, size := range []int{100_000, 400_000} {
		for _, analyze := range []bool{true, false} {
			stats := "stats=none"
			if analyze {
				stats = "stats=analyzed"
			}
			b.Run(fmt.Sprintf("log=%d/%s", size, stats), func(b *testing.B) {
				url, schema := pgtest.Schema(b)
				st := openTest(b, url, schema, nil)
				fillSynthetic(b, st, size, analyze)
				for _, f := range eventstoretest.CatchUpFilters {
					for _, pages := range []bool{false, true} {
						api := "ReadAll"
						if pages {
							api = "ReadPage"
						}
						b.Run(f.Name+"/"+api, func(b *testing.B) { eventstoretest.BenchFilteredCatchUp(b, st, f.Filter, pages) })
					}
				}
			})
		}
	}
}

// fillSynthetic writes the log eventstoretest.CatchUpFilters describes
// straight into the events table and moves the head to its end. Without
// analyze, autovacuum is switched off for the table so the planner has no
// statistics.
func fillSynthetic(b *testing.B, st *Store, size int, analyze bool) {
	b.Helper()
	ctx := context.Background()
	if !analyze {
		_, err := st.Pool().Exec(ctx, `ALTER TABLE `+st.n.events+` SET (autovacuum_enabled = off)`)
		require.NoError(b, err)
	}
	_, err := st.Pool().Exec(ctx, `
INSERT INTO `+st.n.events+` (position, stream, version, id, type, data, occurred_at, recorded_at, prev_hash, hash)
SELECT n,
	CASE WHEN n % 100000 = 0 THEN 'reference'
	     WHEN n % 100 < 60 THEN 'facility-f-' || (n / 8)
	     WHEN n % 100 < 80 THEN 'applicant-' || (n / 3)
	     WHEN n % 100 < 99 THEN 'quota-1403-' || (n % 5)
	     ELSE 'quota-1401-home-business' END,
	n, 'id-' || n,
	CASE WHEN n % 100000 = 0 THEN 'reference.changed.v1'
	     WHEN n % 100 < 60 THEN 'facility.registered.v1'
	     WHEN n % 100 < 80 THEN 'applicant.claimed.v1'
	     WHEN n % 1000 = 999 THEN 'quota.allocated.v1'
	     ELSE 'quota.charged.v1' END,
	convert_to(repeat('x', 150), 'UTF8'), now(), now(),
	decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex')
FROM generate_series(1, $1::bigint) n`, size)
	require.NoError(b, err)
	_, err = st.Pool().Exec(ctx, `UPDATE `+st.n.head+` SET position = $1`, size)
	require.NoError(b, err)
	if analyze {
		_, err = st.Pool().Exec(ctx, `VACUUM (ANALYZE) `+st.n.events)
		require.NoError(b, err)
	}
}
