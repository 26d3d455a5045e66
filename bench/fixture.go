package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
)

// Seeds of the generated histories: the shared logs and the bulk import
// write different histories so their IDs never meet.
const (
	logSeed  = 0x10_9a7e5
	bulkSeed = 0x20_b01c
)

// The shared logs outlive the process that grows them: the subscription
// scenario grows the PostgreSQL log to 10M events and Verify then walks it
// from another process. They are found by name (the run's schema
// "bench_log_<run>", the file log.db in the work directory) and grown by
// whole chunks of the generated history, so their head position says how
// much of it they hold.

// fillBatch caps the events per transaction of the shared logs' stores (the
// default is 512): they are grown as fast as the bulk path allows, and only
// read when measured.
const fillBatch = 4096

// pgLog opens the run's shared PostgreSQL log.
func (env *Env) pgLog(ctx context.Context) (*postgres.Store, error) {
	return postgres.Open(ctx, postgres.Config{URL: env.PG, Schema: env.SchemaName("log"), MaxBatch: fillBatch})
}

// growPG grows the shared PostgreSQL log to size and then vacuums it, so
// that it is measured in the state a long-lived log is in (hint bits set,
// visibility map and statistics current) and no autovacuum of the new rows
// runs during the measurement.
func (env *Env) growPG(ctx context.Context, st *postgres.Store, size int) (string, error) {
	note, err := env.grow(ctx, st, size)
	if err != nil || note == "" {
		return note, err
	}
	start := time.Now()
	if _, err := st.Pool().Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{st.Schema(), "events"}.Sanitize()); err != nil {
		return "", fmt.Errorf("bench: vacuum the log: %w", err)
	}
	env.logf("log vacuumed in %s", time.Since(start).Round(time.Second))
	return note, nil
}

// The SQLite log Verify walks is the file the SQLite bulk import wrote: the
// seeded history. The import marks it complete once it is.
func (env *Env) seededSQLitePath() (path, done string) {
	path = filepath.Join(env.Work, "seeded.db")
	return path, path + ".complete"
}

// seededSQLiteLog opens the seeded SQLite log, importing it first if no
// complete import is there (verify-sqlite run without bulk-sqlite).
func (env *Env) seededSQLiteLog(ctx context.Context) (*sqlite.Store, string, error) {
	path, done := env.seededSQLitePath()
	if _, err := os.Stat(done); err == nil {
		st, err := openSQLite(ctx, path)
		return st, "", err
	}
	path, _, err := env.sqlitePath("seeded")
	if err != nil {
		return nil, "", err
	}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path, MaxBatch: fillBatch})
	if err != nil {
		return nil, "", err
	}
	start := time.Now()
	src, err := newBulkSource(env.Sizes)
	if err != nil {
		st.Close()
		return nil, "", err
	}
	events := 0
	for {
		appends, err := src.next(ctx)
		if err == nil && appends == nil {
			break
		}
		if err == nil {
			_, errs := eventstore.AppendMany(ctx, st, appends)
			err = errors.Join(errs...)
		}
		if err != nil {
			st.Close()
			return nil, "", fmt.Errorf("bench: importing the seeded history: %w", err)
		}
		events += countEvents(appends)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		st.Close()
		return nil, "", err
	}
	note := fmt.Sprintf("seeded history imported here first: %d events in %s", events, time.Since(start).Round(time.Second))
	env.logf("%s", note)
	return st, note, nil
}

// grow appends generated history to st until it holds at least size
// events. Chunks are generated one ahead while the previous ones are
// written, by two AppendMany calls in flight so the committer always has
// the next transaction queued. It reports what it did.
func (env *Env) grow(ctx context.Context, st eventstore.Store, size int) (string, error) {
	chunk := env.Sizes.Chunk
	head, err := st.Head(ctx)
	if err != nil {
		return "", err
	}
	have := int(head.Position)
	if have >= size {
		return "", nil
	}
	if size%chunk != 0 {
		return "", fmt.Errorf("bench: log size %d is not a multiple of the chunk size %d", size, chunk)
	}
	// A chunk cut short by an interrupted run is appended again from its
	// start: what it stored comes back as duplicates.
	first, last := have/chunk, size/chunk
	h := newHistory(logSeed, chunk)
	start := time.Now()
	env.logf("growing the log from %d to %d events (%d chunks of %d)", have, size, last-first, chunk)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []eventstore.StreamAppend, 2)
	go func() {
		defer close(chunks)
		for i := first; i < last; i++ {
			select {
			case chunks <- h.chunk(i):
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  error
		written int
		lastLog = start
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for appends := range chunks {
				_, errs := eventstore.AppendMany(ctx, st, appends)
				if err := errors.Join(errs...); err != nil {
					mu.Lock()
					if failed == nil {
						failed = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mu.Lock()
				written += chunk
				if time.Since(lastLog) >= 10*time.Second {
					lastLog = time.Now()
					env.logf("  log at %d events, %s", have+written, Rate(float64(written)/time.Since(start).Seconds()))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		return "", fmt.Errorf("bench: growing the log: %w", failed)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	elapsed := time.Since(start)
	msg := fmt.Sprintf("log grown from %s to %s events in %s (%s)", Count(have), Count(size),
		elapsed.Round(time.Second), Rate(float64(size-have)/elapsed.Seconds()))
	env.logf("%s", msg)
	return msg, nil
}
