// Package facility is the aggregate for one applicant's job-creation plan and
// its loan: registration with an agency, the agency's expert review and
// referral to an operating bank, the bank's decision, disbursement in
// tranches, jobs reports, field inspections, the deviation cases they open,
// closing, and corrections of figures recorded earlier.
//
// Each facility lives in its own stream, facility-<id>. The decider checks
// only what the facility itself knows (well-formed ids, positive amounts,
// legal stage transitions, balances); whether an agency, bank or inspection
// firm exists in the reference data is checked by the application layer
// before the command reaches Decide.
package facility

import (
	"strconv"
	"strings"

	"github.com/payesh/payesh/domain/quota"
)

// streamPrefix starts every facility stream name.
const streamPrefix = "facility-"

// Fiscal years accepted on registration: the same bounds as the quota
// ledgers', which cover every Solar Hijri year in which these schemes have
// run or could plausibly run, and reject Gregorian years and typing mistakes.
const (
	MinFiscalYear = quota.MinFiscalYear // 1380
	MaxFiscalYear = quota.MaxFiscalYear // 1500
)

// Stream returns the event stream of the facility with the given id, so that
// every writer and reader names it the same way.
func Stream(id string) string { return streamPrefix + id }

// IDFromStream is the inverse of Stream: it returns the facility id of a
// facility stream, and false when the name is not a facility stream.
func IDFromStream(stream string) (string, bool) {
	id, ok := strings.CutPrefix(stream, streamPrefix)
	if !ok || !ValidID(id) {
		return "", false
	}
	return id, true
}

// ValidID reports whether id is a well-formed facility id: 3 to 64
// characters of lower-case ASCII letters, digits and hyphens, not starting
// with a hyphen (^[a-z0-9][a-z0-9-]{2,63}$). Ids appear in stream names and
// URLs, so they are kept to a portable alphabet.
func ValidID(id string) bool {
	if len(id) < 3 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Stage is where a facility is in its lifecycle. It is a string so that it
// reads the same in events, projections and the API.
type Stage string

// The stages of a facility. StageNone is the state before registration.
const (
	// StageNone: no facility has been registered under this id.
	StageNone Stage = ""
	// StageRegistered: the plan is registered with an agency and awaits the
	// agency's expert review.
	StageRegistered Stage = "registered"
	// StageReferred: the agency approved the plan and referred it to a bank.
	StageReferred Stage = "referred"
	// StageReviewRejected: the agency's experts rejected the plan (terminal).
	StageReviewRejected Stage = "review_rejected"
	// StageLoanApproved: the bank approved a loan; nothing is paid yet.
	StageLoanApproved Stage = "loan_approved"
	// StageLoanRejected: the bank refused the loan (terminal).
	StageLoanRejected Stage = "loan_rejected"
	// StageDisbursing: at least one tranche is paid, but not the whole loan.
	StageDisbursing Stage = "disbursing"
	// StageDisbursed: the whole approved amount has been paid.
	StageDisbursed Stage = "disbursed"
	// StageClosed: the file is closed (terminal).
	StageClosed Stage = "closed"
)

// Terminal reports whether no further lifecycle command is accepted in the
// stage. Corrections of recorded figures remain possible.
func (s Stage) Terminal() bool {
	return s == StageReviewRejected || s == StageLoanRejected || s == StageClosed
}

// Paid reports whether at least one tranche has been paid in the stage, which
// is when jobs reports and field inspections become meaningful.
func (s Stage) Paid() bool { return s == StageDisbursing || s == StageDisbursed }

// Applicant is the applicant's identity as the ledger keeps it: a
// pseudonymous reference plus the personal data encrypted under a key that can
// be destroyed to erase it. It has the JSON shape of applicant.Sealed; the
// application layer converts between the two so that this package does not
// depend on the applicant package.
type Applicant struct {
	Ref        string `json:"ref"`
	KeyID      string `json:"key_id"`
	Ciphertext []byte `json:"ciphertext"`
}

// ReviewDecision is the outcome of the agency's expert review.
type ReviewDecision string

// The two outcomes of an expert review.
const (
	ReviewApproved ReviewDecision = "approved" // referred to a bank
	ReviewRejected ReviewDecision = "rejected" // the file ends
)

// Reporter is who reported a jobs figure: agencies and banks both report, and
// neither figure is trusted until an inspection verifies it.
type Reporter string

// The parties that report jobs.
const (
	ReportedByAgency Reporter = "agency" // the executive agency's figure
	ReportedByBank   Reporter = "bank"   // the operating bank's figure
)

// InspectionStatus is what a field inspection found at the plan's site.
type InspectionStatus string

// The findings of a field inspection, after the categories of the
// quick-yield enterprise survey.
const (
	// InspectionActive: the business exists and operates.
	InspectionActive InspectionStatus = "active"
	// InspectionInactive: the business exists but does not operate.
	InspectionInactive InspectionStatus = "inactive"
	// InspectionNotFound: the business could not be found.
	InspectionNotFound InspectionStatus = "not_found"
	// InspectionMisused: the loan was spent on something else, e.g. housing.
	InspectionMisused InspectionStatus = "misused"
)

// DeviationKind classifies an audit case the way the ministry reports them.
type DeviationKind string

// The kinds of audit case.
const (
	// KindDeviation (انحراف): the plan departs from what was approved.
	KindDeviation DeviationKind = "deviation"
	// KindViolation (تخلف): a breach of the rules, such as misuse of funds.
	KindViolation DeviationKind = "violation"
	// KindDiscrepancy (مغایرت): recorded figures disagree with the field.
	KindDiscrepancy DeviationKind = "discrepancy"
)

// Resolution is how an audit case ended.
type Resolution string

// The ways an audit case is resolved.
const (
	// ResolutionCorrected: the applicant or agency corrected the problem.
	ResolutionCorrected Resolution = "corrected"
	// ResolutionFundsRecovered: money was recovered from the applicant.
	ResolutionFundsRecovered Resolution = "funds_recovered"
	// ResolutionDismissed: the case was unfounded.
	ResolutionDismissed Resolution = "dismissed"
)

// Field names a figure that a correction may replace. Only these figures are
// correctable; everything else is fixed by a new lifecycle event.
type Field string

// The correctable fields, each belonging to one event type.
const (
	// FieldJobsPromised corrects jobs_promised of facility.registered.v1.
	FieldJobsPromised Field = "jobs_promised"
	// FieldRequestedRials corrects requested_rials of facility.registered.v1.
	FieldRequestedRials Field = "requested_rials"
	// FieldCounty corrects county of facility.registered.v1.
	FieldCounty Field = "county"
	// FieldJobs corrects jobs of facility.jobs_reported.v1.
	FieldJobs Field = "jobs"
	// FieldVerifiedJobs corrects verified_jobs of facility.inspected.v1.
	FieldVerifiedJobs Field = "verified_jobs"
	// FieldConfirmed corrects confirmed of facility.inspected.v1.
	FieldConfirmed Field = "confirmed"
	// FieldAmountRials corrects amount_rials of facility.tranche_disbursed.v1.
	FieldAmountRials Field = "amount_rials"
)

// fieldsOf lists the correctable fields of each correctable event type and
// the kind of value each holds.
func fieldsOf(eventType string) map[Field]ValueKind {
	switch eventType {
	case TypeRegistered:
		return map[Field]ValueKind{FieldJobsPromised: KindInt, FieldRequestedRials: KindInt, FieldCounty: KindString}
	case TypeJobsReported:
		return map[Field]ValueKind{FieldJobs: KindInt}
	case TypeInspected:
		return map[Field]ValueKind{FieldVerifiedJobs: KindInt, FieldConfirmed: KindBool}
	case TypeTrancheDisbursed:
		return map[Field]ValueKind{FieldAmountRials: KindInt}
	}
	return nil
}

// ValueKind says which member of a Value is meaningful.
type ValueKind string

// The kinds of correctable value.
const (
	KindInt    ValueKind = "int"    // Value.Int holds the figure
	KindString ValueKind = "string" // Value.Str holds the figure
	KindBool   ValueKind = "bool"   // Value.Bool holds the figure
)

// Value is one correctable figure: an integer (jobs, rials), a string (a
// county id) or a boolean (an inspection's confirmation). Kind says which;
// the other members are zero and left out of the JSON. Values are comparable
// with ==.
type Value struct {
	Kind ValueKind `json:"kind"`
	Int  int64     `json:"int,omitempty"`
	Str  string    `json:"str,omitempty"`
	Bool bool      `json:"bool,omitempty"`
}

// IntValue wraps an integer figure.
func IntValue(n int64) Value { return Value{Kind: KindInt, Int: n} }

// StringValue wraps a string figure.
func StringValue(s string) Value { return Value{Kind: KindString, Str: s} }

// BoolValue wraps a boolean figure.
func BoolValue(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// String renders the value for messages and logs.
func (v Value) String() string {
	switch v.Kind {
	case KindInt:
		return strconv.FormatInt(v.Int, 10)
	case KindString:
		return strconv.Quote(v.Str)
	case KindBool:
		return strconv.FormatBool(v.Bool)
	}
	return "<invalid>"
}
