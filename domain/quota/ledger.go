package quota

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Ledger is the state of one fiscal year × program quota ledger, folded from
// its events. Its fields are unexported so that only Evolve changes it, and
// Evolve never modifies the ledger it is given (see pmap), so a Ledger value
// can be kept and read concurrently while newer values are derived from it.
type Ledger struct {
	fiscalYear  int
	program     string
	accounts    pmap[Balance]    // by AccountKey.String()
	charges     pmap[OpenCharge] // open charges by facility id
	transfers   pmap[struct{}]   // transfer ids seen
	allocations pmap[Allocation] // allocations by event ID
	proposals   pmap[Proposal]   // reallocation proposals by id
	version     uint64
}

// Balance is one account's position. Every figure is a running total in
// rials, except JobsTarget.
type Balance struct {
	Account             AccountKey
	AllocatedRials      int64 // allocations, as corrected
	TransferredInRials  int64
	TransferredOutRials int64
	ChargedRials        int64
	ReleasedRials       int64
	JobsTarget          int // allocated job target, as corrected, plus transfers in, minus transfers out
}

// FreeRials is what the account can still transfer or charge: allocated +
// transferred in − transferred out − charged + released. The ledger never
// lets it go negative.
func (b Balance) FreeRials() int64 {
	return b.AllocatedRials + b.TransferredInRials - b.TransferredOutRials - b.ChargedRials + b.ReleasedRials
}

// AvailableRials is the quota the account holds after transfers:
// allocated + transferred in − transferred out.
func (b Balance) AvailableRials() int64 {
	return b.AllocatedRials + b.TransferredInRials - b.TransferredOutRials
}

// OpenChargesRials is the quota reserved by loans and not released.
func (b Balance) OpenChargesRials() int64 { return b.ChargedRials - b.ReleasedRials }

// OpenCharge is a facility's reservation against one account. A facility has
// at most one open charge per ledger; the charge is closed, and disappears
// from the ledger, when it is fully released.
type OpenCharge struct {
	FacilityID    string
	Account       AccountKey
	ChargedRials  int64
	ReleasedRials int64
}

// OutstandingRials is the part of the charge not yet released.
func (c OpenCharge) OutstandingRials() int64 { return c.ChargedRials - c.ReleasedRials }

// Allocation is one allocation event's figures, as corrected.
type Allocation struct {
	EventID     string
	Account     AccountKey
	AmountRials int64
	JobsTarget  int
	LegalBasis  string
	DecisionRef string
}

// Exists reports whether the ledger has any event.
func (l Ledger) Exists() bool { return l.version > 0 }

// FiscalYear returns the ledger's fiscal year, 0 before its first event.
func (l Ledger) FiscalYear() int { return l.fiscalYear }

// Program returns the ledger's program, "" before its first event.
func (l Ledger) Program() string { return l.program }

// Version returns the stream version of the latest event folded in: the
// expected version for the next append.
func (l Ledger) Version() uint64 { return l.version }

// Account returns an account's balance, and false when the account has never
// received quota (by allocation or transfer).
func (l Ledger) Account(k AccountKey) (Balance, bool) { return l.accounts.get(k.String()) }

// Accounts returns every account's balance, sorted by the key's String form.
func (l Ledger) Accounts() []Balance {
	out := make([]Balance, 0, l.accounts.len())
	for _, b := range l.accounts.all() {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Balance) int { return cmp.Compare(a.Account.String(), b.Account.String()) })
	return out
}

// Charge returns a facility's open charge, and false when it has none.
func (l Ledger) Charge(facilityID string) (OpenCharge, bool) { return l.charges.get(facilityID) }

// Charges returns every open charge, sorted by facility id.
func (l Ledger) Charges() []OpenCharge {
	out := make([]OpenCharge, 0, l.charges.len())
	for _, c := range l.charges.all() {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b OpenCharge) int { return cmp.Compare(a.FacilityID, b.FacilityID) })
	return out
}

// Allocation returns an allocation by its event ID, with corrected figures.
func (l Ledger) Allocation(eventID string) (Allocation, bool) { return l.allocations.get(eventID) }

// HasTransfer reports whether a transfer id has been used in this ledger.
func (l Ledger) HasTransfer(id string) bool {
	_, ok := l.transfers.get(id)
	return ok
}

// Totals sums every account's figures; its Account is zero.
func (l Ledger) Totals() Balance {
	var t Balance
	for _, b := range l.accounts.all() {
		t.AllocatedRials += b.AllocatedRials
		t.TransferredInRials += b.TransferredInRials
		t.TransferredOutRials += b.TransferredOutRials
		t.ChargedRials += b.ChargedRials
		t.ReleasedRials += b.ReleasedRials
		t.JobsTarget += b.JobsTarget
	}
	return t
}

// CheckConservation verifies the ledger's invariants: no account's free
// balance or job target is negative; transfers move quota without creating
// or destroying it (total in == total out); each account's charged − released
// equals the sum of its open charges; and so total allocated (as corrected)
// == total free + total open charges. Tests call it after every event; an
// error means a bug in Decide or Evolve, never bad input.
func (l Ledger) CheckConservation() error {
	outstanding := map[string]int64{}
	var totalOutstanding int64
	for _, c := range l.charges.all() {
		if c.OutstandingRials() <= 0 {
			return fmt.Errorf("quota: charge of facility %s has %d rials outstanding", c.FacilityID, c.OutstandingRials())
		}
		outstanding[c.Account.String()] += c.OutstandingRials()
		totalOutstanding += c.OutstandingRials()
	}
	var free int64
	for k, b := range l.accounts.all() {
		if b.FreeRials() < 0 {
			return fmt.Errorf("quota: account %s has %d rials free", k, b.FreeRials())
		}
		if b.JobsTarget < 0 {
			return fmt.Errorf("quota: account %s has a job target of %d", k, b.JobsTarget)
		}
		if b.OpenChargesRials() != outstanding[k] {
			return fmt.Errorf("quota: account %s has %d rials charged and not released, but its open charges total %d",
				k, b.OpenChargesRials(), outstanding[k])
		}
		delete(outstanding, k)
		free += b.FreeRials()
	}
	if len(outstanding) > 0 {
		k := slices.Sorted(maps.Keys(outstanding))[0]
		return fmt.Errorf("quota: open charges of %d rials against unknown account %s", outstanding[k], k)
	}
	t := l.Totals()
	if t.TransferredInRials != t.TransferredOutRials {
		return fmt.Errorf("quota: %d rials transferred in but %d transferred out", t.TransferredInRials, t.TransferredOutRials)
	}
	if t.AllocatedRials != free+totalOutstanding {
		return fmt.Errorf("quota: %d rials allocated, but %d free + %d in open charges = %d",
			t.AllocatedRials, free, totalOutstanding, free+totalOutstanding)
	}
	var allocated int64
	var jobs int
	for _, a := range l.allocations.all() {
		allocated += a.AmountRials
		jobs += a.JobsTarget
	}
	if allocated != t.AllocatedRials || jobs != t.JobsTarget {
		return fmt.Errorf("quota: allocations total %d rials and %d jobs, accounts hold %d rials and %d jobs",
			allocated, jobs, t.AllocatedRials, t.JobsTarget)
	}
	return nil
}
