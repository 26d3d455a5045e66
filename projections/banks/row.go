package banks

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// dayOf returns the day number of the instant t: the days from 1970-01-01 to
// t's calendar date in Tehran (calendar.Tehran, UTC+03:30). Ages and
// durations are differences of day numbers, so a step taken late in the
// evening and one taken the next morning are one day apart, as a clerk in
// Tehran would count them.
func dayOf(t time.Time) int64 {
	y, m, d := t.In(calendar.Tehran()).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// dayDate renders a day number as the Gregorian date it stands for.
func dayDate(day int64) string {
	return time.Unix(day*86400, 0).UTC().Format(time.DateOnly)
}

// row is a bank_facilities row being folded: what the read model needs of
// one facility, as corrected. Days are day numbers (see dayOf).
type row struct {
	id                                      string
	fiscalYear                              int64
	province, county, agency, program, bank string
	stage                                   string
	requested, approved, paid               int64
	referredDay, approvedDay, firstPaidDay  sql.NullInt64
}

// facilityColumns are bank_facilities' columns, key first, in the order of
// row.values and row.scan.
var facilityColumns = []string{
	"facility_id", "fiscal_year", "province", "county", "agency", "program", "bank", "stage",
	"requested_rials", "approved_rials", "paid_rials", "referred_day", "approved_day", "first_paid_day",
}

func (r *row) values() []any {
	return []any{
		r.id, r.fiscalYear, r.province, r.county, r.agency, r.program, r.bank, r.stage,
		r.requested, r.approved, r.paid, r.referredDay, r.approvedDay, r.firstPaidDay,
	}
}

type scanner interface{ Scan(dest ...any) error }

func (r *row) scan(s scanner) error {
	return s.Scan(
		&r.id, &r.fiscalYear, &r.province, &r.county, &r.agency, &r.program, &r.bank, &r.stage,
		&r.requested, &r.approved, &r.paid, &r.referredDay, &r.approvedDay, &r.firstPaidDay,
	)
}

func some(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: true} }

// apply folds one event into the row as facility.Evolve folds it into
// facility.Facility, keeping only what this read model needs. Events that
// change none of it (jobs reports, inspections, audit cases) leave the row
// as it is, so the batch does not rewrite it.
func (r *row) apply(env *projections.Envelope) {
	switch e := env.Event.(type) {
	case facility.RegisteredV1:
		*r = row{
			id: e.FacilityID, fiscalYear: int64(e.FiscalYear), province: e.Province, county: e.County,
			agency: e.Agency, program: e.Program, stage: string(facility.StageRegistered), requested: e.RequestedRials,
		}
	case facility.ReviewedV1:
		if e.Decision == facility.ReviewApproved {
			r.stage = string(facility.StageReferred)
			r.bank = e.Bank
			r.referredDay = some(dayOf(env.OccurredAt))
		} else {
			r.stage = string(facility.StageReviewRejected)
		}
	case facility.LoanApprovedV1:
		r.stage = string(facility.StageLoanApproved)
		r.approved = e.AmountRials
		r.approvedDay = some(dayOf(env.OccurredAt))
	case facility.LoanRejectedV1:
		r.stage = string(facility.StageLoanRejected)
	case facility.TrancheDisbursedV1:
		r.paid += e.AmountRials
		if !r.firstPaidDay.Valid {
			r.firstPaidDay = some(dayOf(env.OccurredAt))
			r.stage = string(facility.StageDisbursing)
		}
		r.settle()
	case facility.ClosedV1:
		r.stage = string(facility.StageClosed)
	case facility.CorrectedV1:
		switch e.Field {
		case facility.FieldRequestedRials:
			r.requested = e.NewValue.Int
		case facility.FieldCounty:
			r.county = e.NewValue.Str
		case facility.FieldAmountRials:
			// The event carries the amount it replaces, so the running
			// total moves by the difference.
			r.paid += e.NewValue.Int - e.OldValue.Int
			r.settle()
		}
	}
}

// settle sets disbursing or disbursed from the amounts paid, as a payment
// or a corrected amount does; other stages (a closed file) stay.
func (r *row) settle() {
	if !facility.Stage(r.stage).Paid() {
		return
	}
	if r.paid >= r.approved {
		r.stage = string(facility.StageDisbursed)
	} else {
		r.stage = string(facility.StageDisbursing)
	}
}

// The backlog states (bank_backlog.state).
const (
	// StatePendingApproval: referred to the bank, neither approved nor
	// rejected, and not closed. Aged from the referral; rials are the
	// amount requested.
	StatePendingApproval = "pending_approval"
	// StatePendingPayment: approved, not closed, and paid less than the
	// approved amount. Aged from the approval; rials are what remains to be
	// paid (approved − paid).
	StatePendingPayment = "pending_payment"
)

// The durations measured (bank_durations.kind).
const (
	// KindApproval: days from the referral to the bank's approval.
	KindApproval = "approval"
	// KindPayment: days from the approval to the first tranche.
	KindPayment = "payment"
)

// backlog returns the facility's backlog state, the day it is aged from and
// its rials, and false when it is in neither backlog.
func (r *row) backlog() (state string, day, rials int64, ok bool) {
	switch facility.Stage(r.stage) {
	case facility.StageReferred:
		return StatePendingApproval, r.referredDay.Int64, r.requested, r.referredDay.Valid
	case facility.StageLoanApproved, facility.StageDisbursing, facility.StageDisbursed:
		if r.paid < r.approved && r.approvedDay.Valid {
			return StatePendingPayment, r.approvedDay.Int64, r.approved - r.paid, true
		}
	}
	return "", 0, 0, false
}

// levels are the aggregation levels kept in bank_backlog and bank_durations
// (their level column): bit masks of the dimensions a level keeps. A query
// reads the first level that keeps every dimension it filters or groups
// by, so they are listed from the fewest rows to the most: the coarser the
// level, the fewer rows (and histogram entries) a query reads. Every level
// keeps the fiscal year, which costs little (the days of a backlog and the
// fiscal year go together); the levels without the bank serve reports by
// province, county, agency or program over every bank, which would
// otherwise merge each bank's histograms. Only a query that combines an
// area with an agency or program reads the finest level.
var levels = [...]int{
	dimFiscalYear | dimBank,                                                    // 33: per bank, per year
	dimFiscalYear | dimProvince,                                                // 3: per province
	dimFiscalYear | dimAgency | dimProgram,                                     // 25: per agency or program
	dimFiscalYear | dimProvince | dimCounty,                                    // 7: per county
	dimFiscalYear | dimProvince | dimBank,                                      // 35: a province's banks
	dimFiscalYear | dimAgency | dimProgram | dimBank,                           // 57: an agency's or program's banks
	dimFiscalYear | dimProvince | dimCounty | dimBank,                          // 39: a county's banks
	dimFiscalYear | dimProvince | dimCounty | dimAgency | dimProgram | dimBank, // 63: every dimension
}

// The dimension bits of a level.
const (
	dimFiscalYear = 1 << iota
	dimProvince
	dimCounty
	dimAgency
	dimProgram
	dimBank
)

// group is one row of bank_backlog or bank_durations: a level, the
// dimensions it keeps (the others zero), the state or kind, and for a
// backlog the block of days its facilities began waiting in.
type group struct {
	level                                   int
	fiscalYear                              int64
	province, county, agency, program, bank string
	sub                                     string // the state or the kind
	block                                   int64
	backlog                                 bool // a bank_backlog row, keyed by block too
}

// blockDays is the length of a backlog row's block of days. A backlog's
// facilities are kept in one row per block of the day they began waiting,
// so that a query leaves out the histograms of the blocks that lie wholly
// in the oldest bucket on its as-of date (their totals are all it needs):
// a national report reads the days of the last half year or so, not of
// every year a facility has been stuck since.
const blockDays = 128

// blockOf returns the block of day: day / blockDays, rounded down.
func blockOf(day int64) int64 {
	b := day / blockDays
	if day%blockDays < 0 {
		b--
	}
	return b
}

// groupAt returns the facility's group at level l for sub.
func (r *row) groupAt(l int, sub string) group {
	g := group{level: l, fiscalYear: r.fiscalYear, sub: sub}
	if l&dimProvince != 0 {
		g.province = r.province
	}
	if l&dimCounty != 0 {
		g.county = r.county
	}
	if l&dimAgency != 0 {
		g.agency = r.agency
	}
	if l&dimProgram != 0 {
		g.program = r.program
	}
	if l&dimBank != 0 {
		g.bank = r.bank
	}
	return g
}

// key returns the group's primary key as one text: its fields joined by
// '/', each escaped so that the key is unambiguous whatever the
// identifiers hold. Finish builds the same text in SQL.
func (g group) key() string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString(strconv.Itoa(g.level))
	b.WriteByte('/')
	b.WriteString(strconv.FormatInt(g.fiscalYear, 10))
	for _, s := range [...]string{g.province, g.county, g.agency, g.program, g.bank, g.sub} {
		b.WriteByte('/')
		b.WriteString(escape(s))
	}
	if g.backlog {
		b.WriteByte('/')
		b.WriteString(strconv.FormatInt(g.block, 10))
	}
	return b.String()
}

var escaper = strings.NewReplacer("%", "%25", "/", "%2F")

func escape(s string) string {
	if !strings.ContainsAny(s, "%/") {
		return s
	}
	return escaper.Replace(s)
}

// cell is one histogram entry's figures: facilities and rials (durations
// carry no rials).
type cell struct{ n, rials int64 }

// contribution calls add for every histogram entry the facility puts in the
// aggregate tables: its backlog entry and its durations, at every level. A
// facility not yet referred to a bank puts none.
func (r *row) contribution(add func(g group, day int64, c cell)) error {
	if !r.referredDay.Valid {
		return nil
	}
	state, day, rials, inBacklog := r.backlog()
	var waited, paidAfter int64
	approval := r.approvedDay.Valid
	if approval {
		waited = r.approvedDay.Int64 - r.referredDay.Int64
	}
	payment := approval && r.firstPaidDay.Valid
	if payment {
		paidAfter = r.firstPaidDay.Int64 - r.approvedDay.Int64
	}
	if waited < 0 || paidAfter < 0 {
		// The deciders refuse a step dated before the one it follows.
		return fmt.Errorf("facility %s: a step is dated before the step it follows", r.id)
	}
	for _, l := range levels {
		if inBacklog {
			g := r.groupAt(l, state)
			g.backlog, g.block = true, blockOf(day)
			add(g, day, cell{1, rials})
		}
		if approval {
			add(r.groupAt(l, KindApproval), waited, cell{n: 1})
		}
		if payment {
			add(r.groupAt(l, KindPayment), paidAfter, cell{n: 1})
		}
	}
	return nil
}
