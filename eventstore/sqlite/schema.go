package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/payesh/payesh/eventstore"
)

// immutableMessage is what the guard triggers raise; translateError turns it
// into ErrImmutable.
const immutableMessage = "payesh: events are immutable"

// migrations are applied in order, each in its own write transaction, and
// recorded in PRAGMA user_version, so Open is idempotent and safe to run from
// several processes at once (BEGIN IMMEDIATE serialises them). Never edit a
// migration that has shipped; append a new one.
var migrations = []string{
	// 1: the log, the chain head and the guards.
	`
CREATE TABLE IF NOT EXISTS events (
	position        INTEGER PRIMARY KEY CHECK (position > 0),
	stream          TEXT    NOT NULL,
	version         INTEGER NOT NULL CHECK (version > 0),
	id              TEXT    NOT NULL UNIQUE,
	type            TEXT    NOT NULL,
	data            BLOB    NOT NULL,
	occurred_at     INTEGER NOT NULL, -- unix microseconds, UTC
	recorded_at     INTEGER NOT NULL, -- unix microseconds, UTC
	backdate_reason TEXT    NOT NULL DEFAULT '',
	actor_id        TEXT    NOT NULL DEFAULT '',
	actor_role      TEXT    NOT NULL DEFAULT '',
	actor_org       TEXT    NOT NULL DEFAULT '',
	idempotency_key TEXT    NOT NULL DEFAULT '',
	correlation_id  TEXT    NOT NULL DEFAULT '',
	causation_id    TEXT    NOT NULL DEFAULT '',
	prev_hash       BLOB    NOT NULL CHECK (length(prev_hash) = 32),
	hash            BLOB    NOT NULL CHECK (length(hash) = 32),
	UNIQUE (stream, version)
) STRICT;

CREATE TABLE IF NOT EXISTS head (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	position INTEGER NOT NULL CHECK (position >= 0),
	hash     BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

INSERT OR IGNORE INTO head (id, position, hash) VALUES (1, 0, zeroblob(32));

CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE(ABORT, '` + immutableMessage + `');
END;

CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, '` + immutableMessage + `');
END;

CREATE TRIGGER IF NOT EXISTS head_no_delete BEFORE DELETE ON head
BEGIN
	SELECT RAISE(ABORT, '` + immutableMessage + `: the chain head cannot be deleted');
END;

CREATE TRIGGER IF NOT EXISTS head_forward_only BEFORE UPDATE ON head
WHEN NEW.position < OLD.position
BEGIN
	SELECT RAISE(ABORT, '` + immutableMessage + `: the chain head cannot move backwards');
END;
`,
	// 2: applicants' data keys, kept beside the log but outside it so a key
	// can be destroyed (crypto-shredding). A destroyed key's row stays with
	// key NULL so the ID is never issued again.
	`
CREATE TABLE IF NOT EXISTS applicant_keys (
	key_id     TEXT    NOT NULL PRIMARY KEY,
	key        BLOB    CHECK (key IS NULL OR length(key) = 32),
	created_at INTEGER NOT NULL,
	erased_at  INTEGER
) STRICT;
`,
}

// migrate brings the schema up to date.
func migrate(ctx context.Context, db *sql.DB) error {
	for i, m := range migrations {
		if err := applyMigration(ctx, db, i+1, m); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, version int, stmt string) (err error) {
	// db's transactions begin IMMEDIATE, so the version check below cannot
	// race another process applying the same migration.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return translateError(err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var current int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return translateError(err)
	}
	if current >= version {
		return tx.Rollback()
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return translateError(err)
	}
	// PRAGMA takes no parameters; version is a small integer we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		return translateError(err)
	}
	return translateError(tx.Commit())
}

// guardTriggers are the triggers that refuse edits; CheckGuards looks for
// each of them.
var guardTriggers = []string{"events_no_update", "events_no_delete", "head_no_delete", "head_forward_only"}

// CheckGuards implements eventstore.Guarded. Migrations run once per file
// (see user_version), so a trigger dropped after that stays dropped and is
// reported here rather than silently re-created.
func (s *Store) CheckGuards(ctx context.Context) error {
	rctx, err := s.readCtx(ctx)
	if err != nil {
		return err
	}
	rows, err := s.read.QueryContext(rctx, `SELECT name FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		return s.readError(err)
	}
	defer rows.Close()
	present := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return s.readError(err)
		}
		present[name] = true
	}
	if err := rows.Err(); err != nil {
		return s.readError(err)
	}
	var missing []string
	for _, g := range guardTriggers {
		if !present[g] {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		return &eventstore.GuardError{Missing: missing}
	}
	return nil
}
