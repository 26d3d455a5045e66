package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/projectionstest"
)

func countBy[K comparable](e *queryEnv, key func(p *projectionstest.Plan) (K, bool)) map[K]int64 {
	out := map[K]int64{}
	for _, p := range e.hist.Facilities {
		if k, ok := key(p); ok {
			out[k]++
		}
	}
	return out
}

func testAggregateQueries(t *testing.T, e *queryEnv) {

	t.Run("job counts: the total and groups add up to the history", func(t *testing.T) {
		var total qPage[jobCountView]
		e.ok(t, qMinistry, "/v1/job-counts", &total)
		require.Len(t, total.Items, 1)
		require.EqualValues(t, len(e.hist.Facilities), total.Items[0].Registered)
		require.Nil(t, total.Items[0].Province, "no dimension when not grouped")

		want := countBy(e, func(p *projectionstest.Plan) ([2]string, bool) {
			return [2]string{p.Province, p.County}, true
		})
		got := allPages[jobCountView](t, e, qMinistry, "/v1/job-counts?group_by=province,county&limit=2", 2)
		require.Len(t, got, len(want))
		for i, g := range got {
			require.NotNil(t, g.County, "a county \"\" is a group, not a missing dimension")
			require.Equal(t, want[[2]string{*g.Province, *g.County}], g.Registered)
			if i > 0 {
				prev := got[i-1]
				require.Negative(t, cmp.Or(cmp.Compare(*prev.Province, *g.Province), cmp.Compare(*prev.County, *g.County)))
			}
		}

		approved := countBy(e, func(p *projectionstest.Plan) (string, bool) { return p.Bank, p.Approved > 0 })
		byBank := allPages[jobCountView](t, e, qMinistry, "/v1/job-counts?group_by=bank&sort=approved&limit=3&fiscal_year=1403", 3)
		all := allPages[jobCountView](t, e, qMinistry, "/v1/job-counts?group_by=bank&sort=approved", 50)
		var sum int64
		for i, g := range all {
			require.Equal(t, approved[*g.Bank], g.Approved, *g.Bank)
			sum += g.Approved
			if i > 0 {
				require.GreaterOrEqual(t, all[i-1].Approved, g.Approved, "largest first")
			}
		}
		require.EqualValues(t, sum, len(planIDs(e, func(p *projectionstest.Plan) bool { return p.Approved > 0 })))
		require.NotEmpty(t, byBank)
		asc := allPages[jobCountView](t, e, qMinistry, "/v1/job-counts?group_by=bank&sort=approved&order=asc", 50)
		require.Len(t, asc, len(all))
		require.True(t, slices.IsSortedFunc(asc, func(a, b jobCountView) int { return cmp.Compare(a.Approved, b.Approved) }))

		_, header, rows := e.csvRows(t, qMinistry, "/v1/job-counts?group_by=province,county&limit=2")
		require.Equal(t, "province", header[0])
		require.Equal(t, "county", header[1])
		require.Len(t, rows, len(got))
		for i, g := range got {
			require.Equal(t, strconv.FormatInt(g.Registered, 10), csvColumn(t, header, rows, "registered")[i])
		}
	})

	t.Run("inspection statistics: groups, sorts and pages", func(t *testing.T) {
		var inspected int64
		for _, p := range e.hist.Facilities {
			inspected += int64(len(p.Inspections))
		}
		require.Positive(t, inspected)
		var total qPage[inspectionStatsView]
		e.ok(t, qMinistry, "/v1/inspections/stats", &total)
		require.Len(t, total.Items, 1)
		require.Equal(t, inspected, total.Items[0].Inspections)

		byFirm := allPages[inspectionStatsView](t, e, qMinistry, "/v1/inspections/stats?group_by=firm&limit=1", 1)
		require.GreaterOrEqual(t, len(byFirm), 2)
		var sum int64
		for _, g := range byFirm {
			sum += g.Inspections
		}
		require.Equal(t, inspected, sum)

		rate := allPages[inspectionStatsView](t, e, qMinistry, "/v1/inspections/stats?group_by=province,firm&sort=confirmation_rate&limit=2", 2)
		for i := 1; i < len(rate); i++ {
			a, b := rate[i-1], rate[i]
			require.GreaterOrEqual(t, a.ConfirmedFacilities*b.Facilities, b.ConfirmedFacilities*a.Facilities, "highest rate first")
		}
		whole := allPages[inspectionStatsView](t, e, qMinistry, "/v1/inspections/stats?group_by=province,firm&sort=confirmation_rate", 50)
		require.Equal(t, whole, rate)

		_, header, rows := e.csvRows(t, qMinistry, "/v1/inspections/stats?group_by=firm")
		require.Equal(t, "firm", header[0])
		require.Len(t, rows, len(byFirm))
	})
}

func testModelQueries(t *testing.T, e *queryEnv) {

	t.Run("quota accounts: pages, sorts and sums equal the allocations", func(t *testing.T) {
		all := allPages[quotaAccountView](t, e, qMinistry, "/v1/quotas/accounts?limit=1000", 1000)
		paged := allPages[quotaAccountView](t, e, qMinistry, "/v1/quotas/accounts?limit=9", 9)
		require.Equal(t, all, paged)
		allocated := map[string]int64{}
		for _, a := range e.hist.Allocations {
			allocated[fmt.Sprintf("%d/%s", a.FiscalYear, a.Program)] += a.Amount
		}
		got := map[string]int64{}
		for _, a := range all {
			got[fmt.Sprintf("%d/%s", a.FiscalYear, a.Program)] += a.AllocatedRials
			if a.FirstAllocatedAt != nil {
				require.Equal(t, jalali(*a.FirstAllocatedAt), *a.FirstAllocatedAtJalali)
			}
		}
		require.Equal(t, allocated, got)

		free := allPages[quotaAccountView](t, e, qMinistry, "/v1/quotas/accounts?sort=free&limit=7&province=IR-23", 7)
		require.NotEmpty(t, free)
		for i, a := range free {
			require.Equal(t, "IR-23", a.Province)
			if i > 0 {
				require.GreaterOrEqual(t, free[i-1].FreeRials, a.FreeRials)
			}
		}

		_, header, rows := e.csvRows(t, qMinistry, "/v1/quotas/accounts")
		require.Equal(t, quotaAccountCSVHeader, header)
		require.Len(t, rows, len(all))
	})

	t.Run("quota totals: one row per ledger, conserved", func(t *testing.T) {
		var tot struct {
			Items    []quotaTotalsView `json:"items"`
			Position uint64            `json:"position"`
		}
		e.ok(t, qMinistry, "/v1/quotas/totals", &tot)
		require.Len(t, tot.Items, 4) // two years × two programmes
		for _, l := range tot.Items {
			var want int64
			for _, a := range e.hist.Allocations {
				if a.FiscalYear == l.FiscalYear && a.Program == l.Program {
					want += a.Amount
				}
			}
			require.Equal(t, want, l.AllocatedRials)
			require.True(t, l.Conserved)
		}
		e.ok(t, qMinistry, "/v1/quotas/totals?fiscal_year=1402&program=home-business", &tot)
		require.Len(t, tot.Items, 1)
	})

	t.Run("bank performance: backlogs per bank equal the history", func(t *testing.T) {
		pending := countBy(e, func(p *projectionstest.Plan) (string, bool) { return p.Bank, p.Stage == facility.StageReferred })
		asOf := projectionstest.Start.Add(365 * 24 * time.Hour)
		var pg bankPage
		e.ok(t, qMinistry, "/v1/banks/performance?as_of="+asOf.Format("2006-01-02"), &pg)
		require.NotEmpty(t, pg.Items)
		require.Equal(t, asOf.Format("2006-01-02"), pg.AsOf)
		require.Equal(t, jalali(asOf), pg.AsOfJalali)
		for _, row := range pg.Items {
			require.NotNil(t, row.Bank)
			require.Equal(t, pending[*row.Bank], row.PendingApproval.Facilities, *row.Bank)
		}
		paged := allPages[bankRowView](t, e, qMinistry, "/v1/banks/performance?limit=1&as_of="+asOf.Format("2006-01-02"), 1)
		require.Equal(t, pg.Items, paged)
		byProvince := allPages[bankRowView](t, e, qMinistry, "/v1/banks/performance?group_by=province&sort=pending_approval&limit=2", 2)
		for i, row := range byProvince {
			require.NotNil(t, row.Province)
			require.Nil(t, row.Bank)
			if i > 0 {
				require.GreaterOrEqual(t, byProvince[i-1].PendingApproval.Facilities, row.PendingApproval.Facilities)
			}
		}
		_, header, rows := e.csvRows(t, qMinistry, "/v1/banks/performance")
		require.Equal(t, "bank", header[0])
		require.Len(t, rows, len(pg.Items))
	})

	t.Run("deviations: list, filters, pages and one trail", func(t *testing.T) {
		all := allPages[deviationView](t, e, qMinistry, "/v1/deviations?limit=1000", 1000)
		require.NotEmpty(t, all)
		for i := 1; i < len(all); i++ {
			require.Greater(t, all[i-1].OpenedPosition, all[i].OpenedPosition, "latest opened first")
		}
		require.Equal(t, all, allPages[deviationView](t, e, qMinistry, "/v1/deviations?limit=3", 3))

		var open int
		for _, p := range e.hist.Facilities {
			open += len(p.OpenCases)
		}
		openCases := allPages[deviationView](t, e, qMinistry, "/v1/deviations?state=open&limit=5", 5)
		require.Len(t, openCases, open)
		byID := allPages[deviationView](t, e, qMinistry, "/v1/deviations?sort=id&limit=4", 4)
		require.Len(t, byID, len(all))
		require.True(t, slices.IsSortedFunc(byID, func(a, b deviationView) int {
			return cmp.Or(cmp.Compare(a.FacilityID, b.FacilityID), cmp.Compare(a.DeviationID, b.DeviationID))
		}))

		d := all[0]
		var trail trailAnswer
		e.ok(t, qMinistry, "/v1/deviations/"+d.FacilityID+"/"+d.DeviationID, &trail)
		require.Equal(t, d, trail.Deviation)
		require.Len(t, trail.Steps, d.Steps)
		require.Equal(t, deviations.ActionOpened, trail.Steps[0].Action)
		require.Equal(t, jalali(trail.Steps[0].OccurredAt), trail.Steps[0].OccurredAtJalali)
		var ofFacility qPage[deviationView]
		e.ok(t, qMinistry, "/v1/deviations?facility="+d.FacilityID, &ofFacility)
		require.Contains(t, ofFacility.Items, d)
		require.Equal(t, http.StatusNotFound, e.get(t, qMinistry, "/v1/deviations/"+d.FacilityID+"/no-such-case").status)

		_, header, rows := e.csvRows(t, qMinistry, "/v1/deviations?state=open")
		require.Equal(t, deviationCSVHeader, header)
		require.Len(t, rows, open)
	})
}
