package deviations_test

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
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/deviations/deviationstest"
	"github.com/payesh/payesh/projections/projectionstest"
)

// logEvent is a decoded facility event of the raw log.
type logEvent struct {
	env projections.Envelope
	rec domain.Recorded
}

// readLog reads and decodes every facility event of the log, in order.
func readLog(t *testing.T, st eventstore.Store) []logEvent {
	t.Helper()
	reg := schema.Registry()
	var (
		out   []logEvent
		after uint64
	)
	for {
		evs, err := st.ReadAll(context.Background(), after, 1000, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
		require.NoError(t, err)
		if len(evs) == 0 {
			return out
		}
		for i := range evs {
			env, err := projections.Decode(reg, &evs[i])
			require.NoError(t, err)
			out = append(out, logEvent{env: env, rec: env.Recorded()})
			after = evs[i].Position
		}
	}
}

func micros(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

// expected is the read model recomputed from the raw log by the package's
// definitions, written the plain way: one pass, whole-log state.
type expected struct {
	cases map[[2]string]*deviations.Trail
	order [][2]string // by facility id, deviation id
	// What the history exercised.
	bankNamedLater int                    // cases opened before the facility was referred
	corrections    map[facility.Field]int // corrected steps by field
	actions        map[deviations.Action]int
	actors         map[string]bool
}

func recompute(t *testing.T, log []logEvent) *expected {
	t.Helper()
	type insp struct {
		id, eventID string
		e           facility.InspectedV1
	}
	type fac struct {
		fy                                      int
		province, county, agency, program, bank string
		ins                                     []*insp
		cases                                   []*deviations.Trail
	}
	x := &expected{cases: map[[2]string]*deviations.Trail{}, corrections: map[facility.Field]int{},
		actions: map[deviations.Action]int{}, actors: map[string]bool{}}
	facs := map[string]*fac{}
	show := func(d *deviations.Deviation, in *insp) {
		d.Inspection = &deviations.Inspection{Firm: in.e.Firm, Guideline: in.e.GuidelineVersion, Status: in.e.Status,
			Confirmed: in.e.Confirmed, VerifiedJobs: in.e.VerifiedJobs}
	}
	addStep := func(c *deviations.Trail, env projections.Envelope, s deviations.Step) {
		s.Step = len(c.Steps) + 1
		s.Actor, s.OccurredAt, s.RecordedAt = env.Actor, micros(env.OccurredAt), micros(env.RecordedAt)
		s.EventID, s.EventType, s.StreamVersion, s.Position = env.ID, env.Type, env.Version, env.Position
		s.CorrelationID, s.CausationID = env.CorrelationID, env.CausationID
		c.Steps = append(c.Steps, s)
		c.Deviation.Steps, c.Deviation.LastStepAt, c.Deviation.Position = len(c.Steps), s.OccurredAt, env.Position
		x.actions[s.Action]++
		x.actors[env.Actor.ID] = true
	}
	for _, le := range log {
		env := le.env
		id, ok := facility.IDFromStream(env.Stream)
		require.True(t, ok)
		f := facs[id]
		switch e := env.Event.(type) {
		case facility.RegisteredV1:
			f = &fac{fy: e.FiscalYear, province: e.Province, county: e.County, agency: e.Agency, program: e.Program}
			facs[id] = f
		case facility.ReviewedV1:
			if e.Decision == facility.ReviewApproved {
				f.bank = e.Bank
				for _, c := range f.cases {
					c.Deviation.Bank, c.Deviation.Position = e.Bank, env.Position
					x.bankNamedLater++
				}
			}
		case facility.InspectedV1:
			f.ins = append(f.ins, &insp{id: e.InspectionID, eventID: env.ID, e: e})
		case facility.DeviationOpenedV1:
			c := &deviations.Trail{Deviation: deviations.Deviation{
				FacilityID: id, DeviationID: e.DeviationID, FiscalYear: f.fy, Province: f.province, County: f.county,
				Agency: f.agency, Program: f.program, Bank: f.bank, Kind: e.Kind, State: deviations.StateOpen,
				Description: e.Description, InspectionID: e.InspectionID, OpenedAt: micros(env.OccurredAt),
				OpenedBy: env.Actor.ID, OpenedPosition: env.Position,
			}}
			for _, in := range f.ins {
				if e.InspectionID != "" && in.id == e.InspectionID {
					show(&c.Deviation, in)
				}
			}
			addStep(c, env, deviations.Step{Action: deviations.ActionOpened, Kind: e.Kind, InspectionID: e.InspectionID, Description: e.Description})
			f.cases = append(f.cases, c)
			x.cases[[2]string{id, e.DeviationID}] = c
		case facility.DeviationEvidenceAddedV1:
			c := x.cases[[2]string{id, e.DeviationID}]
			c.Deviation.Evidence++
			addStep(c, env, deviations.Step{Action: deviations.ActionEvidenceAdded, Evidence: e.Evidence, DocumentRef: e.DocumentRef})
		case facility.DeviationResolvedV1:
			c := x.cases[[2]string{id, e.DeviationID}]
			d := &c.Deviation
			at := micros(env.OccurredAt)
			d.State, d.Resolution, d.RecoveredRials, d.ResolutionNote, d.ResolvedAt, d.ResolvedBy =
				deviations.StateResolved, e.Resolution, e.RecoveredRials, e.Note, &at, env.Actor.ID
			addStep(c, env, deviations.Step{Action: deviations.ActionResolved, Resolution: e.Resolution, RecoveredRials: e.RecoveredRials, Note: e.Note})
		case facility.CorrectedV1:
			var affected []*deviations.Trail
			switch e.Field {
			case facility.FieldCounty:
				f.county = e.NewValue.Str
				for _, c := range f.cases {
					c.Deviation.County = f.county
					affected = append(affected, c)
				}
			case facility.FieldConfirmed, facility.FieldVerifiedJobs:
				for _, in := range f.ins {
					if in.eventID != e.CorrectsEventID {
						continue
					}
					if e.Field == facility.FieldConfirmed {
						in.e.Confirmed = e.NewValue.Bool
					} else {
						in.e.VerifiedJobs = int(e.NewValue.Int)
					}
					for _, c := range f.cases {
						if c.Deviation.InspectionID == in.id {
							show(&c.Deviation, in)
							affected = append(affected, c)
						}
					}
				}
			}
			for _, c := range affected {
				addStep(c, env, deviations.Step{Action: deviations.ActionCorrected, Correction: &deviations.Correction{
					CorrectsEventID: e.CorrectsEventID, CorrectsEventType: e.CorrectsEventType, Field: e.Field,
					OldValue: e.OldValue, NewValue: e.NewValue, Reason: e.Reason,
				}})
				x.corrections[e.Field]++
			}
		}
	}
	for k := range x.cases {
		x.order = append(x.order, k)
	}
	slices.SortFunc(x.order, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	return x
}

// run starts an Engine over env with the projector and returns it once the
// read model reflects the head.
func run(t *testing.T, env *projectionstest.Env, batch int) *projections.Engine {
	t.Helper()
	e, err := projections.New(projections.Config{
		Store: env.Store, DB: env.DB, Projectors: []projections.Projector{deviations.New()}, BatchSize: batch,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	_, err = e.Reader().WaitFor(context.Background(), deviations.Name, env.Head(t), 60*time.Second)
	require.NoError(t, err)
	return e
}

// list pages through every case matching f, seven at a time.
func list(t *testing.T, r *deviations.Reader, f deviations.Filter, s deviations.Sort, head uint64) []deviations.Deviation {
	t.Helper()
	var out []deviations.Deviation
	page := deviations.Page{Limit: 7, Sort: s}
	for {
		p, err := r.Deviations(context.Background(), f, page)
		require.NoError(t, err)
		require.Equal(t, head, p.Position)
		out = append(out, p.Deviations...)
		if p.Next == "" {
			return out
		}
		page.After = p.Next
	}
}

func matches(f deviations.Filter, d deviations.Deviation) bool {
	return (f.FiscalYear == 0 || d.FiscalYear == f.FiscalYear) && (f.Province == "" || d.Province == f.Province) &&
		(f.County == "" || d.County == f.County) && (f.Agency == "" || d.Agency == f.Agency) &&
		(f.Program == "" || d.Program == f.Program) && (f.Bank == "" || d.Bank == f.Bank) &&
		(f.State == "" || d.State == f.State) && (f.Kind == "" || d.Kind == f.Kind) &&
		(f.FacilityID == "" || d.FacilityID == f.FacilityID)
}

func TestReadModelMatchesTheLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		deviationstest.Build(t, env, 60, 1)
		run(t, env, 37) // small batches: many boundaries, rows reloaded across them
		head := env.Head(t)
		log := readLog(t, env.Store)
		x := recompute(t, log)
		r := deviations.NewReader(env.DB)
		ctx := context.Background()

		// The history exercised what the read model must show.
		for _, a := range []deviations.Action{deviations.ActionOpened, deviations.ActionEvidenceAdded, deviations.ActionResolved, deviations.ActionCorrected} {
			require.Positive(t, x.actions[a], "no %s step in the history", a)
		}
		for _, f := range []facility.Field{facility.FieldCounty, facility.FieldConfirmed, facility.FieldVerifiedJobs} {
			require.Positive(t, x.corrections[f], "no corrected step of %s in the history", f)
		}
		require.Positive(t, x.bankNamedLater, "no case opened before its facility was referred")
		require.GreaterOrEqual(t, len(x.actors), 4, "the steps have too few distinct actors")
		kinds, recovered, auditors := map[facility.DeviationKind]int{}, 0, 0
		for _, c := range x.cases {
			kinds[c.Deviation.Kind]++
			if c.Deviation.RecoveredRials > 0 {
				recovered++
			}
			if c.Deviation.InspectionID == "" {
				auditors++
			}
		}
		require.Len(t, kinds, 3)
		require.Positive(t, recovered, "no case recovered funds")
		require.Positive(t, auditors, "no case without an inspection")

		// Every case's current state, and its trail, step by step.
		all := list(t, r, deviations.Filter{}, deviations.SortID, head)
		require.Len(t, all, len(x.order))
		for i, k := range x.order {
			want := x.cases[k]
			require.Equal(t, want.Deviation, all[i], "case %s", k)
			trail, err := r.Trail(ctx, k[0], k[1])
			require.NoError(t, err)
			require.Equal(t, head, trail.Position)
			require.Equal(t, want.Deviation, trail.Deviation)
			require.Equal(t, want.Steps, trail.Steps, "trail of %s", k)
		}

		// The current state agrees with the domain's own fold of each
		// facility (an oracle independent of the recomputation above).
		streams := map[string][]domain.Recorded{}
		for _, le := range log {
			streams[le.env.Stream] = append(streams[le.env.Stream], le.rec)
		}
		for _, recs := range streams {
			f := facility.Decider().Fold(recs)
			for _, d := range f.Deviations() {
				trail, err := r.Trail(ctx, f.ID(), d.ID)
				require.NoError(t, err)
				got := trail.Deviation
				require.Equal(t, []any{f.FiscalYear(), f.Province(), f.County(), f.Agency(), f.Program(), f.Bank()},
					[]any{got.FiscalYear, got.Province, got.County, got.Agency, got.Program, got.Bank})
				require.Equal(t, d.Kind, got.Kind)
				require.Equal(t, d.Description, got.Description)
				require.Equal(t, d.InspectionID, got.InspectionID)
				require.Equal(t, micros(d.OpenedAt), got.OpenedAt)
				require.Equal(t, d.Open(), got.State == deviations.StateOpen)
				require.Equal(t, d.Resolution, got.Resolution)
				require.Equal(t, d.RecoveredRials, got.RecoveredRials)
				require.Equal(t, d.ResolutionNote, got.ResolutionNote)
				if !d.Open() {
					require.Equal(t, micros(d.ResolvedAt), *got.ResolvedAt)
				}
				var evidence []facility.Evidence
				for _, s := range trail.Steps {
					if s.Action == deviations.ActionEvidenceAdded {
						evidence = append(evidence, facility.Evidence{Text: s.Evidence, DocumentRef: s.DocumentRef, At: s.OccurredAt})
					}
				}
				for i := range d.Evidence {
					d.Evidence[i].At = micros(d.Evidence[i].At)
				}
				require.Equal(t, d.Evidence, evidence)
				require.Equal(t, len(d.Evidence), got.Evidence)
				if in, ok := f.Inspection(d.InspectionID); ok {
					require.Equal(t, &deviations.Inspection{Firm: in.Firm, Guideline: in.GuidelineVersion, Status: in.Status,
						Confirmed: in.Confirmed, VerifiedJobs: in.VerifiedJobs}, got.Inspection)
				} else {
					require.Nil(t, got.Inspection)
				}
			}
		}

		// Filters.
		one := all[len(all)/2].FacilityID
		for _, f := range []deviations.Filter{
			{State: deviations.StateOpen}, {State: deviations.StateResolved, Program: "rural-nomadic"},
			{Kind: facility.KindViolation}, {Province: "IR-23", County: "IR-23-pardis"}, {FiscalYear: 1403, Agency: "welfare"},
			{Bank: "post-bank"}, {FacilityID: one},
		} {
			var want []deviations.Deviation
			for _, k := range x.order {
				if d := x.cases[k].Deviation; matches(f, d) {
					want = append(want, d)
				}
			}
			require.NotEmpty(t, want, "%+v selects nothing: a weak check", f)
			require.Equal(t, want, list(t, r, f, deviations.SortID, head), "%+v", f)
		}

		// The other orders list every case once, in order.
		for _, s := range []deviations.Sort{deviations.SortOpened, deviations.SortUpdated, deviations.SortRecovered, ""} {
			got := list(t, r, deviations.Filter{}, s, head)
			require.Len(t, got, len(all))
			seen := map[[2]string]bool{}
			for i, d := range got {
				seen[[2]string{d.FacilityID, d.DeviationID}] = true
				if i == 0 {
					continue
				}
				prev := got[i-1]
				switch s {
				case deviations.SortOpened, "":
					require.Greater(t, prev.OpenedPosition, d.OpenedPosition)
				case deviations.SortUpdated:
					require.True(t, prev.Position > d.Position || prev.Position == d.Position && prev.OpenedPosition > d.OpenedPosition)
				case deviations.SortRecovered:
					require.True(t, prev.RecoveredRials > d.RecoveredRials ||
						prev.RecoveredRials == d.RecoveredRials && prev.OpenedPosition > d.OpenedPosition)
				}
			}
			require.Len(t, seen, len(all))
		}
		open := list(t, r, deviations.Filter{State: deviations.StateOpen, Province: "IR-23"}, deviations.SortRecovered, head)
		for _, d := range open {
			require.Zero(t, d.RecoveredRials)
			require.Equal(t, "IR-23", d.Province)
		}

		// Bad input.
		p, err := r.Deviations(ctx, deviations.Filter{}, deviations.Page{Limit: 2, Sort: deviations.SortOpened})
		require.NoError(t, err)
		require.NotEmpty(t, p.Next)
		for _, bad := range []struct {
			f deviations.Filter
			p deviations.Page
		}{
			{deviations.Filter{State: "closed"}, deviations.Page{}},
			{deviations.Filter{Kind: "fraud"}, deviations.Page{}},
			{deviations.Filter{}, deviations.Page{Sort: "oldest"}},
			{deviations.Filter{}, deviations.Page{Limit: -1}},
			{deviations.Filter{}, deviations.Page{After: "bogus!"}},
			{deviations.Filter{}, deviations.Page{After: p.Next, Sort: deviations.SortRecovered}}, // another sort's cursor
		} {
			_, err := r.Deviations(ctx, bad.f, bad.p)
			require.ErrorIs(t, err, domain.ErrInvalid, "%+v %+v", bad.f, bad.p)
		}
		_, err = r.Trail(ctx, all[0].FacilityID, "no-such-case")
		require.ErrorIs(t, err, domain.ErrNotFound)
	})
}

func TestRebuildIsByteIdenticalAndQueriesKeepWorking(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h, a := deviationstest.Build(t, env, 45, 2)
		e := run(t, env, 7) // tiny batches, here and in the rebuilds below: every boundary case
		dump := func() [][]string {
			return [][]string{
				projectionstest.Dump(t, env.DB, deviations.DeviationsTable, "facility_id", "deviation_id"),
				projectionstest.Dump(t, env.DB, deviations.StepsTable, "facility_id", "deviation_id", "step"),
				projectionstest.Dump(t, env.DB, deviations.FacilitiesTable, "facility_id"),
				projectionstest.Dump(t, env.DB, deviations.InspectionsTable, "facility_id", "inspection_id"),
			}
		}
		before := dump()
		for _, rows := range before {
			require.NotEmpty(t, rows)
		}

		// Queries run throughout the rebuild.
		r := deviations.NewReader(env.DB)
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
				p, err := r.Deviations(context.Background(), deviations.Filter{}, deviations.Page{Limit: 1000})
				require.NoError(t, err)
				require.Len(t, p.Deviations, len(before[0]))
				queries++
			}
		})
		err := e.Rebuild(context.Background(), deviations.Name, nil) // in batches of 7
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		require.Positive(t, queries)
		require.Equal(t, before, dump(), "a rebuild gives byte-identical tables")

		// A rebuild with live traffic, in large batches: the swapped-in
		// tables include what arrived during it, and the live runner goes
		// on with them.
		traffic := make(chan struct{})
		go func() {
			defer close(traffic)
			h.Step()
			a.Round()
		}()
		require.NoError(t, e.Rebuild(context.Background(), deviations.StepsTable, nil))
		<-traffic
		_, err = e.Reader().WaitFor(context.Background(), deviations.Name, env.Head(t), 10*time.Second)
		require.NoError(t, err)
		after := dump()
		require.NotEqual(t, before, after, "the traffic changed nothing: a weak check")
		big, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{deviations.New()}, BatchSize: 5000})
		require.NoError(t, err)
		require.NoError(t, big.Rebuild(context.Background(), deviations.Name, nil))
		require.Equal(t, after, dump())
	})
}
