package quotas

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/projections"
)

// Account is one quota account's balance and what its loans have become.
// See the package documentation for what each figure counts.
type Account struct {
	FiscalYear int    `json:"fiscal_year"`
	Program    string `json:"program"`
	Agency     string `json:"agency"`
	Province   string `json:"province"`
	County     string `json:"county,omitempty"` // "" for the province's account

	AllocatedRials      int64 `json:"allocated_rials"` // net of allocation corrections
	TransferredInRials  int64 `json:"transferred_in_rials"`
	TransferredOutRials int64 `json:"transferred_out_rials"`
	ChargedRials        int64 `json:"charged_rials"`
	ReleasedRials       int64 `json:"released_rials"`
	FreeRials           int64 `json:"free_rials"`         // quota.Balance.FreeRials
	OpenChargesRials    int64 `json:"open_charges_rials"` // charged − released
	JobsTarget          int   `json:"jobs_target"`

	// Over the facilities whose loan approval charged this account.
	Facilities     int64 `json:"facilities"`
	DisbursedRials int64 `json:"disbursed_rials"`
	JobsVerified   int64 `json:"jobs_verified"`

	// Facilities referred to a bank and awaiting its decision that an
	// approval now would charge to this account, and the rials they
	// request.
	UnmetFacilities     int64 `json:"unmet_facilities"`
	UnmetRequestedRials int64 `json:"unmet_requested_rials"`

	// FirstAllocatedAt is the business time of the earliest allocation whose
	// corrected amount is positive; nil when there is none.
	FirstAllocatedAt *time.Time `json:"first_allocated_at"`

	// Ratios in percent, rounded down to four decimals (the precision the
	// orders use); nil when the divisor is zero.
	AbsorptionPct  *float64 `json:"absorption_pct"`   // charged ÷ allocated
	PaymentRatePct *float64 `json:"payment_rate_pct"` // disbursed ÷ charged
	RealisationPct *float64 `json:"realisation_pct"`  // jobs verified ÷ jobs target
}

// Key returns the account's key in its ledger.
func (a Account) Key() quota.AccountKey {
	return quota.AccountKey{Agency: a.Agency, Province: a.Province, County: a.County}
}

// Balance returns the ledger figures as quota.Ledger.Account reports them.
func (a Account) Balance() quota.Balance {
	return quota.Balance{
		Account: a.Key(), AllocatedRials: a.AllocatedRials, TransferredInRials: a.TransferredInRials,
		TransferredOutRials: a.TransferredOutRials, ChargedRials: a.ChargedRials, ReleasedRials: a.ReleasedRials,
		JobsTarget: a.JobsTarget,
	}
}

// DaysSinceAllocation returns the whole days from FirstAllocatedAt to asOf,
// and false when the account has no live allocation. It is 0 on the day of
// the allocation and negative when asOf is before it.
func (a Account) DaysSinceAllocation(asOf time.Time) (int, bool) {
	if a.FirstAllocatedAt == nil {
		return 0, false
	}
	d := asOf.Sub(*a.FirstAllocatedAt)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days-- // round towards the past, so every instant of a day gives the same number
	}
	return days, true
}

func (a *account) public(unmetFacilities, unmetRials int64) Account {
	out := Account{
		FiscalYear: int(a.fiscalYear), Program: a.program, Agency: a.agency, Province: a.province, County: a.county,
		AllocatedRials: a.allocated, TransferredInRials: a.transferredIn, TransferredOutRials: a.transferredOut,
		ChargedRials: a.charged, ReleasedRials: a.released, FreeRials: a.free(), OpenChargesRials: a.charged - a.released,
		JobsTarget: int(a.jobsTarget), Facilities: a.facilities, DisbursedRials: a.disbursed, JobsVerified: a.jobsVerified,
		UnmetFacilities: unmetFacilities, UnmetRequestedRials: unmetRials,
		AbsorptionPct:  pct(ppm(a.charged, a.allocated)),
		PaymentRatePct: pct(ppm(a.disbursed, a.charged)),
		RealisationPct: pct(ppm(a.jobsVerified, a.jobsTarget)),
	}
	if a.firstAllocatedAt.Valid {
		t := time.UnixMicro(a.firstAllocatedAt.Int64).UTC()
		out.FirstAllocatedAt = &t
	}
	return out
}

func pct(ppm sql.NullInt64) *float64 {
	if !ppm.Valid {
		return nil
	}
	v := float64(ppm.Int64) / 10_000
	return &v
}

// Filter selects accounts by the dimensions of their key. Zero fields match
// everything; County matches county accounts only (a province's own account
// has none). Accounts have no bank: the facilities charged to one are paid
// by many banks.
type Filter struct {
	FiscalYear int
	Program    string
	Agency     string
	Province   string
	County     string
}

func (f Filter) validate() error {
	var v domain.Validator
	v.Check(f.FiscalYear == 0 || f.FiscalYear >= quota.MinFiscalYear && f.FiscalYear <= quota.MaxFiscalYear,
		"fiscal_year", "out_of_range",
		fmt.Sprintf("must be a Solar Hijri year from %d to %d", quota.MinFiscalYear, quota.MaxFiscalYear),
		fmt.Sprintf("باید سالی هجری شمسی از %d تا %d باشد", quota.MinFiscalYear, quota.MaxFiscalYear))
	v.Check(f.Program == "" || quota.ValidProgram(f.Program), "program", "malformed",
		"must be a program id of lower-case letters, digits and hyphens",
		"باید شناسه برنامه از حروف کوچک لاتین، رقم و خط تیره باشد")
	for _, p := range []struct{ field, value string }{{"agency", f.Agency}, {"province", f.Province}, {"county", f.County}} {
		v.Check(p.value == "" || quota.ValidKeyPart(p.value), p.field, "malformed",
			"must not contain '/' or surrounding spaces", "نباید «/» یا فاصله در ابتدا و انتها داشته باشد")
	}
	return v.Err()
}

func (f Filter) where() projections.Where {
	var w projections.Where
	w.EqInt("fiscal_year", f.FiscalYear)
	w.Eq("program", f.Program)
	w.Eq("agency", f.Agency)
	w.Eq("province", f.Province)
	w.Eq("county", f.County)
	return w
}

// Sort orders a page of accounts. Every order ends with the account's key
// (fiscal year, program, agency, province, county, ascending), so it is
// total and cursors never skip or repeat a row.
type Sort string

// The orders Accounts offers.
const (
	// SortAccount: by key (the default).
	SortAccount Sort = "account"
	// SortFree: the most free quota first.
	SortFree Sort = "free"
	// SortAllocated: the largest allocation first.
	SortAllocated Sort = "allocated"
	// SortAbsorption: the least absorbed first (charged ÷ allocated);
	// accounts with nothing allocated last.
	SortAbsorption Sort = "absorption"
	// SortPaymentRate: the lowest payment rate first (disbursed ÷ charged);
	// accounts with nothing charged last.
	SortPaymentRate Sort = "payment_rate"
	// SortRealisation: the lowest jobs realisation first (verified ÷
	// target); accounts without a target last.
	SortRealisation Sort = "realisation"
	// SortFirstAllocated: the longest allocated first; accounts with no
	// live allocation last.
	SortFirstAllocated Sort = "first_allocated"
)

// order is how a Sort orders rows: by col (none for SortAccount), then by
// key. Nullable columns put their NULLs last.
type order struct {
	col      string
	desc     bool
	nullable bool
}

var orders = map[Sort]order{
	SortAccount:        {},
	SortFree:           {col: "free_rials", desc: true},
	SortAllocated:      {col: "allocated_rials", desc: true},
	SortAbsorption:     {col: "absorption_ppm", nullable: true},
	SortPaymentRate:    {col: "payment_rate_ppm", nullable: true},
	SortRealisation:    {col: "realisation_ppm", nullable: true},
	SortFirstAllocated: {col: "first_allocated_at", nullable: true},
}

const keyColumns = "fiscal_year, program, agency, province, county"

func (o order) orderBy() string {
	if o.col == "" {
		return keyColumns
	}
	s := o.col
	if o.desc {
		s += " DESC"
	}
	if o.nullable {
		s += " NULLS LAST"
	}
	return s + ", " + keyColumns
}

// Page asks for one page of accounts.
type Page struct {
	After string // the Next cursor of the previous page; "" for the first
	Limit int    // default 50, at most MaxLimit
	Sort  Sort
}

// MaxLimit bounds Page.Limit.
const MaxLimit = 1000

// AccountPage is one page of accounts.
type AccountPage struct {
	Accounts []Account
	// Next is the cursor of the next page, "" when this is the last.
	Next string
	// Position is the log position the page reflects (read in the same
	// snapshot as the rows).
	Position uint64
}

// selectBalances reads balance rows, for account.scan.
var selectBalances = `SELECT ` + strings.Join(balanceColumns, ", ") + ` FROM ` + BalancesTable

// Reader queries the quota balances read model. It is safe for concurrent
// use.
type Reader struct {
	q *projections.Queries
}

// NewReader returns a Reader over db.
func NewReader(db *projections.DB) *Reader { return &Reader{q: projections.NewQueries(db, Name)} }

// withDemand wraps a query of balance rows (aliased p) with each row's unmet
// demand: the demand of its own county, and for a province's account that
// of the facilities naming no county or a county without an account of
// its own, as ledger.Service.ApproveLoan would charge them.
func (r *Reader) withDemand(inner, orderBy string) string {
	in := func(sum string) string {
		return `(SELECT ` + r.q.Dialect().Sum("d."+sum) + ` FROM ` + DemandTable + ` d
	WHERE d.fiscal_year = p.fiscal_year AND d.program = p.program AND d.agency = p.agency AND d.province = p.province
	AND (d.county = p.county OR (p.county = '' AND NOT EXISTS (SELECT 1 FROM ` + BalancesTable + ` c
		WHERE c.fiscal_year = d.fiscal_year AND c.program = d.program AND c.agency = d.agency
		AND c.province = d.province AND c.county = d.county))))`
	}
	q := `SELECT p.*, ` + in("facilities") + ` AS unmet_facilities, ` + in("requested_rials") + ` AS unmet_rials FROM (` + inner + `) p`
	if orderBy != "" {
		q += ` ORDER BY ` + orderBy
	}
	return q
}

// scanAccount scans a row of a withDemand query.
func scanAccount(s *projections.Row) (Account, error) {
	var (
		a            account
		unmet, rials int64
	)
	err := a.scan(s, &unmet, &rials)
	return a.public(unmet, rials), err
}

// Account returns one account of the ledger of a fiscal year and program,
// or an error matching domain.ErrNotFound, with the position it reflects.
func (r *Reader) Account(ctx context.Context, fiscalYear int, program string, k quota.AccountKey) (Account, uint64, error) {
	if err := (Filter{FiscalYear: fiscalYear, Program: program}).validate(); err != nil {
		return Account{}, 0, fmt.Errorf("quotas: %w", err)
	}
	if !k.Valid() {
		return Account{}, 0, fmt.Errorf("quotas: %w: %q is not an account key", domain.ErrInvalid, k.String())
	}
	id := accountID(int64(fiscalYear), program, k)
	var (
		a     Account
		found bool
	)
	pos, err := r.q.Select(ctx, r.withDemand(selectBalances+` WHERE account_id = ?`, ""), []any{id}, func(s *projections.Row) error {
		var err error
		a, err = scanAccount(s)
		found = true
		return err
	})
	if err != nil {
		return Account{}, 0, fmt.Errorf("quotas: account: %w", err)
	}
	if !found {
		return Account{}, pos, &domain.NotFoundError{Kind: "quota account", ID: id}
	}
	return a, pos, nil
}

// LedgerAccounts returns every account of one ledger (f's FiscalYear and
// Program, both required) that f selects, in key order, with the position
// they reflect: what a reallocation proposal is computed from. It is one
// statement, so all the figures are of one snapshot; a ledger has at most
// a few thousand accounts.
func (r *Reader) LedgerAccounts(ctx context.Context, f Filter) ([]Account, uint64, error) {
	if err := f.validate(); err != nil {
		return nil, 0, fmt.Errorf("quotas: %w", err)
	}
	if f.FiscalYear == 0 || f.Program == "" {
		return nil, 0, fmt.Errorf("quotas: %w: a ledger is named by its fiscal year and program", domain.ErrInvalid)
	}
	where := f.where()
	var out []Account
	pos, err := r.q.Select(ctx, r.withDemand(selectBalances+` WHERE `+where.String(), "p.account_id"), where.Args(), func(s *projections.Row) error {
		a, err := scanAccount(s)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("quotas: ledger accounts: %w", err)
	}
	return out, pos, nil
}

// Accounts returns a page of the accounts matching f. A bad filter, an
// unknown sort, a negative limit or a cursor this query did not return
// give an error matching domain.ErrInvalid.
func (r *Reader) Accounts(ctx context.Context, f Filter, p Page) (AccountPage, error) {
	if err := f.validate(); err != nil {
		return AccountPage{}, fmt.Errorf("quotas: %w", err)
	}
	limit, err := projections.PageLimit(p.Limit, MaxLimit)
	if err != nil {
		return AccountPage{}, fmt.Errorf("quotas: %w", err)
	}
	if p.Sort == "" {
		p.Sort = SortAccount
	}
	o, ok := orders[p.Sort]
	if !ok {
		return AccountPage{}, fmt.Errorf("quotas: %w: unknown sort %q (account, free, allocated, absorption, payment_rate, realisation or first_allocated)",
			domain.ErrInvalid, p.Sort)
	}
	where := f.where()
	if p.After != "" {
		if err := afterCursor(&where, p.Sort, o, p.After); err != nil {
			return AccountPage{}, err
		}
	}
	inner := selectBalances + ` WHERE ` + where.String() +
		` ORDER BY ` + o.orderBy() + ` LIMIT ` + strconv.Itoa(limit+1)
	// The demand is computed for the page only, outside the ordered and
	// limited scan.
	var page AccountPage
	page.Accounts, page.Next, page.Position, err = projections.SelectPage(ctx, r.q, r.withDemand(inner, o.orderBy()), where.Args(), limit,
		scanAccount, func(a Account) string { return encodeCursor(p.Sort, a) })
	if err != nil {
		return AccountPage{}, fmt.Errorf("quotas: accounts: %w", err)
	}
	return page, nil
}

// cursor is what a Next cursor holds after its sort: the last row's value
// of the sort column (nil for NULL) and its key, as JSON.
type cursor struct {
	Value *int64    `json:"v,omitempty"`
	Year  int       `json:"y"`
	Key   [4]string `json:"k"` // program, agency, province, county
}

func (a Account) sortValue(s Sort) *int64 {
	var v sql.NullInt64
	switch s {
	case SortFree:
		v = sql.NullInt64{Int64: a.FreeRials, Valid: true}
	case SortAllocated:
		v = sql.NullInt64{Int64: a.AllocatedRials, Valid: true}
	case SortAbsorption:
		v = ppm(a.ChargedRials, a.AllocatedRials)
	case SortPaymentRate:
		v = ppm(a.DisbursedRials, a.ChargedRials)
	case SortRealisation:
		v = ppm(a.JobsVerified, int64(a.JobsTarget))
	case SortFirstAllocated:
		if a.FirstAllocatedAt != nil {
			v = sql.NullInt64{Int64: a.FirstAllocatedAt.UnixMicro(), Valid: true}
		}
	}
	if !v.Valid {
		return nil
	}
	return &v.Int64
}

func encodeCursor(s Sort, a Account) string {
	b, _ := json.Marshal(cursor{Value: a.sortValue(s), Year: a.FiscalYear,
		Key: [4]string{a.Program, a.Agency, a.Province, a.County}}) // a struct of strings and ints always marshals
	return projections.EncodeCursor(string(s), string(b))
}

// afterCursor adds to where the condition that keeps the rows after the
// cursor's in the order o.
func afterCursor(where *projections.Where, s Sort, o order, text string) error {
	bad := fmt.Errorf("quotas: %w: the cursor is not one this query returned", domain.ErrInvalid)
	raw, ok := projections.DecodeCursor(text, string(s))
	if !ok {
		return bad
	}
	var c cursor
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || (o.col == "" && c.Value != nil) || (!o.nullable && o.col != "" && c.Value == nil) {
		return bad
	}
	after := "(" + keyColumns + ") > (?, ?, ?, ?, ?)"
	key := []any{c.Year, c.Key[0], c.Key[1], c.Key[2], c.Key[3]}
	switch {
	case o.col == "":
		where.Add(after, key...)
		return nil
	case c.Value == nil: // among the NULLs, which come last
		where.Add("("+o.col+" IS NULL AND "+after+")", key...)
		return nil
	}
	cmp := " > ?"
	if o.desc {
		cmp = " < ?"
	}
	cond := "(" + o.col + cmp + " OR (" + o.col + " = ? AND " + after + ")"
	if o.nullable {
		cond += " OR " + o.col + " IS NULL"
	}
	where.Add(cond+")", append([]any{*c.Value, *c.Value}, key...)...)
	return nil
}

// LedgerTotals sums the accounts of one ledger (fiscal year and program).
// Conservation is visible: AllocatedRials equals FreeRials +
// OpenChargesRials when the transfers in equal the transfers out, as they
// always do over a whole ledger; Conserved says whether they do.
type LedgerTotals struct {
	FiscalYear int    `json:"fiscal_year"`
	Program    string `json:"program"`
	Accounts   int64  `json:"accounts"`

	AllocatedRials      int64 `json:"allocated_rials"`
	TransferredInRials  int64 `json:"transferred_in_rials"`
	TransferredOutRials int64 `json:"transferred_out_rials"`
	ChargedRials        int64 `json:"charged_rials"`
	ReleasedRials       int64 `json:"released_rials"`
	FreeRials           int64 `json:"free_rials"`
	OpenChargesRials    int64 `json:"open_charges_rials"`
	JobsTarget          int64 `json:"jobs_target"`
	Conserved           bool  `json:"conserved"` // allocated == free + open charges

	Facilities          int64 `json:"facilities"`
	DisbursedRials      int64 `json:"disbursed_rials"`
	JobsVerified        int64 `json:"jobs_verified"`
	UnmetFacilities     int64 `json:"unmet_facilities"`
	UnmetRequestedRials int64 `json:"unmet_requested_rials"`

	FirstAllocatedAt *time.Time `json:"first_allocated_at"` // the earliest of the accounts'
	AbsorptionPct    *float64   `json:"absorption_pct"`
	PaymentRatePct   *float64   `json:"payment_rate_pct"`
	RealisationPct   *float64   `json:"realisation_pct"`
}

// Totals is the answer to a totals query.
type Totals struct {
	Ledgers  []LedgerTotals
	Position uint64 // the log position the figures reflect
}

// Totals sums the accounts per ledger (fiscal year and program), ordered by
// fiscal year and program, for the ledgers f selects. Only FiscalYear and
// Program may be set: conservation holds over whole ledgers, and a sum over
// part of one would show transfers that do not balance.
func (r *Reader) Totals(ctx context.Context, f Filter) (Totals, error) {
	if f.Agency != "" || f.Province != "" || f.County != "" {
		return Totals{}, fmt.Errorf("quotas: %w: totals are per whole ledger: filter them by fiscal year and program only", domain.ErrInvalid)
	}
	if err := f.validate(); err != nil {
		return Totals{}, fmt.Errorf("quotas: %w", err)
	}
	where := f.where()
	d := r.q.Dialect()
	cols := []string{"fiscal_year", "program", "COUNT(*) AS accounts"}
	for _, c := range []string{"allocated_rials", "transferred_in_rials", "transferred_out_rials", "charged_rials", "released_rials",
		"free_rials", "jobs_target", "facilities", "disbursed_rials", "jobs_verified"} {
		cols = append(cols, d.Sum(c)+" AS "+c)
	}
	cols = append(cols, "MIN(first_allocated_at) AS first_allocated_at")
	// The unmet demand of a ledger is that of every demand row some account
	// takes (its county's, or else its province's): the sum of the
	// accounts' unmet demand, without computing it account by account.
	// Demand is only ever taken by an account, so its ledger is among the
	// balances'. One statement, so that both sums are of one snapshot.
	q := `SELECT b.*, COALESCE(u.facilities, 0), COALESCE(u.requested_rials, 0) FROM (
	SELECT ` + strings.Join(cols, ", ") + ` FROM ` + BalancesTable + ` WHERE ` + where.String() + ` GROUP BY fiscal_year, program
) b LEFT JOIN (
	SELECT fiscal_year, program, ` + d.Sum("facilities") + ` AS facilities, ` + d.Sum("requested_rials") + ` AS requested_rials FROM ` + DemandTable + ` d
	WHERE ` + where.String() + ` AND EXISTS (SELECT 1 FROM ` + BalancesTable + ` c
		WHERE c.fiscal_year = d.fiscal_year AND c.program = d.program AND c.agency = d.agency AND c.province = d.province
		AND (c.county = d.county OR c.county = ''))
	GROUP BY fiscal_year, program
) u ON u.fiscal_year = b.fiscal_year AND u.program = b.program
ORDER BY b.fiscal_year, b.program`
	var (
		out Totals
		err error
	)
	out.Position, err = r.q.Select(ctx, q, append(slices.Clone(where.Args()), where.Args()...), func(s *projections.Row) error {
		var (
			l     LedgerTotals
			fy    int64
			first sql.NullInt64
		)
		if err := s.Scan(&fy, &l.Program, &l.Accounts, &l.AllocatedRials, &l.TransferredInRials, &l.TransferredOutRials,
			&l.ChargedRials, &l.ReleasedRials, &l.FreeRials, &l.JobsTarget, &l.Facilities, &l.DisbursedRials,
			&l.JobsVerified, &first, &l.UnmetFacilities, &l.UnmetRequestedRials); err != nil {
			return err
		}
		l.FiscalYear = int(fy)
		l.OpenChargesRials = l.ChargedRials - l.ReleasedRials
		l.Conserved = l.AllocatedRials == l.FreeRials+l.OpenChargesRials
		if first.Valid {
			t := time.UnixMicro(first.Int64).UTC()
			l.FirstAllocatedAt = &t
		}
		l.AbsorptionPct = pct(ppm(l.ChargedRials, l.AllocatedRials))
		l.PaymentRatePct = pct(ppm(l.DisbursedRials, l.ChargedRials))
		l.RealisationPct = pct(ppm(l.JobsVerified, l.JobsTarget))
		out.Ledgers = append(out.Ledgers, l)
		return nil
	})
	if err != nil {
		return Totals{}, fmt.Errorf("quotas: totals: %w", err)
	}
	return out, nil
}
