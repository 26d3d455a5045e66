package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
)

func TestInterpretError(t *testing.T) {
	t.Parallel()
	other := errors.New("connection reset")
	cases := []struct {
		name string
		err  error
		want []error // every error the result must match
		same bool    // the result is err itself
	}{
		{name: "Nil"},
		{
			name: "StreamVersionTaken",
			err:  &pgconn.PgError{Code: "23505", ConstraintName: "events_stream_version_key", Message: "duplicate key value violates unique constraint"},
			want: []error{eventstore.ErrWrongExpectedVersion},
		},
		{
			name: "EventIDTaken",
			err:  &pgconn.PgError{Code: "23505", ConstraintName: "events_id_key"},
			want: []error{eventstore.ErrDuplicateEventID},
		},
		{
			name: "EventIDTakenWrapped",
			err:  fmt.Errorf("copy: %w", &pgconn.PgError{Code: "23505", ConstraintName: "events_id_key"}),
			want: []error{eventstore.ErrDuplicateEventID},
		},
		{
			name: "OtherUniqueViolation",
			err:  &pgconn.PgError{Code: "23505", ConstraintName: "events_pkey"},
			same: true,
		},
		{
			name: "Immutable",
			err:  &pgconn.PgError{Code: immutableCode, Message: "payesh: events are immutable"},
			want: []error{ErrImmutable},
		},
		{
			name: "ImmutableOnHead",
			err:  &pgconn.PgError{Code: immutableCode, Message: "payesh: the chain head cannot be deleted"},
			want: []error{ErrImmutable},
		},
		{
			name: "PlainRaiseIsNotImmutable",
			err:  &pgconn.PgError{Code: "P0001", Message: "payesh: events are immutable"},
			same: true,
		},
		{name: "Canceled", err: fmt.Errorf("query: %w", context.Canceled), want: []error{context.Canceled}, same: true},
		{name: "Deadline", err: context.DeadlineExceeded, want: []error{context.DeadlineExceeded}, same: true},
		{name: "NotAPgError", err: other, want: []error{other}, same: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := interpretError(c.err)
			if c.err == nil {
				require.NoError(t, got)
				return
			}
			require.Error(t, got)
			for _, w := range c.want {
				require.ErrorIs(t, got, w)
			}
			if c.same {
				require.True(t, got == c.err, "want the error itself, got %v", got)
			}
			if !errors.Is(c.err, context.Canceled) && !errors.Is(c.err, context.DeadlineExceeded) {
				// The driver's error stays reachable for logging.
				var pgErr *pgconn.PgError
				if errors.As(c.err, &pgErr) {
					require.ErrorAs(t, got, &pgErr)
				}
			}
			for _, sentinel := range []error{eventstore.ErrWrongExpectedVersion, eventstore.ErrDuplicateEventID, ErrImmutable} {
				if !containsErr(c.want, sentinel) {
					require.NotErrorIs(t, got, sentinel)
				}
			}
		})
	}
}

func containsErr(errs []error, target error) bool {
	for _, e := range errs {
		if e == target {
			return true
		}
	}
	return false
}
