package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/payesh/payesh/eventstore"
)

// payload is the command-append payload: a facility registration with a
// sealed applicant, the same bytes as eventstoretest's benchmarks write (a
// test keeps them equal).
var payload = []byte(`{"facility_id":"f-000000001","fiscal_year":1403,"program":"home-business","agency":"relief-committee","province":"IR-00","county":"IR-00-arak","applicant":{"ref":"9f2c4a0e6d1b7c3a5e8f0b2d4c6a8e1f3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a","key_id":"k-9f2c4a0e6d1b7c3a","ciphertext":"q1nKc2VhbGVkLWRhdGEtZm9yLWJlbmNobWFya3MtMDEyMzQ1Njc4OWFiY2RlZg=="},"title":"Carpet weaving workshop","requested_rials":1000000000,"jobs_promised":2}`)

var benchActor = eventstore.Actor{ID: "tester", Role: "admin", Org: "payesh"}

// appendScenario: command appends, one event each to a new stream with
// expected version NoStream (a facility registration), from N writers,
// against plain single-row autocommit INSERTs of the same bytes.
func appendScenario(b backend) Scenario {
	return Scenario{
		Name:    "append-" + b.short,
		Section: sectionAppends,
		Backend: b.name,
		Payesh: Side{Label: "Payesh append", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return appendPayesh(ctx, env, b)
		}},
		Baseline: Side{Label: "raw INSERT", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			if b == backendPostgres {
				return appendBaselinePG(ctx, env)
			}
			return appendBaselineSQLite(ctx, env)
		}},
		Rows: func(s Sizes) []Row {
			var rows []Row
			for _, w := range s.Writers {
				r := Row{Key: writersKey(w), Label: fmt.Sprintf("%d writers", w)}
				if w == 1 {
					r.Label = "1 writer"
				}
				if w == 32 {
					r.Target = Target{Ratio: 0.7}
				}
				rows = append(rows, r)
			}
			return rows
		},
	}
}

func writersKey(w int) string { return fmt.Sprintf("writers=%d", w) }

// hammer calls fn n times in all from writers goroutines and returns the
// first error.
func hammer(ctx context.Context, writers, n int, fn func(ctx context.Context, w int, i int64) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, w, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// commitStatser is implemented by the SQL stores.
type commitStatser interface {
	CommitStats() eventstore.CommitStats
}

func appendPayesh(ctx context.Context, env *Env, b backend) ([]Point, error) {
	var points []Point
	for _, w := range env.Sizes.Writers {
		var (
			st   eventstore.Store
			done func()
		)
		label := fmt.Sprintf("append-payesh-w%d", w)
		if b == backendPostgres {
			schema, drop, err := env.freshSchema(ctx, label)
			if err != nil {
				return nil, err
			}
			pst, err := env.openPG(ctx, schema)
			if err != nil {
				drop()
				return nil, err
			}
			st, done = pst, drop
		} else {
			path, remove, err := env.sqlitePath(label)
			if err != nil {
				return nil, err
			}
			sst, err := openSQLite(ctx, path)
			if err != nil {
				return nil, err
			}
			st, done = sst, remove
		}
		p, err := appendPoint(ctx, env, st, w)
		_ = st.Close()
		done()
		if err != nil {
			return nil, err
		}
		points = append(points, p)
	}
	return points, nil
}

func appendPoint(ctx context.Context, env *Env, st eventstore.Store, writers int) (Point, error) {
	do := func(ctx context.Context, w int, i int64) error {
		ev := []eventstore.Proposed{{
			ID: uuid.Must(uuid.NewV7()).String(), Type: "facility.registered.v1",
			Data: payload, Actor: benchActor,
		}}
		_, err := st.Append(ctx, fmt.Sprintf("facility-b%d-%d", w, i), eventstore.NoStream, ev)
		return err
	}
	// Warm up: every writer's first append (connections, statement
	// caches) is not what is measured.
	if err := hammer(ctx, writers, writers, func(ctx context.Context, w int, i int64) error { return do(ctx, w, -i) }); err != nil {
		return Point{}, err
	}
	var before eventstore.CommitStats
	cs, _ := st.(commitStatser)
	if cs != nil {
		before = cs.CommitStats()
	}
	m := startPoint()
	if err := hammer(ctx, writers, env.Sizes.Appends, do); err != nil {
		return Point{}, err
	}
	p := m.point(writersKey(writers), int64(env.Sizes.Appends))
	if cs != nil {
		after := cs.CommitStats()
		if tx := after.Transactions - before.Transactions; tx > 0 {
			p.Note = fmt.Sprintf("%.1f appends/tx", float64(after.Requests-before.Requests)/float64(tx))
		}
	}
	env.logf("Payesh append, %d writers: %s", writers, Rate(p.Rate()))
	return p, nil
}

// appendBaselinePG: one autocommit INSERT per event from each writer's own
// connection, into a table with the same columns and unique indexes, with
// position from an identity column: no chain, no head lock, no checks.
func appendBaselinePG(ctx context.Context, env *Env) ([]Point, error) {
	var points []Point
	for _, w := range env.Sizes.Writers {
		schema, drop, err := env.freshSchema(ctx, fmt.Sprintf("append-baseline-w%d", w))
		if err != nil {
			return nil, err
		}
		p, err := func() (Point, error) {
			defer drop()
			pool, err := env.pool(ctx, schema, w)
			if err != nil {
				return Point{}, err
			}
			defer pool.Close()
			if _, err := pool.Exec(ctx, plainPGTable(true)); err != nil {
				return Point{}, err
			}
			insert := `INSERT INTO plain (stream, version, id, type, data, occurred_at, recorded_at,
	actor_id, actor_role, actor_org, prev_hash, hash)
VALUES ($1, 1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $9)`
			hash := make([]byte, 32)
			_, _ = rand.Read(hash)
			do := func(ctx context.Context, w int, i int64) error {
				now := time.Now().UTC().Truncate(time.Microsecond)
				_, err := pool.Exec(ctx, insert, fmt.Sprintf("facility-b%d-%d", w, i), uuid.Must(uuid.NewV7()).String(),
					"facility.registered.v1", payload, now, benchActor.ID, benchActor.Role, benchActor.Org, hash)
				return err
			}
			if err := hammer(ctx, w, w, func(ctx context.Context, wr int, i int64) error { return do(ctx, wr, -i) }); err != nil {
				return Point{}, err
			}
			m := startPoint()
			if err := hammer(ctx, w, env.Sizes.Appends, do); err != nil {
				return Point{}, err
			}
			return m.point(writersKey(w), int64(env.Sizes.Appends)), nil
		}()
		if err != nil {
			return nil, err
		}
		env.logf("raw INSERT, %d writers: %s", w, Rate(p.Rate()))
		points = append(points, p)
	}
	return points, nil
}

// appendBaselineSQLite: one autocommit INSERT per event, each its own
// transaction and WAL flush (synchronous FULL, like the store), on one
// connection shared by the writers as the store's writer is, into a table
// with the same columns and unique indexes.
func appendBaselineSQLite(ctx context.Context, env *Env) ([]Point, error) {
	var points []Point
	for _, w := range env.Sizes.Writers {
		path, remove, err := env.sqlitePath(fmt.Sprintf("append-baseline-w%d", w))
		if err != nil {
			return nil, err
		}
		p, err := func() (Point, error) {
			defer remove()
			db, err := plainSQLite(path)
			if err != nil {
				return Point{}, err
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, plainSQLiteTable); err != nil {
				return Point{}, err
			}
			hash := make([]byte, 32)
			_, _ = rand.Read(hash)
			stmt, err := db.PrepareContext(ctx, `INSERT INTO plain (stream, version, id, type, data, occurred_at, recorded_at,
	actor_id, actor_role, actor_org, prev_hash, hash) VALUES (?, 1, ?, 'facility.registered.v1', ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return Point{}, err
			}
			defer stmt.Close()
			do := func(ctx context.Context, w int, i int64) error {
				now := time.Now().UnixMicro()
				_, err := stmt.ExecContext(ctx, fmt.Sprintf("facility-b%d-%d", w, i), uuid.Must(uuid.NewV7()).String(),
					payload, now, now, benchActor.ID, benchActor.Role, benchActor.Org, hash, hash)
				return err
			}
			if err := hammer(ctx, w, w, func(ctx context.Context, wr int, i int64) error { return do(ctx, wr, -i) }); err != nil {
				return Point{}, err
			}
			m := startPoint()
			if err := hammer(ctx, w, env.Sizes.Appends, do); err != nil {
				return Point{}, err
			}
			return m.point(writersKey(w), int64(env.Sizes.Appends)), nil
		}()
		if err != nil {
			return nil, err
		}
		env.logf("raw INSERT, %d writers: %s", w, Rate(p.Rate()))
		points = append(points, p)
	}
	return points, nil
}

// meter times one point and records the peak memory it reached.
type meter struct{ start time.Time }

func startPoint() meter {
	resetPeak()
	return meter{start: time.Now()}
}

func (m meter) point(key string, events int64) Point {
	return Point{Key: key, Events: events, Seconds: time.Since(m.start).Seconds(), PeakRSS: peakRSS()}
}
