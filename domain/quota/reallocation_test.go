package quota_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
)

func pct(v float64) *float64 { return &v }
func days(n int) *int        { return &n }

// figures is an account's projected figures as the read model gives them.
func figures(k quota.AccountKey, allocated, charged, free, unmet int64, jobs int, sinceDays int) quota.AccountFigures {
	f := quota.AccountFigures{
		Account: k, AllocatedRials: allocated, AvailableRials: allocated, ChargedRials: charged, FreeRials: free,
		JobsTarget: jobs, DaysSinceAllocation: days(sinceDays), UnmetRequestedRials: unmet, UnmetFacilities: unmet / 1_000_000_000,
	}
	if allocated > 0 {
		f.AbsorptionPct = pct(100 * float64(charged) / float64(allocated))
	}
	return f
}

func policy() quota.Policy {
	return quota.Policy{MaxAbsorptionPct: 30, MinDaysSinceAllocation: 90, MinUnmetDemandRials: 1_000_000_000}
}

func TestProposePicksDonorsAndReceiversByPolicy(t *testing.T) {
	bushehr := quota.AccountKey{Agency: "welfare", Province: "IR-18"}
	fresh := quota.AccountKey{Agency: "acecr", Province: "IR-00"}
	accounts := []quota.AccountFigures{
		figures(arak(), 10_000_000_000, 1_000_000_000, 9_000_000_000, 0, 100, 200),            // 10% absorbed: donor
		figures(bushehr, 8_000_000_000, 2_000_000_000, 6_000_000_000, 0, 80, 120),             // 25%: donor, second
		figures(fresh, 8_000_000_000, 0, 8_000_000_000, 0, 80, 10),                            // allocated 10 days ago: not yet
		figures(welfare(), 5_000_000_000, 5_000_000_000, 0, 7_000_000_000, 50, 200),           // needs 7,000M
		figures(tehran(), 20_000_000_000, 19_500_000_000, 500_000_000, 1_200_000_000, 0, 200), // needs 700M: below threshold
	}
	lines := quota.Propose(accounts, policy())
	require.Len(t, lines, 1)
	l := lines[0]
	require.Equal(t, 1, l.Line)
	require.Equal(t, arak(), l.From, "the least absorbing donor first")
	require.Equal(t, welfare(), l.To)
	require.EqualValues(t, 7_000_000_000, l.AmountRials, "the receiver's whole need")
	require.Equal(t, 70, l.JobsTarget, "jobs move in proportion: 100 jobs × 7,000M / 10,000M")
	require.EqualValues(t, 9_000_000_000, l.Donor.FreeRials)
	require.EqualValues(t, 7_000_000_000, l.Receiver.UnmetRequestedRials)

	// A cap splits the need across donors, one capped line each.
	p := policy()
	p.CapPerTransferRials = 4_000_000_000
	lines = quota.Propose(accounts, p)
	require.Len(t, lines, 2)
	require.Equal(t, arak(), lines[0].From)
	require.EqualValues(t, 4_000_000_000, lines[0].AmountRials)
	require.Equal(t, bushehr, lines[1].From)
	require.EqualValues(t, 3_000_000_000, lines[1].AmountRials)
	require.Equal(t, 2, lines[1].Line)

	// A scope keeps both sides inside it.
	p = policy()
	p.Scope.Province = "IR-18"
	require.Empty(t, quota.Propose(accounts, p), "no receiver in IR-18")
	p.Scope.Province = "IR-00"
	lines = quota.Propose(accounts, p)
	require.Len(t, lines, 1)
	require.Equal(t, "IR-00", lines[0].From.Province)
	require.Equal(t, "IR-00", lines[0].To.Province)
}

// proposed returns a ledger where arak (10,000M, 100 jobs, 1,000M charged)
// and welfare (5,000M, all charged) have a pending proposal
// 1403.home-business.1 of two lines from arak to welfare: 3,000M and
// 2,000M.
func proposed(t *testing.T) quota.Ledger {
	t.Helper()
	l := fold(t,
		allocated(arak(), 10_000_000_000, 100),
		allocated(welfare(), 5_000_000_000, 50),
		charged(arak(), "f-1", 1_000_000_000),
		charged(welfare(), "f-2", 5_000_000_000),
	)
	donor := figures(arak(), 10_000_000_000, 1_000_000_000, 9_000_000_000, 0, 100, 200)
	receiver := figures(welfare(), 5_000_000_000, 5_000_000_000, 0, 7_000_000_000, 50, 200)
	evs, err := quota.Decide(l, quota.ProposeReallocation{
		FiscalYear: fy, Program: program, Policy: policy(), BasedOnPosition: 42, At: at(),
		Lines: []quota.ProposedLine{
			{Line: 1, From: arak(), To: welfare(), AmountRials: 3_000_000_000, JobsTarget: 30, Donor: donor, Receiver: receiver},
			{Line: 2, From: arak(), To: welfare(), AmountRials: 2_000_000_000, JobsTarget: 20, Donor: donor, Receiver: receiver},
		},
	})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	e := evs[0].(quota.ReallocationProposedV1)
	require.Equal(t, "1403.home-business.1", e.ProposalID)
	require.EqualValues(t, 42, e.BasedOnPosition)
	return apply(l, evs...)
}

func apply(l quota.Ledger, evs ...domain.Event) quota.Ledger {
	for _, e := range evs {
		l = quota.Evolve(l, domain.Recorded{Event: e})
	}
	return l
}

func approve(lines ...int) quota.ApproveReallocation {
	return quota.ApproveReallocation{FiscalYear: fy, Program: program, ProposalID: "1403.home-business.1", Lines: lines,
		LegalBasis: "1403 budget law note 15", DecisionRef: "MCLS-1403-0200", At: at()}
}

func TestApprovingAProposalTransfersItsLinesAtomically(t *testing.T) {
	l := proposed(t)
	p, ok := l.Proposal("1403.home-business.1")
	require.True(t, ok)
	require.Equal(t, quota.ProposalPending, p.Status)

	evs, err := quota.Decide(l, approve())
	require.NoError(t, err)
	require.Len(t, evs, 3, "the approval and one transfer per line, in one append")
	require.Equal(t, []int{1, 2}, evs[0].(quota.ReallocationApprovedV1).Lines)
	tr := evs[1].(quota.TransferredV1)
	require.Equal(t, "1403.home-business.1/1", tr.TransferID)
	require.Equal(t, "1403.home-business.1", tr.ProposalID)
	require.Equal(t, "MCLS-1403-0200", tr.DecisionRef)
	l = apply(l, evs...)
	from, _ := l.Account(arak())
	to, _ := l.Account(welfare())
	require.EqualValues(t, 4_000_000_000, from.FreeRials())
	require.EqualValues(t, 5_000_000_000, to.FreeRials())
	require.Equal(t, 50, from.JobsTarget)
	require.NoError(t, l.CheckConservation())
	p, _ = l.Proposal("1403.home-business.1")
	require.Equal(t, quota.ProposalApproved, p.Status)

	// Decided once: a second approval or a cancellation is refused.
	_, err = quota.Decide(l, approve())
	require.ErrorIs(t, err, domain.ErrIllegalTransition)
	_, err = quota.Decide(l, quota.CancelReallocation{FiscalYear: fy, Program: program, ProposalID: p.ID, Reason: "late", At: at()})
	require.ErrorIs(t, err, domain.ErrIllegalTransition)
}

func TestApprovingInPart(t *testing.T) {
	l := proposed(t)
	evs, err := quota.Decide(l, approve(2))
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, []int{2}, evs[0].(quota.ReallocationApprovedV1).Lines)
	require.EqualValues(t, 2_000_000_000, evs[1].(quota.TransferredV1).AmountRials)

	for _, bad := range [][]int{{3}, {0}, {1, 1}} {
		_, err := quota.Decide(l, approve(bad...))
		var ve *domain.ValidationError
		require.ErrorAs(t, err, &ve, "%v", bad)
	}
}

func TestApprovalRefusesLinesWhoseDonorFellAndRecordsNothing(t *testing.T) {
	l := proposed(t)
	// Since the proposal, arak approved another loan: 9,000M free became
	// 8,500M.
	l = apply(l, charged(arak(), "f-3", 500_000_000))
	evs, err := quota.Decide(l, approve())
	require.Nil(t, evs)
	require.ErrorIs(t, err, domain.ErrConflict)
	var stale *quota.StaleProposalError
	require.True(t, errors.As(err, &stale))
	require.Len(t, stale.Lines, 2, "every line from the donor, each named")
	require.Equal(t, quota.StaleLine{Line: 1, Donor: arak(), Amount: 3_000_000_000, Proposed: 9_000_000_000, Current: 8_500_000_000,
		Reason: stale.Lines[0].Reason}, stale.Lines[0])
	require.Contains(t, stale.Lines[0].Reason, "had 9000000000 rials free when proposed and has 8500000000 now")
	p, _ := l.Proposal("1403.home-business.1")
	require.Equal(t, quota.ProposalPending, p.Status, "still pending: it can be cancelled, or proposed afresh")

	// The invariants hold whatever the proposal said: a donor drained
	// below a line's amount is refused even if its figure did not fall
	// (a proposal recorded from figures the ledger never had).
	l = proposed(t)
	l = apply(l, charged(arak(), "f-4", 8_500_000_000)) // 500M free
	_, err = quota.Decide(l, approve(1))
	require.ErrorAs(t, err, &stale)
}

func TestCancelAndUnknownProposals(t *testing.T) {
	l := proposed(t)
	cancel := quota.CancelReallocation{FiscalYear: fy, Program: program, ProposalID: "1403.home-business.1", Reason: "superseded", At: at()}
	evs, err := quota.Decide(l, cancel)
	require.NoError(t, err)
	l = apply(l, evs...)
	p, _ := l.Proposal("1403.home-business.1")
	require.Equal(t, quota.ProposalCancelled, p.Status)
	_, err = quota.Decide(l, approve())
	require.ErrorIs(t, err, domain.ErrIllegalTransition)

	a := approve()
	a.ProposalID = "1403.home-business.9"
	_, err = quota.Decide(l, a)
	require.ErrorIs(t, err, domain.ErrNotFound)

	// The next proposal of the ledger is number 2.
	donor := figures(arak(), 10_000_000_000, 1_000_000_000, 9_000_000_000, 0, 100, 200)
	evs, err = quota.Decide(l, quota.ProposeReallocation{FiscalYear: fy, Program: program, Policy: policy(), At: at(),
		Lines: []quota.ProposedLine{{Line: 1, From: arak(), To: welfare(), AmountRials: 1, Donor: donor}}})
	require.NoError(t, err)
	require.Equal(t, "1403.home-business.2", evs[0].(quota.ReallocationProposedV1).ProposalID)

	// A proposal without lines, or with a line from an account the ledger
	// does not have, is refused.
	_, err = quota.Decide(l, quota.ProposeReallocation{FiscalYear: fy, Program: program, Policy: policy(), At: at()})
	require.ErrorIs(t, err, domain.ErrInvalid)
	_, err = quota.Decide(l, quota.ProposeReallocation{FiscalYear: fy, Program: program, Policy: policy(), At: at(),
		Lines: []quota.ProposedLine{{Line: 1, From: tehran(), To: welfare(), AmountRials: 1}}})
	require.ErrorIs(t, err, domain.ErrNotFound)
}

func TestProposalIDs(t *testing.T) {
	id := quota.ProposalID(1403, "home-business", 7)
	require.Equal(t, "1403.home-business.7", id)
	fy, prog, ok := quota.ParseProposalID(id)
	require.True(t, ok)
	require.Equal(t, 1403, fy)
	require.Equal(t, "home-business", prog)
	for _, bad := range []string{"", "1403.home-business", "1403.home-business.0", "x.home-business.1", "1403.Home.1", "1403.a.b.1"} {
		_, _, ok := quota.ParseProposalID(bad)
		require.False(t, ok, bad)
	}
}
