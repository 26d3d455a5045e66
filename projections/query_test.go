package projections_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// tally counts the events of each facility stream and keeps the position
// of the latest: a read model whose every answer can be checked against
// the log at the position it reports.
type tally struct{}

const tallyName = "query_tally"

func (tally) Name() string     { return tallyName }
func (tally) Version() int     { return 1 }
func (tally) Tables() []string { return []string{tallyName} }
func (tally) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{"facility-"}}
}

func (tally) Schema(d projections.Dialect, t projections.TableNames) projections.Schema {
	return projections.Schema{Tables: []string{`CREATE TABLE ` + t.Table(tallyName) + ` (stream ` + d.Text() + ` NOT NULL PRIMARY KEY, events ` +
		d.Int() + ` NOT NULL, last_position ` + d.Int() + ` NOT NULL)` + d.TableOptions()}}
}

func (tally) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	for _, e := range batch {
		if _, err := tx.Exec(ctx, `INSERT INTO `+t.Table(tallyName)+` (stream, events, last_position) VALUES (?, 1, ?)
ON CONFLICT (stream) DO UPDATE SET events = `+t.Table(tallyName)+`.events + 1, last_position = excluded.last_position`,
			e.Stream, int64(e.Position)); err != nil {
			return err
		}
	}
	return nil
}

// tallyAnswer is one answer of a query racing the writer: the position it
// reported and what its rows said.
type tallyAnswer struct {
	pos     uint64
	stream  string // "" for the totals
	found   bool   // the stream's row came back
	streams int64  // totals: rows
	events  int64  // totals: the sum; a stream: its count
	last    int64  // a stream: the position of its latest event
}

// logPositions are the positions of the log's facility events: all of
// them in order, and each stream's.
type logPositions struct {
	all     []uint64
	firsts  []uint64 // each stream's first event, ascending
	streams map[string][]uint64
}

func readLog(t *testing.T, st eventstore.Store) logPositions {
	t.Helper()
	l := logPositions{streams: map[string][]uint64{}}
	var after uint64
	for {
		evs, err := st.ReadAll(context.Background(), after, 1000, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
		require.NoError(t, err)
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			l.all = append(l.all, e.Position)
			if len(l.streams[e.Stream]) == 0 {
				l.firsts = append(l.firsts, e.Position)
			}
			l.streams[e.Stream] = append(l.streams[e.Stream], e.Position)
			after = e.Position
		}
	}
	return l
}

// upTo returns how many of the ascending positions are at most pos.
func upTo(positions []uint64, pos uint64) int {
	n, _ := slices.BinarySearch(positions, pos+1)
	return n
}

// Every answer reports exactly the position its rows reflect, while the
// log grows, the projection follows it live and blue/green rebuilds swap
// its tables: the totals equal the log's up to the reported position, a
// stream's row equals its events up to it, and a stream that is not found
// has no event up to it (an answer with no row reports a position read
// before the statement that found none: it may be lower than the
// snapshot's, never higher).
func TestQueriesAnswerAtTheirPosition(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.NewHistory(t, env.Service(t), 11)
		e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{tally{}}, BatchSize: 5})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- e.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			require.ErrorIs(t, <-ran, context.Canceled)
		})
		_, err = e.Reader().WaitFor(context.Background(), tallyName, env.Head(t), time.Minute)
		require.NoError(t, err)

		const rounds, perRound = 6, 3
		q := projections.NewQueries(env.DB, tallyName)
		d := env.DB.Dialect
		totals := `SELECT COUNT(*), ` + d.Sum("events") + ` FROM ` + tallyName
		one := `SELECT events, last_position FROM ` + tallyName + ` WHERE stream = ?`

		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			answers []tallyAnswer
			errs    []error
			swaps   int
		)
		stop := make(chan struct{})
		fail := func(err error) {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
		}
		for g := range 3 {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(g), 1))
				for {
					select {
					case <-stop:
						return
					default:
					}
					var a tallyAnswer
					var err error
					if rnd.IntN(2) == 0 {
						a.pos, err = q.Select(ctx, totals, nil, func(s *projections.Row) error { return s.Scan(&a.streams, &a.events) })
					} else {
						// Streams registered later too: the answers without a row.
						a.stream = fmt.Sprintf("facility-f-%04d", 1+rnd.IntN(rounds*perRound+2))
						a.pos, err = q.Select(ctx, one, []any{a.stream}, func(s *projections.Row) error {
							a.found = true
							return s.Scan(&a.events, &a.last)
						})
					}
					if err != nil {
						fail(err)
						return
					}
					mu.Lock()
					answers = append(answers, a)
					mu.Unlock()
					time.Sleep(time.Millisecond) // leave the writer the machine's cores
				}
			})
		}
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := e.Rebuild(ctx, tallyName, nil); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				swaps++
				mu.Unlock()
			}
		})
		for range rounds {
			h.Register(perRound)
			h.Step()
		}
		// Answers after the last write too, and a swap at least.
		_, err = e.Reader().WaitFor(context.Background(), tallyName, env.Head(t), time.Minute)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return swaps > 0 || len(errs) > 0
		}, time.Minute, 10*time.Millisecond)
		close(stop)
		wg.Wait()
		require.Empty(t, errs)

		l := readLog(t, env.Store)
		var found, missing, totalsSeen int
		positions := map[uint64]bool{}
		for _, a := range answers {
			positions[a.pos] = true
			if a.stream == "" {
				totalsSeen++
				require.EqualValues(t, upTo(l.all, a.pos), a.events, "events at position %d", a.pos)
				require.EqualValues(t, upTo(l.firsts, a.pos), a.streams, "streams at position %d", a.pos)
				continue
			}
			n := upTo(l.streams[a.stream], a.pos)
			if !a.found {
				missing++
				require.Zero(t, n, "%s not found at position %d, registered at %v", a.stream, a.pos, l.streams[a.stream])
				continue
			}
			found++
			require.EqualValues(t, n, a.events, "%s at position %d", a.stream, a.pos)
			require.EqualValues(t, l.streams[a.stream][n-1], a.last, "%s at position %d", a.stream, a.pos)
		}
		// The race was run: answers at many positions, of every kind.
		require.Positive(t, found)
		require.Positive(t, missing)
		require.Positive(t, totalsSeen)
		require.Greater(t, len(positions), rounds, "answers at %d positions only", len(positions))
		t.Logf("%d answers at %d positions (%d found, %d missing, %d totals), %d swaps", len(answers), len(positions), found, missing, totalsSeen, swaps)
	})
}

// A read model not built yet, a mistaken query, and pages of a built one.
func TestQueriesBuiltOrNot(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		ctx := context.Background()
		q := projections.NewQueries(env.DB, tallyName)
		query := `SELECT events FROM ` + tallyName + ` WHERE stream = ?`
		scan := func(s *projections.Row) error {
			var n int64
			return s.Scan(&n)
		}

		_, err := q.Select(ctx, query, []any{"facility-x"}, scan)
		require.ErrorIs(t, err, projections.ErrNotBuilt, "a fresh database")
		_, err = q.Position(ctx)
		require.ErrorIs(t, err, projections.ErrNotBuilt)

		e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{tally{}}})
		require.NoError(t, err)
		require.NoError(t, e.Prepare(ctx, tallyName))
		other := projections.NewQueries(env.DB, "query_other")
		_, err = other.Select(ctx, `SELECT 1 FROM query_other`, nil, scan)
		require.ErrorIs(t, err, projections.ErrNotBuilt, "another projector's checkpoints only")

		pos, err := q.Select(ctx, query, []any{"facility-x"}, scan)
		require.NoError(t, err, "built, empty")
		require.Zero(t, pos)

		_, err = q.Select(ctx, `SELECT no_such_column FROM `+tallyName, nil, scan)
		require.Error(t, err)
		require.NotErrorIs(t, err, projections.ErrNotBuilt, "a mistake in a query is not a missing read model")

		_, err = q.Select(ctx, `WITH x AS (SELECT 1) SELECT * FROM x`, nil, scan)
		require.ErrorContains(t, err, "must begin with")

		projectionstest.NewHistory(t, env.Service(t), 5).Register(5)
		require.NoError(t, e.Rebuild(ctx, tallyName, nil))
		pos, err = q.Select(ctx, `SELECT events FROM `+tallyName, nil, scan)
		require.NoError(t, err)
		require.Equal(t, env.Head(t), pos, "the rebuild's position")
		_, err = q.Select(ctx, `SELECT stream FROM `+tallyName, nil, func(*projections.Row) error { return nil })
		require.ErrorContains(t, err, "did not scan", "a row not scanned would leave the position unread")

		// Pages of two streams: the query asks for three, the third only
		// tells that there is a next page.
		var (
			got   []string
			after string
			pages int
		)
		for {
			page, next, pos, err := projections.SelectPage(ctx, q, `SELECT stream FROM `+tallyName+` WHERE stream > ? ORDER BY stream LIMIT 3`,
				[]any{after}, 2, func(s *projections.Row) (string, error) {
					var stream string
					err := s.Scan(&stream)
					return stream, err
				}, func(stream string) string { return stream })
			require.NoError(t, err)
			require.Equal(t, env.Head(t), pos)
			require.LessOrEqual(t, len(page), 2)
			got = append(got, page...)
			pages++
			if next == "" {
				break
			}
			require.Equal(t, page[len(page)-1], next)
			after = next
		}
		require.Equal(t, []string{"facility-f-0001", "facility-f-0002", "facility-f-0003", "facility-f-0004", "facility-f-0005"}, got)
		require.Equal(t, 3, pages)
	})
}

func TestWhere(t *testing.T) {
	var w projections.Where
	require.Equal(t, "1 = 1", w.String(), "no condition matches every row")
	require.Empty(t, w.Args())
	w.Eq("province", "")
	w.EqInt("fiscal_year", 0)
	require.Equal(t, "1 = 1", w.String(), "zero fields match everything")
	w.EqInt("fiscal_year", 1403)
	w.Eq("province", "IR-23")
	w.Add("(a < ? OR b = ?)", 1, "x")
	require.Equal(t, "fiscal_year = ? AND province = ? AND (a < ? OR b = ?)", w.String())
	require.Equal(t, []any{1403, "IR-23", 1, "x"}, w.Args())
}

func TestPageLimit(t *testing.T) {
	for _, c := range []struct{ limit, most, want int }{
		{0, 1000, projections.DefaultLimit},
		{0, 10, 10},
		{1, 1000, 1},
		{1000, 1000, 1000},
		{5000, 1000, 1000},
	} {
		got, err := projections.PageLimit(c.limit, c.most)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "limit %d of at most %d", c.limit, c.most)
	}
	_, err := projections.PageLimit(-1, 1000)
	require.ErrorIs(t, err, domain.ErrInvalid)
}

func TestCursor(t *testing.T) {
	c := projections.EncodeCursor("recent", "42:f-0001:x")
	v, ok := projections.DecodeCursor(c, "recent")
	require.True(t, ok)
	require.Equal(t, "42:f-0001:x", v, "values keep their own separators")
	_, ok = projections.DecodeCursor(c, "id")
	require.False(t, ok, "a cursor of another sort")
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString([]byte("recent"))} {
		_, ok = projections.DecodeCursor(bad, "recent")
		require.False(t, ok, "%q", bad)
	}
}
