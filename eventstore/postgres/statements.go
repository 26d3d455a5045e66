package postgres

import (
	"fmt"
	"strings"
)

// statements is the store's SQL, built once per store with its schema's
// quoted names. The texts are constant per store, so pgx's statement cache
// prepares each once per connection.
type statements struct {
	readStreamForwards  string
	readStreamBackwards string
	streamVersion       string
	readAll             string
	windowPage          string // ReadPage's window (see page.go)
	head                string

	lockHead       string
	storedIDs      string
	streamVersions string
	insertEvents   string
	moveHead       string
}

func newStatements(n names) statements {
	cols := strings.Join(eventColumns, ", ")
	var st statements
	st.readStreamForwards = fmt.Sprintf(
		`SELECT %s FROM %s WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`, cols, n.events)
	st.readStreamBackwards = fmt.Sprintf(
		`SELECT %s FROM %s WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`, cols, n.events)
	// max() without GROUP BY is answered from the end of the
	// (stream, version) index.
	st.streamVersion = fmt.Sprintf(`SELECT coalesce(max(version), 0) FROM %s WHERE stream = $1`, n.events)
	st.readAll = fmt.Sprintf(`SELECT %s FROM %s WHERE position > $1 ORDER BY position LIMIT $2`, cols, n.events)
	st.windowPage = windowPageSQL(n)
	st.head = fmt.Sprintf(`SELECT position, hash FROM %s`, n.head)

	st.lockHead = fmt.Sprintf(`SELECT position, hash FROM %s FOR UPDATE`, n.head)
	st.storedIDs = fmt.Sprintf(`SELECT %s FROM %s WHERE id = ANY($1::text[])`, cols, n.events)
	// One index probe per stream, from the top of (stream, version); a
	// GROUP BY max() would read every version of every stream.
	st.streamVersions = fmt.Sprintf(`
SELECT s.stream, v.version
FROM unnest($1::text[]) AS s(stream)
CROSS JOIN LATERAL (
	SELECT version FROM %s e WHERE e.stream = s.stream ORDER BY version DESC LIMIT 1
) v`, n.events)
	// The small-batch write path: one statement, arrays bound column by
	// column, so its text (and prepared plan) is the same for any count.
	st.insertEvents = fmt.Sprintf(`
INSERT INTO %s (%s)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bytea[],
	$7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[],
	$13::text[], $14::text[], $15::text[], $16::bytea[], $17::bytea[])`, n.events, cols)
	// Moving the head and announcing it is one statement: the NOTIFY is
	// delivered when (and only if) the transaction commits.
	st.moveHead = fmt.Sprintf(`
WITH h AS (UPDATE %s SET position = $1, hash = $2 RETURNING position)
SELECT pg_notify($3, position::text) FROM h`, n.head)
	return st
}
