package facilities_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/projectionstest"
)

// answer is one answer of a Reader racing the writer: the position it
// reported and what its rows said.
type answer struct {
	pos    uint64
	id     string                // Facility: the facility asked for
	found  bool                  // Facility: a row came back
	one    facilities.Facility   // Facility
	recent []facilities.Facility // Facilities, latest changed first
	total  *facilities.JobCount  // JobCounts, no grouping
}

// Every answer of the Reader reflects exactly the position it reports,
// while the history grows, the projection follows it live and blue/green
// rebuilds swap its tables in. What the rows say is checked against the
// log cut at that position: a facility's row is at the version and
// position of its stream's last event up to it (a facility not found has
// no event up to it); the latest changed page holds the facilities whose
// last event up to it is latest; the total counts the facilities
// registered up to it. An answer claiming a position its rows do not
// reflect yet fails the first; rows ahead of their position fail the
// others.
func TestAnswersReflectTheirPosition(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.NewHistory(t, env.Service(t), 21)
		e := run(t, env, 5)
		r := facilities.NewReader(env.DB)
		ctx := context.Background()

		const rounds, perRound, pageSize = 5, 3, 6
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			answers []answer
			errs    []error
			swaps   int
		)
		stop := make(chan struct{})
		stopped := func() bool {
			select {
			case <-stop:
				return true
			default:
				return false
			}
		}
		record := func(a answer, err error) bool {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return false
			}
			answers = append(answers, a)
			return true
		}
		for g := range 3 {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(g), 2))
				for !stopped() {
					var (
						a   answer
						err error
					)
					switch rnd.IntN(3) {
					case 0:
						// Facilities registered later too: the answers without a row.
						a.id = fmt.Sprintf("f-%04d", 1+rnd.IntN(rounds*perRound+2))
						a.one, a.pos, err = r.Facility(ctx, a.id)
						a.found = err == nil
						if errors.Is(err, domain.ErrNotFound) {
							err = nil
						}
					case 1:
						var p facilities.FacilityPage
						p, err = r.Facilities(ctx, facilities.Filter{}, facilities.Page{Sort: facilities.SortRecent, Limit: pageSize})
						a.pos, a.recent = p.Position, p.Facilities
					default:
						var c facilities.JobCounts
						c, err = r.JobCounts(ctx, facilities.Filter{})
						a.pos = c.Position
						if err == nil && len(c.Groups) != 1 {
							err = fmt.Errorf("job counts without grouping: %d groups", len(c.Groups))
						} else if err == nil {
							a.total = &c.Groups[0]
						}
					}
					if !record(a, err) {
						return
					}
					time.Sleep(time.Millisecond) // leave the writer the machine's cores
				}
			})
		}
		wg.Go(func() {
			for !stopped() {
				if err := e.Rebuild(ctx, facilities.Name, nil); err != nil {
					record(answer{}, err)
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
		_, err := e.Reader().WaitFor(ctx, facilities.Name, env.Head(t), time.Minute)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return swaps > 0 || len(errs) > 0
		}, time.Minute, 10*time.Millisecond)
		close(stop)
		wg.Wait()
		require.Empty(t, errs)

		// Each facility stream's event positions, ascending.
		streams := map[string][]uint64{}
		evs, err := env.Store.ReadAll(ctx, 0, 1_000_000, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
		require.NoError(t, err)
		for _, ev := range evs {
			id := ev.Stream[len("facility-"):]
			streams[id] = append(streams[id], ev.Position)
		}
		// at returns how many events of a facility are at or before pos.
		at := func(id string, pos uint64) int {
			n, _ := slices.BinarySearch(streams[id], pos+1)
			return n
		}
		var kinds [4]int
		for _, a := range answers {
			switch {
			case a.id != "" && !a.found:
				kinds[0]++
				require.Zero(t, at(a.id, a.pos), "%s not found at position %d; its events: %v", a.id, a.pos, streams[a.id])
			case a.id != "":
				kinds[1]++
				n := at(a.id, a.pos)
				require.Positive(t, n, "%s found at position %d, before its registration", a.id, a.pos)
				require.Equal(t, uint64(n), a.one.Version, "%s at position %d", a.id, a.pos)
				require.Equal(t, streams[a.id][n-1], a.one.Position, "%s at position %d", a.id, a.pos)
			case a.total != nil:
				kinds[2]++
				var registered int64
				for id := range streams {
					if at(id, a.pos) > 0 {
						registered++
					}
				}
				require.Equal(t, registered, a.total.Registered, "facilities registered at position %d", a.pos)
			default:
				kinds[3]++
				type latest struct {
					id  string
					pos uint64
				}
				var want []latest
				for id, ps := range streams {
					if n := at(id, a.pos); n > 0 {
						want = append(want, latest{id, ps[n-1]})
					}
				}
				slices.SortFunc(want, func(x, y latest) int { return cmp.Compare(y.pos, x.pos) })
				var got []latest
				for _, f := range a.recent {
					got = append(got, latest{f.ID, f.Position})
				}
				require.Equal(t, want[:min(pageSize, len(want))], got, "the latest changed at position %d", a.pos)
			}
		}
		for i, n := range kinds {
			require.Positive(t, n, "no answer of kind %d: the race did not run", i)
		}
		t.Logf("%d answers (missing, found, totals, pages: %v), %d swaps", len(answers), kinds, swaps)
	})
}
