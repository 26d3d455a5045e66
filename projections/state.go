package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The values of projection_state.status.
const (
	// StatusRunning: the live tables follow the log.
	StatusRunning = "running"
	// StatusRebuilding: a rebuild is filling the __next tables; the live
	// tables still serve queries (and still follow the log unless the
	// rebuild is for a new version).
	StatusRebuilding = "rebuilding"
	// StatusFailed: a batch kept failing; the projection stopped before
	// it, and last_error says why.
	StatusFailed = "failed"
)

// stateTable is the name of the checkpoint table, one row per projector.
const stateTable = "projection_state"

func stateDDL(d Dialect) string {
	return `CREATE TABLE IF NOT EXISTS ` + stateTable + ` (
	name            ` + d.Text() + ` NOT NULL PRIMARY KEY,
	version         ` + d.Int() + ` NOT NULL,
	generation      ` + d.Int() + ` NOT NULL,
	position        ` + d.Int() + ` NOT NULL CHECK (position >= 0),
	status          ` + d.Text() + ` NOT NULL,
	last_error      ` + d.Text() + ` NOT NULL DEFAULT '',
	updated_at      ` + d.Int() + ` NOT NULL, -- unix microseconds, UTC
	next_version    ` + d.Int() + ` NOT NULL DEFAULT 0, -- a rebuild in progress: the version it builds,
	next_generation ` + d.Int() + ` NOT NULL DEFAULT 0, -- the generation of its __next tables (0: none)
	next_position   ` + d.Int() + ` NOT NULL DEFAULT 0, -- how far it has replayed,
	next_finished   ` + d.Int() + ` NOT NULL DEFAULT 0  -- and 1 once its derived tables are computed (Finisher)
)` + d.TableOptions()
}

// state is one row of projection_state.
type state struct {
	Name           string
	Version        int
	Generation     int64
	Position       uint64
	Status         string
	LastError      string
	UpdatedAt      time.Time
	NextVersion    int
	NextGeneration int64
	NextPosition   uint64
	NextFinished   bool
}

const stateColumns = `name, version, generation, position, status, last_error, updated_at, next_version, next_generation, next_position, next_finished`

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func scanState(row *sql.Row) (state, bool, error) {
	var (
		s                        state
		pos, next, upd, finished int64
	)
	err := row.Scan(&s.Name, &s.Version, &s.Generation, &pos, &s.Status, &s.LastError, &upd, &s.NextVersion, &s.NextGeneration, &next, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	s.Position, s.NextPosition, s.NextFinished = uint64(pos), uint64(next), finished == 1
	s.UpdatedAt = time.UnixMicro(upd).UTC()
	return s, true, nil
}

// loadState reads a projector's row; lock takes the row lock (PostgreSQL)
// that serialises every writer of the projection, in any process.
func loadState(ctx context.Context, q queryer, d Dialect, name string, lock bool) (state, bool, error) {
	query := `SELECT ` + stateColumns + ` FROM ` + stateTable + ` WHERE name = ?`
	if lock {
		query += d.ForUpdate()
	}
	s, ok, err := scanState(q.QueryRowContext(ctx, d.Rebind(query), name))
	if err != nil {
		return state{}, false, fmt.Errorf("projections: read %s state: %w", name, err)
	}
	return s, ok, nil
}

// loadStates reads every row.
func loadStates(ctx context.Context, db *sql.DB) ([]state, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+stateColumns+` FROM `+stateTable+` ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []state
	for rows.Next() {
		var (
			s              state
			pos, next, upd int64
			finished       int64
		)
		if err := rows.Scan(&s.Name, &s.Version, &s.Generation, &pos, &s.Status, &s.LastError, &upd, &s.NextVersion, &s.NextGeneration, &next, &finished); err != nil {
			return nil, err
		}
		s.Position, s.NextPosition, s.NextFinished = uint64(pos), uint64(next), finished == 1
		s.UpdatedAt = time.UnixMicro(upd).UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

func insertState(ctx context.Context, tx *Tx, s state) error {
	var finished int64
	if s.NextFinished {
		finished = 1
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+stateTable+` (`+stateColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.Name, s.Version, s.Generation, int64(s.Position), s.Status, s.LastError, s.UpdatedAt.UnixMicro(),
		s.NextVersion, s.NextGeneration, int64(s.NextPosition), finished)
	if err != nil {
		return fmt.Errorf("projections: create %s state: %w", s.Name, err)
	}
	return nil
}

// isMissingTable reports whether err says a table does not exist: SQLSTATE
// 42P01 (undefined_table) on PostgreSQL, "no such table" on SQLite, whose
// errors carry only the generic SQLITE_ERROR code. A missing column or
// function is another error.
func isMissingTable(err error) bool {
	if err == nil {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "42P01"
	}
	return strings.Contains(err.Error(), "no such table")
}

// ensureStateTable creates projection_state if it is missing. On
// PostgreSQL, concurrent CREATE TABLE IF NOT EXISTS can collide on the
// table's type, so creators take turns on an advisory lock.
func ensureStateTable(ctx context.Context, db *DB) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projections: create %s: %w", stateTable, err)
	}
	defer func() { _ = tx.Rollback() }()
	if db.Dialect.IsPostgres() {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('payesh.projections.state'))`); err != nil {
			return fmt.Errorf("projections: create %s: %w", stateTable, err)
		}
	}
	if _, err := tx.ExecContext(ctx, stateDDL(db.Dialect)); err != nil {
		return fmt.Errorf("projections: create %s: %w", stateTable, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: create %s: %w", stateTable, err)
	}
	return nil
}

// tableExists reports whether a table exists in the read models' schema.
func tableExists(ctx context.Context, tx *Tx, name string) (bool, error) {
	var one int
	err := tx.QueryRow(ctx, tx.d.TableExists(), name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// lockRow serialises the transactions that may create a projector's row:
// before the row exists there is nothing for FOR UPDATE to lock, so on
// PostgreSQL they take a transaction-scoped advisory lock on the name.
// SQLite's write transactions are serial already.
func lockRow(ctx context.Context, tx *Tx, name string) error {
	if !tx.d.IsPostgres() {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('payesh.projections:' || ?))`, name)
	return err
}
