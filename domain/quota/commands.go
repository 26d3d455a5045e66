package quota

import "time"

// Command is a request to change a quota ledger. The set is closed: only the
// command types of this package implement it. Every command names its ledger
// by fiscal year and program, so the application layer routes it with
// Stream(cmd.Target()) and the decider refuses one routed to the wrong
// ledger; At is the business time that becomes the event's OccurredAt.
type Command interface {
	// Target returns the fiscal year and program of the ledger.
	Target() (fiscalYear int, program string)
	// name returns the command's name; being unexported, it also keeps
	// other packages from adding commands Decide does not know.
	name() string
}

// Allocate allocates money and a job target to an account under a legal
// basis (e.g. "1403 budget law note 18") and a decision reference.
type Allocate struct {
	FiscalYear  int
	Program     string
	Account     AccountKey
	AmountRials int64
	JobsTarget  int
	LegalBasis  string
	DecisionRef string
	At          time.Time
}

// Transfer moves quota between two accounts of the ledger by ministry
// decision. TransferID is chosen by the caller and unique within the ledger.
type Transfer struct {
	FiscalYear  int
	Program     string
	TransferID  string
	From        AccountKey
	To          AccountKey
	AmountRials int64
	JobsTarget  int // job target moved along with the money; may be 0
	LegalBasis  string
	DecisionRef string
	ProposalID  string // optional: the proposal that led to the decision
	At          time.Time
}

// Charge reserves quota for a facility's approved loan.
type Charge struct {
	FiscalYear  int
	Program     string
	Account     AccountKey
	FacilityID  string
	AmountRials int64
	At          time.Time
}

// ReleaseCharge returns part or all of a facility's open charge to the
// account it was charged to. The account is taken from the charge.
type ReleaseCharge struct {
	FiscalYear  int
	Program     string
	FacilityID  string
	AmountRials int64
	Reason      string
	At          time.Time
}

// CorrectAllocation replaces the amount and job target of an earlier
// allocation of this ledger, named by its event ID.
type CorrectAllocation struct {
	FiscalYear      int
	Program         string
	CorrectsEventID string
	AmountRials     int64 // the corrected amount; 0 cancels a mistaken allocation
	JobsTarget      int   // the corrected job target
	Reason          string
	At              time.Time
}

// Target returns the ledger's fiscal year and program.
func (c Allocate) Target() (int, string) { return c.FiscalYear, c.Program }

// Target returns the ledger's fiscal year and program.
func (c Transfer) Target() (int, string) { return c.FiscalYear, c.Program }

// Target returns the ledger's fiscal year and program.
func (c Charge) Target() (int, string) { return c.FiscalYear, c.Program }

// Target returns the ledger's fiscal year and program.
func (c ReleaseCharge) Target() (int, string) { return c.FiscalYear, c.Program }

// Target returns the ledger's fiscal year and program.
func (c CorrectAllocation) Target() (int, string) { return c.FiscalYear, c.Program }

func (Allocate) name() string          { return "allocate" }
func (Transfer) name() string          { return "transfer" }
func (Charge) name() string            { return "charge" }
func (ReleaseCharge) name() string     { return "release_charge" }
func (CorrectAllocation) name() string { return "correct_allocation" }
