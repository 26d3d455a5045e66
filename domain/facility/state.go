package facility

import (
	"cmp"
	"slices"
	"time"
)

// Facility is the state of one facility, folded from its events. Its fields
// are unexported so that only Evolve changes it; the accessors return copies,
// so a caller cannot alter a state another goroutine is reading. Evolve never
// modifies the state it is given: it copies whatever it changes, so a state
// value can be kept, shared and evolved along two branches safely.
type Facility struct {
	id           string
	stage        Stage
	fiscalYear   int
	program      string
	agency       string
	province     string
	county       string
	applicant    Applicant
	title        string
	requested    int64
	jobsPromised int
	registeredAt time.Time
	registeredID string

	expert       string
	bank         string
	approved     int64
	quotaAccount string
	rejection    string

	tranches    []Tranche
	reports     []JobsReport
	inspections []Inspection
	deviations  map[string]Deviation
	recovered   int64
	closeReason string

	lastStepAt  time.Time
	firstPaidAt time.Time

	// events indexes every event of the facility by event ID, for corrections.
	events  map[string]eventRef
	version uint64
}

// eventRef locates an event's figures in the state: its type, the position
// of its entry in tranches, reports or inspections (-1 for other types), and
// its business time.
type eventRef struct {
	typ   string
	index int
	at    time.Time
}

// Tranche is one payment to the applicant, with its corrected amount.
type Tranche struct {
	Number      int
	AmountRials int64
	PaidAt      time.Time
	EventID     string
}

// JobsReport is one jobs figure reported by an agency or a bank, with its
// corrected value.
type JobsReport struct {
	Jobs       int
	ReportedBy Reporter
	Period     string
	At         time.Time
	EventID    string
}

// Inspection is one field inspection's findings, with corrected figures.
type Inspection struct {
	ID               string
	Firm             string
	GuidelineVersion string
	Status           InspectionStatus
	Confirmed        bool
	VerifiedJobs     int
	Notes            string
	At               time.Time
	EventID          string
}

// Deviation is one audit case and its follow-up.
type Deviation struct {
	ID             string
	Kind           DeviationKind
	InspectionID   string
	Description    string
	OpenedAt       time.Time
	Evidence       []Evidence
	Resolution     Resolution // empty while the case is open
	RecoveredRials int64
	ResolutionNote string
	ResolvedAt     time.Time
	opened         uint64 // stream version of the opening event, for ordering
}

// Open reports whether the case is still being followed up.
func (d Deviation) Open() bool { return d.Resolution == "" }

// Evidence is one piece of evidence added to an audit case.
type Evidence struct {
	Text        string
	DocumentRef string
	At          time.Time
}

// ID returns the facility id, empty before registration.
func (f Facility) ID() string { return f.id }

// Exists reports whether the facility has been registered.
func (f Facility) Exists() bool { return f.stage != StageNone }

// Stage returns the lifecycle stage.
func (f Facility) Stage() Stage { return f.stage }

// FiscalYear returns the Solar Hijri fiscal year the plan is registered for.
func (f Facility) FiscalYear() int { return f.fiscalYear }

// Program returns the program id.
func (f Facility) Program() string { return f.program }

// Agency returns the id of the agency the plan is registered with.
func (f Facility) Agency() string { return f.agency }

// Province returns the province code.
func (f Facility) Province() string { return f.province }

// County returns the county id (corrected), or "" when none was given.
func (f Facility) County() string { return f.county }

// Applicant returns the applicant's sealed identity.
func (f Facility) Applicant() Applicant {
	a := f.applicant
	a.Ciphertext = slices.Clone(a.Ciphertext)
	return a
}

// Title returns the plan's title.
func (f Facility) Title() string { return f.title }

// RegisteredAt returns the business time of registration.
func (f Facility) RegisteredAt() time.Time { return f.registeredAt }

// RegisteredEventID returns the event ID of the registration, the event a
// correction of jobs_promised, requested_rials or county names.
func (f Facility) RegisteredEventID() string { return f.registeredID }

// RequestedRials returns the loan amount requested (corrected).
func (f Facility) RequestedRials() int64 { return f.requested }

// Expert returns the id of the expert who reviewed the plan, if reviewed.
func (f Facility) Expert() string { return f.expert }

// Bank returns the bank the plan was referred to, or "" before referral.
func (f Facility) Bank() string { return f.bank }

// RejectionReason returns why the agency or the bank rejected the plan.
func (f Facility) RejectionReason() string { return f.rejection }

// ApprovedRials returns the loan amount the bank approved, 0 before approval.
func (f Facility) ApprovedRials() int64 { return f.approved }

// QuotaAccount returns the quota account charged for the loan.
func (f Facility) QuotaAccount() string { return f.quotaAccount }

// DisbursedRials returns the total paid so far (corrected).
func (f Facility) DisbursedRials() int64 {
	var sum int64
	for _, t := range f.tranches {
		sum += t.AmountRials
	}
	return sum
}

// UndisbursedRials returns what remains to be paid of the approved loan, the
// amount the application layer releases back to the quota when the file is
// closed early.
func (f Facility) UndisbursedRials() int64 { return f.approved - f.DisbursedRials() }

// TrancheCount returns the number of tranches paid.
func (f Facility) TrancheCount() int { return len(f.tranches) }

// Tranches returns the tranches paid, in order.
func (f Facility) Tranches() []Tranche { return slices.Clone(f.tranches) }

// JobsPromised returns the number of jobs the plan promises (corrected).
func (f Facility) JobsPromised() int { return f.jobsPromised }

// JobsReported returns the latest reported jobs figure (corrected), and false
// when no figure has been reported.
func (f Facility) JobsReported() (int, bool) {
	if len(f.reports) == 0 {
		return 0, false
	}
	return f.reports[len(f.reports)-1].Jobs, true
}

// JobsReports returns every jobs report, oldest first.
func (f Facility) JobsReports() []JobsReport { return slices.Clone(f.reports) }

// JobsVerified returns the verified jobs of the latest confirmed inspection,
// and false when no inspection has confirmed the plan. Only a confirmed
// inspection verifies jobs; reported figures are not trusted.
func (f Facility) JobsVerified() (int, bool) {
	for i := len(f.inspections) - 1; i >= 0; i-- {
		if f.inspections[i].Confirmed {
			return f.inspections[i].VerifiedJobs, true
		}
	}
	return 0, false
}

// LastInspection returns the latest inspection, and false when there is none.
func (f Facility) LastInspection() (Inspection, bool) {
	if len(f.inspections) == 0 {
		return Inspection{}, false
	}
	return f.inspections[len(f.inspections)-1], true
}

// Inspections returns every inspection, oldest first.
func (f Facility) Inspections() []Inspection { return slices.Clone(f.inspections) }

// Inspection returns the inspection with the given id.
func (f Facility) Inspection(id string) (Inspection, bool) {
	i := f.inspectionIndex(id)
	if i < 0 {
		return Inspection{}, false
	}
	return f.inspections[i], true
}

func (f Facility) inspectionIndex(id string) int {
	return slices.IndexFunc(f.inspections, func(in Inspection) bool { return in.ID == id })
}

// Deviation returns the audit case with the given id.
func (f Facility) Deviation(id string) (Deviation, bool) {
	d, ok := f.deviations[id]
	d.Evidence = slices.Clone(d.Evidence)
	return d, ok
}

// Deviations returns every audit case in the order they were opened.
func (f Facility) Deviations() []Deviation {
	return f.deviationsWhere(func(Deviation) bool { return true })
}

// OpenDeviations returns the audit cases still open, in the order they were
// opened.
func (f Facility) OpenDeviations() []Deviation { return f.deviationsWhere(Deviation.Open) }

func (f Facility) deviationsWhere(keep func(Deviation) bool) []Deviation {
	var out []Deviation
	for _, d := range f.deviations {
		if keep(d) {
			d.Evidence = slices.Clone(d.Evidence)
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Deviation) int { return cmp.Compare(a.opened, b.opened) })
	return out
}

// RecoveredRials returns the total recovered through resolved audit cases.
func (f Facility) RecoveredRials() int64 { return f.recovered }

// CloseReason returns why the file was closed, "" unless closed.
func (f Facility) CloseReason() string { return f.closeReason }

// LastStepAt returns the business time of the latest lifecycle step
// (registration, review, loan decision, tranche, closing). A later step may
// not be dated before it.
func (f Facility) LastStepAt() time.Time { return f.lastStepAt }

// FirstPaidAt returns the business time of the first tranche, zero if none.
func (f Facility) FirstPaidAt() time.Time { return f.firstPaidAt }

// Version returns the stream version of the latest event folded in: the
// expected version for the next append.
func (f Facility) Version() uint64 { return f.version }
