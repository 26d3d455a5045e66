package api

import (
	"cmp"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strconv"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
)

// Aggregates (job counts, inspection statistics) are computed whole for
// each request: they are sums over grouped read-model rows (one row per
// combination of dimensions, not per facility), so a national answer sums
// a few hundred rows. Pages are cut from the answer in a total order that
// the API defines itself (the figure sorted by, then the group's
// dimensions compared byte by byte), and the cursor holds the last group's
// figure and dimensions, so paging is keyset paging: a group whose figure
// does not change between two pages is neither skipped nor repeated.

// aggKey is a group's place in an aggregate's order: the figure sorted by,
// as a fraction (numerator, denominator; the denominator is 1 for counts
// and sums, so that a rate compares exactly), and the group's dimensions.
type aggKey struct {
	Fig  [2]int64 `json:"f"`
	Dims []string `json:"k"`
}

func (a aggKey) valid(dims int) bool { return len(a.Dims) == dims && a.Fig[1] > 0 }

func cmpFraction(a, b [2]int64) int {
	if a[1] == b[1] {
		return cmp.Compare(a[0], b[0])
	}
	x := new(big.Int).Mul(big.NewInt(a[0]), big.NewInt(b[1]))
	y := new(big.Int).Mul(big.NewInt(b[0]), big.NewInt(a[1]))
	return x.Cmp(y)
}

// aggOrder is an aggregate's order: by figure (byFigure) or by the
// dimensions alone, descending or not; ties on the figure are broken by
// the dimensions ascending, so the order is total.
type aggOrder struct {
	byFigure, desc bool
}

func (o aggOrder) compare(a, b aggKey) int {
	if o.byFigure {
		c := cmpFraction(a.Fig, b.Fig)
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return slices.Compare(a.Dims, b.Dims)
	}
	c := slices.Compare(a.Dims, b.Dims)
	if o.desc {
		c = -c
	}
	return c
}

// cutPage sorts items by o and returns the page after the cursor's group
// (all of them when limit is 0) and the cursor of the next page.
func cutPage[T any](items []T, key func(T) aggKey, o aggOrder, after *aggKey, limit int) ([]T, string) {
	slices.SortFunc(items, func(a, b T) int { return o.compare(key(a), key(b)) })
	if after != nil {
		i, _ := slices.BinarySearchFunc(items, *after, func(it T, k aggKey) int {
			if o.compare(key(it), k) <= 0 {
				return -1
			}
			return 1
		})
		items = items[i:]
	}
	if limit == 0 || len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	b, _ := json.Marshal(key(items[limit-1])) // integers and strings always marshal
	return items, string(b)
}

// aggCursor decodes the inner cursor of an aggregate page with the given
// number of dimensions.
func (p *params) aggCursor(fp string, dims int) *aggKey {
	inner := p.cursor(fp)
	if inner == "" {
		return nil
	}
	var k aggKey
	if err := json.Unmarshal([]byte(inner), &k); err != nil || !k.valid(dims) {
		p.v.Add("cursor", "malformed", "is not a cursor this API returned", "مکان‌نمایی نیست که این API برگردانده باشد")
		return nil
	}
	return &k
}

func fig1(n int64) [2]int64 { return [2]int64{n, 1} }

// dimValue is one grouped dimension's value in an aggregate group: set only
// for the dimensions grouped by (county "" is the facilities without one).
type dimValues struct {
	FiscalYear *int    `json:"fiscal_year,omitempty"`
	Province   *string `json:"province,omitempty"`
	County     *string `json:"county,omitempty"`
	Agency     *string `json:"agency,omitempty"`
	Program    *string `json:"program,omitempty"`
	Bank       *string `json:"bank,omitempty"`
	Firm       *string `json:"firm,omitempty"`
	Guideline  *string `json:"guideline,omitempty"`
}

// set sets dimension d to v (a fiscal year's decimal text).
func (dv *dimValues) set(d, v string) {
	s := v
	switch d {
	case "fiscal_year":
		n, _ := strconv.Atoi(v)
		dv.FiscalYear = &n
	case "province":
		dv.Province = &s
	case "county":
		dv.County = &s
	case "agency":
		dv.Agency = &s
	case "program":
		dv.Program = &s
	case "bank":
		dv.Bank = &s
	case "firm":
		dv.Firm = &s
	case "guideline":
		dv.Guideline = &s
	}
}

func dimsOf(groupBy []string, value func(d string) string) dimValues {
	var dv dimValues
	for _, d := range groupBy {
		dv.set(d, value(d))
	}
	return dv
}

// ─── GET /v1/job-counts ──────────────────────────────────────────────────

var jobCountDims = []string{"fiscal_year", "province", "county", "agency", "program", "bank"}

var jobCountSorts = []string{"dims", "registered", "reviewed", "referred", "approved", "disbursed", "inspected", "confirmed",
	"approved_rials", "disbursed_rials", "jobs_promised", "jobs_reported", "jobs_verified"}

// jobCountView is one group of job counts.
type jobCountView struct {
	dimValues
	Registered     int64 `json:"registered"`
	Reviewed       int64 `json:"reviewed"`
	Referred       int64 `json:"referred"`
	Approved       int64 `json:"approved"`
	Disbursed      int64 `json:"disbursed"`
	Inspected      int64 `json:"inspected"`
	Confirmed      int64 `json:"confirmed"`
	ApprovedRials  int64 `json:"approved_rials"`
	DisbursedRials int64 `json:"disbursed_rials"`
	JobsPromised   int64 `json:"jobs_promised"`
	JobsReported   int64 `json:"jobs_reported"`
	JobsVerified   int64 `json:"jobs_verified"`
}

func jobCountDim(g facilities.JobCount, d string) string {
	switch d {
	case "fiscal_year":
		return strconv.Itoa(g.FiscalYear)
	case "province":
		return g.Province
	case "county":
		return g.County
	case "agency":
		return g.Agency
	case "program":
		return g.Program
	}
	return g.Bank
}

func jobCountFigure(g facilities.JobCount, sort string) int64 {
	switch sort {
	case "registered":
		return g.Registered
	case "reviewed":
		return g.Reviewed
	case "referred":
		return g.Referred
	case "approved":
		return g.Approved
	case "disbursed":
		return g.Disbursed
	case "inspected":
		return g.Inspected
	case "confirmed":
		return g.Confirmed
	case "approved_rials":
		return g.ApprovedRials
	case "disbursed_rials":
		return g.DisbursedRials
	case "jobs_promised":
		return g.JobsPromised
	case "jobs_reported":
		return g.JobsReported
	case "jobs_verified":
		return g.JobsVerified
	}
	return 0
}

func (q *queries) jobCountsRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/job-counts", Action: auth.ActionReadJobCounts, Handle: q.jobCounts,
		Cache: &cacheSpec{model: facilities.Name, replays: asOfParams},
		Doc: routeDoc{
			Summary: "Job counts: the funnel, money and jobs, grouped",
			Description: "Sums of the job_counts read model over the facilities matching the filters (ANDed with the caller's scope), " +
				"grouped by the dimensions in group_by (none: one total). Each group counts the facilities that reached each step " +
				"(registered, reviewed, referred, approved, disbursed, inspected, confirmed), the rials approved and paid and the jobs " +
				"promised, reported and verified. Sorted by the dimensions (default) or by a figure, largest first (order reverses), " +
				"and paged by cursor." + queryDescription + csvDescription + asOfDescription,
			Tags: []string{"job counts"},
			Params: append([]paramDoc{
				qpFiscalYear, qpProvince, qpCounty, qpAgency, qpProgram, qpBank,
				{Name: "group_by", In: "query", Description: "Comma-separated dimensions to group by, in order: fiscal_year, province, county, agency, program, bank.",
					Schema: map[string]any{"type": "string"}},
				qpEnum("sort", "dims (default) or a figure.", jobCountSorts...),
				qpEnum("order", "asc or desc; default asc for dims, desc for a figure.", "asc", "desc"),
				qpLimit, qpCursor,
			}, append(qpAsOf(), qpWait()...)...),
			Responses: map[int]string{http.StatusOK: "JobCountPage", http.StatusNotAcceptable: "Problem"},
			CSV:       true,
		},
	}
}

// order reads sort and order for an aggregate.
func (p *params) aggOrder(sorts []string) (string, aggOrder) {
	sort := p.choice("sort", "dims", sorts...)
	o := aggOrder{byFigure: sort != "dims", desc: sort != "dims"}
	switch p.choice("order", "", "asc", "desc") {
	case "asc":
		o.desc = false
	case "desc":
		o.desc = true
	}
	return sort, o
}

func (q *queries) jobCounts(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadJobCounts); err != nil {
		return err
	}
	p := newParams(r)
	f := facilities.Filter{
		FiscalYear: p.fiscalYear(), Province: p.province(), County: p.id("county"), Agency: p.id("agency"),
		Program: p.id("program"), Bank: p.id("bank"),
	}
	groupBy := p.list("group_by", jobCountDims...)
	sort, order := p.aggOrder(jobCountSorts)
	limit := p.limit()
	wt := p.wait(q.s.cfg.MaxWait)
	at := p.asOf()
	sc, scopeErr := q.scope(pr, auth.ActionReadJobCounts, scoped{province: f.Province, agency: f.Agency, bank: f.Bank})
	f.Province, f.Agency, f.Bank = sc.province, sc.agency, sc.bank
	if err := q.resolveAsOf(r.Context(), &at); err != nil {
		return err
	}
	fp := fingerprint(append([]any{"job-counts", f, groupBy, sort, order}, at.parts()...)...)
	after := p.aggCursor(fp, len(groupBy))
	out, err := checkList(r, p, scopeErr)
	if err != nil {
		return err
	}
	ctx := r.Context()
	rd, release, err := q.facilitiesAsOf(ctx, w, r, wt, at)
	if err != nil {
		return err
	}
	defer release()
	dims := make([]facilities.Dim, len(groupBy))
	for i, d := range groupBy {
		dims[i] = facilities.Dim(d)
	}
	res, err := rd.JobCounts(ctx, f, dims...)
	if err != nil {
		return err
	}
	key := func(g facilities.JobCount) aggKey {
		k := aggKey{Fig: fig1(jobCountFigure(g, sort)), Dims: make([]string, len(groupBy))}
		for i, d := range groupBy {
			k.Dims[i] = jobCountDim(g, d)
		}
		return k
	}
	if out == asCSV {
		limit = 0
	}
	groups, next := cutPage(res.Groups, key, order, after, limit)
	items := make([]jobCountView, len(groups))
	for i, g := range groups {
		items[i] = jobCountView{
			dimValues:  dimsOf(groupBy, func(d string) string { return jobCountDim(g, d) }),
			Registered: g.Registered, Reviewed: g.Reviewed, Referred: g.Referred, Approved: g.Approved,
			Disbursed: g.Disbursed, Inspected: g.Inspected, Confirmed: g.Confirmed, ApprovedRials: g.ApprovedRials,
			DisbursedRials: g.DisbursedRials, JobsPromised: g.JobsPromised, JobsReported: g.JobsReported, JobsVerified: g.JobsVerified,
		}
	}
	if out == asCSV {
		header := append(slices.Clone(groupBy), "registered", "reviewed", "referred", "approved", "disbursed", "inspected",
			"confirmed", "approved_rials", "disbursed_rials", "jobs_promised", "jobs_reported", "jobs_verified")
		c := q.s.startCSV(w, r, "job-counts", res.Position, header)
		streamPages(c, groups, "", nil, func(g facilities.JobCount) []string {
			row := make([]string, 0, len(header))
			for _, d := range groupBy {
				row = append(row, jobCountDim(g, d))
			}
			for _, n := range []int64{g.Registered, g.Reviewed, g.Referred, g.Approved, g.Disbursed, g.Inspected, g.Confirmed,
				g.ApprovedRials, g.DisbursedRials, g.JobsPromised, g.JobsReported, g.JobsVerified} {
				row = append(row, csvInt(n))
			}
			return row
		})
		return nil
	}
	return answer(w, res.Position, newListPage(r, items, sealCursor(fp, next), res.Position))
}

// ─── GET /v1/inspections/stats ───────────────────────────────────────────

var inspectionDims = []string{"fiscal_year", "province", "county", "agency", "program", "bank", "firm", "guideline"}

var inspectionSorts = []string{"dims", "inspections", "facilities", "confirmed", "confirmation_rate", "findings"}

type inspectionStatsView struct {
	dimValues
	Inspections          int64                `json:"inspections"`
	Facilities           int64                `json:"facilities"`
	ConfirmedFacilities  int64                `json:"confirmed_facilities"`
	ConfirmedInspections int64                `json:"confirmed_inspections"`
	JobsVerified         int64                `json:"jobs_verified"`
	ConfirmationRate     float64              `json:"confirmation_rate"`
	Statuses             inspections.Statuses `json:"statuses"`
	Findings             inspections.Findings `json:"findings"`
}

func inspectionDim(g inspections.Group, d string) string {
	switch d {
	case "fiscal_year":
		return strconv.Itoa(g.FiscalYear)
	case "province":
		return g.Province
	case "county":
		return g.County
	case "agency":
		return g.Agency
	case "program":
		return g.Program
	case "bank":
		return g.Bank
	case "firm":
		return g.Firm
	}
	return g.Guideline
}

func inspectionFigure(g inspections.Group, sort string) [2]int64 {
	switch sort {
	case "inspections":
		return fig1(g.Inspections)
	case "facilities":
		return fig1(g.Facilities)
	case "confirmed":
		return fig1(g.ConfirmedFacilities)
	case "confirmation_rate":
		if g.Facilities == 0 {
			return fig1(0)
		}
		return [2]int64{g.ConfirmedFacilities, g.Facilities}
	case "findings":
		return fig1(g.Findings.Total())
	}
	return fig1(0)
}

func (q *queries) inspectionStatsRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/inspections/stats", Action: auth.ActionReadInspections, Handle: q.inspectionStats,
		Cache: &cacheSpec{model: inspections.Name},
		Doc: routeDoc{
			Summary: "Field inspection statistics, grouped",
			Description: "What field inspections found, from the inspections read model, over the inspections matching the filters " +
				"(ANDed with the caller's scope: an inspection firm sees its own inspections), grouped by the dimensions in group_by " +
				"(none: one total): inspections, distinct facilities inspected and confirmed, the confirmation rate, verified jobs, " +
				"inspections by status and audit cases opened from them by kind. Sorted by the dimensions (default) or a figure, " +
				"largest first (order reverses), and paged by cursor." + queryDescription + csvDescription,
			Tags: []string{"inspections"},
			Params: append([]paramDoc{
				qpFiscalYear, qpProvince, qpCounty, qpAgency, qpProgram, qpBank,
				qpString("firm", "Inspection firm id."), qpString("guideline", "Inspection guideline version."),
				{Name: "group_by", In: "query", Description: "Comma-separated dimensions to group by, in order: fiscal_year, province, county, agency, program, bank, firm, guideline.",
					Schema: map[string]any{"type": "string"}},
				qpEnum("sort", "dims (default) or a figure.", inspectionSorts...),
				qpEnum("order", "asc or desc; default asc for dims, desc for a figure.", "asc", "desc"),
				qpLimit, qpCursor,
			}, qpWait()...),
			Responses: map[int]string{http.StatusOK: "InspectionStatsPage", http.StatusNotAcceptable: "Problem"},
			CSV:       true,
		},
	}
}

func (q *queries) inspectionStats(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadInspections); err != nil {
		return err
	}
	p := newParams(r)
	f := inspections.Filter{
		FiscalYear: p.fiscalYear(), Province: p.province(), County: p.id("county"), Agency: p.id("agency"),
		Program: p.id("program"), Bank: p.id("bank"), Firm: p.id("firm"), Guideline: p.id("guideline"),
	}
	groupBy := p.list("group_by", inspectionDims...)
	sort, order := p.aggOrder(inspectionSorts)
	limit := p.limit()
	wt := p.wait(q.s.cfg.MaxWait)
	sc, scopeErr := q.scope(pr, auth.ActionReadInspections, scoped{province: f.Province, agency: f.Agency, bank: f.Bank, firm: f.Firm})
	f.Province, f.Agency, f.Bank, f.Firm = sc.province, sc.agency, sc.bank, sc.firm
	fp := fingerprint("inspections", f, groupBy, sort, order)
	after := p.aggCursor(fp, len(groupBy))
	out, err := checkList(r, p, scopeErr)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := q.await(ctx, w, wt, inspections.Name); err != nil {
		return err
	}
	dims := make([]inspections.Dim, len(groupBy))
	for i, d := range groupBy {
		dims[i] = inspections.Dim(d)
	}
	res, err := q.inspections.Stats(ctx, f, inspections.Query{GroupBy: dims})
	if err != nil {
		return err
	}
	key := func(g inspections.Group) aggKey {
		k := aggKey{Fig: inspectionFigure(g, sort), Dims: make([]string, len(groupBy))}
		for i, d := range groupBy {
			k.Dims[i] = inspectionDim(g, d)
		}
		return k
	}
	if out == asCSV {
		limit = 0
	}
	groups, next := cutPage(res.Groups, key, order, after, limit)
	if out == asCSV {
		header := append(slices.Clone(groupBy), "inspections", "facilities", "confirmed_facilities", "confirmed_inspections",
			"jobs_verified", "confirmation_rate", "active", "inactive", "not_found", "misused",
			"findings_deviation", "findings_violation", "findings_discrepancy")
		c := q.s.startCSV(w, r, "inspection-stats", res.Position, header)
		streamPages(c, groups, "", nil, func(g inspections.Group) []string {
			row := make([]string, 0, len(header))
			for _, d := range groupBy {
				row = append(row, inspectionDim(g, d))
			}
			row = append(row, csvInt(g.Inspections), csvInt(g.Facilities), csvInt(g.ConfirmedFacilities), csvInt(g.ConfirmedInspections),
				csvInt(g.JobsVerified), strconv.FormatFloat(g.ConfirmationRate, 'f', -1, 64),
				csvInt(g.Statuses.Active), csvInt(g.Statuses.Inactive), csvInt(g.Statuses.NotFound), csvInt(g.Statuses.Misused),
				csvInt(g.Findings.Deviation), csvInt(g.Findings.Violation), csvInt(g.Findings.Discrepancy))
			return row
		})
		return nil
	}
	items := make([]inspectionStatsView, len(groups))
	for i, g := range groups {
		items[i] = inspectionStatsView{
			dimValues:   dimsOf(groupBy, func(d string) string { return inspectionDim(g, d) }),
			Inspections: g.Inspections, Facilities: g.Facilities, ConfirmedFacilities: g.ConfirmedFacilities,
			ConfirmedInspections: g.ConfirmedInspections, JobsVerified: g.JobsVerified, ConfirmationRate: g.ConfirmationRate,
			Statuses: g.Statuses, Findings: g.Findings,
		}
	}
	return answer(w, res.Position, newListPage(r, items, sealCursor(fp, next), res.Position))
}
