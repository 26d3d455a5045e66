package deviations

import (
	"database/sql"
	"strconv"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// The states of a case.
const (
	StateOpen     = "open"
	StateResolved = "resolved"
)

// Action is what a step of the trail did.
type Action string

// The actions.
const (
	ActionOpened        Action = "opened"
	ActionEvidenceAdded Action = "evidence_added"
	ActionResolved      Action = "resolved"
	ActionCorrected     Action = "corrected"
)

// dims are a facility's dimensions, as corrected.
type dims struct {
	fiscalYear                              int64
	province, county, agency, program, bank string
}

// row is a deviations row being folded. Times are unix microseconds.
type row struct {
	facilityID, deviationID                           string
	dims                                              dims
	kind, state, description                          string
	inspectionID, inspFirm, inspGuideline, inspStatus string
	inspConfirmed, inspVerified                       sql.NullInt64
	openedAt                                          int64
	openedBy                                          string
	openedPosition                                    int64
	evidence                                          int64
	resolution                                        string
	recovered                                         int64
	resolutionNote                                    string
	resolvedAt                                        sql.NullInt64
	resolvedBy                                        string
	steps                                             int64
	lastStepAt                                        int64
	updatedPosition                                   int64

	dirty bool // to be written
}

// deviationColumns are the deviations table's columns, key first, in the
// order of row.values and row.scan.
var deviationColumns = []string{
	"facility_id", "deviation_id", "fiscal_year", "province", "county", "agency", "program", "bank",
	"kind", "state", "description", "inspection_id", "inspection_firm", "inspection_guideline",
	"inspection_status", "inspection_confirmed", "inspection_verified_jobs", "opened_at", "opened_by",
	"opened_position", "evidence_count", "resolution", "recovered_rials", "resolution_note", "resolved_at",
	"resolved_by", "step_count", "last_step_at", "updated_position",
}

func (r *row) values() []any {
	d := &r.dims
	return []any{
		r.facilityID, r.deviationID, d.fiscalYear, d.province, d.county, d.agency, d.program, d.bank,
		r.kind, r.state, r.description, r.inspectionID, r.inspFirm, r.inspGuideline,
		r.inspStatus, r.inspConfirmed, r.inspVerified, r.openedAt, r.openedBy,
		r.openedPosition, r.evidence, r.resolution, r.recovered, r.resolutionNote, r.resolvedAt,
		r.resolvedBy, r.steps, r.lastStepAt, r.updatedPosition,
	}
}

type scanner interface{ Scan(dest ...any) error }

// scan reads a row in deviationColumns order. Like step.scan, it only hands
// s the destinations.
func (r *row) scan(s scanner) error {
	d := &r.dims
	return s.Scan(
		&r.facilityID, &r.deviationID, &d.fiscalYear, &d.province, &d.county, &d.agency, &d.program, &d.bank,
		&r.kind, &r.state, &r.description, &r.inspectionID, &r.inspFirm, &r.inspGuideline,
		&r.inspStatus, &r.inspConfirmed, &r.inspVerified, &r.openedAt, &r.openedBy,
		&r.openedPosition, &r.evidence, &r.resolution, &r.recovered, &r.resolutionNote, &r.resolvedAt,
		&r.resolvedBy, &r.steps, &r.lastStepAt, &r.updatedPosition,
	)
}

// inspection is a deviation_inspections row.
type inspection struct {
	id, eventID, firm, guideline, status string
	confirmed, verified                  int64
	dirty                                bool
}

var inspectionColumns = []string{"facility_id", "inspection_id", "event_id", "firm", "guideline", "status", "confirmed", "verified_jobs"}

// show copies the inspection's figures onto the case.
func (r *row) show(in *inspection) {
	r.inspFirm, r.inspGuideline, r.inspStatus = in.firm, in.guideline, in.status
	r.inspConfirmed = sql.NullInt64{Int64: in.confirmed, Valid: true}
	r.inspVerified = sql.NullInt64{Int64: in.verified, Valid: true}
}

// step is a deviation_steps row.
type step struct {
	facilityID, deviationID string
	n                       int64
	action                  Action
	eventID, eventType      string
	version, position       int64
	occurredAt, recordedAt  int64
	actorID, actorRole      string
	actorOrg                string
	correlationID           string
	causationID             string
	text, documentRef       string
	kind, inspectionID      string
	resolution              string
	recovered               int64
	correctsID, correctsTyp string
	field, valueKind        string
	oldValue, newValue      string
	reason                  string
}

var stepColumns = []string{
	"facility_id", "deviation_id", "step", "action", "event_id", "event_type", "stream_version", "position",
	"occurred_at", "recorded_at", "actor_id", "actor_role", "actor_org", "correlation_id", "causation_id",
	"text", "document_ref", "kind", "inspection_id", "resolution", "recovered_rials",
	"corrects_event_id", "corrects_event_type", "field", "value_kind", "old_value", "new_value", "reason",
}

func (s *step) values() []any {
	return []any{
		s.facilityID, s.deviationID, s.n, string(s.action), s.eventID, s.eventType, s.version, s.position,
		s.occurredAt, s.recordedAt, s.actorID, s.actorRole, s.actorOrg, s.correlationID, s.causationID,
		s.text, s.documentRef, s.kind, s.inspectionID, s.resolution, s.recovered,
		s.correctsID, s.correctsTyp, s.field, s.valueKind, s.oldValue, s.newValue, s.reason,
	}
}

// scan reads a row in stepColumns order. It only hands sc the
// destinations (action scans as the string it is), so that a query can
// scan a step and a case from one row.
func (s *step) scan(sc scanner) error {
	return sc.Scan(
		&s.facilityID, &s.deviationID, &s.n, (*string)(&s.action), &s.eventID, &s.eventType, &s.version, &s.position,
		&s.occurredAt, &s.recordedAt, &s.actorID, &s.actorRole, &s.actorOrg, &s.correlationID, &s.causationID,
		&s.text, &s.documentRef, &s.kind, &s.inspectionID, &s.resolution, &s.recovered,
		&s.correctsID, &s.correctsTyp, &s.field, &s.valueKind, &s.oldValue, &s.newValue, &s.reason,
	)
}

// newStep starts the step an event adds to a case, with the event's
// envelope, and moves the case's step count and times.
func (r *row) newStep(env *projections.Envelope, action Action) *step {
	r.steps++
	r.lastStepAt = env.OccurredAt.UnixMicro()
	r.updatedPosition = int64(env.Position)
	r.dirty = true
	return &step{
		facilityID: r.facilityID, deviationID: r.deviationID, n: r.steps, action: action,
		eventID: env.ID, eventType: env.Type, version: int64(env.Version), position: int64(env.Position),
		occurredAt: env.OccurredAt.UnixMicro(), recordedAt: env.RecordedAt.UnixMicro(),
		actorID: env.Actor.ID, actorRole: env.Actor.Role, actorOrg: env.Actor.Org,
		correlationID: env.CorrelationID, causationID: env.CausationID,
	}
}

// renderValue stores a correction's value as text: decimal integers, the
// string itself, true or false; value_kind says which.
func renderValue(v facility.Value) string {
	switch v.Kind {
	case facility.KindInt:
		return strconv.FormatInt(v.Int, 10)
	case facility.KindString:
		return v.Str
	case facility.KindBool:
		return strconv.FormatBool(v.Bool)
	}
	return ""
}

// parseValue is renderValue's inverse.
func parseValue(kind, s string) facility.Value {
	switch facility.ValueKind(kind) {
	case facility.KindInt:
		n, _ := strconv.ParseInt(s, 10, 64) // written by renderValue
		return facility.IntValue(n)
	case facility.KindString:
		return facility.StringValue(s)
	case facility.KindBool:
		return facility.BoolValue(s == "true")
	}
	return facility.Value{}
}
