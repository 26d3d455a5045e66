package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the SQLite baselines' driver, the store's own

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
)

// backend is a database a scenario runs on.
type backend struct {
	name  string // for the report: "SQLite", "PostgreSQL"
	short string // for scenario names: "sqlite", "pg"
}

var (
	backendSQLite   = backend{"SQLite", "sqlite"}
	backendPostgres = backend{"PostgreSQL", "pg"}
)

// SchemaPrefix starts the name of every schema a run creates; the run ID
// ends it (see SchemaName).
const SchemaPrefix = "bench_"

// SchemaName is the name of the run's schema for label.
func (env *Env) SchemaName(label string) string {
	label = strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(strings.ToLower(label))
	return SchemaPrefix + label + "_" + env.RunID
}

// connect opens one plain connection to the server.
func (env *Env) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, env.PG)
	if err != nil {
		return nil, fmt.Errorf("bench: PostgreSQL at %s: %w", redact(env.PG), err)
	}
	return conn, nil
}

// freshSchema creates the run's schema for label, dropping any left over,
// and returns its name and a function dropping it.
func (env *Env) freshSchema(ctx context.Context, label string) (string, func(), error) {
	name := env.SchemaName(label)
	conn, err := env.connect(ctx)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident+" CASCADE; CREATE SCHEMA "+ident); err != nil {
		return "", nil, fmt.Errorf("bench: create schema %s: %w", name, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := DropSchemas(ctx, env.PG, []string{name}); err != nil {
			env.logf("warning: %v", err)
		}
	}
	return name, drop, nil
}

// DropSchemas drops the named schemas and everything in them.
func DropSchemas(ctx context.Context, pgURL string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return fmt.Errorf("bench: drop schemas: %w", err)
	}
	defer conn.Close(context.Background())
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{n}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("bench: drop schema %s: %w", n, err)
		}
	}
	return nil
}

// RunSchemas lists the schemas a run created (by its run ID).
func RunSchemas(ctx context.Context, pgURL, runID string) ([]string, error) {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace
WHERE starts_with(nspname, $1) AND right(nspname, length($2)) = $2 ORDER BY 1`, SchemaPrefix, "_"+runID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// openPG opens a Payesh store on the run's schema.
func (env *Env) openPG(ctx context.Context, schema string) (*postgres.Store, error) {
	return postgres.Open(ctx, postgres.Config{URL: env.PG, Schema: schema})
}

// pool opens a pgx pool whose connections use schema.
func (env *Env) pool(ctx context.Context, schema string, conns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(env.PG)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns, cfg.MinConns = int32(conns), int32(conns)
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	cfg.ConnConfig.RuntimeParams["application_name"] = "payesh-bench"
	return pgxpool.NewWithConfig(ctx, cfg)
}

// sqlitePath returns a fresh path for a SQLite file in the work directory,
// removing what a previous attempt left there.
func (env *Env) sqlitePath(name string) (string, func(), error) {
	path := filepath.Join(env.Work, name+".db")
	remove := func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
	}
	remove()
	return path, remove, os.MkdirAll(env.Work, 0o750)
}

// openSQLite opens a Payesh store at path with the default configuration.
func openSQLite(ctx context.Context, path string) (*sqlite.Store, error) {
	return sqlite.Open(ctx, sqlite.Config{Path: path})
}

// plainSQLite opens a raw SQLite database with the store's settings (WAL,
// synchronous FULL, a busy timeout, write transactions BEGIN IMMEDIATE) on
// one connection, as the store's writer has.
func plainSQLite(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// The baselines' tables have the store's columns and the store's unique
// indexes (position, id, stream+version), and nothing else: no triggers,
// no checks, no chain-head row.
//
// plainPGTable's positions come from an identity column when identity is
// set (the append baseline, whose writers do not coordinate), and are given
// otherwise (the bulk baseline copies Payesh's rows).
func plainPGTable(identity bool) string {
	position := "BIGINT PRIMARY KEY"
	if identity {
		position = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	return `CREATE TABLE plain (
	position        ` + position + `,
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
)`
}

const plainSQLiteTable = `CREATE TABLE plain (
	position        INTEGER PRIMARY KEY,
	stream          TEXT    NOT NULL,
	version         INTEGER NOT NULL,
	id              TEXT    NOT NULL UNIQUE,
	type            TEXT    NOT NULL,
	data            BLOB    NOT NULL,
	occurred_at     INTEGER NOT NULL,
	recorded_at     INTEGER NOT NULL,
	backdate_reason TEXT    NOT NULL DEFAULT '',
	actor_id        TEXT    NOT NULL DEFAULT '',
	actor_role      TEXT    NOT NULL DEFAULT '',
	actor_org       TEXT    NOT NULL DEFAULT '',
	idempotency_key TEXT    NOT NULL DEFAULT '',
	correlation_id  TEXT    NOT NULL DEFAULT '',
	causation_id    TEXT    NOT NULL DEFAULT '',
	prev_hash       BLOB    NOT NULL,
	hash            BLOB    NOT NULL,
	UNIQUE (stream, version)
) STRICT`

// columns are the events' columns, in the order row writes them.
var columns = []string{
	"position", "stream", "version", "id", "type", "data", "occurred_at", "recorded_at",
	"backdate_reason", "actor_id", "actor_role", "actor_org",
	"idempotency_key", "correlation_id", "causation_id", "prev_hash", "hash",
}

// pgRow lays a stored event out as columns' values for pgx.
func pgRow(e *eventstore.Event) []any {
	return []any{
		int64(e.Position), e.Stream, int64(e.Version), e.ID, e.Type, e.Data,
		e.OccurredAt, e.RecordedAt, e.BackdateReason,
		e.Actor.ID, e.Actor.Role, e.Actor.Org,
		e.IdempotencyKey, e.CorrelationID, e.CausationID,
		e.PrevHash[:], e.Hash[:],
	}
}

// sqliteRow is pgRow for SQLite, which stores times as microseconds.
func sqliteRow(e *eventstore.Event) []any {
	return []any{
		int64(e.Position), e.Stream, int64(e.Version), e.ID, e.Type, e.Data,
		e.OccurredAt.UnixMicro(), e.RecordedAt.UnixMicro(), e.BackdateReason,
		e.Actor.ID, e.Actor.Role, e.Actor.Org,
		e.IdempotencyKey, e.CorrelationID, e.CausationID,
		e.PrevHash[:], e.Hash[:],
	}
}

// redact hides a password in a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
