package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/seed"
)

const bulkKey = "import"

// bulkScenario: importing the national history payesh seed generates into
// an empty store through AppendMany, one piece (1,000 facilities) per call,
// against writing the same rows (same columns, same bytes but for the
// applicants' freshly sealed ciphertexts, hashes included) raw: one COPY per
// piece on PostgreSQL, one transaction of multi-row INSERTs per piece on
// SQLite. Generating and sealing a piece (and, for the baseline, chaining
// its hashes) is not timed on either side.
func bulkScenario(b backend) Scenario {
	baseline := "raw COPY"
	if b == backendSQLite {
		baseline = "raw multi-row INSERT"
	}
	return Scenario{
		Name:    "bulk-" + b.short,
		Section: sectionBulk,
		Backend: b.name,
		Payesh: Side{Label: "Payesh AppendMany", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return bulkPayesh(ctx, env, b)
		}},
		Baseline: Side{Label: baseline, Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return bulkBaseline(ctx, env, b)
		}},
		Rows: func(s Sizes) []Row {
			return []Row{{Key: bulkKey, Label: fmt.Sprintf("seeded history of %s facilities, %s per call", Count(s.BulkFacilities), Count(s.BulkPiece)), Target: Target{Ratio: 0.8}}}
		},
	}
}

func bulkPayesh(ctx context.Context, env *Env, b backend) ([]Point, error) {
	var (
		st   eventstore.Store
		done func()
	)
	if b == backendPostgres {
		schema, drop, err := env.freshSchema(ctx, "bulk-payesh")
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
		// The imported file is kept: Verify walks it next.
		path, _, err := env.sqlitePath("seeded")
		if err != nil {
			return nil, err
		}
		_, complete := env.seededSQLitePath()
		_ = os.Remove(complete)
		sst, err := openSQLite(ctx, path)
		if err != nil {
			return nil, err
		}
		st, done = sst, func() {}
	}
	defer done()
	defer st.Close()

	src, err := newBulkSource(env.Sizes)
	if err != nil {
		return nil, err
	}
	m := startPoint()
	var (
		timed  time.Duration
		events int
	)
	for i := 0; ; i++ {
		appends, err := src.next(ctx)
		if err != nil {
			return nil, err
		}
		if appends == nil {
			break
		}
		start := time.Now()
		_, errs := eventstore.AppendMany(ctx, st, appends)
		timed += time.Since(start)
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("bench: bulk import, piece %d: %w", i, err)
		}
		events += countEvents(appends)
	}
	p := m.point(bulkKey, int64(events))
	p.Seconds = timed.Seconds()
	if b == backendSQLite {
		_, complete := env.seededSQLitePath()
		if err := os.WriteFile(complete, nil, 0o644); err != nil {
			return nil, err
		}
	}
	if cs, ok := st.(commitStatser); ok {
		if s := cs.CommitStats(); s.Transactions > 0 {
			p.Note = fmt.Sprintf("%.0f events/tx", float64(s.Events)/float64(s.Transactions))
		}
	}
	env.logf("Payesh bulk import: %s", Rate(p.Rate()))
	return []Point{p}, nil
}

func bulkBaseline(ctx context.Context, env *Env, b backend) ([]Point, error) {
	var (
		write func(ctx context.Context, rows []eventstore.Event) error
		note  string
	)
	if b == backendPostgres {
		schema, drop, err := env.freshSchema(ctx, "bulk-baseline")
		if err != nil {
			return nil, err
		}
		defer drop()
		pool, err := env.pool(ctx, schema, 1)
		if err != nil {
			return nil, err
		}
		defer pool.Close()
		if _, err := pool.Exec(ctx, plainPGTable(false)); err != nil {
			return nil, err
		}
		note = "one COPY (its own transaction) per piece"
		write = func(ctx context.Context, rows []eventstore.Event) error {
			n, err := pool.CopyFrom(ctx, pgx.Identifier{"plain"}, columns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				return pgRow(&rows[i]), nil
			}))
			if err == nil && n != int64(len(rows)) {
				err = fmt.Errorf("copied %d of %d rows", n, len(rows))
			}
			return err
		}
	} else {
		path, remove, err := env.sqlitePath("bulk-baseline")
		if err != nil {
			return nil, err
		}
		defer remove()
		db, err := plainSQLite(path)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, plainSQLiteTable); err != nil {
			return nil, err
		}
		const perStatement = 64
		note = fmt.Sprintf("one transaction per piece, INSERTs of %d rows", perStatement)
		insert := func(n int) string {
			one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(columns)), ",") + ")"
			return "INSERT INTO plain (" + strings.Join(columns, ", ") + ") VALUES " +
				strings.TrimSuffix(strings.Repeat(one+",", n), ",")
		}
		full, err := db.PrepareContext(ctx, insert(perStatement))
		if err != nil {
			return nil, err
		}
		defer full.Close()
		write = func(ctx context.Context, rows []eventstore.Event) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			stmt := tx.StmtContext(ctx, full)
			args := make([]any, 0, perStatement*len(columns))
			for start := 0; start < len(rows); start += perStatement {
				part := rows[start:min(start+perStatement, len(rows))]
				args = args[:0]
				for i := range part {
					args = append(args, sqliteRow(&part[i])...)
				}
				if len(part) == perStatement {
					_, err = stmt.ExecContext(ctx, args...)
				} else {
					_, err = tx.ExecContext(ctx, insert(len(part)), args...)
				}
				if err != nil {
					return err
				}
			}
			return tx.Commit()
		}
	}

	src, err := newBulkSource(env.Sizes)
	if err != nil {
		return nil, err
	}
	versions := map[string]uint64{}
	var head eventstore.Head
	m := startPoint()
	var (
		timed  time.Duration
		events int
	)
	for i := 0; ; i++ {
		appends, err := src.next(ctx)
		if err != nil {
			return nil, err
		}
		if appends == nil {
			break
		}
		var rows []eventstore.Event
		rows, head = chain(appends, head, versions, time.Now())
		start := time.Now()
		if err := write(ctx, rows); err != nil {
			return nil, fmt.Errorf("bench: bulk baseline, piece %d: %w", i, err)
		}
		timed += time.Since(start)
		events += len(rows)
	}
	p := m.point(bulkKey, int64(events))
	p.Seconds = timed.Seconds()
	p.Note = note
	env.logf("baseline bulk import: %s", Rate(p.Rate()))
	return []Point{p}, nil
}

// bulkSource yields the seeded history piece by piece, sealed and encoded.
// Both sides of the bulk import generate it afresh with the same
// configuration, so they write the same events with the same IDs.
type bulkSource struct {
	g     *seed.Generator
	vault applicant.Vault
}

// bulkPseudonymKey keys the applicants' pseudonyms of the imported history.
var bulkPseudonymKey = []byte("payesh bench: pseudonym key of the seeded history")

func newBulkSource(s Sizes) (*bulkSource, error) {
	return newSeededSource(s.BulkFacilities, s.BulkPiece, bulkSeed)
}

// newSeededSource returns the history payesh seed generates for the given
// number of facilities and seed, piece facilities at a time.
func newSeededSource(facilities, piece int, seedValue uint64) (*bulkSource, error) {
	g, err := seed.NewGenerator(seed.Config{
		Facilities:   facilities,
		Seed:         seedValue,
		Now:          time.Now(),
		Chunk:        piece,
		PseudonymKey: bulkPseudonymKey,
	})
	if err != nil {
		return nil, err
	}
	return &bulkSource{g: g, vault: applicant.NewMemoryVault()}, nil
}

// skip generates the next piece and drops it, as for a piece already
// written: later pieces depend on it (the quota ledgers carry over).
func (b *bulkSource) skip() error {
	_, err := b.g.Next()
	return err
}

// next returns the next piece's appends, or nil when the history is done.
func (b *bulkSource) next(ctx context.Context) ([]eventstore.StreamAppend, error) {
	p, err := b.g.Next()
	if err != nil || p == nil {
		return nil, err
	}
	if err := p.Seal(ctx, b.vault, 8); err != nil {
		return nil, err
	}
	return p.StreamAppends()
}
