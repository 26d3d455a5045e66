package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/payesh/payesh/eventstore"
)

// batchBackend gives the group committer its transactions.
type batchBackend struct{ s *Store }

func (b batchBackend) Begin(ctx context.Context) (eventstore.BatchTx, error) {
	// The write pool's transactions begin IMMEDIATE, so by the time BeginTx
	// returns this connection holds the file's write lock: no other
	// connection, in this process or another, can append until Commit or
	// Rollback. It waits up to busyTimeout for another writer to finish.
	tx, err := b.s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, translateError(err)
	}
	return &batchTx{tx: tx, inserts: &b.s.inserts}, nil
}

type batchTx struct {
	tx      *sql.Tx
	inserts *insertStatements
}

// Prepare implements eventstore.BatchTx. SQLite runs in-process, so the three
// reads cost no round trips and stay separate statements.
func (t *batchTx) Prepare(ctx context.Context, ids, streams []string) (eventstore.Head, map[string]eventstore.Event, map[string]uint64, error) {
	head, err := t.lockHead(ctx)
	if err != nil {
		return eventstore.Head{}, nil, nil, err
	}
	stored, err := t.storedIDs(ctx, ids)
	if err != nil {
		return eventstore.Head{}, nil, nil, err
	}
	versions, err := t.streamVersions(ctx, streams)
	if err != nil {
		return eventstore.Head{}, nil, nil, err
	}
	return head, stored, versions, nil
}

// lockHead reads the chain head. The lock itself was taken by BEGIN
// IMMEDIATE, and a write transaction in WAL mode always reads the newest
// committed state, so the head read here is current.
func (t *batchTx) lockHead(ctx context.Context) (eventstore.Head, error) {
	return readHead(ctx, t.tx)
}

// inChunk bounds the parameters of one IN list, far below SQLite's limit.
const inChunk = 500

// StoredIDs returns the stored events among ids. Only the fields
// CheckDuplicate needs (position, stream, version, id) are filled in.
func (t *batchTx) storedIDs(ctx context.Context, ids []string) (map[string]eventstore.Event, error) {
	found := make(map[string]eventstore.Event)
	for start := 0; start < len(ids); start += inChunk {
		chunk := ids[start:min(start+inChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := t.tx.QueryContext(ctx,
			`SELECT position, stream, version, id FROM events WHERE id IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`)`,
			args...)
		if err != nil {
			return nil, translateError(err)
		}
		for rows.Next() {
			var (
				e            eventstore.Event
				pos, version int64
			)
			if err := rows.Scan(&pos, &e.Stream, &version, &e.ID); err != nil {
				rows.Close()
				return nil, translateError(err)
			}
			e.Position, e.Version = uint64(pos), uint64(version)
			found[e.ID] = e
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, translateError(err)
		}
		rows.Close()
	}
	return found, nil
}

// StreamVersions returns the current version of each present stream. Each
// stream's version is one seek to the end of its range of the
// (stream, version) index, however long the stream.
func (t *batchTx) streamVersions(ctx context.Context, streams []string) (map[string]uint64, error) {
	seen := make(map[string]struct{}, len(streams))
	unique := make([]string, 0, len(streams))
	for _, s := range streams {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			unique = append(unique, s)
		}
	}
	versions := make(map[string]uint64, len(unique))
	for start := 0; start < len(unique); start += inChunk {
		chunk := unique[start:min(start+inChunk, len(unique))]
		args := make([]any, len(chunk))
		for i, s := range chunk {
			args[i] = s
		}
		rows, err := t.tx.QueryContext(ctx,
			`SELECT column1, (SELECT version FROM events WHERE stream = column1 ORDER BY version DESC LIMIT 1)
			 FROM (VALUES (?)`+strings.Repeat(`, (?)`, len(chunk)-1)+`)`,
			args...)
		if err != nil {
			return nil, translateError(err)
		}
		for rows.Next() {
			var (
				stream  string
				version sql.NullInt64
			)
			if err := rows.Scan(&stream, &version); err != nil {
				rows.Close()
				return nil, translateError(err)
			}
			if version.Valid {
				versions[stream] = uint64(version.Int64)
			}
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, translateError(err)
		}
		rows.Close()
	}
	return versions, nil
}

// Insert writes events with multi-row INSERTs of up to insertRows rows and
// moves the head, all in the open transaction.
func (t *batchTx) Insert(ctx context.Context, events []eventstore.Event, head eventstore.Head) error {
	args := make([]any, 0, min(len(events), insertRows)*eventColumnCount)
	for start := 0; start < len(events); start += insertRows {
		chunk := events[start:min(start+insertRows, len(events))]
		args = args[:0]
		for i := range chunk {
			args = appendEventArgs(args, &chunk[i])
		}
		if _, err := t.tx.ExecContext(ctx, t.inserts.sql(len(chunk)), args...); err != nil {
			return translateError(err)
		}
	}
	if _, err := t.tx.ExecContext(ctx, `UPDATE head SET position = ?, hash = ? WHERE id = 1`,
		int64(head.Position), head.Hash[:]); err != nil {
		return translateError(err)
	}
	return nil
}

func (t *batchTx) Commit(context.Context) error   { return translateError(t.tx.Commit()) }
func (t *batchTx) Rollback(context.Context) error { return translateError(t.tx.Rollback()) }

func appendEventArgs(args []any, e *eventstore.Event) []any {
	data := e.Data
	if data == nil {
		data = []byte{} // the driver binds a nil slice as NULL
	}
	return append(args,
		int64(e.Position), e.Stream, int64(e.Version), e.ID, e.Type, data,
		e.OccurredAt.UnixMicro(), e.RecordedAt.UnixMicro(),
		e.BackdateReason, e.Actor.ID, e.Actor.Role, e.Actor.Org,
		e.IdempotencyKey, e.CorrelationID, e.CausationID,
		e.PrevHash[:], e.Hash[:])
}

// insertRows is the most rows one INSERT statement carries. Measured with
// BenchmarkInsertShape (batches of 32 and 128 events): one row per statement
// is about 25% slower than 16 or 32, and 64 gains nothing more, because the
// per-statement compile (see insertStatements) is amortised by then.
var insertRows = 32

// insertStatements caches the INSERT text for each row count. modernc.org/
// sqlite compiles a statement's SQL on every execution, even through
// *sql.Stmt (its Prepare only copies the text), so what saves time is fewer,
// larger statements per batch, not preparing them; the cache only saves
// rebuilding the text. Only the committer goroutine uses it.
type insertStatements struct {
	texts map[int]string
}

func (c *insertStatements) sql(rows int) string {
	if q, ok := c.texts[rows]; ok {
		return q
	}
	if c.texts == nil {
		c.texts = make(map[int]string)
	}
	row := `(?` + strings.Repeat(`, ?`, eventColumnCount-1) + `)`
	q := `INSERT INTO events (` + eventColumns + `) VALUES ` + row + strings.Repeat(`, `+row, rows-1)
	c.texts[rows] = q
	return q
}
