package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

var benchWriters = []int{1, 8, 16, 32}

// BenchmarkAppend measures Store.Append: single-event appends to fresh
// streams with NoStream, as facility registrations arrive, with the default
// configuration (synchronous FULL: one WAL flush per committed batch).
func BenchmarkAppend(b *testing.B) {
	for _, w := range benchWriters {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			st := openStore(b, Config{Path: filepath.Join(b.TempDir(), "bench.db")})
			eventstoretest.BenchAppend(b, st, w)
		})
	}
}

// BenchmarkInsertShape measures batchTx.Insert alone for one batch of
// batch events, carried by INSERT statements of up to rows rows each; it
// chose insertRows. Synchronous NORMAL keeps the flush out of the figure.
func BenchmarkInsertShape(b *testing.B) {
	saved := insertRows
	b.Cleanup(func() { insertRows = saved })
	ctx := context.Background()
	for _, batch := range []int{8, 32, 128} {
		for _, rows := range []int{1, 8, 16, 32, 64} {
			b.Run(fmt.Sprintf("batch=%d/rows=%d", batch, rows), func(b *testing.B) {
				insertRows = rows
				st := openStore(b, Config{Path: filepath.Join(b.TempDir(), "bench.db"), Synchronous: "NORMAL"})
				payload := eventstoretest.Payload()
				backend := batchBackend{st}
				b.ResetTimer()
				for i := range b.N {
					tx, err := backend.Begin(ctx)
					if err != nil {
						b.Fatal(err)
					}
					head, _, _, err := tx.Prepare(ctx, nil, nil)
					if err != nil {
						b.Fatal(err)
					}
					var events []eventstore.Event
					for j := range batch {
						ev := eventstoretest.Events(1, "facility.registered.v1")
						ev[0].Data = payload
						built, h := eventstore.Build(fmt.Sprintf("f-%d-%d", i, j), 0, head.Position, head.Hash, time.Now(), ev)
						head = eventstore.Head{Position: built[0].Position, Hash: h}
						events = append(events, built...)
					}
					if err := tx.Insert(ctx, events, head); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkInsertBaseline is the raw floor the store is measured against:
// plain single-row autocommit INSERTs of the same payload into a table with
// the same columns (no unique indexes, triggers, hashing or head row), in a
// separate file with the same pragmas, from the same numbers of writers
// sharing one connection. Each INSERT is its own transaction and flush.
func BenchmarkInsertBaseline(b *testing.B) {
	payload := eventstoretest.Payload()
	for _, w := range benchWriters {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "baseline.db")
			db, err := sql.Open("sqlite", dsn(path, "FULL", false))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			db.SetMaxOpenConns(1)
			ctx := context.Background()
			if _, err := db.ExecContext(ctx, `CREATE TABLE plain (
				position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,
				id TEXT NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL,
				occurred_at INTEGER NOT NULL, recorded_at INTEGER NOT NULL,
				backdate_reason TEXT NOT NULL DEFAULT '', actor_id TEXT NOT NULL DEFAULT '',
				actor_role TEXT NOT NULL DEFAULT '', actor_org TEXT NOT NULL DEFAULT '',
				idempotency_key TEXT NOT NULL DEFAULT '', correlation_id TEXT NOT NULL DEFAULT '',
				causation_id TEXT NOT NULL DEFAULT '', prev_hash BLOB NOT NULL, hash BLOB NOT NULL) STRICT`); err != nil {
				b.Fatal(err)
			}
			hash := make([]byte, 32)
			_, _ = rand.Read(hash)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, w)
			b.ResetTimer()
			for wr := range w {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						now := time.Now().UnixMicro()
						if _, err := db.ExecContext(ctx, `INSERT INTO plain (stream, version, id, type, data, occurred_at, recorded_at,
							actor_id, actor_role, actor_org, prev_hash, hash) VALUES (?, 1, ?, 'facility.registered.v1', ?, ?, ?, 'tester', 'admin', 'payesh', ?, ?)`,
							fmt.Sprintf("facility-b%d-%d", wr, i), uuid.Must(uuid.NewV7()).String(), payload, now, now, hash, hash); err != nil {
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
// at two log sizes, without statistics (as the store leaves the file) and
// after ANALYZE (as PRAGMA optimize or an operator's ANALYZE would leave it).
//
//	go test -run '^$' -bench FilteredCatchUp -benchtime 1x ./eventstore/sqlite/
func BenchmarkFilteredCatchUp(b *testing.B) {
	for _, size := range []int{100_000, 400_000} {
		for _, analyze := range []bool{false, true} {
			stats := "stats=none"
			if analyze {
				stats = "stats=analyzed"
			}
			b.Run(fmt.Sprintf("log=%d/%s", size, stats), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "bench.db")
				fillSynthetic(b, path, size, analyze)
				st := openStore(b, Config{Path: path})
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
// straight into the events table of a new store file at path and moves
// the head to its end.
func fillSynthetic(b *testing.B, path string, size int, analyze bool) {
	b.Helper()
	st := openStore(b, Config{Path: path, Synchronous: "NORMAL"})
	ctx := context.Background()
	stmts := []string{`
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
INSERT INTO events (position, stream, version, id, type, data, occurred_at, recorded_at, prev_hash, hash)
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
	randomblob(150), 0, 0, zeroblob(32), zeroblob(32)
FROM g`, `UPDATE head SET position = ? WHERE id = 1`}
	if analyze {
		stmts = append(stmts, `ANALYZE`)
	}
	for _, q := range stmts {
		var args []any
		if strings.Contains(q, "?") {
			args = append(args, size)
		}
		if _, err := st.WriteDB().ExecContext(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
}
