package api

import (
	"cmp"
	"math"
	"net/http"
	"slices"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/quotas"
)

// ─── GET /v1/quotas/agency-ranking ───────────────────────────────────────

// rankingMethod is the ranking's method, shown with it.
const rankingMethod = "Agencies of the ledger (fiscal year and programme) are ranked on three figures, each higher-is-better: " +
	"verified jobs per billion rials (jobs confirmed by field inspections ÷ rials disbursed to the agency's facilities, per 10⁹ rials), " +
	"confirmation rate (inspections that confirmed the jobs ÷ facilities inspected, percent) and absorption (quota charged by loan " +
	"approvals ÷ quota allocated, percent). Each figure ranks the agencies 1, 2, … (equal figures share a rank; an agency without the " +
	"figure, for want of a divisor, ranks last on it); the score is the mean of the three ranks and the ranking orders by score, then by " +
	"verified jobs per billion rials, then by agency id. Jobs, disbursements and inspections come from the job_counts read model, " +
	"allocations and charges from quota_balances; positions gives the position each reflects."

// agencyRank is one agency's line of the ranking.
type agencyRank struct {
	Agency                 string   `json:"agency"`
	Rank                   int      `json:"rank"`
	Score                  float64  `json:"score"` // mean of the three ranks
	VerifiedJobsPerBillion *float64 `json:"verified_jobs_per_billion_rials"`
	ConfirmationRatePct    *float64 `json:"confirmation_rate_pct"`
	AbsorptionPct          *float64 `json:"absorption_pct"`
	JobsRank               int      `json:"jobs_per_billion_rank"`
	ConfirmationRank       int      `json:"confirmation_rank"`
	AbsorptionRank         int      `json:"absorption_rank"`
	JobsVerified           int64    `json:"jobs_verified"`
	DisbursedRials         int64    `json:"disbursed_rials"`
	Inspected              int64    `json:"inspected"`
	Confirmed              int64    `json:"confirmed"`
	AllocatedRials         int64    `json:"allocated_rials"`
	ChargedRials           int64    `json:"charged_rials"`
	Facilities             int64    `json:"facilities"`
	Approved               int64    `json:"approved"`
	JobsPromised           int64    `json:"jobs_promised"`
	JobsReported           int64    `json:"jobs_reported"`
	ApprovedRials          int64    `json:"approved_rials"`
	UnmetRequestedRials    int64    `json:"unmet_requested_rials"`
}

type agencyRanking struct {
	FiscalYear int               `json:"fiscal_year"`
	Program    string            `json:"program"`
	Method     string            `json:"method"`
	Items      []agencyRank      `json:"items"`
	Positions  map[string]uint64 `json:"positions"`
	Position   uint64            `json:"position"` // the lower of the two: the answer reflects the log at least up to it
}

func (q *queries) agencyRankingRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/quotas/agency-ranking", Action: auth.ActionReadQuotas, Global: true, Handle: q.agencyRanking,
		Doc: routeDoc{
			Summary: "Agencies ranked by performance in one quota ledger",
			Description: rankingMethod + " National roles only (ministry, auditors, administrators): a ranking compares agencies. " +
				"fiscal_year and program are required.",
			Tags:      []string{"quotas"},
			Params:    []paramDoc{qpFiscalYear, qpProgram},
			Responses: map[int]string{http.StatusOK: "AgencyRanking", http.StatusNotAcceptable: "Problem"},
		},
	}
}

func (q *queries) agencyRanking(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	p := newParams(r)
	fy, program := p.fiscalYear(), p.id("program")
	if fy == 0 {
		p.v.Add("fiscal_year", "required", "is required: a ranking is of one ledger", "الزامی است: رتبه‌بندی برای یک دفتر است")
	}
	if program == "" {
		p.v.Add("program", "required", "is required: a ranking is of one ledger", "الزامی است: رتبه‌بندی برای یک دفتر است")
	}
	if err := p.check(); err != nil {
		return err
	}
	if _, err := negotiate(r, false); err != nil {
		return err
	}
	ctx := r.Context()
	counts, err := q.facilities.JobCounts(ctx, facilities.Filter{FiscalYear: fy, Program: program}, facilities.DimAgency)
	if err != nil {
		return err
	}
	accounts, quotaPos, err := q.quotas.LedgerAccounts(ctx, quotas.Filter{FiscalYear: fy, Program: program})
	if err != nil {
		return err
	}
	byAgency := map[string]*agencyRank{}
	get := func(agency string) *agencyRank {
		a, ok := byAgency[agency]
		if !ok {
			a = &agencyRank{Agency: agency}
			byAgency[agency] = a
		}
		return a
	}
	for _, g := range counts.Groups {
		a := get(g.Agency)
		a.JobsVerified, a.DisbursedRials, a.Inspected, a.Confirmed = g.JobsVerified, g.DisbursedRials, g.Inspected, g.Confirmed
		a.Facilities, a.Approved, a.JobsPromised, a.JobsReported, a.ApprovedRials = g.Registered, g.Approved, g.JobsPromised, g.JobsReported, g.ApprovedRials
	}
	for _, acc := range accounts {
		a := get(acc.Agency)
		a.AllocatedRials += acc.AllocatedRials
		a.ChargedRials += acc.ChargedRials
		a.UnmetRequestedRials += acc.UnmetRequestedRials
	}
	items := make([]agencyRank, 0, len(byAgency))
	for _, a := range byAgency {
		a.VerifiedJobsPerBillion = ratio(float64(a.JobsVerified), float64(a.DisbursedRials)/1e9, 1)
		a.ConfirmationRatePct = ratio(float64(a.Confirmed), float64(a.Inspected), 100)
		a.AbsorptionPct = ratio(float64(a.ChargedRials), float64(a.AllocatedRials), 100)
		items = append(items, *a)
	}
	rankBy(items, func(a *agencyRank) *float64 { return a.VerifiedJobsPerBillion }, func(a *agencyRank, r int) { a.JobsRank = r })
	rankBy(items, func(a *agencyRank) *float64 { return a.ConfirmationRatePct }, func(a *agencyRank, r int) { a.ConfirmationRank = r })
	rankBy(items, func(a *agencyRank) *float64 { return a.AbsorptionPct }, func(a *agencyRank, r int) { a.AbsorptionRank = r })
	for i := range items {
		a := &items[i]
		a.Score = math.Round(float64(a.JobsRank+a.ConfirmationRank+a.AbsorptionRank)/3*100) / 100
	}
	slices.SortFunc(items, func(a, b agencyRank) int {
		return cmp.Or(cmp.Compare(a.Score, b.Score), cmp.Compare(deref(b.VerifiedJobsPerBillion), deref(a.VerifiedJobsPerBillion)),
			cmp.Compare(a.Agency, b.Agency))
	})
	for i := range items {
		items[i].Rank = i + 1
	}
	return answer(w, min(counts.Position, quotaPos), agencyRanking{
		FiscalYear: fy, Program: program, Method: rankingMethod, Items: items,
		Positions: map[string]uint64{facilities.Name: counts.Position, quotas.Name: quotaPos},
		Position:  min(counts.Position, quotaPos),
	})
}

// ratio is n ÷ d × scale rounded to two decimals, nil when d is zero.
func ratio(n, d, scale float64) *float64 {
	if d == 0 {
		return nil
	}
	v := math.Round(n/d*scale*100) / 100
	return &v
}

func deref(p *float64) float64 {
	if p == nil {
		return math.Inf(-1)
	}
	return *p
}

// rankBy sets each item's rank on the figure get returns, highest first:
// equal figures share a rank (1 + how many are higher), a missing figure
// ranks last (the number of items).
func rankBy(items []agencyRank, get func(*agencyRank) *float64, set func(*agencyRank, int)) {
	for i := range items {
		v := get(&items[i])
		if v == nil {
			set(&items[i], len(items))
			continue
		}
		higher := 0
		for j := range items {
			if w := get(&items[j]); w != nil && *w > *v {
				higher++
			}
		}
		set(&items[i], 1+higher)
	}
}
