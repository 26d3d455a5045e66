package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payesh/payesh/eventstore"
)

// names holds the schema-qualified, quoted identifiers the store's SQL uses.
// Every statement names its tables in full, so the store works whatever
// search_path a pooled connection ends up with.
type names struct {
	schema  string // unquoted, as configured
	qschema string // quoted
	events  string // "schema"."events"
	head    string // "schema"."head"
	guard   string // "schema"."payesh_refuse_change"
	channel string // NOTIFY channel, unquoted
}

func newNames(schema string) names {
	q := func(parts ...string) string { return pgx.Identifier(parts).Sanitize() }
	return names{
		schema:  schema,
		qschema: q(schema),
		events:  q(schema, "events"),
		head:    q(schema, "head"),
		guard:   q(schema, "payesh_refuse_change"),
		channel: channelName(schema),
	}
}

// channelName derives the NOTIFY channel from the schema, so stores on
// different schemas of one database (parallel tests, several tenants) do not
// wake each other. Channel names are identifiers, limited to 63 bytes: a
// schema name too long to fit is replaced by a digest of it.
func channelName(schema string) string {
	const prefix = "payesh_events."
	if len(prefix)+len(schema) <= maxIdentifierLen {
		return prefix + schema
	}
	sum := sha256.Sum256([]byte(schema))
	return prefix + hex.EncodeToString(sum[:16])
}

// Guard triggers, created with the schema and checked by CheckGuards.
var triggers = []struct{ name, table, def string }{
	{"events_immutable", "events", "BEFORE UPDATE OR DELETE ON %[1]s FOR EACH ROW EXECUTE FUNCTION %[2]s('payesh: events are immutable')"},
	{"events_no_truncate", "events", "BEFORE TRUNCATE ON %[1]s FOR EACH STATEMENT EXECUTE FUNCTION %[2]s('payesh: events are immutable')"},
	{"head_no_delete", "head", "BEFORE DELETE ON %[1]s FOR EACH ROW EXECUTE FUNCTION %[2]s('payesh: the chain head cannot be deleted')"},
	{"head_no_truncate", "head", "BEFORE TRUNCATE ON %[1]s FOR EACH STATEMENT EXECUTE FUNCTION %[2]s('payesh: the chain head cannot be deleted')"},
}

// schemaSQL creates everything idempotently. The column types are chosen for
// the hash chain: data is BYTEA, not JSONB, because the payload is hashed and
// must come back byte for byte; TIMESTAMPTZ keeps microseconds, exactly what
// eventstore.Normalize leaves; stream, id and type use the "C" collation so
// comparisons (and prefix matches) are by bytes, like Go's.
func (n names) schemaSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, `
CREATE SCHEMA IF NOT EXISTS %[1]s;

CREATE TABLE IF NOT EXISTS %[2]s (
	position        BIGINT NOT NULL CONSTRAINT events_pkey PRIMARY KEY CONSTRAINT events_position_check CHECK (position > 0),
	stream          TEXT COLLATE "C" NOT NULL,
	version         BIGINT NOT NULL CONSTRAINT events_version_check CHECK (version > 0),
	id              TEXT COLLATE "C" NOT NULL CONSTRAINT events_id_key UNIQUE,
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
	prev_hash       BYTEA NOT NULL CONSTRAINT events_prev_hash_check CHECK (octet_length(prev_hash) = 32),
	hash            BYTEA NOT NULL CONSTRAINT events_hash_check CHECK (octet_length(hash) = 32),
	CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);

CREATE TABLE IF NOT EXISTS %[3]s (
	singleton BOOLEAN NOT NULL DEFAULT TRUE CONSTRAINT head_pkey PRIMARY KEY CONSTRAINT head_singleton_check CHECK (singleton),
	position  BIGINT NOT NULL CONSTRAINT head_position_check CHECK (position >= 0),
	hash      BYTEA NOT NULL CONSTRAINT head_hash_check CHECK (octet_length(hash) = 32)
);
INSERT INTO %[3]s (singleton, position, hash)
VALUES (TRUE, 0, decode(repeat('00', 32), 'hex'))
ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION %[4]s() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	RAISE EXCEPTION USING
		ERRCODE = '%[5]s',
		MESSAGE = TG_ARGV[0],
		DETAIL  = format('%%s on %%I.%%I refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME),
		HINT    = 'Corrections are new events; see payesh verify.';
END
$fn$;
`, n.qschema, n.events, n.head, n.guard, immutableCode)
	for _, tr := range triggers {
		table := n.events
		if tr.table == "head" {
			table = n.head
		}
		name := pgx.Identifier{tr.name}.Sanitize()
		// schemaSQL only runs on a fresh schema (see migrate), in the
		// same transaction as the tables, so they are never unguarded. The
		// DROP keeps the script re-runnable by hand; CREATE OR REPLACE
		// TRIGGER would need PostgreSQL 14.
		fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %s ON %s;\nCREATE TRIGGER %s %s;\n",
			name, table, name, fmt.Sprintf(tr.def, table, n.guard))
	}
	return b.String()
}

// migrate creates the schema when it is not there yet. It runs in one
// transaction holding an advisory lock derived from the schema name, so
// processes starting together take turns and the second finds the work done.
// An existing schema is left exactly as it is: in particular a guard trigger
// that was dropped is not quietly re-created, because its absence is
// evidence that CheckGuards and payesh verify must be able to report.
func migrate(ctx context.Context, pool *pgxpool.Pool, n names) error {
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('payesh.eventstore.migrate:' || $1, 0))", n.schema); err != nil {
			return fmt.Errorf("postgres: migration lock: %w", err)
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL`, n.events, n.head).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: inspect schema: %w", err)
		}
		if exists {
			return nil
		}
		if _, err := tx.Exec(ctx, n.schemaSQL()); err != nil {
			return fmt.Errorf("postgres: migrate schema %s: %w", n.qschema, err)
		}
		return nil
	})
}

// CheckGuards implements eventstore.Guarded: every guard trigger must exist
// and be enabled (ALTER TABLE ... DISABLE TRIGGER is as good as dropping it).
func (s *Store) CheckGuards(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `
SELECT tgname FROM pg_trigger
WHERE NOT tgisinternal AND tgenabled <> 'D'
  AND tgrelid IN (to_regclass($1), to_regclass($2))`, s.n.events, s.n.head)
	if err != nil {
		return interpretError(err)
	}
	present, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return interpretError(err)
	}
	var missing []string
	for _, tr := range triggers {
		if !slices.Contains(present, tr.name) {
			missing = append(missing, tr.name)
		}
	}
	if len(missing) > 0 {
		return &eventstore.GuardError{Missing: missing}
	}
	return nil
}
