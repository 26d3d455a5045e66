package quotas

import (
	"database/sql"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/payesh/payesh/domain/quota"
)

// accountID is the text key of an account in this read model:
// fiscal_year/program/agency/province[/county]. None of the parts may
// contain '/' (quota.ValidProgram, quota.ValidKeyPart), so it is unique and
// parseAccountID inverts it.
func accountID(fiscalYear int64, program string, k quota.AccountKey) string {
	return strconv.FormatInt(fiscalYear, 10) + "/" + program + "/" + k.String()
}

func parseAccountID(id string) (int64, string, quota.AccountKey, error) {
	fy, rest, ok1 := strings.Cut(id, "/")
	program, key, ok2 := strings.Cut(rest, "/")
	n, err := strconv.ParseInt(fy, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return 0, "", quota.AccountKey{}, fmt.Errorf("quotas: malformed account id %q", id)
	}
	k, err := quota.ParseAccountKey(key)
	if err != nil {
		return 0, "", quota.AccountKey{}, fmt.Errorf("quotas: account id %q: %w", id, err)
	}
	return n, program, k, nil
}

// account is a quota_balances row being folded. The derived columns (free
// and the ratios) are computed when it is written, so two accounts with
// equal fields are equal rows.
type account struct {
	id                                  string
	fiscalYear                          int64
	program, agency, province, county   string
	allocated, transferredIn            int64
	transferredOut, charged, released   int64
	jobsTarget                          int64
	facilities, disbursed, jobsVerified int64
	firstAllocatedAt                    sql.NullInt64
}

// balanceColumns are quota_balances' columns, key first, in the order of
// account.values and account.scan.
var balanceColumns = []string{
	"account_id", "fiscal_year", "program", "agency", "province", "county",
	"allocated_rials", "transferred_in_rials", "transferred_out_rials", "charged_rials", "released_rials",
	"free_rials", "jobs_target", "facilities", "disbursed_rials", "jobs_verified", "first_allocated_at",
	"absorption_ppm", "payment_rate_ppm", "realisation_ppm",
}

// free is quota.Balance.FreeRials.
func (a *account) free() int64 {
	return a.allocated + a.transferredIn - a.transferredOut - a.charged + a.released
}

func (a *account) values() []any {
	return []any{
		a.id, a.fiscalYear, a.program, a.agency, a.province, a.county,
		a.allocated, a.transferredIn, a.transferredOut, a.charged, a.released,
		a.free(), a.jobsTarget, a.facilities, a.disbursed, a.jobsVerified, a.firstAllocatedAt,
		ppm(a.charged, a.allocated), ppm(a.disbursed, a.charged), ppm(a.jobsVerified, a.jobsTarget),
	}
}

type scanner interface{ Scan(dest ...any) error }

// scan reads a row in balanceColumns order, followed by extra columns.
func (a *account) scan(s scanner, extra ...any) error {
	var free int64
	var absorption, payment, realisation sql.NullInt64
	return s.Scan(append([]any{
		&a.id, &a.fiscalYear, &a.program, &a.agency, &a.province, &a.county,
		&a.allocated, &a.transferredIn, &a.transferredOut, &a.charged, &a.released,
		&free, &a.jobsTarget, &a.facilities, &a.disbursed, &a.jobsVerified, &a.firstAllocatedAt,
		&absorption, &payment, &realisation,
	}, extra...)...)
}

// ppm returns num ÷ den in parts per million, rounded towards zero, and
// NULL when den is not positive. The product is taken in 128 bits: sums of
// rials can exceed what int64 holds once multiplied by a million. A ratio
// beyond int64 is clamped.
func ppm(num, den int64) sql.NullInt64 {
	if den <= 0 {
		return sql.NullInt64{}
	}
	neg := num < 0
	u := uint64(num)
	if neg {
		u = uint64(-(num + 1)) + 1 // |num| without overflow at math.MinInt64
	}
	hi, lo := bits.Mul64(u, 1_000_000)
	var q uint64
	if hi >= uint64(den) {
		q = math.MaxInt64
	} else {
		q, _ = bits.Div64(hi, lo, uint64(den))
		q = min(q, math.MaxInt64)
	}
	if neg {
		return sql.NullInt64{Int64: -int64(q), Valid: true}
	}
	return sql.NullInt64{Int64: int64(q), Valid: true}
}

// allocation is a quota_allocations row.
type allocation struct {
	eventID string
	amount  int64
	jobs    int64
	at      int64
	dirty   bool // to be written
}

var allocationColumns = []string{"account_id", "event_id", "amount_rials", "jobs_target", "allocated_at"}

// allocations is what a batch knows of one account's allocations: all of
// them (full) when a correction in the batch needs them, else only those
// the batch adds.
type allocations struct {
	items []*allocation
	full  bool
}

// firstLive returns the business time of the earliest allocation with a
// positive amount, NULL when there is none.
func (l *allocations) firstLive() sql.NullInt64 {
	var first sql.NullInt64
	for _, a := range l.items {
		if a.amount > 0 && (!first.Valid || a.at < first.Int64) {
			first = sql.NullInt64{Int64: a.at, Valid: true}
		}
	}
	return first
}

// fac is a quota_facilities row being folded.
type fac struct {
	id                                string
	fiscalYear                        int64
	program, agency, province, county string
	pending                           bool
	requested                         int64
	account                           string
	disbursed                         int64
	verified                          int64
	inspections                       []inspection
}

// inspection is one of a facility's inspections, as corrected.
type inspection struct {
	eventID   string
	confirmed bool
	verified  int64
}

var facilityColumns = []string{
	"facility_id", "fiscal_year", "program", "agency", "province", "county",
	"pending", "requested_rials", "account_id", "disbursed_rials", "jobs_verified", "inspections",
}

func (f *fac) values() []any {
	return []any{
		f.id, f.fiscalYear, f.program, f.agency, f.province, f.county,
		boolInt(f.pending), f.requested, f.account, f.disbursed, f.verified, encodeInspections(f.inspections),
	}
}

func (f *fac) scan(s scanner) error {
	var pending int64
	var ins string
	if err := s.Scan(&f.id, &f.fiscalYear, &f.program, &f.agency, &f.province, &f.county,
		&pending, &f.requested, &f.account, &f.disbursed, &f.verified, &ins); err != nil {
		return err
	}
	f.pending = pending == 1
	var err error
	f.inspections, err = decodeInspections(ins)
	if err != nil {
		return fmt.Errorf("facility %s: %w", f.id, err)
	}
	return nil
}

// clone returns a copy that shares nothing with f.
func (f *fac) clone() *fac {
	c := *f
	c.inspections = append([]inspection(nil), f.inspections...)
	return &c
}

// encodeInspections writes a facility's inspections in one column: they
// are few per facility, always read and written together, and only this
// projector reads them.
func encodeInspections(ins []inspection) string {
	var b strings.Builder
	for i, in := range ins {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(in.eventID)
		if in.confirmed {
			b.WriteString(":1:")
		} else {
			b.WriteString(":0:")
		}
		b.WriteString(strconv.FormatInt(in.verified, 10))
	}
	return b.String()
}

func decodeInspections(s string) ([]inspection, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ";")
	out := make([]inspection, len(parts))
	for i, p := range parts {
		id, rest, ok1 := strings.Cut(p, ":")
		c, v, ok2 := strings.Cut(rest, ":")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok1 || !ok2 || (c != "0" && c != "1") || err != nil {
			return nil, fmt.Errorf("malformed inspections column %q", s)
		}
		out[i] = inspection{eventID: id, confirmed: c == "1", verified: n}
	}
	return out, nil
}

// latestVerified is what the facilities read model counts as verified jobs:
// those of the latest confirming inspection, 0 when none confirms.
func latestVerified(ins []inspection) int64 {
	for i := len(ins) - 1; i >= 0; i-- {
		if ins[i].confirmed {
			return ins[i].verified
		}
	}
	return 0
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// combo is a quota_demand key.
type combo struct {
	fiscalYear                        int64
	program, agency, province, county string
}

func (c combo) compare(o combo) int {
	switch {
	case c.fiscalYear != o.fiscalYear:
		if c.fiscalYear < o.fiscalYear {
			return -1
		}
		return 1
	case c.program != o.program:
		return strings.Compare(c.program, o.program)
	case c.agency != o.agency:
		return strings.Compare(c.agency, o.agency)
	case c.province != o.province:
		return strings.Compare(c.province, o.province)
	}
	return strings.Compare(c.county, o.county)
}

var demandColumns = []string{"fiscal_year", "program", "agency", "province", "county", "facilities", "requested_rials"}

// demand is what a facility adds to quota_demand: itself and the rials it
// requests while it awaits a bank's decision, nothing otherwise.
func (f *fac) demand() (combo, [2]int64, bool) {
	if !f.pending {
		return combo{}, [2]int64{}, false
	}
	return combo{f.fiscalYear, f.program, f.agency, f.province, f.county}, [2]int64{1, f.requested}, true
}
