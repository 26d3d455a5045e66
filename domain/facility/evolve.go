package facility

import (
	"maps"
	"slices"

	"github.com/payesh/payesh/domain"
)

// Evolve folds one recorded event into the facility's state. It accepts each
// payload as a value (as Decide returns it) or as a pointer (as
// domain.Registry decodes it). It never modifies the state it is given: maps
// and slices are copied before they change, so earlier states stay valid.
// Unknown event types only advance the version.
func Evolve(f Facility, r domain.Recorded) Facility {
	if r.Version != 0 {
		f.version = r.Version
	} else {
		f.version++
	}
	idx := -1 // position of a correctable event's entry in its slice
	switch e := r.Event.(type) {
	case RegisteredV1:
		f.id = e.FacilityID
		f.stage = StageRegistered
		f.fiscalYear = e.FiscalYear
		f.program = e.Program
		f.agency = e.Agency
		f.province = e.Province
		f.county = e.County
		f.applicant = e.Applicant
		f.title = e.Title
		f.requested = e.RequestedRials
		f.jobsPromised = e.JobsPromised
		f.registeredAt = r.OccurredAt
		f.registeredID = r.ID
		f.lastStepAt = r.OccurredAt
	case ReviewedV1:
		f.expert = e.Expert
		if e.Decision == ReviewApproved {
			f.stage = StageReferred
			f.bank = e.Bank
		} else {
			f.stage = StageReviewRejected
			f.rejection = e.Reason
		}
		f.lastStepAt = r.OccurredAt
	case LoanApprovedV1:
		f.stage = StageLoanApproved
		f.approved = e.AmountRials
		f.quotaAccount = e.QuotaAccount
		f.lastStepAt = r.OccurredAt
	case LoanRejectedV1:
		f.stage = StageLoanRejected
		f.rejection = e.Reason
		f.lastStepAt = r.OccurredAt
	case TrancheDisbursedV1:
		f.tranches = appendCopy(f.tranches, Tranche{
			Number: e.Tranche, AmountRials: e.AmountRials, PaidAt: r.OccurredAt, EventID: r.ID,
		})
		if len(f.tranches) == 1 {
			f.firstPaidAt = r.OccurredAt
			f.stage = StageDisbursing
		}
		f.settleDisbursement()
		f.lastStepAt = r.OccurredAt
		idx = len(f.tranches) - 1
	case JobsReportedV1:
		f.reports = appendCopy(f.reports, JobsReport{
			Jobs: e.Jobs, ReportedBy: e.ReportedBy, Period: e.Period, At: r.OccurredAt, EventID: r.ID,
		})
		idx = len(f.reports) - 1
	case InspectedV1:
		f.inspections = appendCopy(f.inspections, Inspection{
			ID: e.InspectionID, Firm: e.Firm, GuidelineVersion: e.GuidelineVersion, Status: e.Status,
			Confirmed: e.Confirmed, VerifiedJobs: e.VerifiedJobs, Notes: e.Notes, At: r.OccurredAt, EventID: r.ID,
		})
		idx = len(f.inspections) - 1
	case DeviationOpenedV1:
		f.deviations = maps.Clone(f.deviations)
		if f.deviations == nil {
			f.deviations = map[string]Deviation{}
		}
		f.deviations[e.DeviationID] = Deviation{
			ID: e.DeviationID, Kind: e.Kind, InspectionID: e.InspectionID, Description: e.Description,
			OpenedAt: r.OccurredAt, opened: f.version,
		}
	case DeviationEvidenceAddedV1:
		if d, ok := f.deviations[e.DeviationID]; ok {
			d.Evidence = appendCopy(d.Evidence, Evidence{Text: e.Evidence, DocumentRef: e.DocumentRef, At: r.OccurredAt})
			f.deviations = maps.Clone(f.deviations)
			f.deviations[e.DeviationID] = d
		}
	case DeviationResolvedV1:
		if d, ok := f.deviations[e.DeviationID]; ok {
			d.Resolution = e.Resolution
			d.RecoveredRials = e.RecoveredRials
			d.ResolutionNote = e.Note
			d.ResolvedAt = r.OccurredAt
			f.deviations = maps.Clone(f.deviations)
			f.deviations[e.DeviationID] = d
			f.recovered += e.RecoveredRials
		}
	case ClosedV1:
		f.stage = StageClosed
		f.closeReason = e.Reason
		f.lastStepAt = r.OccurredAt
	case CorrectedV1:
		f.applyCorrection(e)
	}
	if r.Event != nil {
		f.index(r, r.Event.EventType(), idx)
	}
	return f
}

// applyCorrection replaces the corrected figure, so that the state always
// shows corrected values.
func (f *Facility) applyCorrection(e CorrectedV1) {
	ref, ok := f.events[e.CorrectsEventID]
	if !ok {
		return
	}
	nv := e.NewValue
	switch e.Field {
	case FieldJobsPromised:
		f.jobsPromised = int(nv.Int)
	case FieldRequestedRials:
		f.requested = nv.Int
	case FieldCounty:
		f.county = nv.Str
	case FieldJobs:
		f.reports = slices.Clone(f.reports)
		f.reports[ref.index].Jobs = int(nv.Int)
	case FieldVerifiedJobs:
		f.inspections = slices.Clone(f.inspections)
		f.inspections[ref.index].VerifiedJobs = int(nv.Int)
	case FieldConfirmed:
		f.inspections = slices.Clone(f.inspections)
		f.inspections[ref.index].Confirmed = nv.Bool
	case FieldAmountRials:
		f.tranches = slices.Clone(f.tranches)
		f.tranches[ref.index].AmountRials = nv.Int
		f.settleDisbursement()
	}
}

// settleDisbursement sets disbursing or disbursed from the amounts paid, so a
// corrected tranche amount moves the stage as a payment would. A closed file
// stays closed.
func (f *Facility) settleDisbursement() {
	if !f.stage.Paid() {
		return
	}
	if f.DisbursedRials() >= f.approved {
		f.stage = StageDisbursed
	} else {
		f.stage = StageDisbursing
	}
}

// index remembers every event by its ID, so that a correction naming an
// event of this facility that has nothing correctable is told so, rather
// than told the event does not exist.
func (f *Facility) index(r domain.Recorded, typ string, i int) {
	if r.ID == "" {
		return
	}
	f.events = maps.Clone(f.events)
	if f.events == nil {
		f.events = map[string]eventRef{}
	}
	f.events[r.ID] = eventRef{typ: typ, index: i, at: r.OccurredAt}
}

// appendCopy appends to a fresh array, never into spare capacity that another
// state may share.
func appendCopy[T any](s []T, v T) []T {
	return append(s[:len(s):len(s)], v)
}
