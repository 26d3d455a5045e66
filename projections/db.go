package projections

import (
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
)

// DB is where read models live: the event store's own database (its SQLite
// file, or its PostgreSQL schema), through database/sql, so that projectors
// and queries are one code path whatever the backend.
type DB struct {
	// Write runs the projectors' transactions. For SQLite it is the store's
	// single write connection (transactions BEGIN IMMEDIATE), shared with
	// appends: the Engine keeps its transactions to one batch.
	Write *sql.DB
	// Read serves queries. For SQLite it is the store's read-only pool,
	// which in WAL mode reads beside the writer.
	Read    *sql.DB
	Dialect Dialect

	close func() error
}

// OpenDB returns the read-model database of a SQLite or PostgreSQL store.
// It borrows the store's connections: close it before the store.
func OpenDB(st eventstore.Store) (*DB, error) {
	switch s := st.(type) {
	case *sqlite.Store:
		return &DB{Write: s.WriteDB(), Read: s.DB(), Dialect: SQLite}, nil
	case *postgres.Store:
		// The pool's connections have the store's schema as search_path,
		// so read models land beside the log.
		db := stdlib.OpenDBFromPool(s.Pool())
		return &DB{Write: db, Read: db, Dialect: Postgres, close: db.Close}, nil
	}
	return nil, fmt.Errorf("projections: read models need a SQL event store (sqlite or postgres), not %T", st)
}

// Close releases what OpenDB opened; the store's own connections stay open.
func (db *DB) Close() error {
	if db.close == nil {
		return nil
	}
	return db.close()
}
