// Package projectionstest runs the read-model tests against both backends
// (a SQLite file and a PostgreSQL schema) and builds realistic histories
// through the real command path (ledger.Service).
package projectionstest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/internal/pgtest"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
)

// Env is an event store and the read-model database beside it.
type Env struct {
	Store eventstore.Store
	DB    *projections.DB
	Vault applicant.Vault

	open func(ctx context.Context) (eventstore.Store, applicant.Vault, error)
}

// Backend opens fresh Envs of one kind.
type Backend struct {
	Name string
	Open func(t testing.TB) *Env
}

// Backends are SQLite (a file in the test's temporary directory) and
// PostgreSQL (a schema of its own, see pgtest; skipped when no server
// answers, unless CI requires one).
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Open: func(t testing.TB) *Env {
			path := filepath.Join(t.TempDir(), "payesh.db")
			return open(t, func(ctx context.Context) (eventstore.Store, applicant.Vault, error) {
				st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Synchronous: "NORMAL"})
				if err != nil {
					return nil, nil, err
				}
				return st, st.Vault(), nil
			})
		}},
		{Name: "postgres", Open: func(t testing.TB) *Env {
			url, sch := pgtest.Schema(t)
			return open(t, func(ctx context.Context) (eventstore.Store, applicant.Vault, error) {
				st, err := postgres.Open(ctx, postgres.Config{URL: url, Schema: sch, MaxConns: 8})
				if err != nil {
					return nil, nil, err
				}
				return st, st.Vault(), nil
			})
		}},
	}
}

// ForEach runs f as a parallel subtest per backend.
func ForEach(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// NewEnv returns an Env whose store opener gives the store and its vault;
// Reopen and Another call it again.
func NewEnv(t testing.TB, opener func(ctx context.Context) (eventstore.Store, applicant.Vault, error)) *Env {
	t.Helper()
	return open(t, opener)
}

func open(t testing.TB, opener func(ctx context.Context) (eventstore.Store, applicant.Vault, error)) *Env {
	t.Helper()
	e := &Env{open: opener}
	e.Reopen(t)
	t.Cleanup(e.close)
	return e
}

func (e *Env) close() {
	if e.DB != nil {
		_ = e.DB.Close()
	}
	if e.Store != nil {
		_ = e.Store.Close()
	}
	e.DB, e.Store = nil, nil
}

// Reopen closes the store and opens it again, as a restarted process would.
func (e *Env) Reopen(t testing.TB) {
	t.Helper()
	e.close()
	st, vault, err := e.open(context.Background())
	require.NoError(t, err)
	db, err := projections.OpenDB(st)
	require.NoError(t, err)
	e.Store, e.DB, e.Vault = st, db, vault
}

// Another opens a second Env on the same database, as another process
// would: its own store and connections.
func (e *Env) Another(t testing.TB) *Env {
	t.Helper()
	return open(t, e.open)
}

// Service returns a command service over the Env's store.
func (e *Env) Service(t testing.TB) *ledger.Service {
	t.Helper()
	svc, err := ledger.NewService(ledger.New(e.Store, schema.Registry(), ledger.HotStreams()), e.Vault, bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	require.NoError(t, svc.EnsureReference(context.Background(), ledger.Meta{Actor: Ministry}))
	return svc
}

// Head returns the log's head position.
func (e *Env) Head(t testing.TB) uint64 {
	t.Helper()
	h, err := e.Store.Head(context.Background())
	require.NoError(t, err)
	return h.Position
}

// Dump returns every row of table, ordered by the given columns, one
// string per row with every column rendered exactly (NULL apart from
// empty and zero), for byte-for-byte comparisons.
func Dump(t testing.TB, db *projections.DB, table string, orderBy ...string) []string {
	t.Helper()
	rows, err := db.Read.QueryContext(context.Background(), "SELECT * FROM "+table+" ORDER BY "+strings.Join(orderBy, ", "))
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			switch v := v.(type) {
			case nil:
				b.WriteString("NULL")
			case []byte:
				fmt.Fprintf(&b, "%q", v)
			case time.Time:
				b.WriteString(v.UTC().Format(time.RFC3339Nano))
			default:
				fmt.Fprintf(&b, "%T:%v", v, v)
			}
		}
		out = append(out, b.String())
	}
	require.NoError(t, rows.Err())
	return out
}

// TableExists reports whether a table exists in the read models' schema.
func TableExists(t testing.TB, db *projections.DB, table string) bool {
	t.Helper()
	var one int
	err := db.Read.QueryRowContext(context.Background(), db.Dialect.Rebind(db.Dialect.TableExists()), table).Scan(&one)
	if err == sql.ErrNoRows {
		return false
	}
	require.NoError(t, err)
	return true
}

// DumpAll dumps every table of the projectors' read models, rows ordered
// by every column, keyed by table: what "equal to a rebuild" compares. A
// table with no rows fails the test, since a comparison of empty tables
// would prove nothing of that read model.
func DumpAll(t testing.TB, db *projections.DB, projectors ...projections.Projector) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range projectors {
		for _, table := range p.Tables() {
			rows, err := db.Read.QueryContext(context.Background(), "SELECT * FROM "+table+" LIMIT 0")
			require.NoError(t, err)
			cols, err := rows.Columns()
			require.NoError(t, err)
			require.NoError(t, rows.Close())
			order := make([]string, len(cols))
			for i := range cols {
				order[i] = fmt.Sprint(i + 1)
			}
			dump := Dump(t, db, table, order...)
			require.NotEmpty(t, dump, "%s is empty: the scenario does not exercise it", table)
			out[table] = dump
		}
	}
	return out
}
