package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/quotas"
)

// ─── GET /v1/quotas/accounts ─────────────────────────────────────────────

// quotaAccountView is one quota account's balance and what its loans have
// become (see projections/quotas for each figure).
type quotaAccountView struct {
	FiscalYear             int        `json:"fiscal_year"`
	Program                string     `json:"program"`
	Agency                 string     `json:"agency"`
	Province               string     `json:"province"`
	County                 string     `json:"county"` // "" for the province's own account
	AllocatedRials         int64      `json:"allocated_rials"`
	TransferredInRials     int64      `json:"transferred_in_rials"`
	TransferredOutRials    int64      `json:"transferred_out_rials"`
	ChargedRials           int64      `json:"charged_rials"`
	ReleasedRials          int64      `json:"released_rials"`
	FreeRials              int64      `json:"free_rials"`
	OpenChargesRials       int64      `json:"open_charges_rials"`
	JobsTarget             int        `json:"jobs_target"`
	Facilities             int64      `json:"facilities"`
	DisbursedRials         int64      `json:"disbursed_rials"`
	JobsVerified           int64      `json:"jobs_verified"`
	UnmetFacilities        int64      `json:"unmet_facilities"`
	UnmetRequestedRials    int64      `json:"unmet_requested_rials"`
	FirstAllocatedAt       *time.Time `json:"first_allocated_at"`
	FirstAllocatedAtJalali *string    `json:"first_allocated_at_jalali"`
	DaysSinceAllocation    *int       `json:"days_since_allocation"` // whole days since FirstAllocatedAt, at the answer's time
	AbsorptionPct          *float64   `json:"absorption_pct"`
	PaymentRatePct         *float64   `json:"payment_rate_pct"`
	RealisationPct         *float64   `json:"realisation_pct"`
}

func quotaAccountViewOf(a quotas.Account) quotaAccountView {
	v := quotaAccountView{
		FiscalYear: a.FiscalYear, Program: a.Program, Agency: a.Agency, Province: a.Province, County: a.County,
		AllocatedRials: a.AllocatedRials, TransferredInRials: a.TransferredInRials, TransferredOutRials: a.TransferredOutRials,
		ChargedRials: a.ChargedRials, ReleasedRials: a.ReleasedRials, FreeRials: a.FreeRials, OpenChargesRials: a.OpenChargesRials,
		JobsTarget: a.JobsTarget, Facilities: a.Facilities, DisbursedRials: a.DisbursedRials, JobsVerified: a.JobsVerified,
		UnmetFacilities: a.UnmetFacilities, UnmetRequestedRials: a.UnmetRequestedRials,
		FirstAllocatedAt: utcPtr(a.FirstAllocatedAt),
		AbsorptionPct:    a.AbsorptionPct, PaymentRatePct: a.PaymentRatePct, RealisationPct: a.RealisationPct,
	}
	v.FirstAllocatedAtJalali = jalaliPtr(v.FirstAllocatedAt)
	if d, ok := a.DaysSinceAllocation(time.Now()); ok {
		v.DaysSinceAllocation = &d
	}
	return v
}

var quotaAccountCSVHeader = []string{
	"fiscal_year", "program", "agency", "province", "county", "allocated_rials", "transferred_in_rials", "transferred_out_rials",
	"charged_rials", "released_rials", "free_rials", "open_charges_rials", "jobs_target", "facilities", "disbursed_rials",
	"jobs_verified", "unmet_facilities", "unmet_requested_rials", "first_allocated_at", "first_allocated_at_jalali",
	"days_since_allocation", "absorption_pct", "payment_rate_pct", "realisation_pct",
}

func quotaAccountCSV(a quotas.Account) []string {
	v := quotaAccountViewOf(a)
	return []string{
		csvInt(v.FiscalYear), v.Program, v.Agency, v.Province, v.County, csvInt(v.AllocatedRials), csvInt(v.TransferredInRials),
		csvInt(v.TransferredOutRials), csvInt(v.ChargedRials), csvInt(v.ReleasedRials), csvInt(v.FreeRials), csvInt(v.OpenChargesRials),
		csvInt(v.JobsTarget), csvInt(v.Facilities), csvInt(v.DisbursedRials), csvInt(v.JobsVerified), csvInt(v.UnmetFacilities),
		csvInt(v.UnmetRequestedRials), csvTimePtr(v.FirstAllocatedAt), csvStr(v.FirstAllocatedAtJalali), csvIntPtr(v.DaysSinceAllocation),
		csvFloatPtr(v.AbsorptionPct), csvFloatPtr(v.PaymentRatePct), csvFloatPtr(v.RealisationPct),
	}
}

var quotaSorts = []string{"account", "free", "allocated", "absorption", "payment_rate", "realisation", "first_allocated"}

func (q *queries) quotaAccountsRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/quotas/accounts", Action: auth.ActionReadQuotas, Handle: q.quotaAccounts,
		// days_since_allocation is counted to the moment of the answer.
		Cache: &cacheSpec{model: quotas.Name, replays: asOfParams, clock: "as_of"},
		Doc: routeDoc{
			Summary: "Quota accounts and their use",
			Description: "One row per quota account (fiscal year, programme, agency, province and, for a county's own quota, county) " +
				"from the quota balances read model: the ledger's figures (allocated, transferred in and out, charged, released, free), " +
				"what the loans charged to it have become (facilities, paid, jobs verified), unmet demand, and absorption, payment and " +
				"realisation rates. Filtered (ANDed with the caller's scope: a province office its province, an agency its own; banks and " +
				"inspection firms read no quotas), sorted and paged by cursor." + queryDescription + csvDescription + asOfDescription,
			Tags: []string{"quotas"},
			Params: append([]paramDoc{
				qpFiscalYear, qpProgram, qpAgency, qpProvince,
				qpString("county", "County id: county accounts only."),
				qpEnum("sort", "account (default: by key), free, allocated (largest first), absorption, payment_rate, realisation "+
					"(lowest first), first_allocated (longest allocated first).", quotaSorts...),
				qpLimit, qpCursor,
			}, append(qpAsOf(), qpWait()...)...),
			Responses: map[int]string{http.StatusOK: "QuotaAccountPage", http.StatusNotAcceptable: "Problem"},
			CSV:       true,
		},
	}
}

func (q *queries) quotaAccounts(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadQuotas); err != nil {
		return err
	}
	p := newParams(r)
	f := quotas.Filter{FiscalYear: p.fiscalYear(), Program: p.id("program"), Agency: p.id("agency"),
		Province: p.province(), County: p.id("county")}
	sort := quotas.Sort(p.choice("sort", string(quotas.SortAccount), quotaSorts...))
	limit := p.limit()
	wt := p.wait(q.s.cfg.MaxWait)
	at := p.asOf()
	sc, scopeErr := q.scope(pr, auth.ActionReadQuotas, scoped{province: f.Province, agency: f.Agency})
	f.Province, f.Agency = sc.province, sc.agency
	if err := q.resolveAsOf(r.Context(), &at); err != nil {
		return err
	}
	fp := fingerprint(append([]any{"quota-accounts", f, sort}, at.parts()...)...)
	after := p.cursor(fp)
	out, err := checkList(r, p, scopeErr)
	if err != nil {
		return err
	}
	ctx := r.Context()
	rd, release, err := q.quotasAsOf(ctx, w, r, wt, at)
	if err != nil {
		return err
	}
	defer release()
	return serveList(q, w, r, out, fp, after, limit, func(after string, limit int) (page[quotas.Account], error) {
		res, err := rd.Accounts(ctx, f, quotas.Page{After: after, Limit: limit, Sort: sort})
		return page[quotas.Account]{res.Accounts, res.Next, res.Position}, err
	}, quotaAccountList)
}

var quotaAccountList = listFormat[quotas.Account, quotaAccountView]{
	csvName: "quota-accounts", csvHeader: quotaAccountCSVHeader, csvRow: quotaAccountCSV, view: quotaAccountViewOf,
}

// ─── GET /v1/quotas/totals ───────────────────────────────────────────────

type quotaTotalsView struct {
	quotas.LedgerTotals
	FirstAllocatedAtJalali *string `json:"first_allocated_at_jalali"`
}

type quotaTotalsAnswer struct {
	Items    []quotaTotalsView `json:"items"`
	Position uint64            `json:"position"`
}

func (q *queries) quotaTotalsRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/quotas/totals", Action: auth.ActionReadQuotas, Handle: q.quotaTotals,
		Cache: &cacheSpec{model: quotas.Name, replays: asOfParams},
		Doc: routeDoc{
			Summary: "Quota totals per ledger",
			Description: "The accounts of each quota ledger (fiscal year and programme) summed, with conservation made visible " +
				"(conserved: allocated equals free plus open charges). Totals are over whole ledgers, so they are read by national " +
				"roles only (ministry, auditors, administrators); scoped roles read their accounts at /v1/quotas/accounts." + queryDescription +
				asOfDescription,
			Tags:      []string{"quotas"},
			Params:    append([]paramDoc{qpFiscalYear, qpProgram}, append(qpAsOf(), qpWait()...)...),
			Responses: map[int]string{http.StatusOK: "QuotaTotals", http.StatusNotAcceptable: "Problem"},
		},
	}
}

func (q *queries) quotaTotals(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	mandatory, err := q.readFilter(pr, auth.ActionReadQuotas)
	if err != nil {
		return err
	}
	if !mandatory.IsZero() {
		pe := fail(probForbidden,
			"quota totals are sums over whole ledgers, which reach beyond a "+string(pr.Role)+"'s scope; read your accounts at /v1/quotas/accounts",
			"جمع سهمیه‌ها بر کل دفتر سهمیه است و از محدودهٔ این نقش فراتر می‌رود؛ حساب‌های خود را در /v1/quotas/accounts ببینید")
		pe.extra = map[string]any{"denial": string(auth.DeniedScope)}
		return pe
	}
	p := newParams(r)
	f := quotas.Filter{FiscalYear: p.fiscalYear(), Program: p.id("program")}
	wt := p.wait(q.s.cfg.MaxWait)
	at := p.asOf()
	if err := p.check(); err != nil {
		return err
	}
	if _, err := negotiate(r, false); err != nil {
		return err
	}
	ctx := r.Context()
	if err := q.resolveAsOf(ctx, &at); err != nil {
		return err
	}
	rd, release, err := q.quotasAsOf(ctx, w, r, wt, at)
	if err != nil {
		return err
	}
	defer release()
	res, err := rd.Totals(ctx, f)
	if err != nil {
		return err
	}
	items := make([]quotaTotalsView, len(res.Ledgers))
	for i, l := range res.Ledgers {
		l.FirstAllocatedAt = utcPtr(l.FirstAllocatedAt)
		items[i] = quotaTotalsView{LedgerTotals: l, FirstAllocatedAtJalali: jalaliPtr(l.FirstAllocatedAt)}
	}
	return answer(w, res.Position, quotaTotalsAnswer{Items: items, Position: res.Position})
}

// ─── GET /v1/banks/performance ───────────────────────────────────────────

var bankDims = []string{"bank", "fiscal_year", "province", "county", "agency", "program"}

var bankSorts = []string{"key", "pending_approval", "pending_payment", "approval_days", "payment_days"}

type bankRowView struct {
	dimValues
	PendingApproval banks.Backlog  `json:"pending_approval"`
	PendingPayment  banks.Backlog  `json:"pending_payment"`
	ApprovalDays    banks.Duration `json:"approval_days"`
	PaymentDays     banks.Duration `json:"payment_days"`
}

// bankPage is a page of the bank performance report; AsOf is the Tehran
// calendar date ages are counted to, in both calendars.
type bankPage struct {
	Items      []bankRowView `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
	Next       string        `json:"next,omitempty"`
	AsOf       string        `json:"as_of"`
	AsOfJalali string        `json:"as_of_jalali"`
	Position   uint64        `json:"position"`
}

func bankDim(row banks.Row, d string) string {
	switch d {
	case "fiscal_year":
		return strconv.Itoa(row.FiscalYear)
	case "province":
		return row.Province
	case "county":
		return row.County
	case "agency":
		return row.Agency
	case "program":
		return row.Program
	}
	return row.Bank
}

var bankCSVFigures = []string{
	"pending_approval_facilities", "pending_approval_rials",
	"pending_approval_0_30_facilities", "pending_approval_0_30_rials", "pending_approval_31_90_facilities", "pending_approval_31_90_rials",
	"pending_approval_91_180_facilities", "pending_approval_91_180_rials", "pending_approval_over_180_facilities", "pending_approval_over_180_rials",
	"pending_approval_after_as_of_facilities", "pending_approval_after_as_of_rials",
	"pending_payment_facilities", "pending_payment_rials",
	"pending_payment_0_30_facilities", "pending_payment_0_30_rials", "pending_payment_31_90_facilities", "pending_payment_31_90_rials",
	"pending_payment_91_180_facilities", "pending_payment_91_180_rials", "pending_payment_over_180_facilities", "pending_payment_over_180_rials",
	"pending_payment_after_as_of_facilities", "pending_payment_after_as_of_rials",
	"approval_facilities", "approval_median_days", "payment_facilities", "payment_median_days",
}

func backlogCSV(b banks.Backlog) []string {
	out := []string{csvInt(b.Facilities), csvInt(b.Rials)}
	for _, k := range []banks.Bucket{b.Days0To30, b.Days31To90, b.Days91To180, b.Over180, b.AfterAsOf} {
		out = append(out, csvInt(k.Facilities), csvInt(k.Rials))
	}
	return out
}

func (q *queries) bankPerformanceRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/banks/performance", Action: auth.ActionReadBanks, Handle: q.bankPerformance,
		Cache: &cacheSpec{model: banks.Name, clock: "as_of"},
		Doc: routeDoc{
			Summary: "Bank performance: backlogs and how long steps take",
			Description: "Per bank (or per another dimension, group_by), over the facilities matching the filters (ANDed with the " +
				"caller's scope: a bank sees only itself): the facilities waiting for the bank's decision and for their money, with " +
				"rials and ageing buckets counted in Tehran calendar days to as_of, and the median days from referral to approval and " +
				"from approval to the first tranche. Sorted and paged by cursor." + queryDescription + csvDescription,
			Tags: []string{"banks"},
			Params: append([]paramDoc{
				qpFiscalYear, qpProvince, qpCounty, qpAgency, qpProgram, qpBank,
				qpEnum("group_by", "The dimension of the rows (default bank).", bankDims...),
				{Name: "as_of", In: "query", Description: "The date ages are counted to (its Tehran calendar date; default today): ISO 8601 or Solar Hijri (1403/09/15).",
					Schema: map[string]any{"type": "string"}},
				qpEnum("sort", "key (default), pending_approval (most facilities first), pending_payment (most rials first), "+
					"approval_days, payment_days (slowest first).", bankSorts...),
				qpLimit, qpCursor,
			}, qpWait()...),
			Responses: map[int]string{http.StatusOK: "BankPerformancePage", http.StatusNotAcceptable: "Problem"},
			CSV:       true,
		},
	}
}

func (q *queries) bankPerformance(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadBanks); err != nil {
		return err
	}
	p := newParams(r)
	f := banks.Filter{FiscalYear: p.fiscalYear(), Province: p.province(), County: p.id("county"), Agency: p.id("agency"),
		Program: p.id("program"), Bank: p.id("bank")}
	groupBy := p.choice("group_by", "bank", bankDims...)
	asOf, given := p.time("as_of")
	if !given {
		asOf = time.Now()
	}
	sort := banks.Sort(p.choice("sort", string(banks.SortKey), bankSorts...))
	limit := p.limit()
	wt := p.wait(q.s.cfg.MaxWait)
	sc, scopeErr := q.scope(pr, auth.ActionReadBanks, scoped{province: f.Province, agency: f.Agency, bank: f.Bank})
	f.Province, f.Agency, f.Bank = sc.province, sc.agency, sc.bank
	var fixed string
	if given {
		fixed = asOf.UTC().Format(time.RFC3339)
	}
	fp := fingerprint("banks", f, groupBy, sort, fixed)
	after := p.cursor(fp)
	out, err := checkList(r, p, scopeErr)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := q.await(ctx, w, wt, banks.Name); err != nil {
		return err
	}
	if out == asCSV {
		limit = maxLimit
	}
	fetch := func(after string) (banks.Report, error) {
		res, err := q.banks.Performance(ctx, banks.Query{Filter: f, GroupBy: banks.Dim(groupBy), AsOf: asOf, Sort: sort, After: after, Limit: limit})
		return res, innerCursorError(err)
	}
	res, err := fetch(after)
	if err != nil {
		return err
	}
	if out == asCSV {
		c := q.s.startCSV(w, r, "bank-performance", res.Position, append([]string{groupBy}, bankCSVFigures...))
		streamPages(c, res.Rows, res.Next, func(after string) ([]banks.Row, string, error) {
			res, err := fetch(after)
			return res.Rows, res.Next, err
		}, func(row banks.Row) []string {
			out := []string{bankDim(row, groupBy)}
			out = append(out, backlogCSV(row.PendingApproval)...)
			out = append(out, backlogCSV(row.PendingPayment)...)
			return append(out, csvInt(row.ApprovalDays.Facilities), csvFloatPtr(row.ApprovalDays.MedianDays),
				csvInt(row.PaymentDays.Facilities), csvFloatPtr(row.PaymentDays.MedianDays))
		})
		return nil
	}
	items := make([]bankRowView, len(res.Rows))
	for i, row := range res.Rows {
		items[i] = bankRowView{
			dimValues:       dimsOf([]string{groupBy}, func(d string) string { return bankDim(row, d) }),
			PendingApproval: row.PendingApproval, PendingPayment: row.PendingPayment,
			ApprovalDays: row.ApprovalDays, PaymentDays: row.PaymentDays,
		}
	}
	next := sealCursor(fp, res.Next)
	return answer(w, res.Position, bankPage{
		Items: items, NextCursor: next, Next: nextLink(r, next), AsOf: res.AsOf, AsOfJalali: jalali(asOf), Position: res.Position,
	})
}

// ─── GET /v1/deviations ──────────────────────────────────────────────────

// deviationView is an audit case's current state.
type deviationView struct {
	FacilityID       string                 `json:"facility_id"`
	DeviationID      string                 `json:"deviation_id"`
	FiscalYear       int                    `json:"fiscal_year"`
	Province         string                 `json:"province"`
	County           string                 `json:"county"`
	Agency           string                 `json:"agency"`
	Program          string                 `json:"program"`
	Bank             string                 `json:"bank"`
	Kind             facility.DeviationKind `json:"kind"`
	State            string                 `json:"state"`
	Description      string                 `json:"description"`
	InspectionID     string                 `json:"inspection_id"` // "" when an auditor opened it on their own finding
	Inspection       *deviations.Inspection `json:"inspection"`
	OpenedAt         time.Time              `json:"opened_at"`
	OpenedAtJalali   string                 `json:"opened_at_jalali"`
	OpenedBy         string                 `json:"opened_by"`
	Evidence         int                    `json:"evidence"`
	Resolution       facility.Resolution    `json:"resolution"` // "" while open
	RecoveredRials   int64                  `json:"recovered_rials"`
	ResolutionNote   string                 `json:"resolution_note"`
	ResolvedAt       *time.Time             `json:"resolved_at"`
	ResolvedAtJalali *string                `json:"resolved_at_jalali"`
	ResolvedBy       string                 `json:"resolved_by"`
	Steps            int                    `json:"steps"`
	LastStepAt       time.Time              `json:"last_step_at"`
	LastStepAtJalali string                 `json:"last_step_at_jalali"`
	OpenedPosition   uint64                 `json:"opened_position"`
	LastPosition     uint64                 `json:"last_event_position"`
}

func deviationViewOf(d deviations.Deviation) deviationView {
	v := deviationView{
		FacilityID: d.FacilityID, DeviationID: d.DeviationID, FiscalYear: d.FiscalYear, Province: d.Province, County: d.County,
		Agency: d.Agency, Program: d.Program, Bank: d.Bank, Kind: d.Kind, State: d.State, Description: d.Description,
		InspectionID: d.InspectionID, Inspection: d.Inspection, OpenedAt: d.OpenedAt.UTC(), OpenedAtJalali: jalali(d.OpenedAt),
		OpenedBy: d.OpenedBy, Evidence: d.Evidence, Resolution: d.Resolution, RecoveredRials: d.RecoveredRials,
		ResolutionNote: d.ResolutionNote, ResolvedAt: utcPtr(d.ResolvedAt), ResolvedBy: d.ResolvedBy, Steps: d.Steps,
		LastStepAt: d.LastStepAt.UTC(), LastStepAtJalali: jalali(d.LastStepAt), OpenedPosition: d.OpenedPosition, LastPosition: d.Position,
	}
	v.ResolvedAtJalali = jalaliPtr(v.ResolvedAt)
	return v
}

var deviationCSVHeader = []string{
	"facility_id", "deviation_id", "fiscal_year", "province", "county", "agency", "program", "bank", "kind", "state",
	"description", "inspection_id", "inspection_firm", "inspection_guideline", "inspection_status", "inspection_confirmed",
	"inspection_verified_jobs", "opened_at", "opened_at_jalali", "opened_by", "evidence", "resolution", "recovered_rials",
	"resolution_note", "resolved_at", "resolved_at_jalali", "resolved_by", "steps", "last_step_at", "last_step_at_jalali",
	"opened_position", "last_event_position",
}

func deviationCSV(d deviations.Deviation) []string {
	v := deviationViewOf(d)
	var in [5]string
	if i := v.Inspection; i != nil {
		in = [5]string{i.Firm, i.Guideline, string(i.Status), csvBool(i.Confirmed), csvInt(i.VerifiedJobs)}
	}
	return []string{
		v.FacilityID, v.DeviationID, csvInt(v.FiscalYear), v.Province, v.County, v.Agency, v.Program, v.Bank, string(v.Kind), v.State,
		csvText(v.Description), v.InspectionID, in[0], in[1], in[2], in[3], in[4], csvTime(v.OpenedAt), v.OpenedAtJalali, v.OpenedBy,
		csvInt(v.Evidence), string(v.Resolution), csvInt(v.RecoveredRials), csvText(v.ResolutionNote), csvTimePtr(v.ResolvedAt),
		csvStr(v.ResolvedAtJalali), v.ResolvedBy, csvInt(v.Steps), csvTime(v.LastStepAt), v.LastStepAtJalali,
		csvInt(v.OpenedPosition), csvInt(v.LastPosition),
	}
}

var deviationSorts = []string{"opened", "updated", "recovered", "id"}

func (q *queries) deviationsRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/deviations", Action: auth.ActionReadDeviations, Handle: q.listDeviations,
		Cache: &cacheSpec{model: deviations.Name},
		Doc: routeDoc{
			Summary: "Audit cases (deviations, violations, discrepancies)",
			Description: "Every audit case's current state from the deviations read model, filtered (ANDed with the caller's scope), " +
				"sorted and paged by cursor. One case's full trail is at /v1/deviations/{facility_id}/{deviation_id}." +
				queryDescription + csvDescription,
			Tags: []string{"deviations"},
			Params: append([]paramDoc{
				qpFiscalYear, qpProvince, qpCounty, qpAgency, qpProgram, qpBank,
				qpEnum("state", "open or resolved.", deviations.StateOpen, deviations.StateResolved),
				qpEnum("kind", "deviation, violation or discrepancy.",
					string(facility.KindDeviation), string(facility.KindViolation), string(facility.KindDiscrepancy)),
				qpString("facility", "One facility's cases (facility id)."),
				qpEnum("sort", "opened (default: latest opened first), updated (latest changed first), recovered (most rials first) "+
					"or id (facility and case id ascending).", deviationSorts...),
				qpLimit, qpCursor,
			}, qpWait()...),
			Responses: map[int]string{http.StatusOK: "DeviationPage", http.StatusNotAcceptable: "Problem"},
			CSV:       true,
		},
	}
}

func (q *queries) listDeviations(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadDeviations); err != nil {
		return err
	}
	p := newParams(r)
	f := deviations.Filter{
		FiscalYear: p.fiscalYear(), Province: p.province(), County: p.id("county"), Agency: p.id("agency"),
		Program: p.id("program"), Bank: p.id("bank"),
		State: p.choice("state", "", deviations.StateOpen, deviations.StateResolved),
		Kind: facility.DeviationKind(p.choice("kind", "",
			string(facility.KindDeviation), string(facility.KindViolation), string(facility.KindDiscrepancy))),
		FacilityID: p.id("facility"),
	}
	sort := deviations.Sort(p.choice("sort", string(deviations.SortOpened), deviationSorts...))
	limit := p.limit()
	wt := p.wait(q.s.cfg.MaxWait)
	sc, scopeErr := q.scope(pr, auth.ActionReadDeviations, scoped{province: f.Province, agency: f.Agency, bank: f.Bank})
	f.Province, f.Agency, f.Bank = sc.province, sc.agency, sc.bank
	fp := fingerprint("deviations", f, sort)
	after := p.cursor(fp)
	out, err := checkList(r, p, scopeErr)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := q.await(ctx, w, wt, deviations.Name); err != nil {
		return err
	}
	return serveList(q, w, r, out, fp, after, limit, func(after string, limit int) (page[deviations.Deviation], error) {
		res, err := q.deviations.Deviations(ctx, f, deviations.Page{After: after, Limit: limit, Sort: sort})
		return page[deviations.Deviation]{res.Deviations, res.Next, res.Position}, err
	}, deviationList)
}

var deviationList = listFormat[deviations.Deviation, deviationView]{
	csvName: "deviations", csvHeader: deviationCSVHeader, csvRow: deviationCSV, view: deviationViewOf,
}

// ─── GET /v1/deviations/{facility_id}/{deviation_id} ─────────────────────

// stepView is one step of a case's trail.
type stepView struct {
	Step             int                    `json:"step"`
	Action           deviations.Action      `json:"action"`
	Actor            eventstore.Actor       `json:"actor"`
	OccurredAt       time.Time              `json:"occurred_at"`
	OccurredAtJalali string                 `json:"occurred_at_jalali"`
	RecordedAt       time.Time              `json:"recorded_at"`
	RecordedAtJalali string                 `json:"recorded_at_jalali"`
	EventID          string                 `json:"event_id"`
	EventType        string                 `json:"event_type"`
	StreamVersion    uint64                 `json:"stream_version"`
	Position         uint64                 `json:"position"`
	CorrelationID    string                 `json:"correlation_id,omitempty"`
	CausationID      string                 `json:"causation_id,omitempty"`
	Kind             facility.DeviationKind `json:"kind,omitempty"`
	InspectionID     string                 `json:"inspection_id,omitempty"`
	Description      string                 `json:"description,omitempty"`
	Evidence         string                 `json:"evidence,omitempty"`
	DocumentRef      string                 `json:"document_ref,omitempty"`
	Resolution       facility.Resolution    `json:"resolution,omitempty"`
	RecoveredRials   int64                  `json:"recovered_rials,omitempty"`
	Note             string                 `json:"note,omitempty"`
	Correction       *deviations.Correction `json:"correction,omitempty"`
}

type trailAnswer struct {
	Deviation deviationView `json:"deviation"`
	Steps     []stepView    `json:"steps"`
	Position  uint64        `json:"position"`
}

func (q *queries) deviationTrailRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/deviations/{facility_id}/{deviation_id}", Action: auth.ActionReadDeviations,
		Cache:  &cacheSpec{model: deviations.Name},
		Handle: q.deviationTrail,
		Doc: routeDoc{
			Summary: "One audit case with its full trail",
			Description: "The case's current state and every step of its trail, oldest first: what was done (opened, evidence added, " +
				"resolved, or a correction of what the case shows), by whom, when (business and system time, both calendars), why, and the " +
				"event behind it. A case outside the caller's scope is 404 as if it did not exist." + queryDescription,
			Tags: []string{"deviations"},
			Params: append([]paramDoc{
				qpPath("facility_id", "Facility id."), qpPath("deviation_id", "Audit case id within the facility."),
			}, qpWait()...),
			Responses: map[int]string{http.StatusOK: "DeviationTrail", http.StatusNotFound: "Problem", http.StatusNotAcceptable: "Problem"},
		},
	}
}

func (q *queries) deviationTrail(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadDeviations); err != nil {
		return err
	}
	fid, did := r.PathValue("facility_id"), r.PathValue("deviation_id")
	p := newParams(r)
	wt := p.wait(q.s.cfg.MaxWait)
	if err := p.check(); err != nil {
		return err
	}
	if _, err := negotiate(r, false); err != nil {
		return err
	}
	ctx := r.Context()
	if err := q.await(ctx, w, wt, deviations.Name); err != nil {
		return err
	}
	notFound := &domain.NotFoundError{Kind: "deviation", ID: fid + "/" + did}
	t, err := q.deviations.Trail(ctx, fid, did)
	if err != nil {
		return err
	}
	d := t.Deviation
	if err := q.s.policy.Authorize(pr, auth.ActionReadDeviations, auth.Resource{Province: d.Province, Agency: d.Agency, Bank: d.Bank}); err != nil {
		return hidden(err, notFound)
	}
	steps := make([]stepView, len(t.Steps))
	for i, s := range t.Steps {
		steps[i] = stepView{
			Step: s.Step, Action: s.Action, Actor: s.Actor, OccurredAt: s.OccurredAt.UTC(), OccurredAtJalali: jalali(s.OccurredAt),
			RecordedAt: s.RecordedAt.UTC(), RecordedAtJalali: jalali(s.RecordedAt), EventID: s.EventID, EventType: s.EventType,
			StreamVersion: s.StreamVersion, Position: s.Position, CorrelationID: s.CorrelationID, CausationID: s.CausationID,
			Kind: s.Kind, InspectionID: s.InspectionID, Description: s.Description, Evidence: s.Evidence, DocumentRef: s.DocumentRef,
			Resolution: s.Resolution, RecoveredRials: s.RecoveredRials, Note: s.Note, Correction: s.Correction,
		}
	}
	return answer(w, t.Position, trailAnswer{Deviation: deviationViewOf(d), Steps: steps, Position: t.Position})
}
