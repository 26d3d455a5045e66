package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
)

// Projector folds events into one or more read-model tables. The Engine
// owns the transactions, the checkpoint, retries and rebuilds; a Projector
// only says what its tables look like and how a batch of events changes
// them.
//
// The contract:
//
//   - Name is stable and unique among an Engine's projectors; it keys the
//     checkpoint row in projection_state. Tables lists the base names of the
//     tables the projector owns, none shared with another projector. Queries
//     name a read model by projector name or by one of its tables.
//   - Version identifies the tables' layout and the meaning of Apply.
//     Changing either must bump it: an Engine that finds another version
//     stored rebuilds the projector's tables from the log (blue/green),
//     and a runner that finds another version stored stops rather than
//     write tables it does not understand.
//   - Schema returns the DDL for the given dialect and table names (Tables
//     then Indexes, each statement on its own). It must use tables.Table and
//     tables.Index for every name it creates, so a rebuild can build a
//     second generation beside the live one; a rebuild creates the indexes
//     after replaying the log into the bare tables.
//   - Filter selects the events the projector reads; Apply sees only those.
//     Positions of the others still advance the checkpoint.
//   - Apply changes the tables for a batch of events, in global order,
//     inside the Engine's transaction, which also moves the checkpoint past
//     the batch: the batch is applied entirely or not at all, and never
//     twice. A batch may hold one event (the live path delivers what has
//     just committed) or thousands (catch-up and rebuild); the result must
//     not depend on how the log was cut into batches, and must be a function
//     of the events alone (no clock, no randomness, no map order), so that a
//     rebuild gives byte-identical tables. Apply must not commit or roll back
//     tx, must not change the batch (a rebuild of several projectors hands
//     the same decoded events to each, at the same time) nor keep it after
//     returning, and should keep memory proportional to the batch, never to
//     the log. An error rolls the batch
//     back; the Engine retries it and, if it keeps failing, marks the
//     projection failed without ever skipping the batch. Apply is called
//     from one goroutine at a time per projector.
type Projector interface {
	Name() string
	Version() int
	Tables() []string
	Schema(d Dialect, tables TableNames) Schema
	Filter() eventstore.Filter
	Apply(ctx context.Context, tx *Tx, tables TableNames, batch []Envelope) error
}

// Finisher is implemented by projectors that keep derived tables (totals
// over their main table) which are cheaper to compute in one statement than
// to maintain row by row while a rebuild replays the whole log. During that
// replay Apply sees tables.Bulk() true and may leave such tables alone;
// then, before the indexes are built and the tail of the log is applied,
// the Engine calls Finish in a transaction to compute them from the main
// tables, and records that it did: from then on every batch of that
// rebuild, in any process, sees Bulk false. Finish must give exactly what
// incremental maintenance gives (rebuilds are byte-identical), computed
// afresh from the main tables, so calling it again is harmless.
type Finisher interface {
	Finish(ctx context.Context, tx *Tx, tables TableNames) error
}

// Schema is a projector's DDL.
type Schema struct {
	Tables  []string // CREATE TABLE statements
	Indexes []string // CREATE INDEX statements; use IF NOT EXISTS
}

// Envelope is a decoded domain event with its envelope.
type Envelope struct {
	Position      uint64
	Stream        string
	Version       uint64
	ID            string
	Type          string
	OccurredAt    time.Time
	RecordedAt    time.Time
	Actor         eventstore.Actor
	CorrelationID string
	CausationID   string
	Event         domain.Event // the typed payload, as domain.Registry decodes it
}

// Recorded returns the envelope in the form deciders' Evolve functions take.
func (e Envelope) Recorded() domain.Recorded {
	return domain.Recorded{
		ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
		OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Event: e.Event,
	}
}

// Decode turns a stored event into an Envelope.
func Decode(reg *domain.Registry, e *eventstore.Event) (Envelope, error) {
	ev, err := reg.Decode(e.Type, e.Data)
	if err != nil {
		return Envelope{}, &DecodeError{Position: e.Position, Err: err}
	}
	return Envelope{
		Position: e.Position, Stream: e.Stream, Version: e.Version, ID: e.ID, Type: e.Type,
		OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Actor: e.Actor,
		CorrelationID: e.CorrelationID, CausationID: e.CausationID, Event: ev,
	}, nil
}

// DecodeError says a stored event could not be decoded. Decoding is
// deterministic, so the Engine does not retry it: the projection fails at
// the event.
type DecodeError struct {
	Position uint64
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("projections: event at position %d: %v", e.Position, e.Err)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// TableNames maps a projector's base table names to the tables of one
// generation: the live tables, or the __next tables a rebuild fills beside
// them. The zero value names the live tables of generation 0.
type TableNames struct {
	next bool
	bulk bool
	gen  int64
}

// LiveTables names the live tables of generation gen.
func LiveTables(gen int64) TableNames { return TableNames{gen: gen} }

// NextTables names the tables a rebuild builds as generation gen.
func NextTables(gen int64) TableNames { return TableNames{next: true, gen: gen} }

// nextSuffix marks the tables a rebuild is filling.
const nextSuffix = "__next"

// Table returns the name of base in this generation.
func (t TableNames) Table(base string) string {
	if t.next {
		return base + nextSuffix
	}
	return base
}

// Index returns a name for index name of table base that no other
// generation uses. Index names are unique per schema in both engines and
// survive a table's renaming, so each generation's carry its number.
func (t TableNames) Index(base, name string) string {
	return base + "_" + name + "_g" + strconv.FormatInt(t.gen, 10)
}

// Bulk reports whether a rebuild is replaying the log into these tables;
// see Finisher.
func (t TableNames) Bulk() bool { return t.bulk }

// Next reports whether these are a rebuild's tables.
func (t TableNames) Next() bool { return t.next }

// Generation returns the generation number.
func (t TableNames) Generation() int64 { return t.gen }

// Tx is the Engine's transaction as a projector sees it: database/sql's
// methods with the dialect's placeholders. It is not safe for concurrent
// use.
type Tx struct {
	tx *sql.Tx
	d  Dialect
}

// NewTx wraps a transaction, for tools and tests that drive Apply
// themselves.
func NewTx(tx *sql.Tx, d Dialect) *Tx { return &Tx{tx: tx, d: d} }

// Dialect returns the transaction's dialect.
func (t *Tx) Dialect() Dialect { return t.d }

// Exec runs a statement written with ? placeholders.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.Rebind(query), args...)
}

// Query runs a query written with ? placeholders.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.Rebind(query), args...)
}

// QueryRow runs a query written with ? placeholders that returns one row.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.Rebind(query), args...)
}

// Upsert describes a multi-row INSERT ... ON CONFLICT of one table.
type Upsert struct {
	Table   string
	Columns []string // every column written, key columns first
	Key     int      // how many leading Columns form the conflict target
	// Add makes the update add each new value to the stored one (counters
	// and sums); otherwise the stored row is replaced.
	Add bool
}

// upsertChunks are the row counts of the statements Write sends: a row set
// is cut into as many of the largest as fit, then the next, and so on, so
// each table needs a handful of statement texts however its batches vary
// (the PostgreSQL driver prepares each text once per connection).
var upsertChunks = [...]int{256, 64, 16, 4, 1}

// maxParams returns how many parameters one statement may carry. On
// PostgreSQL it only has to stay under the protocol's 65535. The SQLite
// driver matches each parameter to its argument by a linear search, so a
// statement's binding costs the square of its parameters: there a few
// hundred is the sweet spot.
func (d Dialect) maxParams() int {
	if d.postgres {
		return 30_000
	}
	return 600
}

// Write upserts rows (each len(u.Columns) values, keys unique within rows).
// Values are string, int64, int or sql.NullInt64.
//
// On PostgreSQL the rows go in one statement as one array per column
// (INSERT ... SELECT * FROM unnest($1::text[], $2::bigint[], ...)): one
// statement text whatever the number of rows, and two to three times
// faster than a VALUES list. SQLite has no arrays: there the rows go in
// multi-row VALUES statements of a few fixed sizes.
func (u Upsert) Write(ctx context.Context, tx *Tx, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	cols := len(u.Columns)
	for _, r := range rows {
		if len(r) != cols {
			return fmt.Errorf("projections: upsert %s: row has %d values, want %d", u.Table, len(r), cols)
		}
	}
	if tx.d.postgres {
		return u.writeArrays(ctx, tx, rows)
	}
	// Plan the statements: how many of each size.
	var plan []int
	for left := len(rows); left > 0; {
		n := 1
		for _, c := range upsertChunks {
			if c <= left && c*cols <= tx.d.maxParams() {
				n = c
				break
			}
		}
		plan = append(plan, n)
		left -= n
	}
	// SQLite's driver parses a statement on every Exec; a size used more
	// than once is prepared once for this call.
	stmts := map[int]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			_ = st.Close()
		}
	}()
	args := make([]any, 0, plan[0]*cols)
	for i, n := range plan {
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		rows = rows[n:]
		var err error
		switch st, ok := stmts[n]; {
		case ok:
			_, err = st.ExecContext(ctx, args...)
		case !tx.d.postgres && i+1 < len(plan) && plan[i+1] == n:
			if st, err = tx.tx.PrepareContext(ctx, u.statement(n)); err == nil {
				stmts[n] = st
				_, err = st.ExecContext(ctx, args...)
			}
		default:
			_, err = tx.Exec(ctx, u.statement(n), args...)
		}
		if err != nil {
			return fmt.Errorf("projections: upsert %s: %w", u.Table, err)
		}
	}
	return nil
}

// writeArrays is Write on PostgreSQL.
func (u Upsert) writeArrays(ctx context.Context, tx *Tx, rows [][]any) error {
	args := make([]any, len(u.Columns))
	casts := make([]string, len(u.Columns))
	for j := range u.Columns {
		switch rows[0][j].(type) {
		case string:
			a := make([]string, len(rows))
			for i, r := range rows {
				s, ok := r[j].(string)
				if !ok {
					return u.mixed(j, r[j])
				}
				a[i] = s
			}
			args[j], casts[j] = a, "::text[]"
		case int64, int, sql.NullInt64:
			a := make([]*int64, len(rows))
			vals := make([]int64, len(rows))
			for i, r := range rows {
				switch v := r[j].(type) {
				case int64:
					vals[i], a[i] = v, &vals[i]
				case int:
					vals[i], a[i] = int64(v), &vals[i]
				case sql.NullInt64:
					if v.Valid {
						vals[i], a[i] = v.Int64, &vals[i]
					}
				default:
					return u.mixed(j, r[j])
				}
			}
			args[j], casts[j] = a, "::bigint[]"
		default:
			return u.mixed(j, rows[0][j])
		}
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + u.Table + " (" + strings.Join(u.Columns, ", ") + ") SELECT * FROM unnest(")
	for j, c := range casts {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString("?" + c)
	}
	b.WriteString(")")
	u.conflict(&b)
	if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("projections: upsert %s: %w", u.Table, err)
	}
	return nil
}

func (u Upsert) mixed(col int, v any) error {
	return fmt.Errorf("projections: upsert %s: column %s: unsupported or mixed value type %T", u.Table, u.Columns[col], v)
}

func (u Upsert) statement(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(u.Table)
	b.WriteString(" (")
	b.WriteString(strings.Join(u.Columns, ", "))
	b.WriteString(") VALUES ")
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(u.Columns)), ", ") + ")"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	u.conflict(&b)
	return b.String()
}

func (u Upsert) conflict(b *strings.Builder) {
	b.WriteString(" ON CONFLICT (")
	b.WriteString(strings.Join(u.Columns[:u.Key], ", "))
	b.WriteString(") DO UPDATE SET ")
	for i, c := range u.Columns[u.Key:] {
		if i > 0 {
			b.WriteString(", ")
		}
		if u.Add {
			fmt.Fprintf(b, "%s = %s.%s + excluded.%s", c, u.Table, c, c)
		} else {
			fmt.Fprintf(b, "%s = excluded.%s", c, c)
		}
	}
}
