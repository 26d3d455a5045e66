package quota

import (
	"strconv"

	"github.com/payesh/payesh/domain"
)

// Evolve folds one recorded event into the ledger. It accepts each payload
// as a value (as Decide returns it) or as a pointer (as domain.Registry
// decodes it), and never modifies the ledger it is given. Unknown event
// types only advance the version.
func Evolve(l Ledger, r domain.Recorded) Ledger {
	if r.Version != 0 {
		l.version = r.Version
	} else {
		l.version++
	}
	if next, ok := l.evolveReallocation(r.Event); ok {
		return next
	}
	switch e := r.Event.(type) {
	case AllocatedV1:
		l.setLedger(e.FiscalYear, e.Program)
		b := l.balance(e.Account)
		b.AllocatedRials += e.AmountRials
		b.JobsTarget += e.JobsTarget
		l.accounts = l.accounts.with(e.Account.String(), b)
		id := r.ID
		if id == "" {
			// An event without an ID cannot be corrected, but its figures
			// must still be counted.
			id = "#" + strconv.FormatUint(l.version, 10)
		}
		l.allocations = l.allocations.with(id, Allocation{
			EventID: r.ID, Account: e.Account, AmountRials: e.AmountRials, JobsTarget: e.JobsTarget,
			LegalBasis: e.LegalBasis, DecisionRef: e.DecisionRef,
		})
	case TransferredV1:
		l.setLedger(e.FiscalYear, e.Program)
		from := l.balance(e.From)
		from.TransferredOutRials += e.AmountRials
		from.JobsTarget -= e.JobsTarget
		l.accounts = l.accounts.with(e.From.String(), from)
		to := l.balance(e.To)
		to.TransferredInRials += e.AmountRials
		to.JobsTarget += e.JobsTarget
		l.accounts = l.accounts.with(e.To.String(), to)
		l.transfers = l.transfers.with(e.TransferID, struct{}{})
	case ChargedV1:
		l.setLedger(e.FiscalYear, e.Program)
		b := l.balance(e.Account)
		b.ChargedRials += e.AmountRials
		l.accounts = l.accounts.with(e.Account.String(), b)
		l.charges = l.charges.with(e.FacilityID, OpenCharge{
			FacilityID: e.FacilityID, Account: e.Account, ChargedRials: e.AmountRials,
		})
	case ChargeReleasedV1:
		l.setLedger(e.FiscalYear, e.Program)
		b := l.balance(e.Account)
		b.ReleasedRials += e.AmountRials
		l.accounts = l.accounts.with(e.Account.String(), b)
		if c, ok := l.charges.get(e.FacilityID); ok {
			c.ReleasedRials += e.AmountRials
			if c.OutstandingRials() <= 0 {
				l.charges = l.charges.without(e.FacilityID)
			} else {
				l.charges = l.charges.with(e.FacilityID, c)
			}
		}
	case AllocationCorrectedV1:
		l.setLedger(e.FiscalYear, e.Program)
		a, ok := l.allocations.get(e.CorrectsEventID)
		if !ok {
			break
		}
		b := l.balance(a.Account)
		b.AllocatedRials += e.AmountRials - a.AmountRials
		b.JobsTarget += e.JobsTarget - a.JobsTarget
		l.accounts = l.accounts.with(a.Account.String(), b)
		a.AmountRials, a.JobsTarget = e.AmountRials, e.JobsTarget
		l.allocations = l.allocations.with(e.CorrectsEventID, a)
	}
	return l
}

// setLedger records which ledger this is, from its first event.
func (l *Ledger) setLedger(fy int, program string) {
	if l.fiscalYear == 0 {
		l.fiscalYear, l.program = fy, program
	}
}

// balance returns an account's balance, or a zero one carrying its key.
func (l Ledger) balance(k AccountKey) Balance {
	if b, ok := l.accounts.get(k.String()); ok {
		return b
	}
	return Balance{Account: k}
}
