package projections

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/payesh/payesh/domain"
)

// Queries runs the queries of one read model for its Reader, each answer
// with the position of the log its rows reflect. It is safe for concurrent
// use.
//
// Each query is one SELECT statement, to which Select adds the read model's
// checkpoint (projection_state.position) as a first column. One statement
// sees one snapshot on both engines (PostgreSQL takes a snapshot per
// statement, SQLite's autocommit read transaction lasts from the
// statement's first step to its end), and the checkpoint moves in the same
// transaction as the rows, a blue/green swap included (it renames the
// tables and stores the new position in one commit). So the position an
// answer carries is exactly the one its rows reflect, for one round trip
// and no transaction: a BEGIN, a separate read of the checkpoint and a
// ROLLBACK cost three more round trips on PostgreSQL, and as many more
// statements for SQLite to parse.
//
// A query that needs several statements must be written as one (a join, a
// UNION ALL): statements run one by one would each see another snapshot.
type Queries struct {
	db   *DB
	name string
	at   string // the position expression, see At
}

// NewQueries returns the Queries of the read model of the projector name,
// over db's read connections.
func NewQueries(db *DB, name string) *Queries {
	// The name is a literal, not a parameter, so that At can stand in any
	// arm of a compound query without its argument in the middle of the
	// query's own.
	return &Queries{db: db, name: name,
		at: `(SELECT position FROM ` + stateTable + ` WHERE name = '` + strings.ReplaceAll(name, "'", "''") + `')`}
}

// At returns the expression of the read model's checkpoint that Select
// puts first in a query's columns. The later arms of a compound query
// (UNION ALL) begin with it too: a UNION ALL in a subquery would cost
// SQLite a copy of every row.
func (q *Queries) At() string { return q.at }

// Dialect returns the dialect the queries are written in.
func (q *Queries) Dialect() Dialect { return q.db.Dialect }

// Select runs query, one statement with ? placeholders whose text begins
// with "SELECT " (the later arms of a UNION ALL with "SELECT " + At() +
// ", "), and calls each for every row it returns, in order; each must scan
// the row once, its own columns only. It returns the position of the log
// the rows reflect.
//
// When no row comes back, nothing carried the position: Select then reads
// the checkpoint and runs the statement again, and returns that checkpoint
// if it still returns no row. The second run sees a snapshot at least as
// new as the checkpoint read before it (positions only grow), so the
// position is one the empty answer reflects at least, never more; if rows
// have appeared meanwhile, they carry their own.
//
// A read model whose projector never ran (its checkpoint or its tables
// missing) gives an error matching ErrNotBuilt. An error of each ends the
// query and is returned as it is.
func (q *Queries) Select(ctx context.Context, query string, args []any, each func(*Row) error) (uint64, error) {
	const keyword = "SELECT "
	if !strings.HasPrefix(query, keyword) {
		return 0, fmt.Errorf("projections: a query of %s must begin with %q: %.40q", q.name, keyword, query)
	}
	text := q.db.Dialect.Rebind(keyword + q.at + `, ` + query[len(keyword):])
	pos, n, err := q.run(ctx, text, args, each)
	if err != nil || n > 0 {
		return pos, err
	}
	at, err := q.Position(ctx)
	if err != nil {
		return 0, err
	}
	if pos, n, err = q.run(ctx, text, args, each); err != nil || n > 0 {
		return pos, err
	}
	return at, nil
}

// run runs the statement once and returns the position its rows carry and
// how many rows came back.
func (q *Queries) run(ctx context.Context, text string, args []any, each func(*Row) error) (uint64, int, error) {
	rows, err := q.db.Read.QueryContext(ctx, text, args...)
	if err != nil {
		return 0, 0, q.translate(err)
	}
	defer rows.Close()
	sc := Row{rows: rows}
	n := 0
	for rows.Next() {
		sc.scanned = false
		if err := each(&sc); err != nil {
			return 0, n, err
		}
		if !sc.scanned {
			return 0, n, fmt.Errorf("projections: a query of %s did not scan its row", q.name)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, n, q.translate(err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	switch at := sc.at.(type) {
	case int64:
		return uint64(at), n, nil
	case nil:
		// The tables exist, the checkpoint row does not: they were
		// created in the same transaction, so this is a database someone
		// took apart.
		return 0, n, fmt.Errorf("%w: %s has tables but no checkpoint", ErrNotBuilt, q.name)
	default:
		return 0, n, fmt.Errorf("projections: the position of %s is a %T", q.name, at)
	}
}

// SelectPage runs query like Select for one page of a keyset-paged list,
// scanning each row with scan. The query asks for limit+1 rows (its
// LIMIT is limit+1): the extra row only tells that a next page exists.
// SelectPage returns at most limit rows, next, the cursor of the last of
// them by cursor when there is a next page ("" when there is none), and
// the position.
func SelectPage[T any](ctx context.Context, q *Queries, query string, args []any, limit int,
	scan func(*Row) (T, error), cursor func(T) string) (rows []T, next string, pos uint64, err error) {
	pos, err = q.Select(ctx, query, args, func(s *Row) error {
		r, err := scan(s)
		rows = append(rows, r)
		return err
	})
	if err != nil {
		return nil, "", 0, err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor(rows[limit-1])
	}
	return rows, next, pos, nil
}

// Row is the current row of a Select, for its callback. It is a concrete
// type rather than an interface so that the arguments of Scan can stay on
// the caller's stack: a query scans hundreds of rows.
type Row struct {
	rows *sql.Rows
	// at is the position column, ahead of the caller's: an int64, or nil
	// without a checkpoint. It is scanned as the driver gives it, the
	// cheapest conversion, since every row carries it.
	at      any
	dest    []any
	scanned bool
}

// Scan copies the row's columns, the position excepted, into dest, as
// sql.Rows.Scan does.
func (s *Row) Scan(dest ...any) error {
	s.dest = append(append(s.dest[:0], &s.at), dest...)
	s.scanned = true
	return s.rows.Scan(s.dest...)
}

// Position returns the position the read model reflects, read on its own
// (the checkpoint of a query that returned no row), or an error matching
// ErrNotBuilt.
func (q *Queries) Position(ctx context.Context) (uint64, error) {
	var pos int64
	err := q.db.Read.QueryRowContext(ctx, q.db.Dialect.Rebind(`SELECT position FROM `+stateTable+` WHERE name = ?`), q.name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: %s", ErrNotBuilt, q.name)
	}
	if err != nil {
		return 0, q.translate(err)
	}
	return uint64(pos), nil
}

// translate turns a missing table (projection_state or the read model's
// own) into ErrNotBuilt: no Engine has run the projector on this database.
func (q *Queries) translate(err error) error {
	if isMissingTable(err) {
		return fmt.Errorf("%w: %s: %w", ErrNotBuilt, q.name, err)
	}
	return err
}

// Where is the condition of a read model's query: the equalities a
// filter's fields ask for, and any other condition (a page's cursor). The
// zero value matches every row.
type Where struct {
	conds []string
	args  []any
}

// Eq asks for column = value, unless value is "": a filter's empty field
// matches everything.
func (w *Where) Eq(column, value string) {
	if value != "" {
		w.Add(column+" = ?", value)
	}
}

// EqInt asks for column = value, unless value is 0: a filter's zero field
// matches everything.
func (w *Where) EqInt(column string, value int) {
	if value != 0 {
		w.Add(column+" = ?", value)
	}
}

// Add adds a condition with ? placeholders and their arguments.
func (w *Where) Add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// String returns the conditions joined by AND ("1 = 1" when there are
// none), for use after WHERE.
func (w Where) String() string {
	if len(w.conds) == 0 {
		return "1 = 1"
	}
	return strings.Join(w.conds, " AND ")
}

// Args returns the arguments of the placeholders of String, in order.
func (w Where) Args() []any { return w.args }

// DefaultLimit is the size of a page when a query does not say.
const DefaultLimit = 50

// PageLimit returns how many rows a page holds when limit rows are asked
// for and a page holds most at the most: DefaultLimit (or most, if less)
// for 0, most for more than most. A negative limit gives an error matching
// domain.ErrInvalid.
func PageLimit(limit, most int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("%w: negative limit %d", domain.ErrInvalid, limit)
	case limit == 0:
		return min(DefaultLimit, most), nil
	}
	return min(limit, most), nil
}

// EncodeCursor returns the cursor of the page after a row: the sort's name
// and the row's values that sort compares (value, in the query's own
// format), opaque to clients (base64url), so that a cursor is only ever
// used with the sort it was made for.
func EncodeCursor(sort, value string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sort + ":" + value))
}

// DecodeCursor returns the value EncodeCursor was given, and false when
// cursor is not one EncodeCursor made for sort.
func DecodeCursor(cursor, sort string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", false
	}
	s, value, ok := strings.Cut(string(raw), ":")
	if !ok || s != sort {
		return "", false
	}
	return value, true
}
