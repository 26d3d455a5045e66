package quota

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
)

// Reallocation: the ministry moves quota from accounts that cannot absorb
// it to accounts that can, on the record. A proposal is computed from the
// projected figures (Propose, over the quota_balances read model) and
// recorded in the ledger it concerns with the figures that justify each
// line and the read-model position they were read at. The ministry then
// approves it, whole or in part, or cancels it. Approval is decided
// against this ledger, the authority, not the projection: every approved
// line's donor must still have at least the free balance the proposal
// showed, and every transfer must keep the ledger's invariants. The
// decision is one unit: either every approved line becomes a transfer
// (one TransferredV1 each, linked to the proposal, appended with the
// approval in one atomic append), or, if any line fails the re-check,
// nothing is recorded and a *StaleProposalError names every failing line
// with the proposal's figure and the current one; the ministry can then
// approve the remaining lines, or ask for a fresh proposal.

// Policy is what a proposal is asked for: which accounts may give (donors:
// absorbing too little of their quota, long enough after allocation) and
// which may receive (receivers: unmet demand), within a scope, each
// transfer capped.
type Policy struct {
	// Scope limits donors and receivers to one province and/or one agency;
	// empty fields mean the whole ledger.
	Scope struct {
		Province string `json:"province,omitempty"`
		Agency   string `json:"agency,omitempty"`
	} `json:"scope"`
	// Donors: accounts whose absorption (charged ÷ allocated) is below
	// MaxAbsorptionPct at least MinDaysSinceAllocation days after their
	// first allocation, with free quota beyond their own unmet demand (what
	// they may give).
	MaxAbsorptionPct       float64 `json:"max_absorption_pct"`
	MinDaysSinceAllocation int     `json:"min_days_since_allocation"`
	// Receivers: accounts whose unmet demand (rials requested by
	// facilities waiting for a bank's decision that an approval would
	// charge to them) exceeds their free quota by more than
	// MinUnmetDemandRials.
	MinUnmetDemandRials int64 `json:"min_unmet_demand_rials"`
	// CapPerTransferRials bounds each line (0: no cap).
	CapPerTransferRials int64 `json:"cap_per_transfer_rials"`
}

// AccountFigures are an account's projected figures a proposal is
// computed from and justified by.
type AccountFigures struct {
	Account             AccountKey `json:"account"`
	AllocatedRials      int64      `json:"allocated_rials"`       // as corrected
	AvailableRials      int64      `json:"available_rials"`       // allocated + transfers in − out
	ChargedRials        int64      `json:"charged_rials"`         // open charges: charged − released
	FreeRials           int64      `json:"free_rials"`            // what it can give
	JobsTarget          int        `json:"jobs_target"`           // after transfers
	AbsorptionPct       *float64   `json:"absorption_pct"`        // charged ÷ allocated; nil when nothing is allocated
	DaysSinceAllocation *int       `json:"days_since_allocation"` // nil without a live allocation
	UnmetFacilities     int64      `json:"unmet_facilities"`
	UnmetRequestedRials int64      `json:"unmet_requested_rials"`
}

// need is what a receiver lacks: unmet demand beyond its free quota.
func (a AccountFigures) need() int64 { return max(a.UnmetRequestedRials-max(a.FreeRials, 0), 0) }

// spare is what a donor can give: free quota beyond its own unmet demand,
// which it keeps for the plans already waiting on it.
func (a AccountFigures) spare() int64 { return max(a.FreeRials-a.UnmetRequestedRials, 0) }

// ProposedLine is one transfer of a proposal with the figures that justify
// it: the donor's and the receiver's, as read when it was computed.
type ProposedLine struct {
	Line        int            `json:"line"` // 1, 2, …
	From        AccountKey     `json:"from"`
	To          AccountKey     `json:"to"`
	AmountRials int64          `json:"amount_rials"`
	JobsTarget  int            `json:"jobs_target"` // moved with the money, in proportion to the donor's target
	Donor       AccountFigures `json:"donor"`
	Receiver    AccountFigures `json:"receiver"`
}

// Propose computes the transfers policy asks for over the accounts'
// figures (one ledger's): receivers by need, largest first, each served by
// donors in order of absorption (lowest first, then most free quota), each
// line at most the donor's remaining free quota, the receiver's remaining
// need and the cap. A donor's job target moves in proportion to the money
// (rounded down). It is a pure function of its arguments; lines are
// numbered from 1.
func Propose(accounts []AccountFigures, p Policy) []ProposedLine {
	donors, receivers := Candidates(accounts, p)
	slices.SortFunc(donors, func(a, b AccountFigures) int {
		return cmp.Or(cmp.Compare(*a.AbsorptionPct, *b.AbsorptionPct), cmp.Compare(b.FreeRials, a.FreeRials),
			cmp.Compare(a.Account.String(), b.Account.String()))
	})
	slices.SortFunc(receivers, func(a, b AccountFigures) int {
		return cmp.Or(cmp.Compare(b.need(), a.need()), cmp.Compare(a.Account.String(), b.Account.String()))
	})
	left := make([]int64, len(donors)) // donors' free quota not yet proposed
	jobsLeft := make([]int, len(donors))
	for i, d := range donors {
		left[i], jobsLeft[i] = d.spare(), max(d.JobsTarget, 0)
	}
	var lines []ProposedLine
	for _, r := range receivers {
		need := r.need()
		for i, d := range donors {
			for need > 0 && left[i] > 0 {
				amt := min(need, left[i])
				if p.CapPerTransferRials > 0 {
					amt = min(amt, p.CapPerTransferRials)
				}
				jobs := 0
				if d.AvailableRials > 0 {
					jobs = min(int(int64(d.JobsTarget)*amt/d.AvailableRials), jobsLeft[i])
				}
				lines = append(lines, ProposedLine{
					Line: len(lines) + 1, From: d.Account, To: r.Account, AmountRials: amt, JobsTarget: jobs,
					Donor: d, Receiver: r,
				})
				left[i] -= amt
				jobsLeft[i] -= jobs
				need -= amt
				if p.CapPerTransferRials > 0 {
					break // one capped line per donor and receiver
				}
			}
			if need <= 0 {
				break
			}
		}
	}
	return lines
}

// Candidates returns the accounts in the policy's scope that may receive
// (receivers: unmet demand beyond their free quota, by more than the
// policy's threshold) and those that may give (donors: the others whose
// absorption and age meet the policy, with free quota beyond their own
// unmet demand, which they keep).
func Candidates(accounts []AccountFigures, p Policy) (donors, receivers []AccountFigures) {
	for _, a := range accounts {
		if (p.Scope.Province != "" && a.Account.Province != p.Scope.Province) || (p.Scope.Agency != "" && a.Account.Agency != p.Scope.Agency) {
			continue
		}
		switch {
		case a.need() > 0 && a.need() > p.MinUnmetDemandRials:
			receivers = append(receivers, a)
		case a.spare() > 0 && a.AbsorptionPct != nil && *a.AbsorptionPct < p.MaxAbsorptionPct &&
			a.DaysSinceAllocation != nil && *a.DaysSinceAllocation >= p.MinDaysSinceAllocation:
			donors = append(donors, a)
		}
	}
	return donors, receivers
}

// ProposalStatus is where a proposal is in its life.
type ProposalStatus string

// The statuses.
const (
	ProposalPending   ProposalStatus = "pending"
	ProposalApproved  ProposalStatus = "approved"
	ProposalCancelled ProposalStatus = "cancelled"
)

// Proposal is a recorded proposal as the ledger knows it.
type Proposal struct {
	ID              string
	Policy          Policy
	Lines           []ProposedLine
	BasedOnPosition uint64
	Status          ProposalStatus
	Approved        []int // the lines approved, when approved
	LegalBasis      string
	DecisionRef     string
	Reason          string // the cancellation's
}

// ProposalID returns the id of the nth proposal of a ledger:
// "1403.home-business.7". Program ids hold no dots, so it parses back
// (ParseProposalID) to the ledger it lives in.
func ProposalID(fiscalYear int, program string, n int) string {
	return strconv.Itoa(fiscalYear) + "." + program + "." + strconv.Itoa(n)
}

// ParseProposalID returns the ledger of a proposal id, and false when id
// is not one.
func ParseProposalID(id string) (fiscalYear int, program string, ok bool) {
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		return 0, "", false
	}
	fy, err := strconv.Atoi(parts[0])
	n, err2 := strconv.Atoi(parts[2])
	if err != nil || err2 != nil || n < 1 || fy < MinFiscalYear || fy > MaxFiscalYear || !ValidProgram(parts[1]) {
		return 0, "", false
	}
	return fy, parts[1], true
}

// ProposeReallocation records a proposal computed by Propose, with the
// read-model position its figures were read at.
type ProposeReallocation struct {
	FiscalYear      int
	Program         string
	Policy          Policy
	Lines           []ProposedLine
	BasedOnPosition uint64
	At              time.Time
}

// ApproveReallocation approves a pending proposal, whole (Lines empty) or
// the lines named, under a legal basis and decision reference.
type ApproveReallocation struct {
	FiscalYear  int
	Program     string
	ProposalID  string
	Lines       []int
	LegalBasis  string
	DecisionRef string
	At          time.Time
}

// CancelReallocation withdraws a pending proposal.
type CancelReallocation struct {
	FiscalYear int
	Program    string
	ProposalID string
	Reason     string
	At         time.Time
}

// Target returns the ledger's fiscal year and program.
func (c ProposeReallocation) Target() (int, string) { return c.FiscalYear, c.Program }

// Target returns the ledger's fiscal year and program.
func (c ApproveReallocation) Target() (int, string) { return c.FiscalYear, c.Program }

// Target returns the ledger's fiscal year and program.
func (c CancelReallocation) Target() (int, string) { return c.FiscalYear, c.Program }

func (ProposeReallocation) name() string { return "propose_reallocation" }
func (ApproveReallocation) name() string { return "approve_reallocation" }
func (CancelReallocation) name() string  { return "cancel_reallocation" }

// Event types of reallocation.
const (
	TypeReallocationProposed = "quota.reallocation_proposed.v1" // ReallocationProposedV1
	TypeReallocationApproved = "quota.reallocation_approved.v1" // ReallocationApprovedV1
	TypeReallocationCanceled = "quota.reallocation_cancelled.v1"
)

// ReallocationProposedV1 records a proposal: the policy asked for, the
// transfers computed with their justification figures, and the position of
// the read model they were read at.
type ReallocationProposedV1 struct {
	FiscalYear      int            `json:"fiscal_year"`
	Program         string         `json:"program"`
	ProposalID      string         `json:"proposal_id"`
	Policy          Policy         `json:"policy"`
	Lines           []ProposedLine `json:"lines"`
	BasedOnPosition uint64         `json:"based_on_position"`
}

// EventType names the event.
func (ReallocationProposedV1) EventType() string { return TypeReallocationProposed }

// ReallocationApprovedV1 records the ministry's decision on a proposal: the
// lines approved, each followed in the same append by its TransferredV1.
type ReallocationApprovedV1 struct {
	FiscalYear  int    `json:"fiscal_year"`
	Program     string `json:"program"`
	ProposalID  string `json:"proposal_id"`
	Lines       []int  `json:"lines"`
	LegalBasis  string `json:"legal_basis"`
	DecisionRef string `json:"decision_ref"`
}

// EventType names the event.
func (ReallocationApprovedV1) EventType() string { return TypeReallocationApproved }

// ReallocationCancelledV1 records a proposal withdrawn without a transfer.
type ReallocationCancelledV1 struct {
	FiscalYear int    `json:"fiscal_year"`
	Program    string `json:"program"`
	ProposalID string `json:"proposal_id"`
	Reason     string `json:"reason"`
}

// EventType names the event.
func (ReallocationCancelledV1) EventType() string { return TypeReallocationCanceled }

// TransferIDOf is the transfer id of a proposal's approved line.
func TransferIDOf(proposalID string, line int) string { return proposalID + "/" + strconv.Itoa(line) }

// StaleLine is an approved line the ledger no longer supports.
type StaleLine struct {
	Line     int        `json:"line"`
	Donor    AccountKey `json:"donor"`
	Amount   int64      `json:"amount_rials"`
	Proposed int64      `json:"proposed_free_rials"` // the donor's free quota the proposal showed
	Current  int64      `json:"current_free_rials"`  // the donor's free quota in the ledger now
	Reason   string     `json:"reason"`
}

// StaleProposalError refuses an approval because lines no longer hold
// against the ledger; nothing was recorded. It matches domain.ErrConflict.
type StaleProposalError struct {
	ProposalID string
	Lines      []StaleLine
}

func (e *StaleProposalError) Error() string {
	parts := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		parts[i] = fmt.Sprintf("line %d: %s", l.Line, l.Reason)
	}
	return fmt.Sprintf("proposal %s no longer holds against the ledger, nothing was approved: %s", e.ProposalID, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, domain.ErrConflict) true.
func (e *StaleProposalError) Is(target error) bool { return target == domain.ErrConflict }

func decidePropose(l Ledger, c ProposeReallocation) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	v.Check(len(c.Lines) > 0, "lines", "required", "a proposal needs at least one transfer", "پیشنهاد دست‌کم یک جابه‌جایی لازم دارد")
	v.Check(c.Policy.MaxAbsorptionPct >= 0 && c.Policy.MaxAbsorptionPct <= 100, "policy.max_absorption_pct", "out_of_range",
		"must be a percentage from 0 to 100", "باید درصدی از ۰ تا ۱۰۰ باشد")
	v.Check(c.Policy.MinDaysSinceAllocation >= 0, "policy.min_days_since_allocation", "out_of_range",
		"must not be negative", "نباید منفی باشد")
	v.Check(c.Policy.MinUnmetDemandRials >= 0, "policy.min_unmet_demand_rials", "out_of_range", "must not be negative", "نباید منفی باشد")
	v.Check(c.Policy.CapPerTransferRials >= 0, "policy.cap_per_transfer_rials", "out_of_range", "must not be negative", "نباید منفی باشد")
	for i, ln := range c.Lines {
		f := fmt.Sprintf("lines[%d]", i)
		v.Check(ln.Line == i+1, f+".line", "out_of_order", "lines are numbered 1, 2, … in order", "سطرها به ترتیب ۱، ۲، … شماره می‌خورند")
		account(&v, f+".from", ln.From)
		account(&v, f+".to", ln.To)
		v.Check(ln.From != ln.To, f+".to", "same_account", "must differ from the donor", "باید با حساب مبدأ متفاوت باشد")
		amount(&v, f+".amount_rials", ln.AmountRials)
		jobs(&v, f+".jobs_target", ln.JobsTarget)
	}
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	for _, ln := range c.Lines {
		if _, ok := l.Account(ln.From); !ok {
			return nil, &domain.NotFoundError{Kind: "quota account", ID: ln.From.String()}
		}
	}
	return []domain.Event{ReallocationProposedV1{
		FiscalYear: c.FiscalYear, Program: c.Program, ProposalID: ProposalID(c.FiscalYear, c.Program, l.proposals.len()+1),
		Policy: c.Policy, Lines: c.Lines, BasedOnPosition: c.BasedOnPosition,
	}}, nil
}

// pendingProposal returns the proposal id names, refusing one that is not
// pending.
func (l Ledger) pendingProposal(id, command string) (Proposal, error) {
	p, ok := l.proposals.get(id)
	if !ok {
		return Proposal{}, &domain.NotFoundError{Kind: "reallocation proposal", ID: id}
	}
	if p.Status != ProposalPending {
		return Proposal{}, &domain.TransitionError{Aggregate: "reallocation proposal " + id, State: string(p.Status), Command: command,
			Reason: "only a pending proposal can be decided", ReasonFa: "فقط درباره پیشنهاد در انتظار می‌توان تصمیم گرفت"}
	}
	return p, nil
}

func decideApprove(l Ledger, c ApproveReallocation) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	required(&v, "proposal_id", c.ProposalID)
	required(&v, "legal_basis", c.LegalBasis)
	required(&v, "decision_ref", c.DecisionRef)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := l.pendingProposal(c.ProposalID, "approve")
	if err != nil {
		return nil, err
	}
	lines := slices.Clone(c.Lines)
	if len(lines) == 0 {
		for _, ln := range p.Lines {
			lines = append(lines, ln.Line)
		}
	}
	slices.Sort(lines)
	for i, n := range lines {
		v.Check(n >= 1 && n <= len(p.Lines), "lines", "unknown_line",
			fmt.Sprintf("line %d is not a line of proposal %s (1 to %d)", n, p.ID, len(p.Lines)),
			fmt.Sprintf("سطر %d از سطرهای پیشنهاد %s نیست (۱ تا %d)", n, p.ID, len(p.Lines)))
		v.Check(i == 0 || lines[i-1] != n, "lines", "repeated", fmt.Sprintf("line %d is named twice", n), fmt.Sprintf("سطر %d دو بار آمده است", n))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	// The re-check, against this ledger: each donor must still hold the
	// free quota the proposal showed, and each transfer, applied in turn,
	// must keep the ledger's rules (decideTransfer's).
	events := []domain.Event{ReallocationApprovedV1{
		FiscalYear: c.FiscalYear, Program: c.Program, ProposalID: p.ID, Lines: lines,
		LegalBasis: c.LegalBasis, DecisionRef: c.DecisionRef,
	}}
	var stale []StaleLine
	next := l
	for _, n := range lines {
		ln := p.Lines[n-1]
		cur, _ := l.Account(ln.From)
		sl := StaleLine{Line: n, Donor: ln.From, Amount: ln.AmountRials, Proposed: ln.Donor.FreeRials, Current: cur.FreeRials()}
		if cur.FreeRials() < ln.Donor.FreeRials {
			sl.Reason = fmt.Sprintf("the donor %s had %d rials free when proposed and has %d now", ln.From, ln.Donor.FreeRials, cur.FreeRials())
			stale = append(stale, sl)
			continue
		}
		evs, err := decideTransfer(next, Transfer{
			FiscalYear: c.FiscalYear, Program: c.Program, TransferID: TransferIDOf(p.ID, n), From: ln.From, To: ln.To,
			AmountRials: ln.AmountRials, JobsTarget: ln.JobsTarget, LegalBasis: c.LegalBasis, DecisionRef: c.DecisionRef,
			ProposalID: p.ID, At: c.At,
		})
		if err != nil {
			sl.Reason = err.Error()
			stale = append(stale, sl)
			continue
		}
		for _, e := range evs {
			next = Evolve(next, domain.Recorded{Event: e})
		}
		events = append(events, evs...)
	}
	if len(stale) > 0 {
		return nil, &StaleProposalError{ProposalID: p.ID, Lines: stale}
	}
	return events, nil
}

func decideCancel(l Ledger, c CancelReallocation) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	required(&v, "proposal_id", c.ProposalID)
	required(&v, "reason", c.Reason)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := l.pendingProposal(c.ProposalID, "cancel")
	if err != nil {
		return nil, err
	}
	return []domain.Event{ReallocationCancelledV1{FiscalYear: c.FiscalYear, Program: c.Program, ProposalID: p.ID, Reason: c.Reason}}, nil
}

// evolveReallocation folds a reallocation event; ok is false for other
// events.
func (l Ledger) evolveReallocation(event domain.Event) (Ledger, bool) {
	switch e := event.(type) {
	case ReallocationProposedV1:
		l.setLedger(e.FiscalYear, e.Program)
		l.proposals = l.proposals.with(e.ProposalID, Proposal{
			ID: e.ProposalID, Policy: e.Policy, Lines: e.Lines, BasedOnPosition: e.BasedOnPosition, Status: ProposalPending,
		})
	case ReallocationApprovedV1:
		if p, ok := l.proposals.get(e.ProposalID); ok {
			p.Status, p.Approved, p.LegalBasis, p.DecisionRef = ProposalApproved, e.Lines, e.LegalBasis, e.DecisionRef
			l.proposals = l.proposals.with(e.ProposalID, p)
		}
	case ReallocationCancelledV1:
		if p, ok := l.proposals.get(e.ProposalID); ok {
			p.Status, p.Reason = ProposalCancelled, e.Reason
			l.proposals = l.proposals.with(e.ProposalID, p)
		}
	default:
		return l, false
	}
	return l, true
}

// Proposal returns a recorded proposal, and false when there is none.
func (l Ledger) Proposal(id string) (Proposal, bool) { return l.proposals.get(id) }
