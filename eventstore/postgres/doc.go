// Package postgres is the production event store on PostgreSQL (pgx v5). It
// keeps the eventstore.Store contract for any number of goroutines and of
// processes sharing one database and schema.
//
// # Schema
//
// Open creates, in the configured schema and idempotently (under an advisory
// lock, so processes starting together take turns):
//
//   - events: one row per event, position BIGINT PRIMARY KEY, UNIQUE (stream,
//     version), UNIQUE id, the payload as BYTEA (not JSONB: it is hashed and
//     must come back byte for byte) and the times as TIMESTAMPTZ
//     (microseconds, as eventstore.Normalize leaves them). Triggers refuse
//     UPDATE, DELETE and TRUNCATE with SQLSTATE PY001, "payesh: events are
//     immutable", which the store reports as ErrImmutable.
//   - head: a single row holding the chain head (position and hash), guarded
//     against DELETE and TRUNCATE.
//
// # Ordering: why no SEQUENCE
//
// A subscriber must never miss an event, so a reader that has seen position
// N+1 must be able to rely on N being there already. A SEQUENCE cannot give
// that: nextval is not transactional, so transaction A can take 41, B take
// 42, and B commit first; a reader then sees 42, moves its checkpoint past
// 41, and never sees A's event. Here positions come from the head row
// instead: an appending transaction locks it (SELECT ... FOR UPDATE), numbers
// its events from it, writes them, moves it, and keeps the lock until COMMIT.
// PostgreSQL makes a committed transaction visible before it releases its
// locks, so the next appender, in this process or another, can only number
// its events after the previous ones are visible. Commit order is position
// order, every committed prefix is gap-free, and a reader can never see N+1
// without N. The hash chain needs exactly this serialisation anyway: an
// event's hash includes its predecessor's.
//
// The price is that appends are serialised on one row. Holding a lock
// across a commit would cap throughput at one transaction per round trip
// chain plus WAL flush, so appends go through eventstore.GroupCommitter: the
// appends that arrive while a transaction is in flight share the next one
// (one lock, one flush), each still with its own expected-version and
// idempotency check. Throughput then grows with the number of concurrent
// writers instead of queueing behind the lock. Within a transaction the
// statements are pipelined (see batch.go): four round trips for a batch of up
// to three events, six with COPY, which pays from four events on.
//
// New commits are announced with NOTIFY on a channel named after the schema,
// sent in the appending transaction, so it is delivered only if it commits.
// Each Store LISTENs on a dedicated connection (reconnecting with backoff)
// and wakes its subscriptions; Config.Poll is only the fallback for lost
// notifications.
//
// # Filters
//
// Filtered reads go through ReadPage (ReadAll with a filter is a loop of
// pages), whose every statement is bounded (see page.go): either a window of
// at most max(limit, 10,000) positions, a range of the primary key with each
// row checked against the filter, or, when the filter's stream prefixes hold
// at most a window's worth of events in all, those events found through the
// (stream, version) index. Prefixes are matched with ^@ and starts_with,
// which compare bytes: %, _ and \ in a prefix mean themselves, unlike in
// LIKE. The stream column uses the "C" collation, so PostgreSQL 15 and later
// turn starts_with on a known value into a range scan of the stream index;
// those statements are sent unnamed (planned with the values).
//
// This replaced one statement per page that let the planner choose between
// the stream index and the primary key, which it did well on good
// statistics but, on a log just loaded and not yet analysed, answered a
// prefix holding most of the log by ANDing a bitmap of the whole prefix
// with one of every later position, on every page: a catch-up through it
// was quadratic (go test -bench FilteredCatchUp: 0.6 s for 100,000 events,
// 10.8 s for 400,000). A page also looked as far as it took to find limit
// events, to the head for a sparse filter, so each call of a caught-up
// reader cost the log after its last match. Pages are now bounded and say
// how far they looked (Page.Through), and PollSubscribe goes on from there.
//
// Type filters use type = ANY($n) and are not indexed, deliberately. An index
// on (type, position) made a rare type's page of 100 events 0.7 ms instead
// of 25 ms, but it lengthened the append transaction, which holds the lock
// every writer waits for, by 15-35% (commit of 64 events 1.50-1.61 ms
// without, 1.67-2.22 ms with; 512 events 7.7-8.5 ms against 9.1-11.1 ms).
// Without it a type filter is answered by windows: a catch-up costs the log
// once, and a live reader only what is new.
//
// # Measured
//
// go test -run '^$' -bench . -benchtime 3000x ./eventstore/postgres/, three
// runs on a 2-vCPU virtual machine running both PostgreSQL 15 (fsync on,
// synchronous_commit on) and the benchmark, shared with other work (load
// average about 1), single-event appends of a 500-byte payload, events/s:
//
//	writers  Append (this store)  plain INSERT baseline
//	      1        740-1,170         5,100-6,000
//	      8      2,500-3,400        15,300-17,000
//	     16      4,500-6,100        12,400-18,300
//	     32      6,000-8,800         9,900-15,300
//
// The baseline is one autocommit INSERT per event into a table with the same
// columns and unique indexes, without chain, lock or checks. A lone writer
// pays for the ledger's guarantees in latency (four round trips and two
// goroutine hand-offs against one round trip), but the append rate grows with
// the writers, about eightfold from 1 to 32, as group commit fills batches,
// while the baseline, one transaction per event, is CPU-bound from eight
// writers on; at 32 writers appends reach 55-60% of it. Numbers on this
// machine vary by ±30% from run to run.
package postgres
