package replay_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/projections/quotas"
	"github.com/payesh/payesh/replay"
)

// all is every read model, as cmd/internal/readmodels lists them (which
// this package cannot import).
func all() []projections.Projector {
	return []projections.Projector{facilities.New(), quotas.New(), inspections.New(), deviations.New(), banks.New()}
}

// dump renders every row of every table of the projectors, each table's
// rows sorted, every value exactly (NULL apart from empty and zero).
func dump(t *testing.T, db *projections.DB, ps []projections.Projector) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range ps {
		for _, table := range p.Tables() {
			rows, err := db.Read.QueryContext(context.Background(), "SELECT * FROM "+table)
			require.NoError(t, err)
			cols, err := rows.Columns()
			require.NoError(t, err)
			lines := []string{}
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
					case string:
						fmt.Fprintf(&b, "%q", v)
					default:
						fmt.Fprintf(&b, "%v", v)
					}
				}
				lines = append(lines, b.String())
			}
			require.NoError(t, rows.Err())
			require.NoError(t, rows.Close())
			slices.Sort(lines)
			out[table] = lines
		}
	}
	return out
}

// live runs the projections over env until they reflect the head, and
// returns the position.
func live(t *testing.T, env *projectionstest.Env) uint64 {
	t.Helper()
	e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: all(), BatchSize: 300})
	require.NoError(t, err)
	require.NoError(t, e.RebuildAll(context.Background(), nil, nil))
	head := env.Head(t)
	r := projections.NewReader(env.DB, all()...)
	for _, p := range all() {
		pos, err := r.Position(context.Background(), p.Name())
		require.NoError(t, err)
		require.Equal(t, head, pos, p.Name())
	}
	return head
}

func run(t *testing.T, log replay.Log, cut replay.Cut) *replay.Snapshot {
	t.Helper()
	snap, err := replay.Run(context.Background(), replay.Config{Log: log, Projectors: all(), Cut: cut, TempDir: t.TempDir(), BatchSize: 250})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, snap.Close()) })
	return snap
}

// TestReplayEqualsLive builds a history in two halves with the live read
// models caught up after each, and checks on both backends that a replay
// to the first half's position equals the live tables as they were then,
// and a replay to the head equals them now, row for row in every table of
// every read model, with the checkpoints at the cut.
func TestReplayEqualsLive(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		svc := env.Service(t)
		h := projectionstest.Build(t, svc, 40, 11)
		mid := live(t, env)
		then := dump(t, env.DB, all())
		for range 4 {
			h.Register(5)
			h.Step()
			h.QuotaStep()
		}
		head := live(t, env)
		require.Greater(t, head, mid)
		now := dump(t, env.DB, all())
		require.NotEqual(t, then, now, "the second half must change the read models")

		for _, tc := range []struct {
			name string
			cut  replay.Cut
			pos  uint64
			want map[string][]string
		}{
			{"at the head", replay.Cut{}, head, now},
			{"at the head by position", replay.Cut{Position: head}, head, now},
			{"at an earlier position", replay.Cut{Position: mid}, mid, then},
		} {
			t.Run(tc.name, func(t *testing.T) {
				snap := run(t, env.Store, tc.cut)
				require.Equal(t, tc.pos, snap.Position)
				require.Equal(t, head, snap.Head)
				require.Equal(t, tc.want, dump(t, snap.DB, all()))
				r := projections.NewReader(snap.DB, all()...)
				for _, p := range all() {
					pos, err := r.Position(context.Background(), p.Name())
					require.NoError(t, err)
					require.Equal(t, tc.pos, pos, p.Name())
				}
				// The read model's own Reader reports the cut.
				jc, err := facilities.NewReader(snap.DB).JobCounts(context.Background(), facilities.Filter{})
				require.NoError(t, err)
				require.Equal(t, tc.pos, jc.Position)
			})
		}

		t.Run("recorded at", func(t *testing.T) {
			events, err := env.Store.ReadAll(context.Background(), 0, int(head), eventstore.Filter{})
			require.NoError(t, err)
			rec := events[mid-1].RecordedAt
			// The prefix of events recorded at or before rec ends at the
			// last event of mid's transaction, not before mid.
			end := mid
			for end < head && !events[end].RecordedAt.After(rec) {
				end++
			}
			snap := run(t, env.Store, replay.Cut{RecordedAt: rec})
			require.Equal(t, end, snap.Position)
			before := run(t, env.Store, replay.Cut{RecordedAt: events[0].RecordedAt.Add(-time.Microsecond)})
			require.Zero(t, before.Position)
			for _, p := range all() {
				for _, table := range p.Tables() {
					require.Empty(t, dump(t, before.DB, []projections.Projector{p})[table], table)
				}
			}
		})

		t.Run("beyond the head", func(t *testing.T) {
			_, err := replay.Run(context.Background(), replay.Config{Log: env.Store, Projectors: all(), Cut: replay.Cut{Position: head + 1}, TempDir: t.TempDir()})
			var be *replay.BeyondHeadError
			require.ErrorAs(t, err, &be)
			require.Equal(t, head, be.Head)
		})
	})
}

// TestReplayOnBusinessTime checks the business-time axis: only the events
// that occurred by T are folded, in log order, at the head's position; a T
// after every event gives the full replay, a T before every event gives
// empty read models.
func TestReplayOnBusinessTime(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 30, 5)
		head := env.Head(t)
		events, err := env.Store.ReadAll(context.Background(), 0, int(head), eventstore.Filter{})
		require.NoError(t, err)
		var first, last time.Time
		for _, e := range events {
			if first.IsZero() || e.OccurredAt.Before(first) {
				first = e.OccurredAt
			}
			if e.OccurredAt.After(last) {
				last = e.OccurredAt
			}
		}

		full := dump(t, run(t, env.Store, replay.Cut{}).DB, all())
		require.Equal(t, full, dump(t, run(t, env.Store, replay.Cut{OccurredAt: last}).DB, all()))

		empty := run(t, env.Store, replay.Cut{OccurredAt: first.Add(-time.Second)})
		require.Equal(t, head, empty.Position, "the read models reflect the whole log, of which nothing had occurred")
		for table, rows := range dump(t, empty.DB, all()) {
			require.Empty(t, rows, table)
		}

		// Midway: the facilities are those registered by T, and each one's
		// figures are its events that occurred by T.
		var regs []time.Time
		for _, e := range events {
			if e.Type == facility.TypeRegistered {
				regs = append(regs, e.OccurredAt)
			}
		}
		slices.SortFunc(regs, time.Time.Compare)
		mid := regs[len(regs)/2]
		snap := run(t, env.Store, replay.Cut{OccurredAt: mid})
		registered := map[string]bool{}
		for _, e := range events {
			if e.Type == facility.TypeRegistered && !e.OccurredAt.After(mid) {
				registered[e.Stream] = true
			}
		}
		require.NotEmpty(t, registered)
		require.Less(t, len(registered), len(full[facilities.Name]))
		page, err := facilities.NewReader(snap.DB).Facilities(context.Background(), facilities.Filter{}, facilities.Page{Limit: 1000})
		require.NoError(t, err)
		require.Equal(t, head, page.Position)
		require.Len(t, page.Facilities, len(registered))
		for _, f := range page.Facilities {
			require.True(t, registered[facility.Stream(f.ID)], f.ID)
			var last uint64
			for _, e := range events {
				if e.Stream == facility.Stream(f.ID) && !e.OccurredAt.After(mid) {
					last = e.Position
				}
			}
			require.Equal(t, last, f.Position, "%s: its last event by T", f.ID)
		}
	})
}

// A projector that selects every event cannot be replayed on business
// time: the events left out would reach it.
func TestReplayRefusesAnUnfilteredProjectorOnBusinessTime(t *testing.T) {
	err := replay.Config{Log: nil, Projectors: []projections.Projector{everything{facilities.New()}},
		Cut: replay.Cut{OccurredAt: time.Now()}}.Validate()
	require.ErrorIs(t, err, replay.ErrNotReplayable)
	require.ErrorContains(t, err, "Config.Log is required")
}

type everything struct{ facilities.Projector }

func (everything) Filter() eventstore.Filter { return eventstore.Filter{} }
