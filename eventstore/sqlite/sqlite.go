// Package sqlite is the embedded eventstore backend: the whole log in one
// SQLite file, no setup, no cgo (modernc.org/sqlite).
//
// Appends go through eventstore.GroupCommitter over a dedicated write
// connection whose transactions begin IMMEDIATE: that takes SQLite's write
// lock at once, so the chain head is locked against every other connection
// and every other process sharing the file for the whole transaction, and
// positions and hashes are handed out one transaction at a time. Reads use a
// separate pool; in WAL mode readers run beside the writer and each statement
// sees one committed snapshot, which is always a gap-free prefix of the log.
//
// Several processes may open the same file. A Store wakes its own subscribers
// as soon as it commits; appends made by another process are noticed by
// polling, every Config.Poll.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/internal/prefixset"
)

// busyTimeout is how long a connection waits for another's lock before
// failing with ErrBusy. Write transactions are short (one batch), so this is
// only reached when another process holds the file locked abnormally long.
const busyTimeout = 10 * time.Second

// Store is an eventstore.Store in one SQLite file. It is safe for concurrent
// use by many goroutines, and several Stores (in one or several processes)
// may share one file.
type Store struct {
	cfg     Config
	write   *sql.DB // one connection; transactions BEGIN IMMEDIATE
	read    *sql.DB // a pool; query_only
	gc      *eventstore.GroupCommitter
	wake    *eventstore.Signal
	inserts insertStatements
	// common remembers the prefix sets ReadPage reads by window.
	common prefixset.Common

	closed atomic.Bool
}

var _ eventstore.Store = (*Store)(nil)

// Open opens (creating if needed) the store at cfg.Path and brings its
// schema up to date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}
	// Create the file ourselves so it is private to its owner; SQLite gives
	// its -wal and -shm files the same permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: create database file: %w", err)
	}

	write, err := sql.Open("sqlite", dsn(path, cfg.Synchronous, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := setUp(ctx, write); err != nil {
		_ = write.Close()
		return nil, err
	}

	read, err := sql.Open("sqlite", dsn(path, cfg.Synchronous, true))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	conns := min(max(runtime.GOMAXPROCS(0), 4), 16)
	read.SetMaxOpenConns(conns)
	read.SetMaxIdleConns(conns)
	read.SetConnMaxIdleTime(0)
	if err := read.PingContext(ctx); err != nil {
		_ = read.Close()
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: open read pool: %w", translateError(err))
	}

	s := &Store{cfg: cfg, write: write, read: read, wake: eventstore.NewSignal()}
	s.gc = eventstore.NewGroupCommitter(batchBackend{s}, eventstore.GroupCommitConfig{
		MaxBatch:  cfg.MaxBatch,
		Committed: func(eventstore.Head) { s.wake.Broadcast() },
	})
	go s.gc.Run()
	return s, nil
}

// dsn builds the modernc.org/sqlite connection string: a file: URI whose
// _pragma parameters run on every new connection (busy_timeout first) and
// whose _txlock makes the writer's transactions BEGIN IMMEDIATE.
func dsn(path, synchronous string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+synchronous+")")
	if readOnly {
		// The read pool never writes; query_only turns a mistaken write
		// through DB() into an error instead of a lock fight with the writer.
		q.Add("_pragma", "query_only(1)")
		// Readers map the file rather than copying each page through a
		// read(2) and a private 2 MiB page cache: a read model of a
		// million rows is hundreds of MiB, and a query touching a few
		// hundred pages otherwise spends most of its time in system
		// calls. The mapping costs address space, not memory (the pages
		// are the kernel's page cache); pages written since the last
		// checkpoint are still read from the WAL.
		q.Add("_pragma", "mmap_size(1073741824)")
	} else {
		// journal_mode is persistent in the file; the writer sets it.
		q.Add("_pragma", "journal_mode(WAL)")
		// Keep the WAL from staying huge after a burst.
		q.Add("_pragma", "journal_size_limit(67108864)")
		q.Add("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	// url.URL renders "file:///abs"; SQLite accepts it. Paths are escaped, so
	// '?', '#' and '%' in file names are safe.
	return u.String()
}

// setUp checks the write connection, that WAL is in effect, and migrates.
func setUp(ctx context.Context, write *sql.DB) error {
	var mode string
	if err := write.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: %w", translateError(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: open: journal mode is %q, want wal (is the file on a filesystem without shared memory?)", mode)
	}
	return migrate(ctx, write)
}

// DB returns the read pool, for read models that query beside the log. Its
// connections are query_only.
func (s *Store) DB() *sql.DB { return s.read }

// WriteDB returns the single write connection, whose transactions begin
// IMMEDIATE (taking the file's write lock). Appends share it: keep its
// transactions short.
func (s *Store) WriteDB() *sql.DB { return s.write }

// Close stops the committer after the appends in flight, ends subscriptions
// and closes the database. It is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.gc.Close()       // answers or refuses every queued append before returning
	s.wake.Broadcast() // subscribers re-read, get ErrClosed and return
	return errors.Join(translateClose(s.read.Close()), translateClose(s.write.Close()))
}

func translateClose(err error) error {
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Append implements eventstore.Store. After Close the committer answers
// ErrClosed.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	return s.gc.Append(ctx, stream, expected, events)
}

// CommitStats reports how appends were batched into transactions.
func (s *Store) CommitStats() eventstore.CommitStats { return s.gc.Stats() }

// AppendMany implements eventstore.ManyAppender: the appends share the
// committer's transactions.
func (s *Store) AppendMany(ctx context.Context, appends []eventstore.StreamAppend) ([]eventstore.AppendResult, []error) {
	return s.gc.AppendMany(ctx, appends)
}

// Subscribe implements eventstore.Store. Appends through this Store wake the
// subscription at once; appends by other processes are seen within
// Config.Poll.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handler eventstore.Handler) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	return eventstore.PollSubscribe(ctx, s, after, filter, handler, eventstore.SubscribeConfig{
		Wake: s.wake,
		Poll: s.cfg.Poll,
	})
}

// readCtx is the context a read runs its query under. A query on the read
// pool interrupted by cancellation can leave its pooled connection inside an
// unfinished read transaction, still on the old snapshot: later reads on that
// connection then miss new events, and Head can go backwards (reproduced by
// cancelling a few hundred reads mid-query). So cancellation is checked
// before the query and not passed into it; reads are bounded pages, so a
// cancelled caller waits at most one page.
func (s *Store) readCtx(ctx context.Context) (context.Context, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Head, error) {
	rctx, err := s.readCtx(ctx)
	if err != nil {
		return eventstore.Head{}, err
	}
	return readHead(rctx, s.read)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readHead(ctx context.Context, q queryRower) (eventstore.Head, error) {
	var (
		pos  int64
		hash []byte
	)
	if err := q.QueryRowContext(ctx, `SELECT position, hash FROM head WHERE id = 1`).Scan(&pos, &hash); err != nil {
		return eventstore.Head{}, translateError(err)
	}
	h, err := eventstore.HashFromBytes(hash)
	if err != nil {
		return eventstore.Head{}, fmt.Errorf("sqlite: chain head: %w", err)
	}
	return eventstore.Head{Position: uint64(pos), Hash: h}, nil
}

// StreamVersion implements eventstore.Store.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	rctx, err := s.readCtx(ctx)
	if err != nil {
		return 0, err
	}
	var v int64
	err = s.read.QueryRowContext(rctx,
		`SELECT coalesce((SELECT version FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1), 0)`,
		stream).Scan(&v)
	if err != nil {
		return 0, translateError(err)
	}
	return uint64(v), nil
}

// eventColumns lists the events table's columns in the order scanEvents and
// the insert statements use.
const eventColumns = `position, stream, version, id, type, data, occurred_at, recorded_at,
	backdate_reason, actor_id, actor_role, actor_org, idempotency_key, correlation_id, causation_id,
	prev_hash, hash`

const eventColumnCount = 17

// ReadStream implements eventstore.Store. A limit below 1 is an error.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: read stream: limit must be at least 1, got %d", limit)
	}
	q := `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND version >= ? ORDER BY version ASC LIMIT ?`
	if dir == eventstore.Backwards {
		q = `SELECT ` + eventColumns + ` FROM events WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT ?`
	}
	return s.query(ctx, q, stream, clamp(from), limit)
}

// ReadAll implements eventstore.Store. A filtered read goes page by page
// (ReadPage), so no statement scans further than a window. A limit below 1
// is an error.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int, filter eventstore.Filter) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: read all: limit must be at least 1, got %d", limit)
	}
	if len(filter.StreamPrefixes) > 0 || len(filter.Types) > 0 {
		return eventstore.ReadAllPaged(ctx, s, after, limit, filter)
	}
	return s.query(ctx, `SELECT `+eventColumns+` FROM events WHERE position > ? ORDER BY position LIMIT ?`, clamp(after), limit)
}

// ReadPage implements eventstore.Store. It reads the head and then the
// page in one read transaction, so both come from the same snapshot. A page
// costs at most about a window of the log (max(limit, the scan window)
// positions), read in one of two ways, as on PostgreSQL:
//
//   - the window: the rowid range from after to the end of the window or the
//     head, each row checked against the filter (windowPageQuery);
//   - the rare prefixes: when the filter's stream prefixes hold at most a
//     window's worth of events in all (counted in the stream index, up to
//     that many), every one of them from the stream index, and the page
//     reaches the head (rarePageQuery). A prefix set found to hold more is
//     remembered and not counted again.
//
// A limit below 1 is an error.
func (s *Store) ReadPage(ctx context.Context, after uint64, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	if s.closed.Load() {
		return eventstore.Page{}, eventstore.ErrClosed
	}
	if limit < 1 {
		return eventstore.Page{}, fmt.Errorf("sqlite: read page: limit must be at least 1, got %d", limit)
	}
	rctx, err := s.readCtx(ctx)
	if err != nil {
		return eventstore.Page{}, err
	}
	// A deferred transaction takes its snapshot at its first read: the
	// head's.
	tx, err := s.read.BeginTx(rctx, nil)
	if err != nil {
		return eventstore.Page{}, s.readError(err)
	}
	defer func() { _ = tx.Rollback() }()
	var head int64
	if err := tx.QueryRowContext(rctx, `SELECT position FROM head WHERE id = 1`).Scan(&head); err != nil {
		return eventstore.Page{}, s.readError(err)
	}
	from := clamp(after)
	page := eventstore.Page{Through: after, Head: uint64(head)}
	if head <= from {
		return page, nil
	}
	window := max(limit, s.cfg.scanWindow)
	upto := min(head, from+int64(window)) // from <= head: no overflow
	q, args := windowPageQuery(from, upto, limit, filter)
	if p := filter.StreamPrefixes; len(p) > 0 && len(p) <= maxIndexedPrefixes && !s.common.Has(p) {
		rare, err := s.isRare(rctx, tx, p, window)
		if err != nil {
			return eventstore.Page{}, err
		}
		if rare {
			upto = head
			q, args = rarePageQuery(from, head, limit, filter)
		} else {
			s.common.Add(p)
		}
	}
	rows, err := tx.QueryContext(rctx, q, args...)
	if err != nil {
		return eventstore.Page{}, s.readError(err)
	}
	if page.Events, err = scanEvents(rows); err != nil {
		return eventstore.Page{}, s.readError(err)
	}
	if err := tx.Commit(); err != nil {
		return eventstore.Page{}, s.readError(err)
	}
	page.Through = uint64(upto)
	if len(page.Events) == limit {
		page.Through = page.Events[limit-1].Position
	}
	return page, nil
}

// maxIndexedPrefixes bounds the prefixes isRare counts one by one; a
// filter with more always goes to the window.
const maxIndexedPrefixes = 16

// isRare reports whether the prefixes hold at most window events in all,
// counting each prefix's in the (stream, version) index up to window+1.
func (s *Store) isRare(ctx context.Context, tx *sql.Tx, prefixes []string, window int) (bool, error) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT count(*) FROM (`)
	for i, p := range prefixes {
		if i > 0 {
			b.WriteString(` UNION ALL `)
		}
		b.WriteString(`SELECT * FROM (SELECT 1 FROM events WHERE `)
		writePrefix(&b, &args, p, "stream")
		b.WriteString(` LIMIT ?)`)
		args = append(args, window+1)
	}
	b.WriteString(`)`)
	var n int64
	if err := tx.QueryRowContext(ctx, b.String(), args...).Scan(&n); err != nil {
		return false, s.readError(err)
	}
	return n <= int64(window), nil
}

// windowPageQuery builds the window's statement for the positions in
// (from, upto]. Its stream and type terms are written +stream and +type,
// which keeps SQLite from answering them from an index: the plan is always
// the rowid range, so a page costs its window. Left to itself, SQLite 3.40
// (the sqlite3 shell of Debian 12) read every event of a prefix from the
// (stream, version) index and sorted them, on every page, even for a
// prefix holding 60% of the log: 174 ms a page of 1,000 in a log of 3M
// events, a catch-up quadratic in the log. 3.50, the driver's, scans the
// rowid range without statistics, but after ANALYZE takes the stream index
// for a prefix it judges rare; whether it does is now rarePageQuery's
// decision, made by counting.
func windowPageQuery(from, upto int64, limit int, filter eventstore.Filter) (string, []any) {
	var b strings.Builder
	args := []any{from, upto}
	b.WriteString(`SELECT ` + eventColumns + ` FROM events WHERE position > ? AND position <= ?`)
	if len(filter.StreamPrefixes) > 0 {
		b.WriteString(` AND (`)
		for i, p := range filter.StreamPrefixes {
			if i > 0 {
				b.WriteString(` OR `)
			}
			writePrefix(&b, &args, p, "+stream")
		}
		b.WriteString(`)`)
	}
	writeTypes(&b, &args, filter.Types)
	b.WriteString(` ORDER BY position LIMIT ?`)
	args = append(args, limit)
	return b.String(), args
}

// rarePageQuery builds the rare prefixes' statement: the events of the
// prefixes in (from, upto], found through the stream index. The positions
// are written +position so that the rowid serves neither the condition nor
// the order, which would read the log instead of the prefixes.
func rarePageQuery(from, upto int64, limit int, filter eventstore.Filter) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT ` + eventColumns + ` FROM events WHERE (`)
	for i, p := range filter.StreamPrefixes {
		if i > 0 {
			b.WriteString(` OR `)
		}
		writePrefix(&b, &args, p, "stream")
	}
	b.WriteString(`) AND +position > ? AND +position <= ?`)
	args = append(args, from, upto)
	writeTypes(&b, &args, filter.Types)
	b.WriteString(` ORDER BY +position LIMIT ?`)
	args = append(args, limit)
	return b.String(), args
}

// writePrefix writes the condition that column starts with p: the range
// p <= column < successor(p). TEXT compares with memcmp (BINARY collation)
// on UTF-8 bytes, exactly the byte-prefix order Filter.Matches uses, and no
// character in p has a special meaning.
func writePrefix(b *strings.Builder, args *[]any, p, column string) {
	succ, bounded := successor(p)
	switch {
	case p == "":
		b.WriteString(`1`)
	case bounded:
		b.WriteString(`(` + column + ` >= ? AND ` + column + ` < ?)`)
		*args = append(*args, p, succ)
	default:
		b.WriteString(column + ` >= ?`)
		*args = append(*args, p)
	}
}

// writeTypes writes the type condition, if any; +type keeps it off any
// index.
func writeTypes(b *strings.Builder, args *[]any, types []string) {
	if len(types) == 0 {
		return
	}
	b.WriteString(` AND +type IN (?` + strings.Repeat(`, ?`, len(types)-1) + `)`)
	for _, t := range types {
		*args = append(*args, t)
	}
}

// successor returns the smallest string greater than every string with
// prefix p, and false when there is none (p is empty or all 0xFF bytes).
func successor(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// clamp maps a uint64 position or version to SQLite's int64; nothing stored
// is above math.MaxInt64.
func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]eventstore.Event, error) {
	rctx, err := s.readCtx(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(rctx, q, args...)
	if err != nil {
		return nil, s.readError(err)
	}
	events, err := scanEvents(rows)
	if err != nil {
		return nil, s.readError(err)
	}
	return events, nil
}

// readError reports reads cut short by Close as ErrClosed.
func (s *Store) readError(err error) error {
	if s.closed.Load() && ctxErr(err) == nil {
		return eventstore.ErrClosed
	}
	return translateError(err)
}

func ctxErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func scanEvents(rows *sql.Rows) ([]eventstore.Event, error) {
	defer rows.Close()
	events := []eventstore.Event{}
	for rows.Next() {
		var (
			e                           eventstore.Event
			pos, version, occurred, rec int64
			prev, hash                  []byte
		)
		if err := rows.Scan(&pos, &e.Stream, &version, &e.ID, &e.Type, &e.Data, &occurred, &rec,
			&e.BackdateReason, &e.Actor.ID, &e.Actor.Role, &e.Actor.Org, &e.IdempotencyKey,
			&e.CorrelationID, &e.CausationID, &prev, &hash); err != nil {
			return nil, err
		}
		e.Position, e.Version = uint64(pos), uint64(version)
		e.OccurredAt = time.UnixMicro(occurred).UTC()
		e.RecordedAt = time.UnixMicro(rec).UTC()
		// A hash of the wrong length (possible only with the CHECK
		// constraints removed) is read as zero rather than failing the read,
		// so that Verify names the event instead of stopping at an I/O error.
		if len(prev) == len(e.PrevHash) {
			copy(e.PrevHash[:], prev)
		}
		if len(hash) == len(e.Hash) {
			copy(e.Hash[:], hash)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return events, nil
}
