// Package facilities is the projector of Payesh's first two read models,
// both folded from the facility streams in one transaction per batch:
//
//   - facilities: one row per facility with its current state: the
//     dimensions dashboards filter by (fiscal year, province, county,
//     agency, program, bank), the stage, the amounts requested, approved
//     and paid, the jobs promised, reported and verified, the latest
//     inspection, the open audit cases and the dates of each step. Every
//     figure is corrected: a facility.corrected.v1 event changes the
//     column it names, and the row always equals what facility.Evolve
//     folds from the stream.
//   - job_counts: per combination of the six dimensions, the funnel (how
//     many facilities reached each step), the money approved and paid and
//     the jobs promised, reported and verified, kept equal to the sum of
//     the facilities rows of that combination.
//
// A third table, facility_inspections, holds every inspection's corrected
// findings: a correction of an inspection can change which inspection
// verifies a facility's jobs.
//
// Both read models are maintained by one projector, so they always reflect
// the same position and job_counts can be kept incrementally from the
// facilities rows it reads in the same transaction: each facility whose row
// a batch changes has its old contribution subtracted from its old
// combination and its new contribution added to its new one (the
// combination changes when a bank is named or a county corrected).
//
// # The funnel
//
// A facility counts at a step in job_counts once it has reached it, whatever
// happened later (a closed file still counts as approved if it was):
//
//   - registered: every registered facility (job_counts.facilities);
//   - reviewed: the agency's expert review is recorded, either way;
//   - referred: the review approved the plan and referred it to a bank;
//   - approved: the bank approved the loan;
//   - disbursed: at least one tranche has been paid;
//   - inspected: at least one field inspection is recorded;
//   - confirmed: at least one inspection confirms the plan, as corrected
//     (so a correction withdrawing the only confirmation takes it out).
//
// Sums (approved and paid rials, jobs promised, reported and verified) run
// over every facility of the combination; a facility with no jobs report
// or no confirming inspection adds 0 reported or verified jobs.
package facilities

import (
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"strings"
)

// Name is the projector's name, and the name of its main read model.
const Name = "facilities"

// The read models' tables.
const (
	FacilitiesTable  = "facilities"
	InspectionsTable = "facility_inspections"
	JobCountsTable   = "job_counts"
)

// version is the tables' layout and Apply's meaning; bump it with any
// change to either, and the Engine rebuilds the tables.
const version = 2

// facilityIndexes returns the CREATE INDEX statements of the facilities
// table's indexes, each named for its columns.
func facilityIndexes(t projections.TableNames, fac string, keys [][]string) []string {
	out := make([]string, len(keys))
	for i, cols := range keys {
		name := strings.ReplaceAll(strings.Join(cols, "_"), "facility_id", "id")
		out[i] = `CREATE INDEX IF NOT EXISTS ` + t.Index(FacilitiesTable, name) + ` ON ` + fac + ` (` + strings.Join(cols, ", ") + `)`
	}
	return out
}

// Projector maintains facilities, facility_inspections and job_counts.
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
	return []string{FacilitiesTable, InspectionsTable, JobCountsTable}
}

// Filter implements projections.Projector: the facility streams.
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{StreamPrefixes: []string{"facility-"}}
}

// Schema implements projections.Projector. Times are unix microseconds
// (UTC) in both engines, so rows compare byte for byte across rebuilds;
// booleans are 0 or 1.
func (Projector) Schema(d projections.Dialect, t projections.TableNames) projections.Schema {
	i, s := d.Int(), d.Text()
	fac, insp, jc := t.Table(FacilitiesTable), t.Table(InspectionsTable), t.Table(JobCountsTable)
	return projections.Schema{
		Tables: []string{
			`CREATE TABLE ` + fac + ` (
	facility_id               ` + s + ` NOT NULL PRIMARY KEY,
	fiscal_year               ` + i + ` NOT NULL,
	province                  ` + s + ` NOT NULL,
	county                    ` + s + ` NOT NULL, -- '' when none was given
	agency                    ` + s + ` NOT NULL,
	program                   ` + s + ` NOT NULL,
	bank                      ` + s + ` NOT NULL, -- '' until referred
	stage                     ` + s + ` NOT NULL,
	title                     ` + s + ` NOT NULL,
	requested_rials           ` + i + ` NOT NULL,
	approved_rials            ` + i + ` NOT NULL,
	disbursed_rials           ` + i + ` NOT NULL,
	tranche_count             ` + i + ` NOT NULL,
	jobs_promised             ` + i + ` NOT NULL,
	jobs_reported             ` + i + `,          -- NULL until a report
	last_report_event_id      ` + s + ` NOT NULL,
	jobs_verified             ` + i + `,          -- NULL until an inspection confirms
	inspection_count          ` + i + ` NOT NULL,
	last_inspection_id        ` + s + ` NOT NULL,
	last_inspection_firm      ` + s + ` NOT NULL,
	last_inspection_status    ` + s + ` NOT NULL,
	last_inspection_confirmed ` + i + `,
	last_inspection_at        ` + i + `,
	open_deviations           ` + i + ` NOT NULL,
	recovered_rials           ` + i + ` NOT NULL,
	registered_at             ` + i + ` NOT NULL,
	reviewed_at               ` + i + `,
	referred_at               ` + i + `,
	approved_at               ` + i + `,
	first_paid_at             ` + i + `,
	closed_at                 ` + i + `,
	version                   ` + i + ` NOT NULL, -- the stream version of the latest event
	updated_position          ` + i + ` NOT NULL  -- the global position of the latest event
)` + d.TableOptions(),
			`CREATE TABLE ` + insp + ` (
	facility_id   ` + s + ` NOT NULL,
	seq           ` + i + ` NOT NULL, -- stream version of the inspection event
	event_id      ` + s + ` NOT NULL,
	inspection_id ` + s + ` NOT NULL,
	firm          ` + s + ` NOT NULL,
	status        ` + s + ` NOT NULL,
	confirmed     ` + i + ` NOT NULL,
	verified_jobs ` + i + ` NOT NULL,
	inspected_at  ` + i + ` NOT NULL,
	PRIMARY KEY (facility_id, seq)
)` + d.TableOptions(),
			`CREATE TABLE ` + jc + ` (
	fiscal_year     ` + i + ` NOT NULL,
	province        ` + s + ` NOT NULL,
	county          ` + s + ` NOT NULL,
	agency          ` + s + ` NOT NULL,
	program         ` + s + ` NOT NULL,
	bank            ` + s + ` NOT NULL,
	facilities      ` + i + ` NOT NULL,
	reviewed        ` + i + ` NOT NULL,
	referred        ` + i + ` NOT NULL,
	approved        ` + i + ` NOT NULL,
	disbursed       ` + i + ` NOT NULL,
	inspected       ` + i + ` NOT NULL,
	confirmed       ` + i + ` NOT NULL,
	approved_rials  ` + i + ` NOT NULL,
	disbursed_rials ` + i + ` NOT NULL,
	jobs_promised   ` + i + ` NOT NULL,
	jobs_reported   ` + i + ` NOT NULL,
	jobs_verified   ` + i + ` NOT NULL,
	PRIMARY KEY (fiscal_year, province, county, agency, program, bank)
)` + d.TableOptions(),
		},
		// The facilities list's indexes: one per filter a list is usually
		// asked with (a principal's scope — province, agency, bank — or
		// the programme, mostly within a fiscal year) followed by the
		// sort key, so that a page is an index range read in order and
		// stops after its rows, whatever the filter's selectivity.
		// Without them a page of a sparse filter reads thousands of rows
		// (a province's year, 1/31 of a year's rows, in id order through
		// the year index) or sorts every match (a bank's year by loan).
		Indexes: facilityIndexes(t, fac, [][]string{
			{"fiscal_year", "facility_id"},
			{"province", "fiscal_year", "facility_id"},
			{"province", "county", "facility_id"},
			{"agency", "fiscal_year", "facility_id"},
			{"agency", "province", "facility_id"},
			{"bank", "fiscal_year", "facility_id"},
			{"bank", "stage", "facility_id"},
			{"program", "fiscal_year", "facility_id"},
			{"stage", "facility_id"},
			{"updated_position"},
			{"province", "fiscal_year", "updated_position"},
			{"bank", "fiscal_year", "approved_rials", "facility_id"},
		}),
	}
}
