package facility

import "github.com/payesh/payesh/domain"

// Event type names, one per payload struct, so that code comparing types
// (corrections, projections) does not spell the strings out. A name is never
// reused for another payload shape.
const (
	TypeRegistered             = "facility.registered.v1"               // RegisteredV1
	TypeReviewed               = "facility.reviewed.v1"                 // ReviewedV1
	TypeLoanApproved           = "facility.loan_approved.v1"            // LoanApprovedV1
	TypeLoanRejected           = "facility.loan_rejected.v1"            // LoanRejectedV1
	TypeTrancheDisbursed       = "facility.tranche_disbursed.v1"        // TrancheDisbursedV1
	TypeJobsReported           = "facility.jobs_reported.v1"            // JobsReportedV1
	TypeInspected              = "facility.inspected.v1"                // InspectedV1
	TypeDeviationOpened        = "facility.deviation_opened.v1"         // DeviationOpenedV1
	TypeDeviationEvidenceAdded = "facility.deviation_evidence_added.v1" // DeviationEvidenceAddedV1
	TypeDeviationResolved      = "facility.deviation_resolved.v1"       // DeviationResolvedV1
	TypeClosed                 = "facility.closed.v1"                   // ClosedV1
	TypeCorrected              = "facility.corrected.v1"                // CorrectedV1
)

// EventTypes lists every facility event type, for building a domain.Registry.
func EventTypes() []domain.EventType {
	return []domain.EventType{
		domain.Type[RegisteredV1](),
		domain.Type[ReviewedV1](),
		domain.Type[LoanApprovedV1](),
		domain.Type[LoanRejectedV1](),
		domain.Type[TrancheDisbursedV1](),
		domain.Type[JobsReportedV1](),
		domain.Type[InspectedV1](),
		domain.Type[DeviationOpenedV1](),
		domain.Type[DeviationEvidenceAddedV1](),
		domain.Type[DeviationResolvedV1](),
		domain.Type[ClosedV1](),
		domain.Type[CorrectedV1](),
	}
}

// RegisteredV1 records that an applicant's plan was registered with an
// agency under a program, for a fiscal year, with the loan and jobs it asks
// for. It opens the facility's stream.
type RegisteredV1 struct {
	FacilityID     string    `json:"facility_id"`
	FiscalYear     int       `json:"fiscal_year"`
	Program        string    `json:"program"`
	Agency         string    `json:"agency"`
	Province       string    `json:"province"`
	County         string    `json:"county,omitempty"`
	Applicant      Applicant `json:"applicant"`
	Title          string    `json:"title"`
	RequestedRials int64     `json:"requested_rials"`
	JobsPromised   int       `json:"jobs_promised"`
}

// EventType names the event.
func (RegisteredV1) EventType() string { return TypeRegistered }

// ReviewedV1 records the outcome of the agency's expert review: approval with
// referral to a bank, or rejection with a reason.
type ReviewedV1 struct {
	Decision ReviewDecision `json:"decision"`
	Bank     string         `json:"bank,omitempty"`
	Expert   string         `json:"expert"`
	Reason   string         `json:"reason,omitempty"`
	Notes    string         `json:"notes,omitempty"`
}

// EventType names the event.
func (ReviewedV1) EventType() string { return TypeReviewed }

// LoanApprovedV1 records the bank's approval of a loan and the quota account
// (in the ledger of the facility's fiscal year and program) that pays for it.
type LoanApprovedV1 struct {
	Bank         string `json:"bank"`
	AmountRials  int64  `json:"amount_rials"`
	QuotaAccount string `json:"quota_account"`
}

// EventType names the event.
func (LoanApprovedV1) EventType() string { return TypeLoanApproved }

// LoanRejectedV1 records that the bank refused the loan.
type LoanRejectedV1 struct {
	Bank   string `json:"bank"`
	Reason string `json:"reason"`
}

// EventType names the event.
func (LoanRejectedV1) EventType() string { return TypeLoanRejected }

// TrancheDisbursedV1 records money actually paid to the applicant. Tranches
// are numbered from 1 in the order they were paid.
type TrancheDisbursedV1 struct {
	Tranche     int   `json:"tranche"`
	AmountRials int64 `json:"amount_rials"`
}

// EventType names the event.
func (TrancheDisbursedV1) EventType() string { return TypeTrancheDisbursed }

// JobsReportedV1 records a jobs figure reported by the agency or the bank.
// The latest report is the facility's reported figure.
type JobsReportedV1 struct {
	Jobs       int      `json:"jobs"`
	ReportedBy Reporter `json:"reported_by"`
	Period     string   `json:"period,omitempty"`
}

// EventType names the event.
func (JobsReportedV1) EventType() string { return TypeJobsReported }

// InspectedV1 records a field inspection by a consulting firm under a given
// version of the inspection guideline.
type InspectedV1 struct {
	InspectionID     string           `json:"inspection_id"`
	Firm             string           `json:"firm"`
	GuidelineVersion string           `json:"guideline_version"`
	Status           InspectionStatus `json:"status"`
	Confirmed        bool             `json:"confirmed"`
	VerifiedJobs     int              `json:"verified_jobs"`
	Notes            string           `json:"notes,omitempty"`
}

// EventType names the event.
func (InspectedV1) EventType() string { return TypeInspected }

// DeviationOpenedV1 records an audit case, found by an inspection (named by
// InspectionID) or opened by an auditor (InspectionID empty).
type DeviationOpenedV1 struct {
	DeviationID  string        `json:"deviation_id"`
	Kind         DeviationKind `json:"kind"`
	InspectionID string        `json:"inspection_id,omitempty"`
	Description  string        `json:"description"`
}

// EventType names the event.
func (DeviationOpenedV1) EventType() string { return TypeDeviationOpened }

// DeviationEvidenceAddedV1 records evidence gathered while following an open
// audit case up.
type DeviationEvidenceAddedV1 struct {
	DeviationID string `json:"deviation_id"`
	Evidence    string `json:"evidence"`
	DocumentRef string `json:"document_ref,omitempty"`
}

// EventType names the event.
func (DeviationEvidenceAddedV1) EventType() string { return TypeDeviationEvidenceAdded }

// DeviationResolvedV1 records how an audit case ended. RecoveredRials is
// positive for funds_recovered and zero otherwise.
type DeviationResolvedV1 struct {
	DeviationID    string     `json:"deviation_id"`
	Resolution     Resolution `json:"resolution"`
	RecoveredRials int64      `json:"recovered_rials"`
	Note           string     `json:"note,omitempty"`
}

// EventType names the event.
func (DeviationResolvedV1) EventType() string { return TypeDeviationResolved }

// ClosedV1 records that the facility's file was closed.
type ClosedV1 struct {
	Reason string `json:"reason"`
}

// EventType names the event.
func (ClosedV1) EventType() string { return TypeClosed }

// CorrectedV1 replaces one correctable figure of an earlier event of the same
// facility, named by its event ID. The original event stays in the log
// untouched; readers apply the correction on top of it. CorrectsEventType and
// OldValue make the event self-describing, so a projection can apply it
// without an index of its own.
type CorrectedV1 struct {
	CorrectsEventID   string `json:"corrects_event_id"`
	CorrectsEventType string `json:"corrects_event_type"`
	Field             Field  `json:"field"`
	OldValue          Value  `json:"old_value"`
	NewValue          Value  `json:"new_value"`
	Reason            string `json:"reason"`
}

// EventType names the event.
func (CorrectedV1) EventType() string { return TypeCorrected }
