package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

// planIDs returns the ids of the history's facilities that keep selects,
// sorted.
func planIDs(e *queryEnv, keep func(p *projectionstest.Plan) bool) []string {
	var ids []string
	for _, p := range e.hist.Facilities {
		if keep == nil || keep(p) {
			ids = append(ids, p.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func idsOf(items []facilityView) []string {
	var ids []string
	for _, f := range items {
		ids = append(ids, f.ID)
	}
	return ids
}

func testFacilityQueries(t *testing.T, e *queryEnv) {
	head := e.env.Head(t)

	t.Run("every page together is the whole set, in order", func(t *testing.T) {
		want := planIDs(e, nil)
		for _, limit := range []int{1, 7, 50, 1000} {
			got := allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit="+strconv.Itoa(limit), limit)
			require.Equal(t, want, idsOf(got), "limit %d", limit)
		}
	})

	t.Run("filters select what the history wrote", func(t *testing.T) {
		p0 := e.hist.Facilities[0]
		for _, tc := range []struct {
			query string
			keep  func(p *projectionstest.Plan) bool
		}{
			{"province=IR-07", func(p *projectionstest.Plan) bool { return p.Province == "IR-07" }},
			{"county=IR-23-tehran", func(p *projectionstest.Plan) bool { return p.County == "IR-23-tehran" }},
			{"agency=welfare", func(p *projectionstest.Plan) bool { return p.Agency == "welfare" }},
			{"program=rural-nomadic", func(p *projectionstest.Plan) bool { return p.Program == "rural-nomadic" }},
			{"bank=refah", func(p *projectionstest.Plan) bool { return p.Bank == "refah" }},
			{"fiscal_year=1402", func(p *projectionstest.Plan) bool { return p.FiscalYear == 1402 }},
			{"fiscal_year=" + url.QueryEscape("۱۴۰۳"), func(p *projectionstest.Plan) bool { return p.FiscalYear == 1403 }},
			{"province=IR-23&agency=" + p0.Agency + "&fiscal_year=" + strconv.Itoa(p0.FiscalYear), func(p *projectionstest.Plan) bool {
				return p.Province == "IR-23" && p.Agency == p0.Agency && p.FiscalYear == p0.FiscalYear
			}},
		} {
			want := planIDs(e, tc.keep)
			require.NotEmpty(t, want, tc.query) // a filter that selects nothing tests nothing
			got := allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=10&"+tc.query, 10)
			require.Equal(t, want, idsOf(got), tc.query)
		}
		stages := 0
		for _, stage := range stageNames {
			want := planIDs(e, func(p *projectionstest.Plan) bool { return string(p.Stage) == stage })
			got := allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=1000&stage="+stage, 1000)
			require.Equal(t, want, idsOf(got), stage)
			if len(want) > 0 {
				stages++
			}
		}
		require.GreaterOrEqual(t, stages, 5, "the history reaches most stages")
	})

	t.Run("sorts are total and pages follow them", func(t *testing.T) {
		one := allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=1000&sort=recent", 1000)
		require.Len(t, one, len(e.hist.Facilities))
		for i := 1; i < len(one); i++ {
			require.Greater(t, one[i-1].LastEventPosition, one[i].LastEventPosition)
		}
		require.Equal(t, idsOf(one), idsOf(allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=4&sort=recent", 4)))

		byAmount := allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=6&sort=approved", 6)
		require.Len(t, byAmount, len(e.hist.Facilities))
		for i := 1; i < len(byAmount); i++ {
			a, b := byAmount[i-1], byAmount[i]
			require.True(t, a.ApprovedRials > b.ApprovedRials || a.ApprovedRials == b.ApprovedRials && a.ID > b.ID, "%v then %v", a, b)
		}
	})

	t.Run("one facility equals its row in the list, with both calendars", func(t *testing.T) {
		list := allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=1000", 1000)
		for _, f := range list[:20] {
			var got facilityAnswer
			r := e.ok(t, qMinistry, "/v1/facilities/"+f.ID, &got)
			require.Equal(t, f, got.Facility)
			require.Equal(t, head, got.Position)
			require.Equal(t, strconv.FormatUint(head, 10), r.header.Get(positionHeader))
			require.Nil(t, got.AsOf)
			require.Nil(t, got.AsOfPosition)
			require.Equal(t, calendar.FormatJalali(f.RegisteredAt), f.RegisteredAtJalali)
			if f.ApprovedAt != nil {
				require.Equal(t, calendar.FormatJalali(*f.ApprovedAt), *f.ApprovedAtJalali)
			} else {
				require.Nil(t, f.ApprovedAtJalali)
			}
		}
		r := e.get(t, qMinistry, "/v1/facilities/no-such-plan")
		require.Equal(t, http.StatusNotFound, r.status)
		require.Equal(t, ProblemTypeBase+"not-found", r.problem(t).Type)
	})

	t.Run("CSV exports every matching row, all pages", func(t *testing.T) {
		json := allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=1000&fiscal_year=1403", 1000)
		r, header, rows := e.csvRows(t, qMinistry, "/v1/facilities?fiscal_year=1403&limit=3")
		require.Equal(t, facilityCSVHeader, header)
		require.Equal(t, strconv.FormatUint(head, 10), r.header.Get(positionHeader))
		require.Len(t, rows, len(json), "limit does not apply to CSV")
		require.Equal(t, idsOf(json), csvColumn(t, header, rows, "id"))
		for i, f := range json {
			require.Equal(t, f.RegisteredAtJalali, csvColumn(t, header, rows, "registered_at_jalali")[i])
			require.Equal(t, strconv.FormatInt(f.ApprovedRials, 10), csvColumn(t, header, rows, "approved_rials")[i])
		}
		// From a cursor: the rest.
		var first qPage[facilityView]
		e.ok(t, qMinistry, "/v1/facilities?fiscal_year=1403&limit=5", &first)
		_, _, rest := e.csvRows(t, qMinistry, "/v1/facilities?fiscal_year=1403&cursor="+first.NextCursor)
		require.Len(t, rest, len(json)-5)
		require.Equal(t, idsOf(json[5:]), csvColumn(t, header, rest, "id"))
	})
}

// testCSVExportAcrossPages exports more rows than one read of the
// readers gives: the pages join without a gap or a repeat.
func testCSVExportAcrossPages(t *testing.T, e *queryEnv) {
	e.catchUp(t)
	before := len(allPages[facilityView](t, e, qMinistry, "/v1/facilities?limit=1000", 1000))
	bulkRegister(t, e, maxLimit+50)
	e.catchUp(t)
	_, header, rows := e.csvRows(t, qMinistry, "/v1/facilities")
	require.Equal(t, before+maxLimit+50, len(rows))
	ids := csvColumn(t, header, rows, "id")
	require.True(t, slices.IsSorted(ids))
	require.Len(t, slices.Compact(slices.Clone(ids)), len(ids), "no row twice")
}

// bulkRegister appends n registrations straight to the store, in a few
// transactions: rows for the read models, faster than n commands.
func bulkRegister(t *testing.T, e *queryEnv, n int) {
	t.Helper()
	appends := make([]eventstore.StreamAppend, n)
	for i := range appends {
		id := fmt.Sprintf("bulk-%04d", i)
		data, err := domain.Encode(facility.RegisteredV1{
			FacilityID: id, FiscalYear: 1403, Program: "home-business", Agency: "welfare", Province: "IR-10", Title: "bulk",
			Applicant:      facility.Applicant{Ref: fmt.Sprintf("%064x", i), KeyID: "k", Ciphertext: []byte{1}},
			RequestedRials: 300_000_000, JobsPromised: 1,
		})
		require.NoError(t, err)
		appends[i] = eventstore.StreamAppend{Stream: facility.Stream(id), Expected: eventstore.NoStream, Events: []eventstore.Proposed{{
			ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), Type: facility.TypeRegistered, Data: data,
			Actor: projectionstest.Ministry,
		}}}
	}
	_, errs := eventstore.AppendMany(context.Background(), e.env.Store, appends)
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// eventOf rebuilds a stored event from its view, as a client would to check
// the hash chain.
func eventOf(t *testing.T, v eventView) eventstore.Event {
	t.Helper()
	h, err := eventstore.ParseHash(v.Hash)
	require.NoError(t, err)
	prev, err := eventstore.ParseHash(v.PrevHash)
	require.NoError(t, err)
	return eventstore.Event{
		Position: v.Position, Stream: v.Stream, Version: v.Version, ID: v.ID, Type: v.Type, Data: v.Data,
		OccurredAt: v.OccurredAt, RecordedAt: v.RecordedAt, BackdateReason: v.BackdateReason, Actor: v.Actor,
		IdempotencyKey: v.IdempotencyKey, CorrelationID: v.CorrelationID, CausationID: v.CausationID, PrevHash: prev, Hash: h,
	}
}

func testFacilityHistory(t *testing.T, e *queryEnv) {
	head := e.env.Head(t)
	ctx := context.Background()
	// The facility with the longest stream.
	var busiest string
	var longest uint64
	for _, p := range e.hist.Facilities {
		v, err := e.env.Store.StreamVersion(ctx, facility.Stream(p.ID))
		require.NoError(t, err)
		if v > longest {
			busiest, longest = p.ID, v
		}
	}
	require.Greater(t, longest, uint64(6))

	t.Run("events: the stream with full envelopes, paged, hashes verifiable", func(t *testing.T) {
		stored, err := e.env.Store.ReadStream(ctx, facility.Stream(busiest), 1, eventstore.Forwards, 1000)
		require.NoError(t, err)
		for _, limit := range []int{1, 4, 1000} {
			got := allPages[eventView](t, e, qAuditor, fmt.Sprintf("/v1/facilities/%s/events?limit=%d", busiest, limit), limit)
			require.Len(t, got, len(stored))
			var buf []byte
			for i, v := range got {
				s := stored[i]
				require.Equal(t, s.ID, v.ID)
				require.Equal(t, s.Version, v.Version)
				require.Equal(t, s.Position, v.Position)
				require.Equal(t, s.Type, v.Type)
				require.Equal(t, s.Actor, v.Actor)
				require.Equal(t, calendar.FormatJalali(s.OccurredAt), v.OccurredAtJalali)
				require.JSONEq(t, string(s.Data), string(v.Data))
				ev := eventOf(t, v)
				var h eventstore.Hash
				h, buf = eventstore.Chain(ev.PrevHash, &ev, buf)
				require.Equal(t, ev.Hash, h, "the chain recomputed from the answer, event %d", v.Version)
			}
		}
		var pg qPage[eventView]
		e.ok(t, qAuditor, "/v1/facilities/"+busiest+"/events", &pg)
		require.Equal(t, head, pg.Position)
		require.Equal(t, http.StatusNotFound, e.get(t, qAuditor, "/v1/facilities/no-such-plan/events").status)
	})

	t.Run("as_of_position at the head equals the read model, for every facility", func(t *testing.T) {
		for _, p := range e.hist.Facilities {
			var now, then facilityAnswer
			e.ok(t, qMinistry, "/v1/facilities/"+p.ID, &now)
			e.ok(t, qMinistry, fmt.Sprintf("/v1/facilities/%s?as_of_position=%d", p.ID, head), &then)
			require.Equal(t, now.Facility, then.Facility, p.ID)
			require.Equal(t, head, then.Position)
			require.Equal(t, head, *then.AsOfPosition)
		}
	})

	var events []eventView
	events = allPages[eventView](t, e, qAuditor, "/v1/facilities/"+busiest+"/events?limit=1000", 1000)

	t.Run("as_of_position: system time, event by event", func(t *testing.T) {
		for _, ev := range events {
			var got facilityAnswer
			e.ok(t, qMinistry, fmt.Sprintf("/v1/facilities/%s?as_of_position=%d", busiest, ev.Position), &got)
			require.Equal(t, ev.Version, got.Facility.Version)
			require.Equal(t, ev.Position, got.Facility.LastEventPosition)
			require.Equal(t, ev.Position, got.Position)
		}
		r := e.get(t, qMinistry, fmt.Sprintf("/v1/facilities/%s?as_of_position=%d", busiest, events[0].Position-1))
		require.Equal(t, http.StatusNotFound, r.status, "not registered yet at that position")
		r = e.get(t, qMinistry, fmt.Sprintf("/v1/facilities/%s?as_of_position=%d", busiest, head+1))
		require.Equal(t, http.StatusUnprocessableEntity, r.status)
		require.Equal(t, "as_of_position", r.problem(t).Errors[0].Field)
	})

	t.Run("as_of: business time, event by event, in either calendar", func(t *testing.T) {
		for _, ev := range events {
			var want uint64
			for _, o := range events {
				if !o.OccurredAt.After(ev.OccurredAt) {
					want = max(want, o.Version)
				}
			}
			var got facilityAnswer
			e.ok(t, qMinistry, "/v1/facilities/"+busiest+"?as_of="+url.QueryEscape(ev.OccurredAt.Format(time.RFC3339Nano)), &got)
			require.Equal(t, want, got.Facility.Version)
			require.True(t, got.AsOf.Equal(ev.OccurredAt))
			require.Equal(t, calendar.FormatJalali(ev.OccurredAt), *got.AsOfJalali)
			require.Equal(t, head, got.Position)
		}
		// A facility before its approval, and at it.
		var now facilityAnswer
		e.ok(t, qMinistry, "/v1/facilities/"+busiest, &now)
		require.NotNil(t, now.Facility.ApprovedAt)
		at := *now.Facility.ApprovedAt
		var before, after facilityAnswer
		e.ok(t, qMinistry, "/v1/facilities/"+busiest+"?as_of="+url.QueryEscape(at.Add(-time.Microsecond).Format(time.RFC3339Nano)), &before)
		e.ok(t, qMinistry, "/v1/facilities/"+busiest+"?as_of="+url.QueryEscape(at.Format(time.RFC3339Nano)), &after)
		require.Equal(t, facility.StageReferred, before.Facility.Stage)
		require.Zero(t, before.Facility.ApprovedRials)
		require.Nil(t, before.Facility.ApprovedAt)
		require.Equal(t, facility.StageLoanApproved, after.Facility.Stage)
		require.Equal(t, now.Facility.ApprovedRials, after.Facility.ApprovedRials)

		// A Solar Hijri day, in Persian digits, is its first instant
		// in Tehran: the same answer as the ISO instant.
		day := calendar.FormatJalali(at.Add(24 * time.Hour))
		start, err := calendar.ParseDate(day)
		require.NoError(t, err)
		var jal, iso facilityAnswer
		e.ok(t, qMinistry, "/v1/facilities/"+busiest+"?as_of="+url.QueryEscape(calendar.PersianDigits(day)), &jal)
		e.ok(t, qMinistry, "/v1/facilities/"+busiest+"?as_of="+url.QueryEscape(start.Format(time.RFC3339)), &iso)
		require.Equal(t, iso, jal)

		r := e.get(t, qMinistry, "/v1/facilities/"+busiest+"?as_of="+url.QueryEscape(events[0].OccurredAt.Add(-time.Second).Format(time.RFC3339)))
		require.Equal(t, http.StatusNotFound, r.status)
	})

	t.Run("the two axes differ for a backdated event", func(t *testing.T) {
		before := e.env.Head(t)
		backdated := projectionstest.Start.Add(-48 * time.Hour)
		res, err := e.svc.Register(ctx, ledger.RegisterFacility{
			Register: facility.Register{
				FacilityID: "late-plan", FiscalYear: 1403, Program: "home-business", Agency: "welfare", Province: "IR-07",
				County: "IR-07-shiraz", Title: "recorded late", RequestedRials: 500_000_000, JobsPromised: 2, At: backdated,
			},
			Applicant: applicant.Personal{NationalID: nationalid.Generate(9_999), Name: "Late Applicant", Phone: "09120000001"},
		}, ledger.Meta{Actor: projectionstest.Ministry, OccurredAt: backdated, BackdateReason: "paper file entered late"})
		require.NoError(t, err)
		require.Greater(t, res.Position, before)
		mid := url.QueryEscape(backdated.Add(time.Hour).Format(time.RFC3339))

		var byTime facilityAnswer
		e.ok(t, qMinistry, "/v1/facilities/late-plan?as_of="+mid, &byTime)
		require.Equal(t, facility.StageRegistered, byTime.Facility.Stage, "by business time it existed then")
		r := e.get(t, qMinistry, fmt.Sprintf("/v1/facilities/late-plan?as_of_position=%d", before))
		require.Equal(t, http.StatusNotFound, r.status, "by system time it was not recorded yet")
		var byPos facilityAnswer
		e.ok(t, qMinistry, fmt.Sprintf("/v1/facilities/late-plan?as_of_position=%d", res.Position), &byPos)
		require.Equal(t, byTime.Facility, byPos.Facility)

		// The history shows the backdating, and no personal data in
		// clear: the applicant is sealed in the event, absent from the
		// view.
		var pg qPage[eventView]
		e.ok(t, qAuditor, "/v1/facilities/late-plan/events", &pg)
		require.Len(t, pg.Items, 1)
		require.Equal(t, "paper file entered late", pg.Items[0].BackdateReason)
		require.NotContains(t, string(pg.Items[0].Data), "Late Applicant")
		require.NotContains(t, string(pg.Items[0].Data), nationalid.Generate(9_999))
		var data struct {
			Applicant applicant.Sealed `json:"applicant"`
		}
		require.NoError(t, json.Unmarshal(pg.Items[0].Data, &data))
		require.True(t, applicant.ValidRef(data.Applicant.Ref))
		raw := e.get(t, qMinistry, "/v1/facilities/late-plan?as_of="+mid)
		require.NotContains(t, string(raw.body), data.Applicant.Ref)
		require.NotContains(t, string(raw.body), "applicant")
	})

	t.Run("min_position on the history waits for the log", func(t *testing.T) {
		h := e.env.Head(t)
		var pg qPage[eventView]
		e.ok(t, qAuditor, fmt.Sprintf("/v1/facilities/%s/events?min_position=%d", busiest, h), &pg)
		require.GreaterOrEqual(t, pg.Position, h)
		start := time.Now()
		r := e.get(t, qAuditor, fmt.Sprintf("/v1/facilities/%s/events?min_position=%d&max_wait=100ms", busiest, h+1000))
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
		p := r.problem(t)
		require.Equal(t, ProblemTypeBase+"position-not-reached", p.Type)
		require.Equal(t, strconv.FormatUint(h, 10), r.header.Get(positionHeader))
	})
}
