// Package inspections is the projector of the inspections read model: what
// field inspections found, per province, agency, inspection firm and
// guideline version, and sliced further by fiscal year, county, program and
// bank. For each group it answers how many inspections were recorded, how
// many facilities they covered, how many of those facilities were
// confirmed (and the rate), how many inspections found each status, and how
// many audit cases the inspections opened, by kind.
//
// # Definitions
//
//   - An inspection is a facility.inspected.v1 event. Its firm and
//     guideline version are the event's; its facility's dimensions (fiscal
//     year, province, county, agency, program, bank) are the facility's
//     current ones, corrections included: a corrected county moves every
//     inspection of the facility to the new county.
//   - inspections counts inspections; facilities counts the distinct
//     facilities with at least one inspection in the group;
//     confirmed_facilities the distinct facilities with at least one
//     inspection in the group that confirms the plan, as corrected (the
//     ministry's "plans inspected / plans confirmed"); the confirmation rate
//     is confirmed_facilities / facilities. confirmed_inspections counts the
//     confirming inspections, and jobs_verified sums their verified jobs
//     (only a confirming inspection verifies jobs, as in the facilities read
//     model). facility.corrected.v1 events of confirmed and verified_jobs
//     change these figures.
//   - Statuses count inspections by what they found (active, inactive,
//     not_found, misused); statuses are not correctable.
//   - Findings are audit cases opened from an inspection
//     (facility.deviation_opened.v1 naming an inspection_id), counted by
//     kind. A finding is attributed to the inspection that found it, and so
//     to that inspection's firm and guideline version and to its facility's
//     dimensions: "which firm, under which guideline, finds what" is the
//     question the figure answers. Cases an auditor opened on their own
//     finding (no inspection_id) are no inspection's finding and are not
//     counted here; the deviations read model lists every case.
//
// # Tables
//
//   - inspection_facilities: every registered facility's dimensions, as
//     corrected, so an inspection recorded years after the registration
//     finds them. (Projectors do not share tables: the facilities read
//     model's can be rebuilt, or be at another position, independently.)
//   - inspections: one row per inspection with its corrected figures and
//     its findings by kind.
//   - inspection_stats: the figures per combination of the eight
//     dimensions, at eight levels. Distinct facility counts do not add up
//     across firms or guideline versions (a facility inspected by two firms
//     is one facility inspected), so each level keeps a chosen set of the
//     dimensions and a query reads the level that keeps exactly the
//     firm/guideline dimensions it groups or filters by: within a level a
//     facility falls in one row per value of those it has, so facility
//     counts add up over the other dimensions, which are the facility's
//     own (one value per facility). Every level keeps fiscal year,
//     province, agency and program; bit 1 of the level adds the firm, bit
//     2 the guideline version, bit 4 county and bank (the detail levels,
//     which have many more rows: the coarse ones answer the usual
//     province/agency/firm/guideline questions by summing a few rows). A
//     dimension a level does not keep is empty.
//
// inspection_stats is kept incrementally as facilities' job_counts is: a
// facility whose inspections or dimensions a batch changes has its old
// contribution subtracted and its new one added. During a rebuild it is
// computed once, from the other two tables, by Finish.
package inspections

import (
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// Name is the projector's name, and the name of its read model.
const Name = "inspections"

// The read model's tables.
const (
	FacilitiesTable  = "inspection_facilities"
	InspectionsTable = "inspections"
	StatsTable       = "inspection_stats"
)

// version is the tables' layout and Apply's meaning; bump it with any
// change to either, and the Engine rebuilds the tables.
const version = 1

// Projector maintains inspection_facilities, inspections and
// inspection_stats.
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
func (Projector) Tables() []string { return []string{FacilitiesTable, InspectionsTable, StatsTable} }

// Filter implements projections.Projector: the facility events that carry
// dimensions, inspections, findings and corrections.
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{
		StreamPrefixes: []string{"facility-"},
		Types: []string{
			facility.TypeRegistered, facility.TypeReviewed, facility.TypeInspected,
			facility.TypeDeviationOpened, facility.TypeCorrected,
		},
	}
}

// Schema implements projections.Projector. Times are unix microseconds
// (UTC); booleans are 0 or 1.
func (Projector) Schema(d projections.Dialect, t projections.TableNames) projections.Schema {
	i, s := d.Int(), d.Text()
	fac, insp, st := t.Table(FacilitiesTable), t.Table(InspectionsTable), t.Table(StatsTable)
	return projections.Schema{
		Tables: []string{
			`CREATE TABLE ` + fac + ` (
	facility_id ` + s + ` NOT NULL PRIMARY KEY,
	fiscal_year ` + i + ` NOT NULL,
	province    ` + s + ` NOT NULL,
	county      ` + s + ` NOT NULL, -- as corrected; '' when none was given
	agency      ` + s + ` NOT NULL,
	program     ` + s + ` NOT NULL,
	bank        ` + s + ` NOT NULL  -- '' until referred
)` + d.TableOptions(),
			`CREATE TABLE ` + insp + ` (
	facility_id   ` + s + ` NOT NULL,
	seq           ` + i + ` NOT NULL, -- stream version of the inspection event
	event_id      ` + s + ` NOT NULL,
	inspection_id ` + s + ` NOT NULL,
	firm          ` + s + ` NOT NULL,
	guideline     ` + s + ` NOT NULL, -- the guideline version inspected under
	status        ` + s + ` NOT NULL,
	confirmed     ` + i + ` NOT NULL, -- as corrected
	verified_jobs ` + i + ` NOT NULL, -- as corrected
	inspected_at  ` + i + ` NOT NULL,
	deviations    ` + i + ` NOT NULL, -- cases of kind deviation opened from it
	violations    ` + i + ` NOT NULL, -- ... of kind violation
	discrepancies ` + i + ` NOT NULL, -- ... of kind discrepancy
	PRIMARY KEY (facility_id, seq)
)` + d.TableOptions(),
			`CREATE TABLE ` + st + ` (
	level                 ` + i + ` NOT NULL, -- bits: 1 firm kept, 2 guideline kept, 4 county and bank kept
	fiscal_year           ` + i + ` NOT NULL,
	province              ` + s + ` NOT NULL,
	county                ` + s + ` NOT NULL, -- '' at levels without bit 4
	agency                ` + s + ` NOT NULL,
	program               ` + s + ` NOT NULL,
	bank                  ` + s + ` NOT NULL, -- '' at levels without bit 4
	firm                  ` + s + ` NOT NULL, -- '' at levels without bit 1
	guideline             ` + s + ` NOT NULL, -- '' at levels without bit 2
	inspections           ` + i + ` NOT NULL,
	facilities            ` + i + ` NOT NULL, -- distinct facilities inspected
	confirmed_facilities  ` + i + ` NOT NULL, -- distinct facilities with a confirming inspection
	confirmed_inspections ` + i + ` NOT NULL,
	jobs_verified         ` + i + ` NOT NULL, -- sum over confirming inspections
	active                ` + i + ` NOT NULL, -- inspections by status
	inactive              ` + i + ` NOT NULL,
	not_found             ` + i + ` NOT NULL,
	misused               ` + i + ` NOT NULL,
	deviations            ` + i + ` NOT NULL, -- findings by kind
	violations            ` + i + ` NOT NULL,
	discrepancies         ` + i + ` NOT NULL,
	PRIMARY KEY (level, fiscal_year, province, county, agency, program, bank, firm, guideline)
)` + d.TableOptions(),
		},
		Indexes: []string{
			`CREATE INDEX IF NOT EXISTS ` + t.Index(StatsTable, "area") + ` ON ` + st + ` (level, province, county)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(StatsTable, "agency") + ` ON ` + st + ` (level, agency)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(StatsTable, "program") + ` ON ` + st + ` (level, program)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(StatsTable, "bank") + ` ON ` + st + ` (level, bank)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(StatsTable, "firm") + ` ON ` + st + ` (level, firm, guideline)`,
			`CREATE INDEX IF NOT EXISTS ` + t.Index(StatsTable, "guideline") + ` ON ` + st + ` (level, guideline)`,
		},
	}
}
