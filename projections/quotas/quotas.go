// Package quotas is the projector of the quota balances read model: one row
// per quota account (fiscal year, program, agency, province and, for a
// county's own quota, county) with the ledger's figures and what the loans
// charged to it have become.
//
// # Tables
//
//   - quota_balances, the read model. From the quota streams, exactly as
//     quota.Evolve folds them into quota.Balance: allocated_rials (net of
//     allocation corrections), transferred_in_rials, transferred_out_rials,
//     charged_rials (loan approvals), released_rials (charges returned,
//     mostly when a file is closed before its loan was fully paid),
//     free_rials (quota.Balance.FreeRials: allocated + in − out − charged +
//     released) and jobs_target (allocated job target as corrected, plus
//     targets transferred in, minus those transferred out). From the
//     facility streams, over the facilities whose loan approval charged the
//     account: facilities (how many), disbursed_rials (tranches paid, as
//     corrected) and jobs_verified (as the facilities read model counts them:
//     the verified jobs of each facility's latest confirming inspection, as
//     corrected). first_allocated_at is the business time of the account's
//     earliest allocation whose corrected amount is positive (NULL when it
//     has none: an account opened by a transfer, or whose allocations were
//     all cancelled), so that days since allocation can be computed at query
//     time against an as-of date. absorption_ppm (charged ÷ allocated),
//     payment_rate_ppm (disbursed ÷ charged) and realisation_ppm (jobs
//     verified ÷ jobs target) are those ratios in parts per million, rounded
//     down, NULL when the divisor is not positive; they are stored so that
//     the utilisation views can sort by them.
//   - quota_allocations: every allocation with its corrected figures and
//     business time, so that a correction can find what it corrects and
//     first_allocated_at can move when the first allocation is cancelled.
//   - quota_facilities: per facility, what this read model needs of it: its
//     dimensions (county as corrected), whether it awaits a bank's decision,
//     the amount it requests, the account its approval charged, the amount
//     paid and its verified jobs, and its inspections (the event each one
//     was recorded by, whether it confirms the plan and the jobs it
//     verified, as corrected), because a corrected confirmation can change
//     which inspection verifies the jobs.
//   - quota_demand: unmet demand per fiscal year, program, agency, province
//     and county: the facilities that passed the agency's expert review
//     (referred to a bank) and still await the bank's decision, and the
//     rials they request. It is kept incrementally from quota_facilities,
//     like job_counts, and computed in one statement after a rebuild's
//     replay (Finish).
//
// # Which account a facility belongs to
//
// A facility with an approved loan belongs to the account its approval
// charged: the quota_account of facility.loan_approved.v1, in the ledger of
// the facility's fiscal year and program. The charge does not move when the
// facility's county is corrected later, and neither do the facility's
// disbursed rials and verified jobs in this read model.
//
// A facility awaiting the bank's decision has charged nothing yet. Its
// unmet demand is shown on the account its approval would charge if it
// came now, by the rule of ledger.Service.ApproveLoan (pickAccount): the
// county's account when the facility names a county and the ledger has an
// account for that agency and county, else the agency's province account.
// That depends on which accounts exist at the time of the query, so the
// mapping is made at query time, from quota_demand; demand whose account
// does not exist (an approval would be refused) shows on no account and in
// no total.
//
// Conservation: over every account of a ledger, allocated = free + open
// charges (charged − released), because transfers move quota without
// creating or destroying it; Reader.Totals shows both sides.
package quotas

import (
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// Name is the projector's name, and the name of its read model.
const Name = "quota_balances"

// The projector's tables.
const (
	BalancesTable    = "quota_balances"
	AllocationsTable = "quota_allocations"
	FacilitiesTable  = "quota_facilities"
	DemandTable      = "quota_demand"
)

// version is the tables' layout and Apply's meaning; bump it with any
// change to either, and the Engine rebuilds the tables.
const version = 1

// Projector maintains the quota balances read model and its working tables.
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
func (Projector) Tables() []string {
	return []string{BalancesTable, AllocationsTable, FacilitiesTable, DemandTable}
}

// Filter implements projections.Projector: every quota event, and the
// facility events that change what this read model shows. Jobs reports and
// audit cases are left out, so a rebuild neither decodes nor folds them.
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{Types: []string{
		quota.TypeAllocated, quota.TypeTransferred, quota.TypeCharged, quota.TypeChargeReleased, quota.TypeAllocationCorrected,
		facility.TypeRegistered, facility.TypeReviewed, facility.TypeLoanApproved, facility.TypeLoanRejected,
		facility.TypeTrancheDisbursed, facility.TypeInspected, facility.TypeClosed, facility.TypeCorrected,
	}}
}

// Schema implements projections.Projector. Times are unix microseconds
// (UTC), booleans 0 or 1, as in every read model.
func (Projector) Schema(d projections.Dialect, t projections.TableNames) projections.Schema {
	i, s := d.Int(), d.Text()
	bal, alloc, fac, dem := t.Table(BalancesTable), t.Table(AllocationsTable), t.Table(FacilitiesTable), t.Table(DemandTable)
	key := `fiscal_year, program, agency, province, county`
	return projections.Schema{
		Tables: []string{
			`CREATE TABLE ` + bal + ` (
	account_id            ` + s + ` NOT NULL PRIMARY KEY, -- fiscal_year/program/agency/province[/county]
	fiscal_year           ` + i + ` NOT NULL,
	program               ` + s + ` NOT NULL,
	agency                ` + s + ` NOT NULL,
	province              ` + s + ` NOT NULL,
	county                ` + s + ` NOT NULL, -- '' for the province's account
	allocated_rials       ` + i + ` NOT NULL,
	transferred_in_rials  ` + i + ` NOT NULL,
	transferred_out_rials ` + i + ` NOT NULL,
	charged_rials         ` + i + ` NOT NULL,
	released_rials        ` + i + ` NOT NULL,
	free_rials            ` + i + ` NOT NULL,
	jobs_target           ` + i + ` NOT NULL,
	facilities            ` + i + ` NOT NULL, -- facilities whose approval charged the account
	disbursed_rials       ` + i + ` NOT NULL,
	jobs_verified         ` + i + ` NOT NULL,
	first_allocated_at    ` + i + `,          -- NULL without a live allocation
	absorption_ppm        ` + i + `,          -- NULL when nothing is allocated
	payment_rate_ppm      ` + i + `,          -- NULL when nothing is charged
	realisation_ppm       ` + i + `           -- NULL without a job target
)` + d.TableOptions(),
			`CREATE TABLE ` + alloc + ` (
	account_id   ` + s + ` NOT NULL,
	event_id     ` + s + ` NOT NULL,
	amount_rials ` + i + ` NOT NULL, -- as corrected; 0 when cancelled
	jobs_target  ` + i + ` NOT NULL, -- as corrected
	allocated_at ` + i + ` NOT NULL,
	PRIMARY KEY (account_id, event_id)
)` + d.TableOptions(),
			`CREATE TABLE ` + fac + ` (
	facility_id     ` + s + ` NOT NULL PRIMARY KEY,
	fiscal_year     ` + i + ` NOT NULL,
	program         ` + s + ` NOT NULL,
	agency          ` + s + ` NOT NULL,
	province        ` + s + ` NOT NULL,
	county          ` + s + ` NOT NULL, -- as corrected
	pending         ` + i + ` NOT NULL, -- 1 while referred to a bank and awaiting its decision
	requested_rials ` + i + ` NOT NULL,
	account_id      ` + s + ` NOT NULL, -- the account the approval charged; '' before
	disbursed_rials ` + i + ` NOT NULL,
	jobs_verified   ` + i + ` NOT NULL, -- 0 until an inspection confirms
	inspections     ` + s + ` NOT NULL  -- event_id:confirmed:verified_jobs;... oldest first
)` + d.TableOptions(),
			`CREATE TABLE ` + dem + ` (
	fiscal_year     ` + i + ` NOT NULL,
	program         ` + s + ` NOT NULL,
	agency          ` + s + ` NOT NULL,
	province        ` + s + ` NOT NULL,
	county          ` + s + ` NOT NULL,
	facilities      ` + i + ` NOT NULL,
	requested_rials ` + i + ` NOT NULL,
	PRIMARY KEY (` + key + `)
)` + d.TableOptions(),
		},
		// The balances table holds one row per account (thousands, not
		// millions), but it is read at every dashboard load: each filter
		// and each order has an index, all ending in the account's key,
		// which breaks ties and bounds the cursors.
		Indexes: []string{
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "key") + ` ON ` + bal + ` (` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "agency") + ` ON ` + bal + ` (agency, ` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "area") + ` ON ` + bal + ` (province, county, ` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "free") + ` ON ` + bal + ` (free_rials DESC, ` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "allocated") + ` ON ` + bal + ` (allocated_rials DESC, ` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "absorption") + ` ON ` + bal + ` (absorption_ppm, ` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "payment") + ` ON ` + bal + ` (payment_rate_ppm, ` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "realisation") + ` ON ` + bal + ` (realisation_ppm, ` + key + `)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(BalancesTable, "since") + ` ON ` + bal + ` (first_allocated_at, ` + key + `)`,
		},
	}
}
