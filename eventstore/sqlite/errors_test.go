package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
)

// fakeCoded has the shape of *sqlite.Error, whose fields are unexported.
type fakeCoded struct {
	msg  string
	code int
}

func (e *fakeCoded) Error() string { return e.msg }
func (e *fakeCoded) Code() int     { return e.code }

func TestTranslateError(t *testing.T) {
	other := errors.New("disk on fire")
	cases := []struct {
		name string
		in   error
		is   error // nil: translateError(nil) must be nil
		not  []error
	}{
		{"Nil", nil, nil, nil},
		{"Canceled", fmt.Errorf("query: %w", context.Canceled), context.Canceled, nil},
		{"Deadline", context.DeadlineExceeded, context.DeadlineExceeded, nil},
		{"StreamVersionClash", &fakeCoded{"constraint failed: UNIQUE constraint failed: events.stream, events.version (2067)", 2067},
			eventstore.ErrWrongExpectedVersion, []error{eventstore.ErrDuplicateEventID}},
		{"DuplicateID", &fakeCoded{"constraint failed: UNIQUE constraint failed: events.id (2067)", 2067},
			eventstore.ErrDuplicateEventID, []error{eventstore.ErrWrongExpectedVersion}},
		{"Immutable", &fakeCoded{"constraint failed: payesh: events are immutable (1811)", 1811}, ErrImmutable, nil},
		{"OtherTrigger", &fakeCoded{"constraint failed: something else (1811)", 1811}, nil, []error{ErrImmutable}},
		{"Busy", &fakeCoded{"database is locked (5) (SQLITE_BUSY)", 5}, ErrBusy, nil},
		{"BusySnapshot", &fakeCoded{"database is locked (517)", 517}, ErrBusy, nil},
		{"Locked", &fakeCoded{"database table is locked (6)", 6}, ErrBusy, nil},
		{"OtherUnique", &fakeCoded{"constraint failed: UNIQUE constraint failed: other.x (2067)", 2067},
			nil, []error{eventstore.ErrDuplicateEventID, eventstore.ErrWrongExpectedVersion}},
		{"Closed", errors.New("sql: database is closed"), eventstore.ErrClosed, nil},
		{"Other", other, other, []error{ErrBusy, ErrImmutable}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := translateError(c.in)
			if c.in == nil {
				require.NoError(t, got)
				return
			}
			require.Error(t, got)
			if c.is != nil {
				require.ErrorIs(t, got, c.is)
			}
			for _, n := range c.not {
				require.NotErrorIs(t, got, n)
			}
			// The driver's error stays inspectable.
			require.ErrorIs(t, got, c.in)
		})
	}
}

// TestTranslateRealErrors checks translateError against what the driver
// really returns, so a change in its messages or codes shows up here.
func TestTranslateRealErrors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "payesh.db")
	st := openStore(t, Config{Path: path})
	db := st.WriteDB()
	insert := func(position int64, stream string, version int64, id string) error {
		zero := make([]byte, 32)
		_, err := db.ExecContext(ctx, `INSERT INTO events (position, stream, version, id, type, data, occurred_at, recorded_at, prev_hash, hash)
			VALUES (?, ?, ?, ?, 't', x'', 0, 0, ?, ?)`, position, stream, version, id, zero, zero)
		return translateError(err)
	}
	require.NoError(t, insert(1, "s", 1, "id-1"))

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })

	cases := []struct {
		name string
		run  func() error
		is   error
	}{
		{"StreamVersion", func() error { return insert(2, "s", 1, "id-2") }, eventstore.ErrWrongExpectedVersion},
		{"ID", func() error { return insert(2, "s", 2, "id-1") }, eventstore.ErrDuplicateEventID},
		{"Update", func() error {
			_, err := db.ExecContext(ctx, `UPDATE events SET type = 'x'`)
			return translateError(err)
		}, ErrImmutable},
		{"Delete", func() error {
			_, err := db.ExecContext(ctx, `DELETE FROM events`)
			return translateError(err)
		}, ErrImmutable},
		{"Busy", func() error {
			tx, err := db.BeginTx(ctx, nil) // holds the write lock
			require.NoError(t, err)
			defer func() { _ = tx.Rollback() }()
			_, err = other.BeginTx(ctx, nil)
			return translateError(err)
		}, ErrBusy},
		{"Canceled", func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := st.DB().QueryContext(cctx, `SELECT 1`)
			return translateError(err)
		}, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorIs(t, c.run(), c.is)
		})
	}
}
