package quota_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
)

// commandGen draws random ledger commands, some of them invalid, from a
// seeded generator so that every run sees the same sequence.
type commandGen struct {
	rng         *rand.Rand
	accounts    []quota.AccountKey
	transfers   int
	allocations []string // event IDs of accepted allocations
}

func (g *commandGen) account() quota.AccountKey { return g.accounts[g.rng.IntN(len(g.accounts))] }

func (g *commandGen) facility() string { return fmt.Sprintf("f-%03d", g.rng.IntN(80)) }

// amount is usually in a realistic range, sometimes zero, negative, beyond
// any budget line, or large.
func (g *commandGen) amount(scale int64) int64 {
	switch g.rng.IntN(40) {
	case 0:
		return 0
	case 1:
		return -g.rng.Int64N(scale)
	case 2:
		return quota.MaxAmountRials + 1
	case 3:
		return scale * 10 // valid, but usually more than is free
	}
	return 1 + g.rng.Int64N(scale)
}

// next draws a command; it looks at the ledger only to release, half the
// time, exactly what a facility's charge holds, so that charges close and
// facilities are charged again.
func (g *commandGen) next(l quota.Ledger) quota.Command {
	program := program
	if g.rng.IntN(100) == 0 {
		program = "quick-yield" // a command routed to the wrong ledger
	}
	switch r := g.rng.IntN(100); {
	case r < 10:
		return quota.Allocate{
			FiscalYear: fy, Program: program, Account: g.account(), AmountRials: g.amount(5_000_000_000),
			JobsTarget: g.rng.IntN(60), LegalBasis: "1403 budget law note 18", DecisionRef: "dec", At: at(),
		}
	case r < 30:
		id := fmt.Sprintf("tr-%d", g.transfers)
		if g.rng.IntN(10) == 0 && g.transfers > 0 {
			id = fmt.Sprintf("tr-%d", g.rng.IntN(g.transfers)) // a duplicate id
		} else {
			g.transfers++
		}
		return quota.Transfer{
			FiscalYear: fy, Program: program, TransferID: id, From: g.account(), To: g.account(),
			AmountRials: g.amount(3_000_000_000), JobsTarget: g.rng.IntN(30),
			LegalBasis: "1403 budget law note 15", DecisionRef: "dec", At: at(),
		}
	case r < 65:
		return quota.Charge{
			FiscalYear: fy, Program: program, Account: g.account(), FacilityID: g.facility(),
			AmountRials: g.amount(2_000_000_000), At: at(),
		}
	case r < 90:
		facility, amount := g.facility(), g.amount(2_000_000_000)
		if c, ok := l.Charge(facility); ok && g.rng.IntN(2) == 0 {
			amount = c.OutstandingRials()
		}
		return quota.ReleaseCharge{
			FiscalYear: fy, Program: program, FacilityID: facility,
			AmountRials: amount, Reason: "facility closed", At: at(),
		}
	default:
		event := "ev-unknown"
		if len(g.allocations) > 0 && g.rng.IntN(10) > 0 {
			event = g.allocations[g.rng.IntN(len(g.allocations))]
		}
		return quota.CorrectAllocation{
			FiscalYear: fy, Program: program, CorrectsEventID: event,
			AmountRials: g.amount(5_000_000_000), JobsTarget: g.rng.IntN(60), Reason: "correction", At: at(),
		}
	}
}

// TestRandomCommandsKeepTheLedgerBalanced runs 10,000 random commands and
// checks, after every accepted one, that no free balance is negative and
// that the ledger conserves quota; rejected commands must fail with one of
// the domain's errors and no events.
func TestRandomCommandsKeepTheLedgerBalanced(t *testing.T) {
	g := &commandGen{
		rng: rand.New(rand.NewPCG(1403, 18)),
		accounts: []quota.AccountKey{
			arak(), welfare(), tehran(),
			{Agency: "agriculture-jihad", Province: "IR-00", County: "IR-00-khomein"},
			{Agency: "welfare", Province: "IR-23", County: "IR-23-pardis"},
		},
	}
	d := quota.Decider()
	l := d.Initial()
	accepted, rejected := map[string]int{}, map[string]int{}
	for i := range 10_000 {
		cmd := g.next(l)
		kind := fmt.Sprintf("%T", cmd)
		events, err := d.Decide(l, cmd)
		if err != nil {
			require.Nil(t, events)
			require.True(t, errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrNotFound) ||
				errors.Is(err, domain.ErrConflict), "command %d (%+v): unexpected error %v", i, cmd, err)
			var qe *domain.QuotaExceededError
			if errors.As(err, &qe) {
				require.Greater(t, qe.Requested, qe.Free, "command %d: %v", i, err)
			}
			rejected[kind]++
			continue
		}
		accepted[kind]++
		for _, e := range events {
			id := fmt.Sprintf("ev-%d", l.Version()+1)
			l = d.Evolve(l, domain.Recorded{ID: id, Version: l.Version() + 1, OccurredAt: at(), Event: e})
			if _, ok := e.(quota.AllocatedV1); ok {
				g.allocations = append(g.allocations, id)
			}
		}
		for _, b := range l.Accounts() {
			require.GreaterOrEqual(t, b.FreeRials(), int64(0), "command %d: account %s", i, b.Account)
			require.GreaterOrEqual(t, b.JobsTarget, 0, "command %d: account %s", i, b.Account)
		}
		require.NoError(t, l.CheckConservation(), "after command %d (%+v)", i, cmd)
	}
	t.Logf("accepted %v; rejected %v; %d accounts, %d open charges", accepted, rejected, len(l.Accounts()), len(l.Charges()))
	for _, kind := range []string{"quota.Allocate", "quota.Transfer", "quota.Charge", "quota.ReleaseCharge", "quota.CorrectAllocation"} {
		require.Greater(t, accepted[kind], 30, "too few accepted %s for the test to mean much", kind)
		require.Greater(t, rejected[kind], 30, "too few rejected %s for the test to mean much", kind)
	}
}
