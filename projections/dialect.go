package projections

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Dialect is everything that differs between the SQL of the two backends
// that hold read models. Projectors write one SQL text, with ? placeholders
// and the portable subset both engines share (INSERT ... ON CONFLICT (...)
// DO UPDATE with excluded.*, row values, ALTER TABLE ... RENAME TO inside a
// transaction), and ask the Dialect for the few pieces that differ: column
// types, table options, list parameters and row locks. Tx rebinds the
// placeholders.
//
// Dialect values are comparable and safe for concurrent use.
type Dialect struct {
	name     string
	postgres bool
}

// The two dialects.
var (
	// SQLite is modernc.org/sqlite: STRICT, WITHOUT ROWID tables, ?
	// placeholders, list parameters as JSON arrays through json_each.
	SQLite = Dialect{name: "sqlite"}
	// Postgres is PostgreSQL through pgx's database/sql driver: $n
	// placeholders, BIGINT, byte-order ("C") collation, list parameters as
	// text arrays.
	Postgres = Dialect{name: "postgres", postgres: true}
)

// Name returns "sqlite" or "postgres".
func (d Dialect) Name() string { return d.name }

// IsPostgres reports whether d is Postgres.
func (d Dialect) IsPostgres() bool { return d.postgres }

// Int is the column type of every integer: amounts in rials and positions
// need 64 bits. SQLite's INTEGER is 64-bit and the only integer type a
// STRICT table accepts.
func (d Dialect) Int() string {
	if d.postgres {
		return "BIGINT"
	}
	return "INTEGER"
}

// Text is the column type of identifiers and labels. PostgreSQL compares
// them byte by byte ("C" collation), as SQLite does, so an ORDER BY and a
// keyset cursor give the same order on both.
func (d Dialect) Text() string {
	if d.postgres {
		return `TEXT COLLATE "C"`
	}
	return "TEXT"
}

// Blob is the column type of raw bytes.
func (d Dialect) Blob() string {
	if d.postgres {
		return "BYTEA"
	}
	return "BLOB"
}

// TableOptions ends a CREATE TABLE whose primary key is its natural key: on
// SQLite the table is STRICT (types enforced) and clustered on the key
// (WITHOUT ROWID); PostgreSQL needs nothing.
func (d Dialect) TableOptions() string {
	if d.postgres {
		return ""
	}
	return " STRICT, WITHOUT ROWID"
}

// Sum returns the sum of an integer expression over a group as a 64-bit
// integer, 0 over no row: PostgreSQL's SUM of a BIGINT is a NUMERIC, which
// would scan as text.
func (d Dialect) Sum(expr string) string {
	return "CAST(COALESCE(SUM(" + expr + "), 0) AS " + d.Int() + ")"
}

// In returns a condition "column is one of the values of one parameter",
// for use with List: one statement text whatever the number of values, so
// statement caches stay small.
func (d Dialect) In(column string) string {
	if d.postgres {
		return column + " = ANY(?)"
	}
	return column + " IN (SELECT value FROM json_each(?))"
}

// List returns the parameter for In.
func (d Dialect) List(values []string) any {
	if d.postgres {
		if values == nil {
			values = []string{}
		}
		return values
	}
	if len(values) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(values) // a []string always marshals
	return string(b)
}

// ForUpdate ends a SELECT that must lock the rows it reads until the
// transaction ends. SQLite's write transactions already exclude each other
// (BEGIN IMMEDIATE), so it needs nothing.
func (d Dialect) ForUpdate() string {
	if d.postgres {
		return " FOR UPDATE"
	}
	return ""
}

// TableExists returns a query with one parameter (a table name) that yields
// a row when the table exists in the read models' schema.
func (d Dialect) TableExists() string {
	if d.postgres {
		return "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
	}
	return "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
}

// Rebind turns ? placeholders into PostgreSQL's $1, $2, ...; SQLite takes
// the text as it is. Question marks inside quoted literals, quoted
// identifiers and comments are left alone.
func (d Dialect) Rebind(query string) string {
	if !d.postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch c {
		case '\'', '"':
			j := i + 1
			for j < len(query) && query[j] != c {
				j++
			}
			b.WriteString(query[i:min(j+1, len(query))])
			i = j
		case '-':
			if i+1 < len(query) && query[i+1] == '-' {
				j := strings.IndexByte(query[i:], '\n')
				if j < 0 {
					j = len(query) - i
				}
				b.WriteString(query[i : i+j])
				i += j - 1
				continue
			}
			b.WriteByte(c)
		case '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
