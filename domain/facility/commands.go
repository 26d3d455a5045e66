package facility

import "time"

// Command is a request to change a facility. The set is closed: only the
// command types of this package implement it, and Decide type-switches on
// them. Every command names its facility (FacilityID) so that the
// application layer can route it with Stream(cmd.Target()) and the decider
// can refuse one routed to the wrong stream, and carries At, the business
// time at which the step happened, which becomes the event's OccurredAt.
type Command interface {
	// Target returns the id of the facility the command is for.
	Target() string
	// name returns the command's name for error messages; being
	// unexported, it also keeps other packages from adding commands Decide
	// does not know.
	name() string
}

// Register registers an applicant's plan with an agency. It is the only
// command accepted before the facility exists.
type Register struct {
	FacilityID     string
	FiscalYear     int
	Program        string
	Agency         string
	Province       string
	County         string // optional
	Applicant      Applicant
	Title          string
	RequestedRials int64
	JobsPromised   int
	At             time.Time
}

// Review records the agency's expert review: approved and referred to Bank,
// or rejected for Reason.
type Review struct {
	FacilityID string
	Decision   ReviewDecision
	Bank       string // required when approved, empty when rejected
	Expert     string // the reviewing expert's id
	Reason     string // required when rejected
	Notes      string
	At         time.Time
}

// ApproveLoan records the referred bank's approval of a loan of AmountRials,
// charged to QuotaAccount (an AccountKey string of the quota ledger of the
// facility's fiscal year and program).
type ApproveLoan struct {
	FacilityID   string
	Bank         string
	AmountRials  int64
	QuotaAccount string
	At           time.Time
}

// RejectLoan records the referred bank's refusal of the loan.
type RejectLoan struct {
	FacilityID string
	Bank       string
	Reason     string
	At         time.Time
}

// DisburseTranche records a payment by the approving bank. Tranche is the
// bank's number for the payment: zero means "the next one"; a non-zero value
// must equal the next number, which turns a repeated submission of the same
// tranche into a conflict instead of a second payment.
type DisburseTranche struct {
	FacilityID  string
	Bank        string
	Tranche     int
	AmountRials int64
	At          time.Time
}

// ReportJobs records a jobs figure reported by the agency or the bank.
type ReportJobs struct {
	FacilityID string
	Jobs       int
	ReportedBy Reporter
	Period     string // optional, e.g. "1403-Q2"
	At         time.Time
}

// RecordInspection records a field inspection's findings.
type RecordInspection struct {
	FacilityID       string
	InspectionID     string
	Firm             string
	GuidelineVersion string
	Status           InspectionStatus
	Confirmed        bool
	VerifiedJobs     int
	Notes            string
	At               time.Time
}

// OpenDeviation opens an audit case, from an inspection (InspectionID) or on
// an auditor's own finding (InspectionID empty).
type OpenDeviation struct {
	FacilityID   string
	DeviationID  string
	Kind         DeviationKind
	InspectionID string // optional
	Description  string
	At           time.Time
}

// AddDeviationEvidence adds evidence to an open audit case.
type AddDeviationEvidence struct {
	FacilityID  string
	DeviationID string
	Evidence    string
	DocumentRef string // optional
	At          time.Time
}

// ResolveDeviation ends an open audit case.
type ResolveDeviation struct {
	FacilityID     string
	DeviationID    string
	Resolution     Resolution
	RecoveredRials int64 // > 0 for funds_recovered, 0 otherwise
	Note           string
	At             time.Time
}

// Close closes the facility's file. It requires no open audit case.
type Close struct {
	FacilityID string
	Reason     string
	At         time.Time
}

// Correct replaces one correctable figure of an earlier event of this
// facility, named by its event ID.
type Correct struct {
	FacilityID      string
	CorrectsEventID string
	Field           Field
	NewValue        Value
	Reason          string
	At              time.Time
}

// Target returns the facility id.
func (c Register) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c Review) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c ApproveLoan) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c RejectLoan) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c DisburseTranche) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c ReportJobs) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c RecordInspection) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c OpenDeviation) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c AddDeviationEvidence) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c ResolveDeviation) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c Close) Target() string { return c.FacilityID }

// Target returns the facility id.
func (c Correct) Target() string { return c.FacilityID }

func (Register) name() string             { return "register" }
func (Review) name() string               { return "review" }
func (ApproveLoan) name() string          { return "approve_loan" }
func (RejectLoan) name() string           { return "reject_loan" }
func (DisburseTranche) name() string      { return "disburse_tranche" }
func (ReportJobs) name() string           { return "report_jobs" }
func (RecordInspection) name() string     { return "record_inspection" }
func (OpenDeviation) name() string        { return "open_deviation" }
func (AddDeviationEvidence) name() string { return "add_deviation_evidence" }
func (ResolveDeviation) name() string     { return "resolve_deviation" }
func (Close) name() string                { return "close" }
func (Correct) name() string              { return "correct" }
