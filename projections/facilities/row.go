package facilities

import (
	"database/sql"
	"fmt"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// row is a facilities row being folded. Times are unix microseconds.
type row struct {
	id                                      string
	fiscalYear                              int64
	province, county, agency, program, bank string
	stage                                   string
	title                                   string
	requested, approved, disbursed          int64
	tranches                                int64
	jobsPromised                            int64
	jobsReported                            sql.NullInt64
	lastReport                              string // event ID of the latest jobs report
	jobsVerified                            sql.NullInt64
	inspections                             int64
	lastInspID, lastInspFirm, lastInspStat  string
	lastInspConfirmed                       sql.NullInt64
	lastInspAt                              sql.NullInt64
	openDeviations                          int64
	recovered                               int64
	registeredAt                            int64
	reviewedAt, referredAt, approvedAt      sql.NullInt64
	firstPaidAt, closedAt                   sql.NullInt64
	version, position                       int64
}

// facilityColumns are the facilities table's columns, key first, in the
// order of row.values and row.scan.
var facilityColumns = []string{
	"facility_id", "fiscal_year", "province", "county", "agency", "program", "bank",
	"stage", "title", "requested_rials", "approved_rials", "disbursed_rials", "tranche_count",
	"jobs_promised", "jobs_reported", "last_report_event_id", "jobs_verified",
	"inspection_count", "last_inspection_id", "last_inspection_firm", "last_inspection_status",
	"last_inspection_confirmed", "last_inspection_at", "open_deviations", "recovered_rials",
	"registered_at", "reviewed_at", "referred_at", "approved_at", "first_paid_at", "closed_at",
	"version", "updated_position",
}

func (r *row) values() []any {
	return []any{
		r.id, r.fiscalYear, r.province, r.county, r.agency, r.program, r.bank,
		r.stage, r.title, r.requested, r.approved, r.disbursed, r.tranches,
		r.jobsPromised, r.jobsReported, r.lastReport, r.jobsVerified,
		r.inspections, r.lastInspID, r.lastInspFirm, r.lastInspStat,
		r.lastInspConfirmed, r.lastInspAt, r.openDeviations, r.recovered,
		r.registeredAt, r.reviewedAt, r.referredAt, r.approvedAt, r.firstPaidAt, r.closedAt,
		r.version, r.position,
	}
}

type scanner interface{ Scan(dest ...any) error }

func (r *row) scan(s scanner) error {
	return s.Scan(
		&r.id, &r.fiscalYear, &r.province, &r.county, &r.agency, &r.program, &r.bank,
		&r.stage, &r.title, &r.requested, &r.approved, &r.disbursed, &r.tranches,
		&r.jobsPromised, &r.jobsReported, &r.lastReport, &r.jobsVerified,
		&r.inspections, &r.lastInspID, &r.lastInspFirm, &r.lastInspStat,
		&r.lastInspConfirmed, &r.lastInspAt, &r.openDeviations, &r.recovered,
		&r.registeredAt, &r.reviewedAt, &r.referredAt, &r.approvedAt, &r.firstPaidAt, &r.closedAt,
		&r.version, &r.position,
	)
}

// inspection is a facility_inspections row.
type inspection struct {
	seq       int64
	eventID   string
	id        string
	firm      string
	status    string
	confirmed int64
	verified  int64
	at        int64
	dirty     bool // to be written
}

var inspectionColumns = []string{
	"facility_id", "seq", "event_id", "inspection_id", "firm", "status", "confirmed", "verified_jobs", "inspected_at",
}

// inspections is what a batch knows of one facility's inspections: all of
// them (full) when a correction in the batch needs them, else only those the
// batch adds.
type inspections struct {
	items []*inspection
	full  bool
}

func some(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: true} }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// apply folds one event into the row, exactly as facility.Evolve folds it
// into facility.Facility (the tests hold the two side by side). ins is the
// facility's inspections; it must be full for a correction of an
// inspection.
func (r *row) apply(env *projections.Envelope, ins *inspections) error {
	at := env.OccurredAt.UnixMicro()
	switch e := env.Event.(type) {
	case facility.RegisteredV1:
		*r = row{
			id: e.FacilityID, fiscalYear: int64(e.FiscalYear), province: e.Province, county: e.County,
			agency: e.Agency, program: e.Program, stage: string(facility.StageRegistered), title: e.Title,
			requested: e.RequestedRials, jobsPromised: int64(e.JobsPromised), registeredAt: at,
		}
	case facility.ReviewedV1:
		r.reviewedAt = some(at)
		if e.Decision == facility.ReviewApproved {
			r.stage = string(facility.StageReferred)
			r.bank = e.Bank
			r.referredAt = some(at)
		} else {
			r.stage = string(facility.StageReviewRejected)
		}
	case facility.LoanApprovedV1:
		r.stage = string(facility.StageLoanApproved)
		r.approved = e.AmountRials
		r.approvedAt = some(at)
	case facility.LoanRejectedV1:
		r.stage = string(facility.StageLoanRejected)
	case facility.TrancheDisbursedV1:
		r.tranches++
		r.disbursed += e.AmountRials
		if r.tranches == 1 {
			r.firstPaidAt = some(at)
			r.stage = string(facility.StageDisbursing)
		}
		r.settle()
	case facility.JobsReportedV1:
		r.jobsReported = some(int64(e.Jobs))
		r.lastReport = env.ID
	case facility.InspectedV1:
		in := &inspection{
			seq: int64(env.Version), eventID: env.ID, id: e.InspectionID, firm: e.Firm, status: string(e.Status),
			confirmed: boolInt(e.Confirmed), verified: int64(e.VerifiedJobs), at: at, dirty: true,
		}
		ins.items = append(ins.items, in)
		r.inspections++
		r.lastInspection(in)
		if e.Confirmed {
			r.jobsVerified = some(int64(e.VerifiedJobs))
		}
	case facility.DeviationOpenedV1:
		r.openDeviations++
	case facility.DeviationResolvedV1:
		r.openDeviations--
		r.recovered += e.RecoveredRials
	case facility.ClosedV1:
		r.stage = string(facility.StageClosed)
		r.closedAt = some(at)
	case facility.CorrectedV1:
		if err := r.correct(e, ins); err != nil {
			return fmt.Errorf("facility %s, correction at position %d: %w", r.id, env.Position, err)
		}
	}
	r.version, r.position = int64(env.Version), int64(env.Position)
	return nil
}

// correct applies a correction. The event carries the value it replaces,
// so figures kept as running totals (the amount paid) move by the
// difference; the latest jobs report is known by its event ID; inspections
// are kept one by one, because a corrected confirmation can change which
// inspection verifies the jobs.
func (r *row) correct(e facility.CorrectedV1, ins *inspections) error {
	nv := e.NewValue
	switch e.Field {
	case facility.FieldJobsPromised:
		r.jobsPromised = nv.Int
	case facility.FieldRequestedRials:
		r.requested = nv.Int
	case facility.FieldCounty:
		r.county = nv.Str
	case facility.FieldJobs:
		if e.CorrectsEventID == r.lastReport {
			r.jobsReported = some(nv.Int)
		}
	case facility.FieldAmountRials:
		r.disbursed += nv.Int - e.OldValue.Int
		r.settle()
	case facility.FieldVerifiedJobs, facility.FieldConfirmed:
		if !ins.full {
			return fmt.Errorf("the facility's inspections were not loaded")
		}
		for _, in := range ins.items {
			if in.eventID != e.CorrectsEventID {
				continue
			}
			if e.Field == facility.FieldVerifiedJobs {
				in.verified = nv.Int
			} else {
				in.confirmed = boolInt(nv.Bool)
			}
			in.dirty = true
		}
		r.jobsVerified = sql.NullInt64{}
		for i := len(ins.items) - 1; i >= 0; i-- {
			if ins.items[i].confirmed == 1 {
				r.jobsVerified = some(ins.items[i].verified)
				break
			}
		}
		if n := len(ins.items); n > 0 {
			r.lastInspection(ins.items[n-1])
		}
	}
	return nil
}

func (r *row) lastInspection(in *inspection) {
	r.lastInspID, r.lastInspFirm, r.lastInspStat = in.id, in.firm, in.status
	r.lastInspConfirmed, r.lastInspAt = some(in.confirmed), some(in.at)
}

// settle sets disbursing or disbursed from the amounts paid, as a payment
// or a corrected amount does; other stages (a closed file) stay.
func (r *row) settle() {
	if s := facility.Stage(r.stage); !s.Paid() {
		return
	}
	if r.disbursed >= r.approved {
		r.stage = string(facility.StageDisbursed)
	} else {
		r.stage = string(facility.StageDisbursing)
	}
}

// combo is a job_counts key.
type combo struct {
	fiscalYear                              int64
	province, county, agency, program, bank string
}

func (c combo) less(o combo) bool {
	switch {
	case c.fiscalYear != o.fiscalYear:
		return c.fiscalYear < o.fiscalYear
	case c.province != o.province:
		return c.province < o.province
	case c.county != o.county:
		return c.county < o.county
	case c.agency != o.agency:
		return c.agency < o.agency
	case c.program != o.program:
		return c.program < o.program
	}
	return c.bank < o.bank
}

// counts is a job_counts row's figures, in column order.
type counts [12]int64

var jobCountColumns = []string{
	"fiscal_year", "province", "county", "agency", "program", "bank",
	"facilities", "reviewed", "referred", "approved", "disbursed", "inspected", "confirmed",
	"approved_rials", "disbursed_rials", "jobs_promised", "jobs_reported", "jobs_verified",
}

// contribution is what the facility adds to its combination's job_counts row.
func (r *row) contribution() (combo, counts) {
	return combo{r.fiscalYear, r.province, r.county, r.agency, r.program, r.bank}, counts{
		1,
		boolInt(r.reviewedAt.Valid),
		boolInt(r.referredAt.Valid),
		boolInt(r.approvedAt.Valid),
		boolInt(r.tranches > 0),
		boolInt(r.inspections > 0),
		boolInt(r.jobsVerified.Valid),
		r.approved,
		r.disbursed,
		r.jobsPromised,
		r.jobsReported.Int64,
		r.jobsVerified.Int64,
	}
}
