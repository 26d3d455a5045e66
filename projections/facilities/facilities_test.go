package facilities_test

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/projectionstest"
)

// oracle folds every facility stream of the log with the domain's own
// decider: what the read models must show.
func oracle(t *testing.T, st eventstore.Store) map[string]facility.Facility {
	t.Helper()
	ctx := context.Background()
	reg := schema.Registry()
	streams := map[string][]domain.Recorded{}
	var after uint64
	for {
		evs, err := st.ReadAll(ctx, after, 1000, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
		require.NoError(t, err)
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			ev, err := reg.Decode(e.Type, e.Data)
			require.NoError(t, err)
			streams[e.Stream] = append(streams[e.Stream], domain.Recorded{
				ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
				OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Event: ev,
			})
			after = e.Position
		}
	}
	out := map[string]facility.Facility{}
	for _, recs := range streams {
		f := facility.Decider().Fold(recs)
		out[f.ID()] = f
	}
	return out
}

// expectedRow is the facilities row the oracle's state implies.
func expectedRow(f facility.Facility) facilities.Facility {
	want := facilities.Facility{
		ID: f.ID(), FiscalYear: f.FiscalYear(), Province: f.Province(), County: f.County(), Agency: f.Agency(),
		Program: f.Program(), Bank: f.Bank(), Stage: f.Stage(), Title: f.Title(),
		RequestedRials: f.RequestedRials(), ApprovedRials: f.ApprovedRials(), DisbursedRials: f.DisbursedRials(),
		Tranches: f.TrancheCount(), JobsPromised: f.JobsPromised(), Inspections: len(f.Inspections()),
		OpenDeviations: len(f.OpenDeviations()), RecoveredRials: f.RecoveredRials(),
		RegisteredAt: f.RegisteredAt().UTC(), Version: f.Version(),
	}
	if n, ok := f.JobsReported(); ok {
		want.JobsReported = &n
	}
	if n, ok := f.JobsVerified(); ok {
		want.JobsVerified = &n
	}
	if in, ok := f.LastInspection(); ok {
		want.LastInspection = &facilities.Inspection{ID: in.ID, Firm: in.Firm, Status: in.Status, Confirmed: in.Confirmed, At: in.At.UTC()}
	}
	if !f.FirstPaidAt().IsZero() {
		t := f.FirstPaidAt().UTC()
		want.FirstPaidAt = &t
	}
	return want
}

// expectedCounts aggregates the oracle's facilities into job counts by the
// package's definitions, grouped by key.
func expectedCounts(fs map[string]facility.Facility, key func(f facility.Facility) facilities.JobCount) []facilities.JobCount {
	groups := map[facilities.JobCount]*facilities.JobCount{}
	for _, f := range fs {
		k := key(f)
		g := groups[k]
		if g == nil {
			c := k
			g = &c
			groups[k] = g
		}
		one := func(b bool) int64 {
			if b {
				return 1
			}
			return 0
		}
		g.Registered++
		g.Reviewed += one(f.Expert() != "")
		g.Referred += one(f.Bank() != "")
		g.Approved += one(f.ApprovedRials() > 0)
		g.Disbursed += one(f.TrancheCount() > 0)
		g.Inspected += one(len(f.Inspections()) > 0)
		_, confirmed := f.JobsVerified()
		g.Confirmed += one(confirmed)
		g.ApprovedRials += f.ApprovedRials()
		g.DisbursedRials += f.DisbursedRials()
		g.JobsPromised += int64(f.JobsPromised())
		n, _ := f.JobsReported()
		g.JobsReported += int64(n)
		v, _ := f.JobsVerified()
		g.JobsVerified += int64(v)
	}
	out := make([]facilities.JobCount, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b facilities.JobCount) int {
		return cmp.Or(cmp.Compare(a.FiscalYear, b.FiscalYear), cmp.Compare(a.Province, b.Province), cmp.Compare(a.County, b.County),
			cmp.Compare(a.Agency, b.Agency), cmp.Compare(a.Program, b.Program), cmp.Compare(a.Bank, b.Bank))
	})
	return out
}

// run starts an Engine over env with the facilities projector and returns
// it once the read models reflect the head.
func run(t *testing.T, env *projectionstest.Env, batch int) *projections.Engine {
	t.Helper()
	e, err := projections.New(projections.Config{
		Store: env.Store, DB: env.DB, Projectors: []projections.Projector{facilities.New()}, BatchSize: batch,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	_, err = e.Reader().WaitFor(context.Background(), facilities.Name, env.Head(t), 60*time.Second)
	require.NoError(t, err)
	return e
}

func allFacilities(t *testing.T, r *facilities.Reader, f facilities.Filter, sortBy facilities.Sort) []facilities.Facility {
	t.Helper()
	var out []facilities.Facility
	page := facilities.Page{Limit: 7, Sort: sortBy}
	for {
		p, err := r.Facilities(context.Background(), f, page)
		require.NoError(t, err)
		out = append(out, p.Facilities...)
		if p.Next == "" {
			return out
		}
		page.After = p.Next
	}
}

func TestReadModelsMatchTheLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		projectionstest.Build(t, env.Service(t), 90, 1)
		run(t, env, 37) // small batches: many boundaries, rows reloaded across them
		want := oracle(t, env.Store)
		r := facilities.NewReader(env.DB)
		ctx := context.Background()

		rows := map[string]facilities.Facility{}
		for _, f := range allFacilities(t, r, facilities.Filter{}, facilities.SortID) {
			rows[f.ID] = f
		}
		require.Len(t, rows, len(want))
		fields := map[facility.Field]int{}
		for id, f := range want {
			got := rows[id]
			exp := expectedRow(f)
			// Dates the domain state does not expose are checked for presence.
			exp.ReviewedAt, exp.ReferredAt, exp.ApprovedAt, exp.ClosedAt = got.ReviewedAt, got.ReferredAt, got.ApprovedAt, got.ClosedAt
			exp.Position = got.Position
			require.Equal(t, exp, got, "facility %s", id)
			require.Equal(t, f.Bank() != "", got.ReferredAt != nil, id)
			require.Equal(t, f.ApprovedRials() > 0, got.ApprovedAt != nil, id)
			require.Equal(t, f.Stage() == facility.StageClosed, got.ClosedAt != nil, id)
			require.Equal(t, f.Expert() != "", got.ReviewedAt != nil, id)
		}
		// The history exercised every kind of correction.
		evs, err := env.Store.ReadAll(ctx, 0, 1_000_000, eventstore.Filter{Types: []string{facility.TypeCorrected}})
		require.NoError(t, err)
		reg := schema.Registry()
		for _, e := range evs {
			c, err := reg.Decode(e.Type, e.Data)
			require.NoError(t, err)
			fields[c.(facility.CorrectedV1).Field]++
		}
		for _, f := range []facility.Field{facility.FieldJobsPromised, facility.FieldRequestedRials, facility.FieldCounty,
			facility.FieldJobs, facility.FieldVerifiedJobs, facility.FieldConfirmed, facility.FieldAmountRials} {
			require.Positive(t, fields[f], "no correction of %s in the history", f)
		}

		// job_counts equals the aggregation of the folded facilities.
		all, err := r.JobCounts(ctx, facilities.Filter{}, facilities.DimFiscalYear, facilities.DimProvince, facilities.DimCounty,
			facilities.DimAgency, facilities.DimProgram, facilities.DimBank)
		require.NoError(t, err)
		require.Equal(t, env.Head(t), all.Position)
		require.Equal(t, expectedCounts(want, func(f facility.Facility) facilities.JobCount {
			return facilities.JobCount{FiscalYear: f.FiscalYear(), Province: f.Province(), County: f.County(),
				Agency: f.Agency(), Program: f.Program(), Bank: f.Bank()}
		}), all.Groups)

		// Grouped and filtered queries.
		byProvince, err := r.JobCounts(ctx, facilities.Filter{FiscalYear: 1403}, facilities.DimProvince)
		require.NoError(t, err)
		in1403 := map[string]facility.Facility{}
		for id, f := range want {
			if f.FiscalYear() == 1403 {
				in1403[id] = f
			}
		}
		require.Equal(t, expectedCounts(in1403, func(f facility.Facility) facilities.JobCount {
			return facilities.JobCount{Province: f.Province()}
		}), byProvince.Groups)
		total, err := r.JobCounts(ctx, facilities.Filter{})
		require.NoError(t, err)
		require.Len(t, total.Groups, 1)
		require.EqualValues(t, len(want), total.Groups[0].Registered)

		for _, filter := range []facilities.Filter{
			{Province: "IR-23"}, {Agency: "welfare", FiscalYear: 1402}, {Bank: "post-bank"},
			{Stage: facility.StageDisbursed}, {Program: "home-business", County: "IR-23-pardis"},
		} {
			var ids []string
			for id, f := range want {
				if (filter.Province == "" || f.Province() == filter.Province) && (filter.Agency == "" || f.Agency() == filter.Agency) &&
					(filter.FiscalYear == 0 || f.FiscalYear() == filter.FiscalYear) && (filter.Bank == "" || f.Bank() == filter.Bank) &&
					(filter.Stage == "" || f.Stage() == filter.Stage) && (filter.Program == "" || f.Program() == filter.Program) &&
					(filter.County == "" || f.County() == filter.County) {
					ids = append(ids, id)
				}
			}
			sort.Strings(ids)
			var got []string
			for _, f := range allFacilities(t, r, filter, facilities.SortID) {
				got = append(got, f.ID)
			}
			require.Equal(t, ids, got, "%+v", filter)
			require.NotEmpty(t, got, "%+v selects nothing: a weak check", filter)
		}
		// The other orders list every facility exactly once.
		for _, s := range []facilities.Sort{facilities.SortRecent, facilities.SortApproved} {
			list := allFacilities(t, r, facilities.Filter{}, s)
			require.Len(t, list, len(want))
			ids := map[string]bool{}
			for i, f := range list {
				ids[f.ID] = true
				if i > 0 && s == facilities.SortRecent {
					require.Greater(t, list[i-1].Position, f.Position)
				}
				if i > 0 && s == facilities.SortApproved {
					require.GreaterOrEqual(t, list[i-1].ApprovedRials, f.ApprovedRials)
				}
			}
			require.Len(t, ids, len(want))
		}
		_, err = r.Facilities(ctx, facilities.Filter{}, facilities.Page{After: "bogus", Sort: facilities.SortRecent})
		require.ErrorIs(t, err, domain.ErrInvalid)
		_, _, err = r.Facility(ctx, "f-9999")
		require.ErrorIs(t, err, domain.ErrNotFound)
		one, pos, err := r.Facility(ctx, "f-0001")
		require.NoError(t, err)
		require.Equal(t, rows["f-0001"], one)
		require.Equal(t, env.Head(t), pos)
	})
}

func TestRebuildIsByteIdenticalAndQueriesKeepWorking(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 60, 2)
		e := run(t, env, 1000)
		dump := func() [][]string {
			return [][]string{
				projectionstest.Dump(t, env.DB, facilities.FacilitiesTable, "facility_id"),
				projectionstest.Dump(t, env.DB, facilities.InspectionsTable, "facility_id", "seq"),
				projectionstest.Dump(t, env.DB, facilities.JobCountsTable, "fiscal_year", "province", "county", "agency", "program", "bank"),
			}
		}
		before := dump()
		require.NotEmpty(t, before[1])

		// Queries run throughout the rebuild, and more events arrive.
		r := facilities.NewReader(env.DB)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var queries int
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := r.Facilities(context.Background(), facilities.Filter{}, facilities.Page{Limit: 1000})
				require.NoError(t, err)
				require.Len(t, p.Facilities, len(h.Facilities))
				jc, err := r.JobCounts(context.Background(), facilities.Filter{})
				require.NoError(t, err)
				require.EqualValues(t, len(h.Facilities), jc.Groups[0].Registered)
				queries++
			}
		})
		var last uint64
		calls := 0
		err := e.Rebuild(context.Background(), facilities.Name, func(pos, head uint64) {
			require.GreaterOrEqual(t, pos, last)
			last = pos
			calls++
		})
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		require.Positive(t, calls)
		require.Positive(t, queries)
		require.Equal(t, before, dump(), "a rebuild gives byte-identical tables")
		require.False(t, projectionstest.TableExists(t, env.DB, facilities.FacilitiesTable+"__next"))

		// A rebuild with live traffic: the swapped-in tables include what
		// arrived during it, and the live runner goes on with them.
		traffic := make(chan struct{})
		go func() {
			defer close(traffic)
			h.Register(3)
			h.Step()
		}()
		require.NoError(t, e.Rebuild(context.Background(), facilities.JobCountsTable, nil))
		<-traffic
		_, err = e.Reader().WaitFor(context.Background(), facilities.JobCountsTable, env.Head(t), 10*time.Second)
		require.NoError(t, err)
		after := dump()
		require.NoError(t, e.Rebuild(context.Background(), facilities.Name, nil))
		require.Equal(t, after, dump())
		st := e.Status()
		require.Len(t, st, 1)
		require.Equal(t, projections.StateLive, st[0].State)
		require.Equal(t, env.Head(t), st[0].Position)
	})
}

func TestLiveEventIsVisibleQuickly(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 10, 3)
		e := run(t, env, 1000)
		r := e.Reader()
		var worst time.Duration
		for range 5 {
			time.Sleep(20 * time.Millisecond) // idle
			start := time.Now()
			h.Register(1)
			pos := env.Head(t)
			_, err := r.WaitFor(context.Background(), facilities.Name, pos, 5*time.Second)
			require.NoError(t, err)
			worst = max(worst, time.Since(start))
			id := h.Facilities[len(h.Facilities)-1].ID
			f, at, err := facilities.NewReader(env.DB).Facility(context.Background(), id)
			require.NoError(t, err)
			require.GreaterOrEqual(t, at, pos)
			require.Equal(t, facility.StageRegistered, f.Stage)
		}
		// The append itself is included; speed is judged by the benchmark.
		t.Logf("%s: append + visible in the read model, worst of 5 at idle: %s", b.Name, worst)

		_, err := r.WaitFor(context.Background(), facilities.Name, env.Head(t)+1, 50*time.Millisecond)
		var te *projections.WaitTimeoutError
		require.ErrorAs(t, err, &te)
		require.ErrorIs(t, err, projections.ErrWaitTimeout)
		require.Equal(t, env.Head(t), te.Reached)
		require.Contains(t, err.Error(), "up to position")
	})
}
