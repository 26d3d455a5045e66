package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Backend {
		path := filepath.Join(t.TempDir(), "payesh.db")
		st := openStore(t, Config{Path: path, Poll: 50 * time.Millisecond, scanWindow: contractScanWindow})
		return eventstoretest.Backend{Store: st, Tamper: openTamperer(t, path)}
	}, eventstoretest.Features{ScanWindow: contractScanWindow})
}

// contractScanWindow makes ReadPage stop after a few positions in the
// contract suite, so that filtered reads and subscriptions go through many
// pages, empty ones among them.
const contractScanWindow = 3

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	st, err := Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	return st
}

// tamperer edits the file directly through its own connection, as an
// attacker with access to the file would.
type tamperer struct{ db *sql.DB }

func openTamperer(t testing.TB, path string) *tamperer {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return &tamperer{db: db}
}

func (tm *tamperer) SetData(ctx context.Context, position uint64, data []byte) error {
	return tm.exec(ctx, `UPDATE events SET data = ? WHERE position = ?`, data, int64(position))
}

func (tm *tamperer) Delete(ctx context.Context, position uint64) error {
	return tm.exec(ctx, `DELETE FROM events WHERE position = ?`, int64(position))
}

func (tm *tamperer) Swap(ctx context.Context, a, b uint64) error {
	tx, err := tm.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	// Park a at a free position (CHECK (position > 0) rules out negatives).
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE events SET position = (SELECT max(position) FROM events) + 1 WHERE position = ?`, []any{int64(a)}},
		{`UPDATE events SET position = ? WHERE position = ?`, []any{int64(a), int64(b)}},
		{`UPDATE events SET position = ? WHERE position = (SELECT max(position) FROM events)`, []any{int64(b)}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (tm *tamperer) DisableGuards(ctx context.Context) error {
	return tm.exec(ctx, `DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete`)
}

func (tm *tamperer) exec(ctx context.Context, q string, args ...any) error {
	res, err := tm.db.ExecContext(ctx, q, args...)
	if err != nil {
		return translateError(err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 && len(args) > 0 {
		return errors.New("tamper: no such event")
	}
	return nil
}

func TestGuardsReportErrImmutable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payesh.db")
	st := openStore(t, Config{Path: path})
	ctx := context.Background()
	_, err := st.Append(ctx, "s", eventstore.NoStream, eventstoretest.Events(2, "t.v1"))
	require.NoError(t, err)
	tm := openTamperer(t, path)
	require.ErrorIs(t, tm.SetData(ctx, 1, []byte(`{}`)), ErrImmutable)
	require.ErrorIs(t, tm.Delete(ctx, 2), ErrImmutable)
	require.ErrorIs(t, tm.exec(ctx, `DELETE FROM head`), ErrImmutable)
	require.ErrorIs(t, tm.exec(ctx, `UPDATE head SET position = 1`), ErrImmutable)
	_, err = st.WriteDB().ExecContext(ctx, `UPDATE events SET type = 'x'`)
	require.ErrorIs(t, translateError(err), ErrImmutable)
	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
}

func TestReopenKeepsDataAndChain(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "payesh.db")
	st, err := Open(ctx, Config{Path: path})
	require.NoError(t, err)
	for i := range 5 {
		_, err := st.Append(ctx, fmt.Sprintf("r-%d", i%2), eventstore.Any, eventstoretest.Events(i+1, "t.v1"))
		require.NoError(t, err)
	}
	headBefore, err := st.Head(ctx)
	require.NoError(t, err)
	before, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, st.Close(), "Close is idempotent")

	st = openStore(t, Config{Path: path})
	headAfter, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, headBefore, headAfter)
	after, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, before, after)

	res, err := st.Append(ctx, "r-0", eventstore.Exact(9), eventstoretest.Events(1, "t.v1"))
	require.NoError(t, err)
	require.Equal(t, uint64(16), res.FirstPosition)
	require.Equal(t, uint64(10), res.FirstVersion)
	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, uint64(16), rep.Events)
	require.Equal(t, 2, rep.Streams)
}

// TestTwoStoresOneFile plays two processes sharing the file: each Store has
// its own connections and committer, so only SQLite's file lock keeps the
// chain whole, and a subscriber on one sees the other's appends by polling.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "payesh.db")
	a := openStore(t, Config{Path: path, Poll: 20 * time.Millisecond})
	b := openStore(t, Config{Path: path, Poll: 20 * time.Millisecond})

	var seen collector
	subCtx, cancel := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- a.Subscribe(subCtx, 0, eventstore.Filter{StreamPrefixes: []string{"b-"}}, seen.handle)
	}()

	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for _, st := range []struct {
		name  string
		store *Store
	}{{"a", a}, {"b", b}} {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					// Every writer also hits a stream shared across stores.
					stream := fmt.Sprintf("%s-%d-%d", st.name, w, i%3)
					if i%5 == 0 {
						stream = "shared"
					}
					if _, err := st.store.Append(ctx, stream, eventstore.Any, eventstoretest.Events(1+i%2, "t.v1")); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := uint64(2 * writers * (each/2*3 + each%2))
	for _, st := range []*Store{a, b} {
		rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{BatchSize: 50})
		require.NoError(t, err)
		require.Equal(t, total, rep.Events)
	}
	ha, err := a.Head(ctx)
	require.NoError(t, err)
	hb, err := b.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, ha, hb)

	want, err := b.ReadAll(ctx, 0, int(total), eventstore.Filter{StreamPrefixes: []string{"b-"}})
	require.NoError(t, err)
	require.NotEmpty(t, want)
	require.Eventually(t, func() bool { return seen.len() >= len(want) }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-subDone, context.Canceled)
	require.Equal(t, want, seen.snapshot(), "the subscriber on a saw b's appends, in order, once")
}

// TestTwoProcesses runs a second OS process (this test binary) appending to
// the same file while this one appends, so the chain-head lock is exercised
// across processes, not just across connections.
func TestTwoProcesses(t *testing.T) {
	if path := os.Getenv("PAYESH_SQLITE_CHILD_PATH"); path != "" {
		n, _ := strconv.Atoi(os.Getenv("PAYESH_SQLITE_CHILD_N"))
		st, err := Open(context.Background(), Config{Path: path})
		require.NoError(t, err)
		defer st.Close()
		require.NoError(t, appendMany(st, "child", n))
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	const n = 200
	path := filepath.Join(t.TempDir(), "payesh.db")
	st := openStore(t, Config{Path: path, Poll: 20 * time.Millisecond})
	var seen collector
	subCtx, cancel := context.WithCancel(context.Background())
	subDone := make(chan error, 1)
	go func() {
		subDone <- st.Subscribe(subCtx, 0, eventstore.Filter{StreamPrefixes: []string{"child-"}}, seen.handle)
	}()

	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PAYESH_SQLITE_CHILD_PATH="+path, "PAYESH_SQLITE_CHILD_N="+strconv.Itoa(n))
	out := make(chan error, 1)
	var output []byte
	go func() {
		var err error
		output, err = cmd.CombinedOutput()
		out <- err
	}()
	require.NoError(t, appendMany(st, "parent", n))
	require.NoError(t, <-out, "child: %s", output)

	require.Eventually(t, func() bool { return seen.len() >= n }, 10*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-subDone, context.Canceled)
	rep, err := eventstore.Verify(context.Background(), st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, uint64(2*n), rep.Events)
	require.Len(t, seen.snapshot(), n)
}

// appendMany appends n single events to streams named prefix-*, from 8
// goroutines.
func appendMany(st *Store, prefix string, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := st.Append(context.Background(), fmt.Sprintf("%s-%d", prefix, i), eventstore.NoStream, eventstoretest.Events(1, "t.v1")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs)
}

type collector struct {
	mu     sync.Mutex
	events []eventstore.Event
}

func (c *collector) handle(_ context.Context, batch []eventstore.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, batch...)
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func (c *collector) snapshot() []eventstore.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.Event(nil), c.events...)
}

// TestPrefixFilterIsLiteral checks prefixes with pattern characters and
// multi-byte runes through both of ReadPage's statements: the rare
// prefixes' (read through the stream index; every prefix here, with the
// default window) and the window's (with a window of 1 and pages of 1, for
// every prefix holding more than one event).
func TestPrefixFilterIsLiteral(t *testing.T) {
	for _, window := range []int{0, 1} {
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t, Config{Path: filepath.Join(t.TempDir(), "payesh.db"), scanWindow: window})
			streams := []string{"a%b", "axb", "a_b", "a*b", "a?b", "a[b", "a[]b", "ab", "a", "آب-۱", "آب-۲", "آبی", "aïz", "a\u00ffz", "a\U0010FFFF"}
			for _, s := range streams {
				_, err := st.Append(ctx, s, eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
				require.NoError(t, err)
			}
			all, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
			require.NoError(t, err)
			prefixes := [][]string{{"a%"}, {"a_"}, {"a*"}, {"a?"}, {"a["}, {"a"}, {""}, {"آب"}, {"آب-"}, {"a\xc3"}, {"aï"}, {"a\u00ff"}, {"a\xf4\x8f\xbf"}, {"a%", "a["}, {"b"}, {"\xff"}}
			for _, p := range prefixes {
				f := eventstore.Filter{StreamPrefixes: p}
				want := []eventstore.Event{}
				for i := range all {
					if f.Matches(&all[i]) {
						want = append(want, all[i])
					}
				}
				got, err := st.ReadAll(ctx, 0, 100, f)
				require.NoError(t, err)
				require.Equal(t, want, got, "prefixes %q", p)
				// One event a call: with a window of 1, the window's
				// statement for every prefix that holds more.
				got = []eventstore.Event{}
				var after uint64
				for {
					page, err := st.ReadAll(ctx, after, 1, f)
					require.NoError(t, err)
					if len(page) == 0 {
						break
					}
					got = append(got, page...)
					after = page[0].Position
				}
				require.Equal(t, want, got, "prefixes %q, one at a time", p)
			}
		})
	}
}

func TestEmptyPayloadRoundTrips(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Config{Path: filepath.Join(t.TempDir(), "payesh.db")})
	ev := eventstoretest.Events(2, "t.v1")
	ev[0].Data, ev[1].Data = nil, []byte{}
	_, err := st.Append(ctx, "e", eventstore.NoStream, ev)
	require.NoError(t, err)
	got, err := st.ReadStream(ctx, "e", 1, eventstore.Forwards, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Empty(t, got[0].Data)
	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
}

func TestConfigValidate(t *testing.T) {
	err := Config{Poll: -1, MaxBatch: -1, Synchronous: "OFF"}.Validate()
	require.ErrorContains(t, err, "Path is required")
	require.ErrorContains(t, err, "Poll")
	require.ErrorContains(t, err, "MaxBatch")
	require.ErrorContains(t, err, "Synchronous")
	require.NoError(t, Config{Path: "x", Synchronous: "normal"}.Validate())

	c := Config{Path: "x"}
	c.setDefaults()
	require.Equal(t, Config{Path: "x", Poll: 250 * time.Millisecond, MaxBatch: 512, Synchronous: "FULL", scanWindow: eventstore.DefaultScanWindow}, c)

	_, err = Open(context.Background(), Config{Synchronous: "OFF"})
	require.Error(t, err)
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	for _, sync := range []string{"FULL", "NORMAL"} {
		t.Run(sync, func(t *testing.T) {
			st := openStore(t, Config{Path: filepath.Join(t.TempDir(), "a?b#c%d.db"), Synchronous: sync})
			for _, db := range []*sql.DB{st.DB(), st.WriteDB()} {
				var mode string
				var syncLevel, fk, busy int
				require.NoError(t, db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
				require.NoError(t, db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncLevel))
				require.NoError(t, db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
				require.NoError(t, db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy))
				require.Equal(t, "wal", mode)
				require.Equal(t, map[string]int{"NORMAL": 1, "FULL": 2}[sync], syncLevel)
				require.Equal(t, 1, fk)
				require.Equal(t, int(busyTimeout.Milliseconds()), busy)
			}
			_, err := st.DB().ExecContext(ctx, `CREATE TABLE x (y)`)
			require.Error(t, err, "the read pool is query_only")
		})
	}
}

func TestReadLimits(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Config{Path: filepath.Join(t.TempDir(), "payesh.db")})
	_, err := st.ReadAll(ctx, 0, 0, eventstore.Filter{})
	require.Error(t, err)
	_, err = st.ReadStream(ctx, "s", 1, eventstore.Forwards, 0)
	require.Error(t, err)
}

func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "payesh.db")})
	require.NoError(t, err)
	_, err = st.Append(ctx, "s", eventstore.Any, eventstoretest.Events(1, "t.v1"))
	require.NoError(t, err)

	// A subscription running at Close ends with ErrClosed.
	done := make(chan error, 1)
	go func() {
		done <- st.Subscribe(ctx, 0, eventstore.Filter{}, func(context.Context, []eventstore.Event) error { return nil })
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, st.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, eventstore.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("subscription did not end after Close")
	}

	for range 20 { // GroupCommitter alone would sometimes queue and hang here
		_, err = st.Append(ctx, "s", eventstore.Any, eventstoretest.Events(1, "t.v1"))
		require.ErrorIs(t, err, eventstore.ErrClosed)
	}
	_, err = st.ReadAll(ctx, 0, 10, eventstore.Filter{})
	require.ErrorIs(t, err, eventstore.ErrClosed)
	_, err = st.ReadStream(ctx, "s", 1, eventstore.Forwards, 10)
	require.ErrorIs(t, err, eventstore.ErrClosed)
	_, err = st.StreamVersion(ctx, "s")
	require.ErrorIs(t, err, eventstore.ErrClosed)
	_, err = st.Head(ctx)
	require.ErrorIs(t, err, eventstore.ErrClosed)
}

// TestCloseDuringAppends closes the store while writers are appending: every
// append either succeeds or fails with ErrClosed, none hangs, and the file
// holds exactly the successful ones.
func TestCloseDuringAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "payesh.db")
	st, err := Open(ctx, Config{Path: path})
	require.NoError(t, err)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok uint64
	)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := st.Append(ctx, fmt.Sprintf("c-%d-%d", w, i), eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
				if errors.Is(err, eventstore.ErrClosed) {
					return
				}
				if !errors.Is(err, eventstore.ErrClosed) && err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, st.Close())
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("appends hung after Close")
	}
	st = openStore(t, Config{Path: path})
	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, ok, rep.Events)
}

// TestCancelledReadsLeaveNoStaleSnapshot: reads cancelled mid-query must not
// leave a pooled connection on an old snapshot, or later reads on it miss
// new events and Head goes backwards. The stale snapshot was seen under heavy
// machine load; this test has not reproduced it on a quiet machine (it passes
// with cancellable reads too), so it guards the invariant rather than
// proving the fix.
func TestCancelledReadsLeaveNoStaleSnapshot(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Config{Path: filepath.Join(t.TempDir(), "stale.db")})
	for i := range 20 {
		_, err := st.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, eventstoretest.Events(50, "t.v1"))
		require.NoError(t, err)
	}
	for i := range 300 {
		// Cancel at varying moments, most of them while the page of
		// 1,000 events is being read.
		cctx, cancel := context.WithTimeout(ctx, time.Duration(i%40)*25*time.Microsecond)
		_, _ = st.ReadAll(cctx, 0, 1000, eventstore.Filter{})
		_, _ = st.Head(cctx)
		cancel()
	}
	res, err := st.Append(ctx, "after", eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
	require.NoError(t, err)
	// More reads than the pool has connections: every one must be current.
	for range 64 {
		h, err := st.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, res.LastPosition, h.Position, "a pooled connection is stuck on an old snapshot")
		all, err := st.ReadAll(ctx, res.LastPosition-1, 10, eventstore.Filter{})
		require.NoError(t, err)
		require.Len(t, all, 1)
	}
}
