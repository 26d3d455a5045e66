package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/payesh/payesh/eventstore"
)

var (
	// ErrImmutable is returned when the database refuses to update or delete
	// a stored event (or the chain head): the guard triggers are in place.
	ErrImmutable = errors.New("sqlite: events are immutable")
	// ErrBusy is returned when the database stayed locked by another
	// connection or process for longer than the busy timeout. The operation
	// did not happen and may be retried.
	ErrBusy = errors.New("sqlite: database is locked by another writer")
)

// SQLite primary and extended result codes that translateError tells apart
// (https://www.sqlite.org/rescode.html). Extended result codes are on in the
// modernc driver.
const (
	codeBusy                 = 5
	codeLocked               = 6
	codeConstraint           = 19
	codeConstraintTrigger    = codeConstraint | 7<<8 // 1811
	codeConstraintPrimaryKey = codeConstraint | 6<<8 // 1555
	codeConstraintUnique     = codeConstraint | 8<<8 // 2067
)

// errDBClosed is database/sql's unexported error for a closed *sql.DB,
// matched by its text.
const errDBClosed = "sql: database is closed"

// coded is the part of *sqlite.Error (modernc.org/sqlite) translateError
// needs; an interface so the translation can be tested without a database.
type coded interface {
	error
	Code() int
}

// translateError turns driver errors into the errors callers branch on:
// eventstore's sentinels, ErrImmutable and ErrBusy, keeping the driver's
// error in the chain. Context errors pass through unchanged; anything else is
// wrapped with the package prefix. It is the only place that knows the
// driver's error shapes.
func translateError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err.Error() == errDBClosed {
		return fmt.Errorf("%w: %w", eventstore.ErrClosed, err)
	}
	var c coded
	if !errors.As(err, &c) {
		return fmt.Errorf("sqlite: %w", err)
	}
	msg := c.Error()
	switch code := c.Code(); {
	case code == codeConstraintUnique || code == codeConstraintPrimaryKey:
		switch {
		case strings.Contains(msg, "events.stream, events.version"):
			// The group committer checks versions under the write lock, so
			// this means a writer bypassed it; refuse like a version clash.
			return fmt.Errorf("%w: %w", eventstore.ErrWrongExpectedVersion, err)
		case strings.Contains(msg, "events.id"):
			return fmt.Errorf("%w: %w", eventstore.ErrDuplicateEventID, err)
		}
	case code == codeConstraintTrigger && strings.Contains(msg, immutableMessage):
		return fmt.Errorf("%w: %w", ErrImmutable, err)
	case code&0xff == codeBusy || code&0xff == codeLocked:
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return fmt.Errorf("sqlite: %w", err)
}
