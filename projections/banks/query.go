package banks

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/projections"
)

// Dim is a dimension the rows can be grouped by.
type Dim string

// The dimensions.
const (
	DimBank       Dim = "bank" // the default
	DimFiscalYear Dim = "fiscal_year"
	DimProvince   Dim = "province"
	DimCounty     Dim = "county"
	DimAgency     Dim = "agency"
	DimProgram    Dim = "program"
)

// bit returns the dimension's level bit, and false for an unknown
// dimension.
func (d Dim) bit() (int, bool) {
	switch d {
	case DimBank:
		return dimBank, true
	case DimFiscalYear:
		return dimFiscalYear, true
	case DimProvince:
		return dimProvince, true
	case DimCounty:
		return dimCounty, true
	case DimAgency:
		return dimAgency, true
	case DimProgram:
		return dimProgram, true
	}
	return 0, false
}

// Filter selects the facilities the figures are computed over. Zero fields
// match everything.
type Filter struct {
	FiscalYear int
	Province   string
	County     string // '' matches every county, not only facilities without one
	Agency     string
	Program    string
	Bank       string
}

// where returns the condition selecting the rows of the coarsest level that
// keeps every dimension f filters by and the dimension bit grouped by.
//
// It names the columns of the primary key's prefix (level, province,
// agency, program), the level's dropped dimensions included (they hold the
// empty string), so that both engines find the rows in one range of the
// primary key without statistics: a level's rows for a province, or an
// agency and program, are contiguous. A county without its province is
// found through the county index, on (county, level + 0): SQLite's planner
// prefers the primary key for "level = ?" alone over an index on (county,
// level), and reading a level whole is slow, so the level is written as
// the index's expression, which the primary key cannot serve. A dropped
// county is not named, so that the planner does not take the county index
// for it.
func (f Filter) where(group int) (string, []any) {
	dims := []struct {
		bit int
		col string
		v   string
	}{
		{dimProvince, "province", f.Province}, {dimAgency, "agency", f.Agency},
		{dimProgram, "program", f.Program}, {dimCounty, "county", f.County},
	}
	need := group
	if f.FiscalYear != 0 {
		need |= dimFiscalYear
	}
	if f.Bank != "" {
		need |= dimBank
	}
	for _, d := range dims {
		if d.v != "" {
			need |= d.bit
		}
	}
	level := levels[len(levels)-1]
	for _, l := range levels {
		if l&need == need {
			level = l
			break
		}
	}
	conds, args := []string{"level = ?"}, []any{level}
	if f.County != "" && f.Province == "" {
		conds[0] = "level + 0 = ?"
	}
	for _, d := range dims {
		switch {
		case level&d.bit == 0 && d.bit != dimCounty:
			conds = append(conds, d.col+" = ''")
		case d.v != "":
			conds = append(conds, d.col+" = ?")
			args = append(args, d.v)
		}
	}
	if f.FiscalYear != 0 {
		conds = append(conds, "fiscal_year = ?")
		args = append(args, f.FiscalYear)
	}
	if f.Bank != "" {
		conds = append(conds, "bank = ?")
		args = append(args, f.Bank)
	}
	return strings.Join(conds, " AND "), args
}

// Sort orders the rows of a report.
type Sort string

// The orders Performance offers; each ends with the group's key, so it is a
// total order and cursors never skip or repeat a row.
const (
	// SortKey: by the group's key (bank id, fiscal year, ...), ascending
	// (the default).
	SortKey Sort = "key"
	// SortPendingApproval: the most facilities pending approval first.
	SortPendingApproval Sort = "pending_approval"
	// SortPendingPayment: the most rials pending payment first.
	SortPendingPayment Sort = "pending_payment"
	// SortApprovalDays: the slowest median referral-to-approval first;
	// groups with no approval last.
	SortApprovalDays Sort = "approval_days"
	// SortPaymentDays: the slowest median approval-to-payment first; groups
	// with no payment last.
	SortPaymentDays Sort = "payment_days"
)

// MaxLimit bounds Query.Limit.
const MaxLimit = 1000

// Query asks for one page of a bank performance report.
type Query struct {
	Filter Filter
	// GroupBy is the dimension of the rows: DimBank (the default) gives one
	// row per bank; another gives one row per fiscal year, province, ...,
	// over every bank (or the Filter's).
	GroupBy Dim
	// AsOf is the instant ages are measured to; its Tehran date counts. It
	// is required: the caller passes the current time for "now", so that
	// nothing below the API reads the clock.
	AsOf  time.Time
	Sort  Sort
	After string // the Next cursor of the previous page; "" for the first
	Limit int    // default 50, at most MaxLimit
}

// Report is one page of a bank performance report.
type Report struct {
	Rows []Row `json:"rows"`
	// Next is the cursor of the next page, "" when this is the last.
	Next string `json:"next,omitempty"`
	// AsOf is the Tehran calendar date (YYYY-MM-DD, Gregorian) the ages
	// are counted to.
	AsOf string `json:"as_of"`
	// Position is the log position the figures reflect (read in the same
	// snapshot as the figures).
	Position uint64 `json:"position"`
}

// Row is one group's figures. Only the dimension grouped by is set.
type Row struct {
	FiscalYear int    `json:"fiscal_year,omitempty"`
	Province   string `json:"province,omitempty"`
	County     string `json:"county,omitempty"` // "" also for facilities without a county
	Agency     string `json:"agency,omitempty"`
	Program    string `json:"program,omitempty"`
	Bank       string `json:"bank,omitempty"`

	// PendingApproval: referred, neither approved nor rejected, not
	// closed; rials requested; aged from the referral.
	PendingApproval Backlog `json:"pending_approval"`
	// PendingPayment: approved, not closed, not fully paid; rials still
	// to be paid; aged from the approval.
	PendingPayment Backlog `json:"pending_payment"`
	// ApprovalDays: days from referral to approval.
	ApprovalDays Duration `json:"approval_days"`
	// PaymentDays: days from approval to the first tranche.
	PaymentDays Duration `json:"payment_days"`
}

// Backlog is a backlog's facilities and rials, in total and by age on the
// as-of date. The buckets add up to the total.
type Backlog struct {
	Facilities  int64  `json:"facilities"`
	Rials       int64  `json:"rials"`
	Days0To30   Bucket `json:"days_0_30"`
	Days31To90  Bucket `json:"days_31_90"`
	Days91To180 Bucket `json:"days_91_180"`
	Over180     Bucket `json:"over_180"`
	// AfterAsOf holds the facilities whose wait began after the as-of date
	// (only an as-of date in the past has any): the read model knows the
	// current backlog, not what it was on that date.
	AfterAsOf Bucket `json:"after_as_of"`
}

// Bucket is the facilities and rials of one age bucket.
type Bucket struct {
	Facilities int64 `json:"facilities"`
	Rials      int64 `json:"rials"`
}

func (b *Backlog) add(age int64, c cell) {
	var k *Bucket
	switch {
	case age < 0:
		k = &b.AfterAsOf
	case age <= 30:
		k = &b.Days0To30
	case age <= 90:
		k = &b.Days31To90
	case age <= 180:
		k = &b.Days91To180
	default:
		k = &b.Over180
	}
	k.Facilities += c.n
	k.Rials += c.rials
	b.Facilities += c.n
	b.Rials += c.rials
}

// Duration is how long the facilities that took a step took, in days.
type Duration struct {
	// Facilities is how many took the step.
	Facilities int64 `json:"facilities"`
	// MedianDays is the median of their durations: the middle one for an
	// odd number, the mean of the two middle ones for an even number (so
	// it may end in .5); nil when none took the step.
	MedianDays *float64 `json:"median_days"`
}

// Reader queries the bank performance read model. It is safe for
// concurrent use.
type Reader struct {
	q *projections.Queries
}

// NewReader returns a Reader over db.
func NewReader(db *projections.DB) *Reader { return &Reader{q: projections.NewQueries(db, Name)} }

func invalid(format string, args ...any) error {
	return fmt.Errorf("banks: %w: "+format, append([]any{domain.ErrInvalid}, args...)...)
}

// Performance returns one page of the report q asks for. Bad input (an
// unknown dimension or sort, a missing as-of date, a fiscal year out of
// range, a negative limit, a cursor this query did not return) gives an
// error matching domain.ErrInvalid.
//
// It reads one row per group (and block) of the coarsest aggregation level
// that keeps every dimension the query filters or groups by, never the
// facilities: a national report reads a few hundred rows, mostly totals.
// The slowest read a whole level: grouping by county over every province
// for one bank, or grouping by province or county while filtering by agency
// or program (the finest level).
func (r *Reader) Performance(ctx context.Context, q Query) (Report, error) {
	if q.GroupBy == "" {
		q.GroupBy = DimBank
	}
	if q.Sort == "" {
		q.Sort = SortKey
	}
	gbit, ok := q.GroupBy.bit()
	if !ok {
		return Report{}, invalid("cannot group by %q (bank, fiscal_year, province, county, agency or program)", q.GroupBy)
	}
	switch q.Sort {
	case SortKey, SortPendingApproval, SortPendingPayment, SortApprovalDays, SortPaymentDays:
	default:
		return Report{}, invalid("unknown sort %q (key, pending_approval, pending_payment, approval_days or payment_days)", q.Sort)
	}
	if q.AsOf.IsZero() {
		return Report{}, invalid("the as-of date is required")
	}
	f := q.Filter
	if f.FiscalYear != 0 && (f.FiscalYear < int(calendar.MinFiscalYear) || f.FiscalYear > int(calendar.MaxFiscalYear)) {
		return Report{}, invalid("fiscal year %d is out of range (%d to %d)", f.FiscalYear, calendar.MinFiscalYear, calendar.MaxFiscalYear)
	}
	limit, err := projections.PageLimit(q.Limit, MaxLimit)
	if err != nil {
		return Report{}, fmt.Errorf("banks: %w", err)
	}
	var after *Row
	if q.After != "" {
		c, err := decodeCursor(q.Sort, q.GroupBy, q.After)
		if err != nil {
			return Report{}, err
		}
		after = &c
	}

	where, args := f.where(gbit)
	groupCol := string(q.GroupBy)

	asOf := dayOf(q.AsOf)
	out := Report{AsOf: dayDate(asOf)}
	groups := map[string]*accumulator{}
	get := func(key string) *accumulator {
		a := groups[key]
		if a == nil {
			a = &accumulator{}
			groups[key] = a
		}
		return a
	}
	// The blocks wholly older than 180 days on the as-of date are in the
	// last bucket: their totals are enough, their histograms stay in the
	// database. Backlogs and durations come in one statement, so that
	// both are of one snapshot; their sub-group values (states and kinds)
	// tell the tables' rows apart.
	minBlock := blockOf(asOf - 180)
	query := `SELECT ` + groupCol + `, state, block, facilities, rials, CASE WHEN block >= ? THEN hist ELSE '' END FROM ` + BacklogTable + ` WHERE ` + where + `
UNION ALL
SELECT ` + r.q.At() + `, ` + groupCol + `, kind, 0, facilities, 0, hist FROM ` + DurationsTable + ` WHERE ` + where
	var (
		key, sub, hist string
		block          int64
		total          cell
	)
	out.Position, err = r.q.Select(ctx, query, append(append([]any{minBlock}, args...), args...), func(s *projections.Row) error {
		if err := s.Scan(&key, &sub, &block, &total.n, &total.rials, &hist); err != nil {
			return err
		}
		a := get(key)
		switch sub {
		case StatePendingApproval, StatePendingPayment:
			b := &a.pendingApproval
			if sub == StatePendingPayment {
				b = &a.pendingPayment
			}
			if err := addBacklog(b, hist, asOf, total, block < minBlock); err != nil {
				return fmt.Errorf("%s group %s %s: %w", BacklogTable, key, sub, err)
			}
		case KindApproval, KindPayment:
			h := &a.approval
			if sub == KindPayment {
				h = &a.payment
			}
			if err := h.addDurations(hist); err != nil {
				return fmt.Errorf("%s group %s %s: %w", DurationsTable, key, sub, err)
			}
		default:
			return fmt.Errorf("group %s: unknown state or kind %q", key, sub)
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("banks: performance: %w", err)
	}

	rows := make([]Row, 0, len(groups))
	for key, a := range groups {
		row := Row{
			PendingApproval: a.pendingApproval, PendingPayment: a.pendingPayment,
			ApprovalDays: a.approval.median(), PaymentDays: a.payment.median(),
		}
		if err := row.setKey(q.GroupBy, key); err != nil {
			return Report{}, fmt.Errorf("banks: performance: %w", err)
		}
		rows = append(rows, row)
	}
	order := func(a, b Row) int { return compare(q.Sort, q.GroupBy, a, b) }
	slices.SortFunc(rows, order)
	if after != nil {
		i, _ := slices.BinarySearchFunc(rows, *after, func(r, c Row) int {
			if order(r, c) <= 0 {
				return -1
			}
			return 1
		})
		rows = rows[i:]
	}
	if len(rows) > limit {
		rows = rows[:limit]
		out.Next = encodeCursor(q.Sort, q.GroupBy, rows[limit-1])
	}
	out.Rows = rows
	return out, nil
}

// accumulator gathers one group's figures.
type accumulator struct {
	pendingApproval, pendingPayment Backlog
	approval, payment               daysHist
}

// setKey sets the row's dimension d to key (as scanned: a fiscal year is
// scanned as its decimal text).
func (row *Row) setKey(d Dim, key string) error {
	switch d {
	case DimFiscalYear:
		fy, err := strconv.Atoi(key)
		if err != nil {
			return fmt.Errorf("fiscal year %q: %w", key, err)
		}
		row.FiscalYear = fy
	case DimProvince:
		row.Province = key
	case DimCounty:
		row.County = key
	case DimAgency:
		row.Agency = key
	case DimProgram:
		row.Program = key
	default:
		row.Bank = key
	}
	return nil
}

// key returns the row's value of dimension d, for cursors.
func (row Row) key(d Dim) string {
	switch d {
	case DimFiscalYear:
		return strconv.Itoa(row.FiscalYear)
	case DimProvince:
		return row.Province
	case DimCounty:
		return row.County
	case DimAgency:
		return row.Agency
	case DimProgram:
		return row.Program
	}
	return row.Bank
}

// compare orders rows by s, then by their key.
func compare(s Sort, d Dim, a, b Row) int {
	byKey := func() int {
		if d == DimFiscalYear {
			return cmp.Compare(a.FiscalYear, b.FiscalYear)
		}
		return strings.Compare(a.key(d), b.key(d))
	}
	// slowest first, groups without the step last
	byMedian := func(x, y *float64) int {
		switch {
		case x == nil && y == nil:
			return 0
		case x == nil:
			return 1
		case y == nil:
			return -1
		}
		return cmp.Compare(*y, *x)
	}
	switch s {
	case SortPendingApproval:
		return cmp.Or(cmp.Compare(b.PendingApproval.Facilities, a.PendingApproval.Facilities), byKey())
	case SortPendingPayment:
		return cmp.Or(cmp.Compare(b.PendingPayment.Rials, a.PendingPayment.Rials), byKey())
	case SortApprovalDays:
		return cmp.Or(byMedian(a.ApprovalDays.MedianDays, b.ApprovalDays.MedianDays), byKey())
	case SortPaymentDays:
		return cmp.Or(byMedian(a.PaymentDays.MedianDays, b.PaymentDays.MedianDays), byKey())
	}
	return byKey()
}

// encodeCursor returns the cursor of the page after row: "value:key"
// (projections.EncodeCursor adds the sort), where value is what the sort
// compares ("" for the key order and for a missing median).
func encodeCursor(s Sort, d Dim, row Row) string {
	var v string
	median := func(m *float64) string {
		if m == nil {
			return ""
		}
		return strconv.FormatFloat(*m, 'g', -1, 64)
	}
	switch s {
	case SortPendingApproval:
		v = strconv.FormatInt(row.PendingApproval.Facilities, 10)
	case SortPendingPayment:
		v = strconv.FormatInt(row.PendingPayment.Rials, 10)
	case SortApprovalDays:
		v = median(row.ApprovalDays.MedianDays)
	case SortPaymentDays:
		v = median(row.PaymentDays.MedianDays)
	}
	return projections.EncodeCursor(string(s), v+":"+row.key(d))
}

// decodeCursor returns the row a cursor stands for: its key and the value
// its sort compares.
func decodeCursor(s Sort, d Dim, cursor string) (Row, error) {
	bad := invalid("the cursor is not one this query returned")
	rest, ok1 := projections.DecodeCursor(cursor, string(s))
	v, key, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return Row{}, bad
	}
	var row Row
	if err := row.setKey(d, key); err != nil {
		return Row{}, bad
	}
	var err error
	integer := func() (int64, error) { return strconv.ParseInt(v, 10, 64) }
	median := func() (*float64, error) {
		if v == "" {
			return nil, nil
		}
		m, err := strconv.ParseFloat(v, 64)
		return &m, err
	}
	switch s {
	case SortKey:
		if v != "" {
			err = bad
		}
	case SortPendingApproval:
		row.PendingApproval.Facilities, err = integer()
	case SortPendingPayment:
		row.PendingPayment.Rials, err = integer()
	case SortApprovalDays:
		row.ApprovalDays.MedianDays, err = median()
	case SortPaymentDays:
		row.PaymentDays.MedianDays, err = median()
	}
	if err != nil {
		return Row{}, bad
	}
	return row, nil
}
