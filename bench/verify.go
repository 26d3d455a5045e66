package bench

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/payesh/payesh/eventstore"
)

const verifyKey = "verify"

// verifyScenario: eventstore.Verify over a whole log (PostgreSQL: the
// 10M-event synthetic log the subscription scenario grew; SQLite: the seeded
// history the bulk import wrote), against a raw read of the same rows: the
// same paged query (10,000 rows by position), every column decoded into the
// same Go types, nothing hashed or checked. The ratio is the share of a walk
// that is reading.
func verifyScenario(b backend) Scenario {
	return Scenario{
		Name:    "verify-" + b.short,
		Section: sectionVerify,
		Backend: b.name,
		Payesh: Side{Label: "Payesh Verify", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return verifyPayesh(ctx, env, b)
		}},
		Baseline: Side{Label: "raw paged read", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return verifyBaseline(ctx, env, b)
		}},
		Rows: func(s Sizes) []Row {
			label := fmt.Sprintf("seeded history of %s facilities", Count(s.BulkFacilities))
			if b == backendPostgres && len(s.LogSizes) > 0 {
				label = fmt.Sprintf("%s events of synthetic history", Count(s.LogSizes[len(s.LogSizes)-1]))
			}
			return []Row{{Key: verifyKey, Label: label, Target: Target{Rate: 500_000}}}
		},
	}
}

// verifyLog opens the log of backend b that Verify walks, built if needed.
func verifyLog(ctx context.Context, env *Env, b backend) (eventstore.Store, string, error) {
	if b == backendSQLite {
		return env.seededSQLiteLog(ctx)
	}
	st, err := env.pgLog(ctx)
	if err != nil {
		return nil, "", err
	}
	note, err := env.growPG(ctx, st, env.Sizes.LogSizes[len(env.Sizes.LogSizes)-1])
	if err != nil {
		st.Close()
		return nil, "", err
	}
	return st, note, nil
}

func verifyPayesh(ctx context.Context, env *Env, b backend) ([]Point, error) {
	st, note, err := verifyLog(ctx, env, b)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	m := startPoint()
	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	if err != nil {
		return nil, err
	}
	p := m.point(verifyKey, int64(rep.Events))
	p.Note = joinNotes(fmt.Sprintf("%d events in %d streams", rep.Events, rep.Streams), note)
	env.logf("Payesh Verify: %d events, %s", rep.Events, Rate(p.Rate()))
	return []Point{p}, nil
}

const readPage = 10_000

func verifyBaseline(ctx context.Context, env *Env, b backend) ([]Point, error) {
	st, _, err := verifyLog(ctx, env, b)
	if err != nil {
		return nil, err
	}
	st.Close()
	path, _ := env.seededSQLitePath()
	raw, err := openRawReader(ctx, env, b, env.SchemaName("log"), path)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	p, err := raw.measure(ctx, env, verifyKey, math.MaxInt64)
	return []Point{p}, err
}

// rawReader reads a log's rows the way a baseline does: the store's paged
// query by position (readPage rows a page), every column decoded into the
// Go types the store uses, nothing hashed, checked or decoded further.
type rawReader struct {
	// page reads the rows after `after` up to upto and returns how many
	// it read and the last one's position.
	page  func(ctx context.Context, after, upto uint64) (int, uint64, error)
	close func()
}

// openRawReader opens a raw reader on a log: PostgreSQL schema schema, or
// the SQLite file at path.
func openRawReader(ctx context.Context, env *Env, b backend, schema, path string) (*rawReader, error) {
	cols := strings.Join(columns, ", ")
	if b == backendPostgres {
		pool, err := env.pool(ctx, schema, 1)
		if err != nil {
			return nil, err
		}
		q := `SELECT ` + cols + ` FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`
		return &rawReader{close: pool.Close, page: func(ctx context.Context, after, upto uint64) (int, uint64, error) {
			rows, err := pool.Query(ctx, q, int64(after), int64(min(upto, math.MaxInt64)), readPage)
			if err != nil {
				return 0, 0, err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var (
					e              eventstore.Event
					pos, ver       int64
					prev, hash     []byte
					occurred, recd time.Time
				)
				if err := rows.Scan(&pos, &e.Stream, &ver, &e.ID, &e.Type, &e.Data, &occurred, &recd,
					&e.BackdateReason, &e.Actor.ID, &e.Actor.Role, &e.Actor.Org,
					&e.IdempotencyKey, &e.CorrelationID, &e.CausationID, &prev, &hash); err != nil {
					return 0, 0, err
				}
				after = uint64(pos)
				n++
			}
			return n, after, rows.Err()
		}}, nil
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: "_pragma=query_only(1)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + cols + ` FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`
	return &rawReader{close: func() { _ = db.Close() }, page: func(ctx context.Context, after, upto uint64) (int, uint64, error) {
		rows, err := db.QueryContext(ctx, q, int64(after), int64(min(upto, math.MaxInt64)), readPage)
		if err != nil {
			return 0, 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var (
				e                      eventstore.Event
				pos, ver, occurred, rc int64
				prev, hash             []byte
			)
			if err := rows.Scan(&pos, &e.Stream, &ver, &e.ID, &e.Type, &e.Data, &occurred, &rc,
				&e.BackdateReason, &e.Actor.ID, &e.Actor.Role, &e.Actor.Org,
				&e.IdempotencyKey, &e.CorrelationID, &e.CausationID, &prev, &hash); err != nil {
				return 0, 0, err
			}
			e.OccurredAt, e.RecordedAt = time.UnixMicro(occurred).UTC(), time.UnixMicro(rc).UTC()
			after = uint64(pos)
			n++
		}
		return n, after, rows.Err()
	}}, nil
}

// measure times a read of every row up to upto as the point key.
func (r *rawReader) measure(ctx context.Context, env *Env, key string, upto uint64) (Point, error) {
	m := startPoint()
	n, err := r.readThrough(ctx, upto)
	if err != nil {
		return Point{}, err
	}
	p := m.point(key, n)
	env.logf("raw paged read: %d events, %s", n, Rate(p.Rate()))
	return p, nil
}

// readThrough reads every row from position 1 up to upto and returns how
// many it read.
func (r *rawReader) readThrough(ctx context.Context, upto uint64) (int64, error) {
	var total int64
	var after uint64
	for {
		n, next, err := r.page(ctx, after, upto)
		if err != nil {
			return total, fmt.Errorf("bench: raw read after %d: %w", after, err)
		}
		if n == 0 {
			return total, nil
		}
		total += int64(n)
		after = next
	}
}
