// Package banks is the projector of the bank performance read model: how
// long each operating bank keeps applicants waiting, folded from the
// facility streams.
//
// Per bank, and for any slice of the dimensions dashboards filter by
// (fiscal year, province, county, agency, program), it answers:
//
//   - the facilities waiting for the bank's decision (pending approval):
//     referred to the bank, neither approved nor rejected, not closed;
//     counted with the rials requested;
//   - the facilities waiting for their money (pending payment): approved,
//     not closed, paid less than the approved amount; counted with the
//     rials still to be paid (approved − paid);
//   - each backlog in ageing buckets of 0–30, 31–90, 91–180 and over 180
//     days, measured from the referral (respectively the approval) to an
//     as-of date the query gives;
//   - the median days from referral to approval, and from approval to the
//     first tranche, over every facility that took the step (whatever
//     happened to it later: a closed file keeps its durations).
//
// Every figure is corrected: a corrected requested amount moves the
// pending-approval rials, a corrected tranche amount moves the outstanding
// rials and can put a fully paid facility back into the pending-payment
// backlog (or take it out), a corrected county moves the facility to
// another county. Closing takes a facility out of both backlogs. The domain
// offers no correction of the approved amount or of a step's date.
//
// # Days
//
// Ages and durations are counted in calendar days in Tehran (the
// calendar package's UTC+03:30): a step taken on one evening and the next
// one taken the following morning are one day apart. The tables hold day
// numbers, the days from 1970-01-01 to the step's Tehran date. A facility
// whose state began after the as-of date (possible only for an as-of date in
// the past) is counted apart, in AfterAsOf: the read model holds the current
// state, not the state on that date.
//
// # Medians
//
// The median of an odd number of durations is the middle one; of an even
// number, the mean of the two middle ones (so it may end in .5 days). It
// does not depend on the as-of date.
//
// # Tables
//
//   - bank_facilities: one row per registered facility with what the
//     aggregates need (its dimensions, bank, stage, requested, approved and
//     paid rials, and the days of referral, approval and first payment),
//     so that a batch can compute each facility's old and new contribution.
//   - bank_backlog: per group, backlog state and block of 128 days, the
//     number of facilities, their rials, and a histogram of the day each
//     began waiting (see hist.go).
//   - bank_durations: per group and kind (approval, payment), the number of
//     facilities and a histogram of their durations in days.
//
// A group is a combination of the dimensions kept at one of eight levels
// (see levels): per bank and fiscal year; per province, county, or agency
// and program, with or without the bank; and every dimension. A query
// reads the coarsest level that keeps every dimension it filters or groups
// by, one row per group (and block), whatever the number of facilities, and
// computes buckets for its as-of date and medians for its filter from the
// histograms; the blocks wholly over 180 days old on the as-of date are
// read as totals only.
//
// The aggregates are kept incrementally: each facility whose row a batch
// changes has its old contribution subtracted and its new one added, at
// every level. During a rebuild Apply writes only bank_facilities, and
// Finish computes the aggregates in one SQL statement per table, writing
// byte for byte what incremental maintenance writes.
package banks

import (
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// Name is the projector's name and the read model's.
const Name = "bank_performance"

// The read model's tables.
const (
	FacilitiesTable = "bank_facilities"
	BacklogTable    = "bank_backlog"
	DurationsTable  = "bank_durations"
)

// version is the tables' layout and Apply's meaning; bump it with any change
// to either, and the Engine rebuilds the tables.
const version = 1

// Projector maintains bank_facilities, bank_backlog and bank_durations.
type Projector struct{}

var (
	_ projections.Projector = Projector{}
	_ projections.Finisher  = Projector{}
)

// New returns the projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector.
func (Projector) Version() int { return version }

// Tables implements projections.Projector.
func (Projector) Tables() []string { return []string{FacilitiesTable, BacklogTable, DurationsTable} }

// Filter implements projections.Projector: the facility streams.
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{"facility-"}}
}

// Schema implements projections.Projector. Days are day numbers (see the
// package documentation), not instants: the read model counts calendar
// days.
func (Projector) Schema(d projections.Dialect, t projections.TableNames) projections.Schema {
	i, s := d.Int(), d.Text()
	fac, bl, du := t.Table(FacilitiesTable), t.Table(BacklogTable), t.Table(DurationsTable)
	// Both aggregate tables have the same key. Its order serves the
	// queries (see Filter.where): a level's rows are together, then a
	// province's, an agency's and a program's within those, so a query
	// reads one range of the primary key (clustered on SQLite); a county
	// is found through its own index. group_key is the same key as one
	// text, for Apply's reads and deletes by a list of keys.
	groupCols := func(sub string) string {
		return `
	level       ` + i + ` NOT NULL, -- the dimensions kept: 1 fiscal year, 2 province, 4 county, 8 agency, 16 program, 32 bank
	fiscal_year ` + i + ` NOT NULL,
	province    ` + s + ` NOT NULL, -- '' when the level does not keep it
	county      ` + s + ` NOT NULL, -- '' when the level does not keep it, or the facility has none
	agency      ` + s + ` NOT NULL,
	program     ` + s + ` NOT NULL,
	bank        ` + s + ` NOT NULL, -- '' when the level does not keep it
	` + sub + ` ` + s + ` NOT NULL,
	group_key   ` + s + ` NOT NULL, -- level/fiscal_year/province/county/agency/program/bank/` + sub + ` (/block), each part escaped
	facilities  ` + i + ` NOT NULL, -- > 0: a group left empty is deleted`
	}
	pk := func(cols string) string {
		return `
	PRIMARY KEY (level, province, agency, program, county, fiscal_year, bank, ` + cols + `)`
	}
	indexes := func(base, table string) []string {
		return []string{
			`CREATE UNIQUE INDEX IF NOT EXISTS ` + t.Index(base, "key") + ` ON ` + table + ` (group_key)`,
			// See Filter.where for the expression.
			`CREATE INDEX IF NOT EXISTS ` + t.Index(base, "county") + ` ON ` + table + ` (county, (level + 0))`,
		}
	}
	return projections.Schema{
		Tables: []string{
			`CREATE TABLE ` + fac + ` (
	facility_id     ` + s + ` NOT NULL PRIMARY KEY,
	fiscal_year     ` + i + ` NOT NULL,
	province        ` + s + ` NOT NULL,
	county          ` + s + ` NOT NULL, -- '' when none was given
	agency          ` + s + ` NOT NULL,
	program         ` + s + ` NOT NULL,
	bank            ` + s + ` NOT NULL, -- '' until referred
	stage           ` + s + ` NOT NULL,
	requested_rials ` + i + ` NOT NULL,
	approved_rials  ` + i + ` NOT NULL, -- 0 until approved
	paid_rials      ` + i + ` NOT NULL,
	referred_day    ` + i + `,          -- day numbers; NULL until the step
	approved_day    ` + i + `,
	first_paid_day  ` + i + `
)` + d.TableOptions(),
			`CREATE TABLE ` + bl + ` (` + groupCols("state") + `
	block       ` + i + ` NOT NULL, -- day the state began / 128, rounded down: a row per block of days
	rials       ` + i + ` NOT NULL, -- requested (pending_approval) or outstanding (pending_payment)
	hist        ` + s + ` NOT NULL, -- day the state began:facilities:rials, ascending by day` + pk("state, block") + `
)` + d.TableOptions(),
			`CREATE TABLE ` + du + ` (` + groupCols("kind") + `
	hist        ` + s + ` NOT NULL, -- days taken:facilities, ascending by days` + pk("kind") + `
)` + d.TableOptions(),
		},
		Indexes: append(indexes(BacklogTable, bl), indexes(DurationsTable, du)...),
	}
}
