package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/payesh/payesh/eventstore"
)

// ErrImmutable is matched by the error PostgreSQL raises when something tries
// to UPDATE, DELETE or TRUNCATE stored events, or to delete the chain head.
// The store itself never does; seeing it means someone is editing the log.
var ErrImmutable = errors.New("postgres: events are immutable")

// immutableCode is the SQLSTATE the guard triggers raise (class "PY" is ours;
// PostgreSQL reserves no class starting with P other than P0).
const immutableCode = "PY001"

// Constraint names the schema gives explicitly, so errors can be recognised.
const (
	constraintStreamVersion = "events_stream_version_key"
	constraintID            = "events_id_key"
)

// interpretError turns a pgx error into the error callers branch on. It is the
// only place that knows PostgreSQL's error codes. The driver error stays in
// the chain (errors.As still finds the *pgconn.PgError).
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch {
	case pgErr.Code == "23505" && pgErr.ConstraintName == constraintStreamVersion:
		// Appends check versions under the head lock, so this only
		// happens if something wrote events without taking it.
		return fmt.Errorf("%w: %w", eventstore.ErrWrongExpectedVersion, err)
	case pgErr.Code == "23505" && pgErr.ConstraintName == constraintID:
		return fmt.Errorf("%w: %w", eventstore.ErrDuplicateEventID, err)
	case pgErr.Code == immutableCode:
		return fmt.Errorf("%w: %w", ErrImmutable, err)
	}
	return err
}
