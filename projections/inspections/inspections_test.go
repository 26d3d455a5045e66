package inspections_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/deviations/deviationstest"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// oInspection is an inspection as the raw log, corrections applied, says.
type oInspection struct {
	facility *oFacility
	eventID  string
	e        facility.InspectedV1
	findings map[facility.DeviationKind]int64
}

type oFacility struct {
	id                                      string
	fiscalYear                              int
	province, county, agency, program, bank string
}

// oracle is the log recomputed the plain way: every inspection with its
// facility's current dimensions, its corrected figures and its findings.
type oracle struct {
	inspections []*oInspection
	// What the history exercised.
	corrections map[facility.Field]int
	auditorOwn  int // cases opened without an inspection
	streams     map[string][]domain.Recorded
}

func recompute(t *testing.T, st eventstore.Store) *oracle {
	t.Helper()
	reg := schema.Registry()
	o := &oracle{corrections: map[facility.Field]int{}, streams: map[string][]domain.Recorded{}}
	facs := map[string]*oFacility{}
	byFacility := map[string][]*oInspection{}
	var after uint64
	for {
		evs, err := st.ReadAll(context.Background(), after, 1000, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
		require.NoError(t, err)
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			env, err := projections.Decode(reg, &evs[i])
			require.NoError(t, err)
			after = env.Position
			o.streams[env.Stream] = append(o.streams[env.Stream], env.Recorded())
			id, _ := facility.IDFromStream(env.Stream)
			f := facs[id]
			switch e := env.Event.(type) {
			case facility.RegisteredV1:
				facs[id] = &oFacility{id: id, fiscalYear: e.FiscalYear, province: e.Province, county: e.County, agency: e.Agency, program: e.Program}
			case facility.ReviewedV1:
				if e.Decision == facility.ReviewApproved {
					f.bank = e.Bank
				}
			case facility.InspectedV1:
				in := &oInspection{facility: f, eventID: env.ID, e: e, findings: map[facility.DeviationKind]int64{}}
				o.inspections = append(o.inspections, in)
				byFacility[id] = append(byFacility[id], in)
			case facility.DeviationOpenedV1:
				if e.InspectionID == "" {
					o.auditorOwn++
				}
				for _, in := range byFacility[id] {
					if e.InspectionID != "" && in.e.InspectionID == e.InspectionID {
						in.findings[e.Kind]++
					}
				}
			case facility.CorrectedV1:
				switch e.Field {
				case facility.FieldCounty:
					f.county = e.NewValue.Str
				case facility.FieldConfirmed, facility.FieldVerifiedJobs:
					for _, in := range byFacility[id] {
						if in.eventID == e.CorrectsEventID {
							if e.Field == facility.FieldConfirmed {
								in.e.Confirmed = e.NewValue.Bool
							} else {
								in.e.VerifiedJobs = int(e.NewValue.Int)
							}
						}
					}
				}
				o.corrections[e.Field]++
			}
		}
	}
	return o
}

// dim returns the inspection's value of a dimension.
func (in *oInspection) dim(d inspections.Dim) any {
	f := in.facility
	switch d {
	case inspections.DimFiscalYear:
		return f.fiscalYear
	case inspections.DimProvince:
		return f.province
	case inspections.DimCounty:
		return f.county
	case inspections.DimAgency:
		return f.agency
	case inspections.DimProgram:
		return f.program
	case inspections.DimBank:
		return f.bank
	case inspections.DimFirm:
		return in.e.Firm
	}
	return in.e.GuidelineVersion
}

func (in *oInspection) matches(f inspections.Filter) bool {
	x := in.facility
	return (f.FiscalYear == 0 || x.fiscalYear == f.FiscalYear) && (f.Province == "" || x.province == f.Province) &&
		(f.County == "" || x.county == f.County) && (f.Agency == "" || x.agency == f.Agency) &&
		(f.Program == "" || x.program == f.Program) && (f.Bank == "" || x.bank == f.Bank) &&
		(f.Firm == "" || in.e.Firm == f.Firm) && (f.Guideline == "" || in.e.GuidelineVersion == f.Guideline)
}

// expect aggregates the matching inspections by the package's definitions,
// ordered by the grouped dimensions.
func (o *oracle) expect(f inspections.Filter, groupBy ...inspections.Dim) []inspections.Group {
	type acc struct {
		g                    inspections.Group
		facilities, confirms map[string]bool
	}
	groups := map[[8]any]*acc{}
	var keys [][8]any
	for _, in := range o.inspections {
		if !in.matches(f) {
			continue
		}
		var k [8]any
		for i, d := range groupBy {
			k[i] = in.dim(d)
		}
		a := groups[k]
		if a == nil {
			a = &acc{facilities: map[string]bool{}, confirms: map[string]bool{}}
			for _, d := range groupBy {
				switch v := in.dim(d).(type) {
				case int:
					a.g.FiscalYear = v
				case string:
					*field(&a.g, d) = v
				}
			}
			groups[k] = a
			keys = append(keys, k)
		}
		g := &a.g
		g.Inspections++
		a.facilities[in.facility.id] = true
		if in.e.Confirmed {
			a.confirms[in.facility.id] = true
			g.ConfirmedInspections++
			g.JobsVerified += int64(in.e.VerifiedJobs)
		}
		switch in.e.Status {
		case facility.InspectionActive:
			g.Statuses.Active++
		case facility.InspectionInactive:
			g.Statuses.Inactive++
		case facility.InspectionNotFound:
			g.Statuses.NotFound++
		case facility.InspectionMisused:
			g.Statuses.Misused++
		}
		g.Findings.Deviation += in.findings[facility.KindDeviation]
		g.Findings.Violation += in.findings[facility.KindViolation]
		g.Findings.Discrepancy += in.findings[facility.KindDiscrepancy]
	}
	out := make([]inspections.Group, 0, len(keys))
	for _, k := range keys {
		a := groups[k]
		a.g.Facilities, a.g.ConfirmedFacilities = int64(len(a.facilities)), int64(len(a.confirms))
		a.g.ConfirmationRate = float64(a.g.ConfirmedFacilities) / float64(a.g.Facilities)
		out = append(out, a.g)
	}
	slices.SortFunc(out, func(a, b inspections.Group) int { return compareDims(a, b, groupBy) })
	if len(groupBy) == 0 && len(out) == 0 {
		out = append(out, inspections.Group{})
	}
	return out
}

func field(g *inspections.Group, d inspections.Dim) *string {
	switch d {
	case inspections.DimProvince:
		return &g.Province
	case inspections.DimCounty:
		return &g.County
	case inspections.DimAgency:
		return &g.Agency
	case inspections.DimProgram:
		return &g.Program
	case inspections.DimBank:
		return &g.Bank
	case inspections.DimFirm:
		return &g.Firm
	}
	return &g.Guideline
}

func compareDims(a, b inspections.Group, groupBy []inspections.Dim) int {
	for _, d := range groupBy {
		var c int
		if d == inspections.DimFiscalYear {
			c = cmp.Compare(a.FiscalYear, b.FiscalYear)
		} else {
			c = cmp.Compare(*field(&a, d), *field(&b, d))
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func run(t *testing.T, env *projectionstest.Env, batch int) *projections.Engine {
	t.Helper()
	e, err := projections.New(projections.Config{
		Store: env.Store, DB: env.DB, Projectors: []projections.Projector{inspections.New()}, BatchSize: batch,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	_, err = e.Reader().WaitFor(context.Background(), inspections.Name, env.Head(t), 60*time.Second)
	require.NoError(t, err)
	return e
}

var all = []inspections.Dim{
	inspections.DimFiscalYear, inspections.DimProvince, inspections.DimCounty, inspections.DimAgency,
	inspections.DimProgram, inspections.DimBank, inspections.DimFirm, inspections.DimGuideline,
}

func TestReadModelMatchesTheLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		deviationstest.Build(t, env, 60, 1)
		run(t, env, 37) // small batches: many boundaries, rows reloaded across them
		head := env.Head(t)
		o := recompute(t, env.Store)
		r := inspections.NewReader(env.DB)
		ctx := context.Background()

		// The history exercised what the figures must reflect.
		for _, f := range []facility.Field{facility.FieldCounty, facility.FieldConfirmed, facility.FieldVerifiedJobs} {
			require.Positive(t, o.corrections[f], "no correction of %s in the history", f)
		}
		require.Positive(t, o.auditorOwn, "no case opened without an inspection")
		total := o.expect(inspections.Filter{})[0]
		require.Positive(t, total.Findings.Deviation)
		require.Positive(t, total.Findings.Violation)
		require.Positive(t, total.Findings.Discrepancy)
		require.Positive(t, total.Statuses.Active*total.Statuses.Inactive*total.Statuses.NotFound*total.Statuses.Misused)
		require.Less(t, total.Facilities, total.Inspections, "no facility inspected twice")
		require.Less(t, total.ConfirmedFacilities, total.Facilities)
		require.Positive(t, total.ConfirmedFacilities)

		// The oracle's inspections are the domain's (corrections applied).
		n := 0
		for _, recs := range o.streams {
			n += len(facility.Decider().Fold(recs).Inspections())
		}
		require.Len(t, o.inspections, n)

		for _, c := range []struct {
			f       inspections.Filter
			groupBy []inspections.Dim
		}{
			{inspections.Filter{}, nil},
			{inspections.Filter{}, all},
			{inspections.Filter{}, []inspections.Dim{inspections.DimProvince, inspections.DimAgency, inspections.DimFirm, inspections.DimGuideline}},
			{inspections.Filter{}, []inspections.Dim{inspections.DimFirm}},
			{inspections.Filter{}, []inspections.Dim{inspections.DimGuideline}},
			{inspections.Filter{}, []inspections.Dim{inspections.DimProvince}},
			{inspections.Filter{}, []inspections.Dim{inspections.DimGuideline, inspections.DimProvince}},
			{inspections.Filter{FiscalYear: 1403}, []inspections.Dim{inspections.DimAgency}},
			{inspections.Filter{Firm: deviationstest.FirmOf(t, 0)}, []inspections.Dim{inspections.DimProvince}},
			{inspections.Filter{Guideline: "1403-v2"}, []inspections.Dim{inspections.DimBank}},
			{inspections.Filter{Province: "IR-23", County: "IR-23-pardis"}, []inspections.Dim{inspections.DimFirm}},
			{inspections.Filter{Program: "home-business", Bank: "post-bank"}, nil},
			{inspections.Filter{Firm: deviationstest.FirmOf(t, 1), Guideline: "1402-v1"}, []inspections.Dim{inspections.DimFiscalYear}},
		} {
			want := o.expect(c.f, c.groupBy...)
			require.NotZero(t, want[0].Inspections, "%+v selects nothing: a weak check", c.f)
			got, err := r.Stats(ctx, c.f, inspections.Query{GroupBy: c.groupBy})
			require.NoError(t, err)
			require.Equal(t, head, got.Position)
			require.Equal(t, want, got.Groups, "%+v by %v", c.f, c.groupBy)
		}
		// Grouping by firm alone counts a facility inspected by two firms
		// under each: the check above would not notice if no facility were.
		byFirm := o.expect(inspections.Filter{}, inspections.DimFirm)
		var sum int64
		for _, g := range byFirm {
			sum += g.Facilities
		}
		require.Greater(t, sum, total.Facilities, "no facility inspected by two firms: a weak check")

		// Sorting and limits.
		groupBy := []inspections.Dim{inspections.DimProvince, inspections.DimFirm}
		want := o.expect(inspections.Filter{}, groupBy...)
		for _, c := range []struct {
			q   inspections.Query
			cmp func(a, b inspections.Group) int
		}{
			{inspections.Query{Sort: inspections.SortConfirmationRate, Order: inspections.Asc}, func(a, b inspections.Group) int {
				return cmp.Compare(a.ConfirmationRate, b.ConfirmationRate)
			}},
			{inspections.Query{Sort: inspections.SortFindings}, func(a, b inspections.Group) int {
				return -cmp.Compare(a.Findings.Total(), b.Findings.Total())
			}},
			{inspections.Query{Sort: inspections.SortInspections, Limit: 3}, func(a, b inspections.Group) int {
				return -cmp.Compare(a.Inspections, b.Inspections)
			}},
			{inspections.Query{Sort: inspections.SortFacilities, Order: inspections.Asc}, func(a, b inspections.Group) int {
				return cmp.Compare(a.Facilities, b.Facilities)
			}},
			{inspections.Query{Sort: inspections.SortConfirmed}, func(a, b inspections.Group) int {
				return -cmp.Compare(a.ConfirmedFacilities, b.ConfirmedFacilities)
			}},
			{inspections.Query{Sort: inspections.SortDims, Order: inspections.Desc}, func(a, b inspections.Group) int {
				return -compareDims(a, b, groupBy)
			}},
		} {
			c.q.GroupBy = groupBy
			exp := slices.Clone(want)
			slices.SortStableFunc(exp, c.cmp)
			if c.q.Limit > 0 {
				exp = exp[:c.q.Limit]
			}
			got, err := r.Stats(ctx, inspections.Filter{}, c.q)
			require.NoError(t, err)
			require.Equal(t, exp, got.Groups, "%+v", c.q)
		}

		// Bad input.
		for _, q := range []inspections.Query{
			{GroupBy: []inspections.Dim{"stage"}},
			{GroupBy: []inspections.Dim{inspections.DimFirm, inspections.DimFirm}},
			{Sort: "rate"},
			{Order: "up"},
			{Limit: -1},
		} {
			_, err := r.Stats(ctx, inspections.Filter{}, q)
			require.ErrorIs(t, err, domain.ErrInvalid, "%+v", q)
		}
	})
}

func TestRebuildIsByteIdenticalAndQueriesKeepWorking(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h, a := deviationstest.Build(t, env, 45, 2)
		e := run(t, env, 7) // tiny batches, here and in the rebuilds below: every boundary case
		dump := func() [][]string {
			return [][]string{
				projectionstest.Dump(t, env.DB, inspections.FacilitiesTable, "facility_id"),
				projectionstest.Dump(t, env.DB, inspections.InspectionsTable, "facility_id", "seq"),
				projectionstest.Dump(t, env.DB, inspections.StatsTable, "level", "fiscal_year", "province", "county", "agency",
					"program", "bank", "firm", "guideline"),
			}
		}
		before := dump()
		for _, rows := range before {
			require.NotEmpty(t, rows)
		}
		r := inspections.NewReader(env.DB)
		total, err := r.Stats(context.Background(), inspections.Filter{}, inspections.Query{})
		require.NoError(t, err)

		// Queries run throughout the rebuild, which replays the log in
		// tiny batches and computes inspection_stats with Finish.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		queries := 0
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := r.Stats(context.Background(), inspections.Filter{}, inspections.Query{})
				require.NoError(t, err)
				require.Equal(t, total.Groups, s.Groups)
				queries++
			}
		})
		err = e.Rebuild(context.Background(), inspections.Name, nil)
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		require.Positive(t, queries)
		require.Equal(t, before, dump(), "a rebuild gives byte-identical tables")

		// A rebuild with live traffic: the swapped-in tables include what
		// arrived during it, and the live runner goes on with them; a
		// rebuild in large batches then gives the same tables.
		traffic := make(chan struct{})
		go func() {
			defer close(traffic)
			h.Step()
			a.Round()
		}()
		require.NoError(t, e.Rebuild(context.Background(), inspections.StatsTable, nil))
		<-traffic
		_, err = e.Reader().WaitFor(context.Background(), inspections.Name, env.Head(t), 10*time.Second)
		require.NoError(t, err)
		after := dump()
		require.NotEqual(t, before, after, "the traffic changed nothing: a weak check")
		big, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{inspections.New()}, BatchSize: 5000})
		require.NoError(t, err)
		require.NoError(t, big.Rebuild(context.Background(), inspections.Name, nil))
		require.Equal(t, after, dump())
	})
}
