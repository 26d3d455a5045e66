package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

// TestScopedReads checks that every list and aggregate is ANDed with the
// principal's scope, that a contradicting filter is refused, and that one
// resource outside the scope is not found.
func testScopedReads(t *testing.T, e *queryEnv) {
	province := qPrincipal(auth.RoleProvinceOffice, "IR-07")
	bank := qPrincipal(auth.RoleBank, "refah")
	agency := qPrincipal(auth.RoleAgency, "welfare")
	var firms qPage[inspectionStatsView]
	e.ok(t, qAuditor, "/v1/inspections/stats?group_by=firm", &firms)
	require.GreaterOrEqual(t, len(firms.Items), 2)
	inspector := qPrincipal(auth.RoleInspector, *firms.Items[0].Firm)

	outside := func(keep func(p *projectionstest.Plan) bool) string {
		for _, p := range e.hist.Facilities {
			if !keep(p) {
				return p.ID
			}
		}
		t.Fatal("no facility outside the scope")
		return ""
	}
	for _, tc := range []struct {
		name string
		p    auth.Principal
		in   func(p *projectionstest.Plan) bool
		dim  string // the scope's filter parameter
		own  string
	}{
		{"province office", province, func(p *projectionstest.Plan) bool { return p.Province == "IR-07" }, "province", "IR-07"},
		{"bank", bank, func(p *projectionstest.Plan) bool { return p.Bank == "refah" }, "bank", "refah"},
		{"agency", agency, func(p *projectionstest.Plan) bool { return p.Agency == "welfare" }, "agency", "welfare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := planIDs(e, tc.in)
			require.NotEmpty(t, want)
			require.Less(t, len(want), len(e.hist.Facilities))
			require.Equal(t, want, idsOf(allPages[facilityView](t, e, tc.p, "/v1/facilities?limit=7", 7)))
			require.Equal(t, want, idsOf(allPages[facilityView](t, e, tc.p, "/v1/facilities?limit=1000&"+tc.dim+"="+tc.own, 1000)))
			_, header, rows := e.csvRows(t, tc.p, "/v1/facilities")
			require.Equal(t, want, csvColumn(t, header, rows, "id"))

			other := "IR-23"
			if tc.dim != "province" {
				other = map[string]string{"bank": "post-bank", "agency": "relief-committee"}[tc.dim]
			}
			r := e.get(t, tc.p, "/v1/facilities?"+tc.dim+"="+other)
			require.Equal(t, http.StatusForbidden, r.status, "a filter outside the scope is refused")
			pr := r.problem(t)
			require.Equal(t, tc.dim, pr.Errors[0].Field)

			// One facility outside the scope is not found, as a
			// missing one is.
			out := outside(tc.in)
			missing := e.get(t, tc.p, "/v1/facilities/no-such-plan")
			for _, path := range []string{"/v1/facilities/" + out, "/v1/facilities/" + out + "/events",
				"/v1/facilities/" + out + "?as_of_position=" + fmt.Sprint(e.env.Head(t))} {
				r := e.get(t, tc.p, path)
				require.Equal(t, http.StatusNotFound, r.status, path)
				require.Equal(t, missing.problem(t).Type, r.problem(t).Type)
				require.Equal(t, missing.problem(t).Title, r.problem(t).Title)
			}
			in := want[0]
			e.ok(t, tc.p, "/v1/facilities/"+in, &facilityAnswer{})
			e.ok(t, tc.p, "/v1/facilities/"+in+"/events", &qPage[eventView]{})

			// Aggregates: only the scope's groups, adding up to its
			// facilities.
			counts := allPages[jobCountView](t, e, tc.p, "/v1/job-counts?group_by="+tc.dim, 50)
			require.Len(t, counts, 1)
			require.EqualValues(t, len(want), counts[0].Registered)

			devs := allPages[deviationView](t, e, tc.p, "/v1/deviations?limit=1000", 1000)
			for _, d := range devs {
				require.True(t, tc.in(planOf(t, e, d.FacilityID)), d.FacilityID)
			}
			for _, d := range allPages[deviationView](t, e, qAuditor, "/v1/deviations?limit=1000", 1000) {
				if !tc.in(planOf(t, e, d.FacilityID)) {
					r := e.get(t, tc.p, "/v1/deviations/"+d.FacilityID+"/"+d.DeviationID)
					require.Equal(t, http.StatusNotFound, r.status)
					break
				}
			}

			stats := allPages[inspectionStatsView](t, e, tc.p, "/v1/inspections/stats?group_by="+tc.dim, 50)
			require.LessOrEqual(t, len(stats), 1)
			for _, g := range stats {
				require.Equal(t, tc.own, fieldOf(g.dimValues, tc.dim))
			}

			perf := allPages[bankRowView](t, e, tc.p, "/v1/banks/performance?group_by="+tc.dim, 50)
			require.LessOrEqual(t, len(perf), 1)
			for _, row := range perf {
				require.Equal(t, tc.own, fieldOf(row.dimValues, tc.dim))
			}
		})
	}

	t.Run("quotas: in scope for provinces and agencies, never for banks; totals national only", func(t *testing.T) {
		for _, a := range allPages[quotaAccountView](t, e, province, "/v1/quotas/accounts?limit=1000", 1000) {
			require.Equal(t, "IR-07", a.Province)
		}
		for _, a := range allPages[quotaAccountView](t, e, agency, "/v1/quotas/accounts?limit=1000", 1000) {
			require.Equal(t, "welfare", a.Agency)
		}
		for _, p := range []auth.Principal{bank, inspector} {
			r := e.get(t, p, "/v1/quotas/accounts")
			require.Equal(t, http.StatusForbidden, r.status)
			require.Equal(t, string(auth.DeniedRole), string(mustExtra(t, r, "denial")))
		}
		for _, p := range []auth.Principal{province, agency} {
			require.Equal(t, http.StatusForbidden, e.get(t, p, "/v1/quotas/totals").status)
		}
		e.ok(t, qAuditor, "/v1/quotas/totals", &struct{}{})
	})

	t.Run("inspection firm: every facility, its own inspections, no cases or history", func(t *testing.T) {
		require.Len(t, allPages[facilityView](t, e, inspector, "/v1/facilities?limit=1000", 1000), len(e.hist.Facilities))
		stats := allPages[inspectionStatsView](t, e, inspector, "/v1/inspections/stats?group_by=firm", 50)
		require.Len(t, stats, 1)
		require.Equal(t, inspector.Scope.ID, *stats[0].Firm)
		require.Equal(t, firms.Items[0].Inspections, stats[0].Inspections)
		r := e.get(t, inspector, "/v1/inspections/stats?firm="+*firms.Items[1].Firm)
		require.Equal(t, http.StatusForbidden, r.status)
		for _, path := range []string{"/v1/deviations", "/v1/facilities/" + e.hist.Facilities[0].ID + "/events", "/v1/job-counts", "/v1/banks/performance"} {
			r := e.get(t, inspector, path)
			require.Equal(t, http.StatusForbidden, r.status, "the role may not read it: 403, which leaks nothing")
		}
	})

	t.Run("national roles read everything", func(t *testing.T) {
		for _, p := range []auth.Principal{qMinistry, qAuditor, {Subject: "adm", Role: auth.RoleAdmin, Scope: auth.National}} {
			require.Len(t, allPages[facilityView](t, e, p, "/v1/facilities?limit=1000", 1000), len(e.hist.Facilities))
		}
	})

	t.Run("no credential, no answer", func(t *testing.T) {
		res, err := e.ts.Client().Get(e.ts.URL + "/v1/facilities")
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	})
}

func planOf(t *testing.T, e *queryEnv, id string) *projectionstest.Plan {
	t.Helper()
	for _, p := range e.hist.Facilities {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("no plan %s", id)
	return nil
}

func fieldOf(d dimValues, dim string) string {
	switch dim {
	case "province":
		return *d.Province
	case "agency":
		return *d.Agency
	case "bank":
		return *d.Bank
	case "firm":
		return *d.Firm
	}
	return ""
}

func mustExtra(t *testing.T, r qReply, name string) string {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	s, ok := m[name].(string)
	require.True(t, ok, "%s in %s", name, r.body)
	return s
}

// TestMinPosition checks read-your-writes: a query waits for the position
// a command answered with, and says so when the read model cannot reach it.
func testMinPosition(t *testing.T, e *queryEnv) {
	ctx := context.Background()

	t.Run("a write is read at the position it answered with", func(t *testing.T) {
		for i := range 5 {
			id := fmt.Sprintf("ryw-%d", i)
			res, err := e.svc.Register(ctx, ledger.RegisterFacility{
				Register: facility.Register{FacilityID: id, FiscalYear: 1403, Program: "home-business", Agency: "welfare",
					Province: "IR-07", Title: "read your writes", RequestedRials: 400_000_000, JobsPromised: 1, At: time.Now()},
				Applicant: applicant.Personal{NationalID: nationalid.Generate(uint64(70_000 + i)), Name: "R", Phone: "09120000003"},
			}, ledger.Meta{Actor: projectionstest.Ministry})
			require.NoError(t, err)
			var one facilityAnswer
			r := e.ok(t, qMinistry, fmt.Sprintf("/v1/facilities/%s?min_position=%d", id, res.Position), &one)
			require.GreaterOrEqual(t, one.Position, res.Position)
			require.Equal(t, fmt.Sprint(one.Position), r.header.Get(positionHeader))
			require.Equal(t, id, one.Facility.ID)
			var list qPage[facilityView]
			e.ok(t, qMinistry, fmt.Sprintf("/v1/facilities?agency=welfare&sort=recent&limit=1&min_position=%d", res.Position), &list)
			require.Equal(t, id, list.Items[0].ID)
			var counts qPage[jobCountView]
			e.ok(t, qMinistry, fmt.Sprintf("/v1/job-counts?min_position=%d", res.Position), &counts)
			require.GreaterOrEqual(t, counts.Position, res.Position)
		}
	})

	t.Run("a position not reached in time is a 503 naming the position reached", func(t *testing.T) {
		head := e.catchUp(t)
		for _, tc := range []struct {
			path  string
			model string
			wait  time.Duration
		}{
			{"/v1/facilities?max_wait=100ms&", "facilities", 100 * time.Millisecond},
			{"/v1/quotas/accounts?max_wait=150ms&", "quota_balances", 150 * time.Millisecond},
			{"/v1/deviations?", "deviations", queryMaxWait},                          // default: the server's bound
			{"/v1/banks/performance?max_wait=1h&", "bank_performance", queryMaxWait}, // more than the bound: the bound
			{"/v1/inspections/stats?max_wait=50ms&", "inspections", 50 * time.Millisecond},
		} {
			start := time.Now()
			r := e.get(t, qMinistry, fmt.Sprintf("%smin_position=%d", tc.path, head+100))
			took := time.Since(start)
			require.Equal(t, http.StatusServiceUnavailable, r.status, tc.path)
			p := r.problem(t)
			require.Equal(t, ProblemTypeBase+"position-not-reached", p.Type)
			require.Equal(t, fmt.Sprint(head), r.header.Get(positionHeader))
			require.Equal(t, "1", r.header.Get("Retry-After"))
			var body struct {
				ReadModel string `json:"read_model"`
				Min       uint64 `json:"min_position"`
				Reached   uint64 `json:"reached_position"`
			}
			r.json(t, &body)
			require.Equal(t, tc.model, body.ReadModel)
			require.Equal(t, head+100, body.Min)
			require.Equal(t, head, body.Reached)
			require.GreaterOrEqual(t, took, tc.wait)
			require.Less(t, took, tc.wait+3*time.Second)
		}
		fa := e.get(t, qMinistry, fmt.Sprintf("/v1/facilities?max_wait=10ms&min_position=%d", head+1), "Accept-Language", "fa")
		require.Equal(t, http.StatusServiceUnavailable, fa.status)
		require.Equal(t, probNotReached.titleFa, fa.problem(t).Title)
	})

	t.Run("a position reached while waiting is answered", func(t *testing.T) {
		head := e.catchUp(t)
		done := make(chan qReply, 1)
		go func() {
			// The request waits for a position nothing has written yet.
			done <- e.get(t, qMinistry, fmt.Sprintf("/v1/job-counts?min_position=%d", head+1))
		}()
		time.Sleep(50 * time.Millisecond)
		_, err := e.svc.Register(ctx, ledger.RegisterFacility{
			Register: facility.Register{FacilityID: "late-ryw", FiscalYear: 1403, Program: "home-business", Agency: "welfare",
				Province: "IR-07", Title: "arrives while waiting", RequestedRials: 400_000_000, JobsPromised: 1, At: time.Now()},
			Applicant: applicant.Personal{NationalID: nationalid.Generate(80_001), Name: "W", Phone: "09120000004"},
		}, ledger.Meta{Actor: projectionstest.Ministry})
		require.NoError(t, err)
		r := <-done
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var counts qPage[jobCountView]
		r.json(t, &counts)
		require.Greater(t, counts.Position, head, "answered from after the write it waited for")
	})
}

// TestQueryParameterProblems checks that bad parameters are 422 problems
// naming the parameter (or 406 for a format the endpoint does not give),
// and that nothing is appended.
func testQueryParameterProblems(t *testing.T, e *queryEnv) {
	head := e.env.Head(t)
	var first qPage[facilityView]
	e.ok(t, qMinistry, "/v1/facilities?limit=2&province=IR-23", &first)
	require.NotEmpty(t, first.NextCursor)
	var counts qPage[jobCountView]
	e.ok(t, qMinistry, "/v1/job-counts?group_by=province&limit=1", &counts)
	require.NotEmpty(t, counts.NextCursor)
	id := e.hist.Facilities[0].ID

	for _, tc := range []struct {
		path, field, code string
	}{
		{"/v1/facilities?colour=red", "colour", "unknown_parameter"},
		{"/v1/facilities?fiscal_year=2024", "fiscal_year", "out_of_range"},
		{"/v1/facilities?fiscal_year=14o3", "fiscal_year", "format"},
		{"/v1/facilities?province=IR-99", "province", "unknown"},
		{"/v1/facilities?province=IR-23&province=IR-07", "province", "repeated"},
		{"/v1/facilities?agency=", "agency", "empty"},
		{"/v1/facilities?agency=" + url.QueryEscape("two words"), "agency", "malformed"},
		{"/v1/facilities?stage=pending", "stage", "unknown"},
		{"/v1/facilities?sort=colour", "sort", "unknown"},
		{"/v1/facilities?limit=0", "limit", "out_of_range"},
		{"/v1/facilities?limit=1001", "limit", "out_of_range"},
		{"/v1/facilities?limit=ten", "limit", "type"},
		{"/v1/facilities?cursor=not-a-cursor", "cursor", "malformed"},
		{"/v1/facilities?province=IR-07&cursor=" + first.NextCursor, "cursor", "mismatch"},
		{"/v1/facilities?sort=recent&province=IR-23&cursor=" + first.NextCursor, "cursor", "mismatch"},
		{"/v1/job-counts?group_by=province&cursor=" + first.NextCursor, "cursor", "mismatch"},
		{"/v1/job-counts?group_by=agency&limit=1&cursor=" + counts.NextCursor, "cursor", "mismatch"},
		{"/v1/facilities?min_position=-1", "min_position", "type"},
		{"/v1/facilities?max_wait=forever", "max_wait", "malformed"},
		{"/v1/facilities/" + id + "?as_of=1403/13/01", "as_of", "month"},
		{"/v1/facilities/" + id + "?as_of=yesterday", "as_of", "format"},
		{"/v1/facilities/" + id + "?as_of=2024-05-01&as_of_position=3", "as_of_position", "conflict"},
		{"/v1/facilities/" + id + "?as_of_position=0", "as_of_position", "out_of_range"},
		{"/v1/facilities/" + id + "/events?cursor=abc", "cursor", "malformed"},
		{"/v1/job-counts?group_by=province,colour", "group_by", "unknown"},
		{"/v1/job-counts?group_by=province,province", "group_by", "repeated"},
		{"/v1/job-counts?order=up", "order", "unknown"},
		{"/v1/inspections/stats?sort=speed", "sort", "unknown"},
		{"/v1/banks/performance?group_by=firm", "group_by", "unknown"},
		{"/v1/banks/performance?as_of=1404/12/30", "as_of", "day"},
		{"/v1/quotas/accounts?program=Home_Business", "program", "malformed"},
		{"/v1/quotas/totals?province=IR-07", "province", "unknown_parameter"},
		{"/v1/deviations?state=closed", "state", "unknown"},
		{"/v1/deviations?kind=fraud", "kind", "unknown"},
	} {
		r := e.get(t, qMinistry, tc.path)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.path, r.body)
		p := r.problem(t)
		require.Equal(t, ProblemTypeBase+"validation", p.Type)
		var fields []string
		for _, f := range p.Errors {
			fields = append(fields, f.Field+":"+f.Code)
		}
		require.Contains(t, fields, tc.field+":"+tc.code, tc.path)
	}

	t.Run("every problem at once, in the client's language", func(t *testing.T) {
		r := e.get(t, qMinistry, "/v1/facilities?fiscal_year=2024&sort=x&colour=red", "Accept-Language", "fa-IR")
		p := r.problem(t)
		require.Len(t, p.Errors, 3)
		require.Equal(t, probValidation.titleFa, p.Title)
		require.True(t, strings.ContainsAny(p.Errors[0].Message, "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی"), p.Errors[0].Message)
	})

	t.Run("formats", func(t *testing.T) {
		for _, tc := range []struct {
			path, accept string
			status       int
			ct           string
		}{
			{"/v1/facilities", "application/xml", http.StatusNotAcceptable, "application/problem+json"},
			{"/v1/facilities/" + id + "/events", "text/csv", http.StatusNotAcceptable, "application/problem+json"},
			{"/v1/facilities", "text/csv;q=0.5, application/json", http.StatusOK, "application/json"},
			{"/v1/facilities", "application/json;q=0.5, text/csv", http.StatusOK, "text/csv; charset=utf-8"},
			{"/v1/facilities", "*/*", http.StatusOK, "application/json"},
			{"/v1/facilities", "text/*", http.StatusOK, "text/csv; charset=utf-8"},
		} {
			r := e.get(t, qMinistry, tc.path, "Accept", tc.accept)
			require.Equal(t, tc.status, r.status, "%s %s", tc.path, tc.accept)
			require.Equal(t, tc.ct, r.header.Get("Content-Type"), "%s %s", tc.path, tc.accept)
		}
	})

	require.Equal(t, head, e.env.Head(t), "no query appends anything")
}
