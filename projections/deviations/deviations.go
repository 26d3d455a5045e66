// Package deviations is the projector of the deviations read model: the
// audit trail of every audit case (deviation, violation or discrepancy)
// and its current state.
//
// # The trail
//
// Every case has numbered steps, one per event that changed it:
//
//   - opened: facility.deviation_opened.v1, with the kind, the inspection
//     that found it (if any) and the description;
//   - evidence_added: facility.deviation_evidence_added.v1, with the
//     evidence and its document reference;
//   - resolved: facility.deviation_resolved.v1, with the resolution, the
//     rials recovered and the note;
//   - corrected: a facility.corrected.v1 that changes what the case shows,
//     with the corrected event, the field, the old and the new value and
//     the reason. The domain corrects no deviation event (only
//     registrations, jobs reports, inspections and tranches have
//     correctable figures), so these are corrections of the inspection the
//     case was opened from (confirmed, verified_jobs) and of the
//     facility's county (a dimension the case is filtered by), made while
//     the case exists. The original event's step stays as it was: an
//     auditor sees the original and, as a later step, the correction.
//
// Each step records who did it (the event's actor: id, role and
// organisation), when (the business time occurred_at and the system time
// recorded_at), why (the description, evidence, note or correction reason)
// and the event behind it (event id and type, stream version, global
// position, correlation and causation ids).
//
// # The current state
//
// A deviations row holds the case's current state: open or resolved, kind,
// facility and its dimensions (fiscal year, province, county, agency,
// program, bank: the facility's current ones, so a corrected county, or a
// bank named by a review after an auditor opened the case, shows), the
// inspection it came from with that inspection's corrected figures, when
// and by whom it was opened and resolved, the evidence count and the rials
// recovered.
//
// # Tables
//
//   - deviations: one row per case, keyed by (facility_id, deviation_id)
//     (deviation ids are unique within a facility);
//   - deviation_steps: one row per step, keyed by the case and the step's
//     number;
//   - deviation_facilities and deviation_inspections: every facility's
//     dimensions and every inspection's figures, so that a case opened, or
//     a correction made, long after the registration or the inspection
//     finds them. (Projectors do not share tables: each read model is
//     rebuilt, and positioned, on its own.)
package deviations

import (
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// Name is the projector's name, and the name of its read model.
const Name = "deviations"

// The read model's tables.
const (
	DeviationsTable  = "deviations"
	StepsTable       = "deviation_steps"
	FacilitiesTable  = "deviation_facilities"
	InspectionsTable = "deviation_inspections"
)

// version is the tables' layout and Apply's meaning; bump it with any
// change to either, and the Engine rebuilds the tables.
const version = 1

// Projector maintains the deviations read model.
type Projector struct{}

var _ projections.Projector = Projector{}

// New returns the projector.
func New() Projector { return Projector{} }

// Name implements projections.Projector.
func (Projector) Name() string { return Name }

// Version implements projections.Projector.
func (Projector) Version() int { return version }

// Tables implements projections.Projector.
func (Projector) Tables() []string {
	return []string{DeviationsTable, StepsTable, FacilitiesTable, InspectionsTable}
}

// Filter implements projections.Projector: the audit-case events and those
// that carry what a case shows (dimensions, inspections, corrections).
func (Projector) Filter() eventstore.Filter {
	return eventstore.Filter{
		StreamPrefixes: []string{"facility-"},
		Types: []string{
			facility.TypeRegistered, facility.TypeReviewed, facility.TypeInspected,
			facility.TypeDeviationOpened, facility.TypeDeviationEvidenceAdded, facility.TypeDeviationResolved,
			facility.TypeCorrected,
		},
	}
}

// Schema implements projections.Projector. Times are unix microseconds
// (UTC); booleans are 0 or 1.
func (Projector) Schema(d projections.Dialect, t projections.TableNames) projections.Schema {
	i, s := d.Int(), d.Text()
	dev, steps, fac, insp := t.Table(DeviationsTable), t.Table(StepsTable), t.Table(FacilitiesTable), t.Table(InspectionsTable)
	idx := func(name, cols string) string {
		return `CREATE INDEX IF NOT EXISTS ` + t.Index(DeviationsTable, name) + ` ON ` + dev + ` (` + cols + `)`
	}
	return projections.Schema{
		Tables: []string{
			`CREATE TABLE ` + dev + ` (
	facility_id              ` + s + ` NOT NULL,
	deviation_id             ` + s + ` NOT NULL,
	fiscal_year              ` + i + ` NOT NULL,
	province                 ` + s + ` NOT NULL,
	county                   ` + s + ` NOT NULL, -- the facility's, as corrected
	agency                   ` + s + ` NOT NULL,
	program                  ` + s + ` NOT NULL,
	bank                     ` + s + ` NOT NULL, -- the facility's; '' until referred
	kind                     ` + s + ` NOT NULL,
	state                    ` + s + ` NOT NULL, -- open or resolved
	description              ` + s + ` NOT NULL,
	inspection_id            ` + s + ` NOT NULL, -- '' for an auditor's own finding
	inspection_firm          ` + s + ` NOT NULL,
	inspection_guideline     ` + s + ` NOT NULL,
	inspection_status        ` + s + ` NOT NULL,
	inspection_confirmed     ` + i + `,          -- as corrected; NULL without an inspection
	inspection_verified_jobs ` + i + `,          -- as corrected; NULL without an inspection
	opened_at                ` + i + ` NOT NULL,
	opened_by                ` + s + ` NOT NULL, -- actor id
	opened_position          ` + i + ` NOT NULL, -- global position of the opening
	evidence_count           ` + i + ` NOT NULL,
	resolution               ` + s + ` NOT NULL, -- '' while open
	recovered_rials          ` + i + ` NOT NULL,
	resolution_note          ` + s + ` NOT NULL,
	resolved_at              ` + i + `,          -- NULL while open
	resolved_by              ` + s + ` NOT NULL,
	step_count               ` + i + ` NOT NULL,
	last_step_at             ` + i + ` NOT NULL, -- business time of the latest step
	updated_position         ` + i + ` NOT NULL, -- global position of the latest change
	PRIMARY KEY (facility_id, deviation_id)
)` + d.TableOptions(),
			`CREATE TABLE ` + steps + ` (
	facility_id         ` + s + ` NOT NULL,
	deviation_id        ` + s + ` NOT NULL,
	step                ` + i + ` NOT NULL, -- 1, 2, ... within the case
	action              ` + s + ` NOT NULL, -- opened, evidence_added, resolved, corrected
	event_id            ` + s + ` NOT NULL,
	event_type          ` + s + ` NOT NULL,
	stream_version      ` + i + ` NOT NULL,
	position            ` + i + ` NOT NULL,
	occurred_at         ` + i + ` NOT NULL, -- business time
	recorded_at         ` + i + ` NOT NULL, -- system time
	actor_id            ` + s + ` NOT NULL,
	actor_role          ` + s + ` NOT NULL,
	actor_org           ` + s + ` NOT NULL,
	correlation_id      ` + s + ` NOT NULL,
	causation_id        ` + s + ` NOT NULL,
	text                ` + s + ` NOT NULL, -- description, evidence or resolution note
	document_ref        ` + s + ` NOT NULL, -- evidence_added
	kind                ` + s + ` NOT NULL, -- opened
	inspection_id       ` + s + ` NOT NULL, -- opened
	resolution          ` + s + ` NOT NULL, -- resolved
	recovered_rials     ` + i + ` NOT NULL, -- resolved
	corrects_event_id   ` + s + ` NOT NULL, -- corrected, and the rest
	corrects_event_type ` + s + ` NOT NULL,
	field               ` + s + ` NOT NULL,
	value_kind          ` + s + ` NOT NULL, -- int, string or bool
	old_value           ` + s + ` NOT NULL,
	new_value           ` + s + ` NOT NULL,
	reason              ` + s + ` NOT NULL,
	PRIMARY KEY (facility_id, deviation_id, step)
)` + d.TableOptions(),
			`CREATE TABLE ` + fac + ` (
	facility_id ` + s + ` NOT NULL PRIMARY KEY,
	fiscal_year ` + i + ` NOT NULL,
	province    ` + s + ` NOT NULL,
	county      ` + s + ` NOT NULL,
	agency      ` + s + ` NOT NULL,
	program     ` + s + ` NOT NULL,
	bank        ` + s + ` NOT NULL
)` + d.TableOptions(),
			`CREATE TABLE ` + insp + ` (
	facility_id   ` + s + ` NOT NULL,
	inspection_id ` + s + ` NOT NULL,
	event_id      ` + s + ` NOT NULL,
	firm          ` + s + ` NOT NULL,
	guideline     ` + s + ` NOT NULL,
	status        ` + s + ` NOT NULL,
	confirmed     ` + i + ` NOT NULL, -- as corrected
	verified_jobs ` + i + ` NOT NULL, -- as corrected
	PRIMARY KEY (facility_id, inspection_id)
)` + d.TableOptions(),
		},
		// Each list order, alone and after each filter dashboards use;
		// opened_position ends them because it is unique (one case per
		// opening event), which makes every order total.
		Indexes: []string{
			idx("opened", "opened_position"),
			idx("updated", "updated_position, opened_position"),
			idx("recovered", "recovered_rials, opened_position"),
			idx("area", "province, county, opened_position"),
			idx("year", "fiscal_year, opened_position"),
			idx("agency", "agency, opened_position"),
			idx("program", "program, opened_position"),
			idx("bank", "bank, opened_position"),
			idx("state", "state, kind, opened_position"),
		},
	}
}
