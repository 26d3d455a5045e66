package quota

import "github.com/payesh/payesh/domain"

// Event type names, one per payload struct. A name is never reused for
// another payload shape.
const (
	TypeAllocated           = "quota.allocated.v1"            // AllocatedV1
	TypeTransferred         = "quota.transferred.v1"          // TransferredV1
	TypeCharged             = "quota.charged.v1"              // ChargedV1
	TypeChargeReleased      = "quota.charge_released.v1"      // ChargeReleasedV1
	TypeAllocationCorrected = "quota.allocation_corrected.v1" // AllocationCorrectedV1
)

// EventTypes lists every quota event type, for building a domain.Registry.
func EventTypes() []domain.EventType {
	return []domain.EventType{
		domain.Type[AllocatedV1](),
		domain.Type[TransferredV1](),
		domain.Type[ChargedV1](),
		domain.Type[ChargeReleasedV1](),
		domain.Type[AllocationCorrectedV1](),
		domain.Type[ReallocationProposedV1](),
		domain.Type[ReallocationApprovedV1](),
		domain.Type[ReallocationCancelledV1](),
	}
}

// AllocatedV1 records money and a job target allocated to an account under
// the budget law. An account may receive several allocations (for example a
// supplementary one); each is a separate event that can be corrected on its
// own.
type AllocatedV1 struct {
	FiscalYear  int        `json:"fiscal_year"`
	Program     string     `json:"program"`
	Account     AccountKey `json:"account"`
	AmountRials int64      `json:"amount_rials"`
	JobsTarget  int        `json:"jobs_target"`
	LegalBasis  string     `json:"legal_basis"`
	DecisionRef string     `json:"decision_ref"`
}

// EventType names the event.
func (AllocatedV1) EventType() string { return TypeAllocated }

// TransferredV1 records the ministry moving quota (money and, optionally, job
// target) from one account to another of the same ledger, with the legal
// basis and decision that authorise it.
type TransferredV1 struct {
	FiscalYear  int        `json:"fiscal_year"`
	Program     string     `json:"program"`
	TransferID  string     `json:"transfer_id"`
	From        AccountKey `json:"from"`
	To          AccountKey `json:"to"`
	AmountRials int64      `json:"amount_rials"`
	JobsTarget  int        `json:"jobs_target"`
	LegalBasis  string     `json:"legal_basis"`
	DecisionRef string     `json:"decision_ref"`
	ProposalID  string     `json:"proposal_id,omitempty"`
}

// EventType names the event.
func (TransferredV1) EventType() string { return TypeTransferred }

// ChargedV1 records an approved loan reserving quota from an account.
type ChargedV1 struct {
	FiscalYear  int        `json:"fiscal_year"`
	Program     string     `json:"program"`
	Account     AccountKey `json:"account"`
	FacilityID  string     `json:"facility_id"`
	AmountRials int64      `json:"amount_rials"`
}

// EventType names the event.
func (ChargedV1) EventType() string { return TypeCharged }

// ChargeReleasedV1 records quota returned to an account from a facility's
// charge, in whole or in part, e.g. because the loan was not fully paid.
type ChargeReleasedV1 struct {
	FiscalYear  int        `json:"fiscal_year"`
	Program     string     `json:"program"`
	Account     AccountKey `json:"account"`
	FacilityID  string     `json:"facility_id"`
	AmountRials int64      `json:"amount_rials"`
	Reason      string     `json:"reason"`
}

// EventType names the event.
func (ChargeReleasedV1) EventType() string { return TypeChargeReleased }

// AllocationCorrectedV1 replaces the amount and job target of an earlier
// allocation, named by its event ID. Besides the new figures it carries the
// account and the figures it replaces, so that a projection can apply the
// difference without keeping an index of allocations.
type AllocationCorrectedV1 struct {
	FiscalYear          int        `json:"fiscal_year"`
	Program             string     `json:"program"`
	CorrectsEventID     string     `json:"corrects_event_id"`
	Account             AccountKey `json:"account"`
	PreviousAmountRials int64      `json:"previous_amount_rials"`
	PreviousJobsTarget  int        `json:"previous_jobs_target"`
	AmountRials         int64      `json:"amount_rials"`
	JobsTarget          int        `json:"jobs_target"`
	Reason              string     `json:"reason"`
}

// EventType names the event.
func (AllocationCorrectedV1) EventType() string { return TypeAllocationCorrected }
