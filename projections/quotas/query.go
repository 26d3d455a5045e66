package quotas

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

func (f Filter) where() (string, []any) {
	var (
		conds []string
		args  []any
	)
	if f.FiscalYear != 0 {
		conds = append(conds, "fiscal_year = ?")
		args = append(args, f.FiscalYear)
	}
	for _, c := range []struct{ col, v string }{
		{"program", f.Program}, {"agency", f.Agency}, {"province", f.Province}, {"county", f.County},
	} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
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

// Reader queries the quota balances read model. It is safe for concurrent
// use.
type Reader struct {
	db *projections.DB
}

// NewReader returns a Reader over db.
func NewReader(db *projections.DB) *Reader { return &Reader{db: db} }

// read runs f in one read snapshot, with the position it reflects.
func (r *Reader) read(ctx context.Context, f func(tx *sql.Tx) error) (uint64, error) {
	tx, err := r.db.Read.BeginTx(ctx, r.db.Dialect.ReadTx())
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	pos, err := projections.ReadPosition(ctx, tx, r.db.Dialect, Name)
	if err != nil {
		return 0, err
	}
	return pos, f(tx)
}

// withDemand wraps a query of balance rows (aliased p) with each row's unmet
// demand: the demand of its own county, and for a province's account that
// of the facilities naming no county or a county without an account of
// its own, as ledger.Service.ApproveLoan would charge them.
func (r *Reader) withDemand(inner, orderBy string) string {
	in := func(sum string) string {
		return `(SELECT CAST(COALESCE(SUM(d.` + sum + `), 0) AS ` + r.db.Dialect.Int() + `) FROM ` + DemandTable + ` d
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

func (r *Reader) scanAccounts(ctx context.Context, tx *sql.Tx, q string, args []any) ([]Account, error) {
	rows, err := tx.QueryContext(ctx, r.db.Dialect.Rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var (
			a            account
			unmet, rials int64
		)
		if err := a.scan(rows, &unmet, &rials); err != nil {
			return nil, err
		}
		out = append(out, a.public(unmet, rials))
	}
	return out, rows.Err()
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
	q := r.withDemand(`SELECT `+strings.Join(balanceColumns, ", ")+` FROM `+BalancesTable+` WHERE account_id = ?`, "")
	var got []Account
	pos, err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		got, err = r.scanAccounts(ctx, tx, q, []any{id})
		return err
	})
	if err != nil {
		return Account{}, 0, fmt.Errorf("quotas: account: %w", err)
	}
	if len(got) == 0 {
		return Account{}, pos, &domain.NotFoundError{Kind: "quota account", ID: id}
	}
	return got[0], pos, nil
}

// Accounts returns a page of the accounts matching f.
func (r *Reader) Accounts(ctx context.Context, f Filter, p Page) (AccountPage, error) {
	if err := f.validate(); err != nil {
		return AccountPage{}, fmt.Errorf("quotas: %w", err)
	}
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, MaxLimit)
	if p.Sort == "" {
		p.Sort = SortAccount
	}
	o, ok := orders[p.Sort]
	if !ok {
		return AccountPage{}, fmt.Errorf("quotas: %w: unknown sort %q (account, free, allocated, absorption, payment_rate, realisation or first_allocated)",
			domain.ErrInvalid, p.Sort)
	}
	where, args := f.where()
	if p.After != "" {
		cond, cargs, err := decodeCursor(p.Sort, o, p.After)
		if err != nil {
			return AccountPage{}, err
		}
		where += " AND " + cond
		args = append(args, cargs...)
	}
	inner := `SELECT ` + strings.Join(balanceColumns, ", ") + ` FROM ` + BalancesTable + ` WHERE ` + where +
		` ORDER BY ` + o.orderBy() + ` LIMIT ` + strconv.Itoa(p.Limit+1)
	// The demand is computed for the page only, outside the ordered and
	// limited scan.
	q := r.withDemand(inner, o.orderBy())
	var page AccountPage
	var err error
	page.Position, err = r.read(ctx, func(tx *sql.Tx) error {
		var err error
		page.Accounts, err = r.scanAccounts(ctx, tx, q, args)
		return err
	})
	if err != nil {
		return AccountPage{}, fmt.Errorf("quotas: accounts: %w", err)
	}
	if len(page.Accounts) > p.Limit {
		page.Accounts = page.Accounts[:p.Limit]
		page.Next = encodeCursor(p.Sort, page.Accounts[p.Limit-1])
	}
	return page, nil
}

// cursor is what a Next cursor holds: the sort, the last row's value of the
// sort column (nil for NULL) and its key. Cursors are opaque to clients:
// base64 of this JSON.
type cursor struct {
	Sort  Sort      `json:"s"`
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
	b, _ := json.Marshal(cursor{Sort: s, Value: a.sortValue(s), Year: a.FiscalYear,
		Key: [4]string{a.Program, a.Agency, a.Province, a.County}}) // a struct of strings and ints always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s Sort, o order, text string) (string, []any, error) {
	bad := fmt.Errorf("quotas: %w: the cursor is not one this query returned", domain.ErrInvalid)
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return "", nil, bad
	}
	var c cursor
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.Sort != s || (o.col == "" && c.Value != nil) || (!o.nullable && o.col != "" && c.Value == nil) {
		return "", nil, bad
	}
	after := "(" + keyColumns + ") > (?, ?, ?, ?, ?)"
	key := []any{c.Year, c.Key[0], c.Key[1], c.Key[2], c.Key[3]}
	switch {
	case o.col == "":
		return after, key, nil
	case c.Value == nil: // among the NULLs, which come last
		return "(" + o.col + " IS NULL AND " + after + ")", key, nil
	}
	cmp := " > ?"
	if o.desc {
		cmp = " < ?"
	}
	cond := "(" + o.col + cmp + " OR (" + o.col + " = ? AND " + after + ")"
	if o.nullable {
		cond += " OR " + o.col + " IS NULL"
	}
	return cond + ")", append([]any{*c.Value, *c.Value}, key...), nil
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
	where, args := f.where()
	sum := func(col string) string {
		return `CAST(COALESCE(SUM(` + col + `), 0) AS ` + r.db.Dialect.Int() + `)`
	}
	cols := []string{"fiscal_year", "program", "COUNT(*)"}
	for _, c := range []string{"allocated_rials", "transferred_in_rials", "transferred_out_rials", "charged_rials", "released_rials",
		"free_rials", "jobs_target", "facilities", "disbursed_rials", "jobs_verified"} {
		cols = append(cols, sum(c))
	}
	cols = append(cols, "MIN(first_allocated_at)")
	balances := `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + BalancesTable + ` WHERE ` + where +
		` GROUP BY fiscal_year, program ORDER BY fiscal_year, program`
	// The unmet demand of a ledger is that of every demand row some account
	// takes (its county's, or else its province's): the sum of the
	// accounts' unmet demand, without computing it account by account.
	demand := `SELECT fiscal_year, program, ` + sum("facilities") + `, ` + sum("requested_rials") + ` FROM ` + DemandTable + ` d
WHERE ` + where + ` AND EXISTS (SELECT 1 FROM ` + BalancesTable + ` c
	WHERE c.fiscal_year = d.fiscal_year AND c.program = d.program AND c.agency = d.agency AND c.province = d.province
	AND (c.county = d.county OR c.county = ''))
GROUP BY fiscal_year, program`
	var out Totals
	var err error
	out.Position, err = r.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, r.db.Dialect.Rebind(balances), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[string]int{}
		for rows.Next() {
			var (
				l     LedgerTotals
				fy    int64
				first sql.NullInt64
			)
			if err := rows.Scan(&fy, &l.Program, &l.Accounts, &l.AllocatedRials, &l.TransferredInRials, &l.TransferredOutRials,
				&l.ChargedRials, &l.ReleasedRials, &l.FreeRials, &l.JobsTarget, &l.Facilities, &l.DisbursedRials,
				&l.JobsVerified, &first); err != nil {
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
			index[quota.Stream(l.FiscalYear, l.Program)] = len(out.Ledgers)
			out.Ledgers = append(out.Ledgers, l)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		rows, err = tx.QueryContext(ctx, r.db.Dialect.Rebind(demand), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				fy, n, rials int64
				program      string
			)
			if err := rows.Scan(&fy, &program, &n, &rials); err != nil {
				return err
			}
			// Demand is only ever taken by an account, so its ledger is
			// among the balances'.
			if i, ok := index[quota.Stream(int(fy), program)]; ok {
				out.Ledgers[i].UnmetFacilities, out.Ledgers[i].UnmetRequestedRials = n, rials
			}
		}
		return rows.Err()
	})
	if err != nil {
		return Totals{}, fmt.Errorf("quotas: totals: %w", err)
	}
	return out, nil
}
