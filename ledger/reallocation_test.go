package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

// TestReallocationRace races 100 concurrent transfers, proposal approvals
// and cancellations, charges and releases on the same four accounts of one
// ledger, from two Services over one store (two processes: their appends
// meet only in the store's optimistic concurrency), on both backends. After
// the race, folded from the log: no free balance is negative, money is
// conserved (allocated = free + open charges across all accounts,
// transfers in = out), and every decided proposal has exactly the
// transfers of its approved lines.
func TestReallocationRace(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		ctx := context.Background()
		env := b.Open(t)
		services := []*ledger.Service{env.Service(t), env.Service(t)}
		const fy, program = 1403, "home-business"
		accounts := []quota.AccountKey{
			{Agency: "relief-committee", Province: "IR-00"}, {Agency: "welfare", Province: "IR-00"},
			{Agency: "relief-committee", Province: "IR-23"}, {Agency: "welfare", Province: "IR-23"},
		}
		const each = 10_000_000_000
		for _, k := range accounts {
			_, err := services[0].Quota(ctx, quota.Allocate{FiscalYear: fy, Program: program, Account: k, AmountRials: each,
				JobsTarget: 100, LegalBasis: "budget law", DecisionRef: "D-1", At: day}, backdated())
			require.NoError(t, err)
		}
		// Ten proposals, each of two lines, computed from the figures as
		// they are now.
		figures := func(k quota.AccountKey) quota.AccountFigures {
			return quota.AccountFigures{Account: k, AllocatedRials: each, AvailableRials: each, FreeRials: each, JobsTarget: 100}
		}
		var proposals []string
		for i := range 10 {
			from, to, other := accounts[i%4], accounts[(i+1)%4], accounts[(i+2)%4]
			res, err := services[0].Quota(ctx, quota.ProposeReallocation{FiscalYear: fy, Program: program, At: day,
				Lines: []quota.ProposedLine{
					{Line: 1, From: from, To: to, AmountRials: 2_000_000_000, JobsTarget: 10, Donor: figures(from), Receiver: figures(to)},
					{Line: 2, From: from, To: other, AmountRials: 1_500_000_000, Donor: figures(from), Receiver: figures(other)},
				}}, ministry)
			require.NoError(t, err)
			require.Len(t, res.EventIDs, 1)
			proposals = append(proposals, quota.ProposalID(fy, program, i+1))
		}

		var wg sync.WaitGroup
		outcomes := make([]string, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(i), 7))
				svc := services[i%2]
				var cmd quota.Command
				switch op := r.IntN(5); op {
				case 0:
					from := r.IntN(4)
					cmd = quota.Transfer{FiscalYear: fy, Program: program, TransferID: fmt.Sprintf("race-%d", i),
						From: accounts[from], To: accounts[(from+1+r.IntN(3))%4], AmountRials: 500_000_000 + r.Int64N(3_000_000_000),
						LegalBasis: "budget law", DecisionRef: fmt.Sprintf("R-%d", i), At: day}
				case 1:
					cmd = quota.ApproveReallocation{FiscalYear: fy, Program: program, ProposalID: proposals[r.IntN(len(proposals))],
						LegalBasis: "budget law", DecisionRef: fmt.Sprintf("A-%d", i), At: day}
				case 2:
					cmd = quota.CancelReallocation{FiscalYear: fy, Program: program, ProposalID: proposals[r.IntN(len(proposals))],
						Reason: "race", At: day}
				case 3:
					cmd = quota.Charge{FiscalYear: fy, Program: program, Account: accounts[r.IntN(4)],
						FacilityID: fmt.Sprintf("f-%d", i), AmountRials: 1_000_000_000 + r.Int64N(2_000_000_000), At: day}
				default:
					cmd = quota.ReleaseCharge{FiscalYear: fy, Program: program, FacilityID: fmt.Sprintf("f-%d", i-1-r.IntN(5)),
						AmountRials: 500_000_000, Reason: "race", At: day}
				}
				_, err := svc.Quota(ctx, cmd, ministry)
				var stale *quota.StaleProposalError
				switch {
				case err == nil:
					outcomes[i] = "ok"
				case errors.As(err, &stale), errors.Is(err, domain.ErrConflict), errors.Is(err, domain.ErrIllegalTransition),
					errors.Is(err, domain.ErrNotFound):
					outcomes[i] = "refused"
				default:
					outcomes[i] = fmt.Sprintf("%T: %v", cmd, err)
				}
			}()
		}
		wg.Wait()
		refused := 0
		for _, o := range outcomes {
			if o == "refused" {
				refused++
				continue
			}
			require.Equal(t, "ok", o)
		}
		t.Logf("%d of 100 commands refused by the ledger's rules", refused)

		loaded, _, err := services[0].Ledger().Load(ctx, quota.Stream(fy, program))
		require.NoError(t, err)
		l := quota.Decider().Initial()
		transfers := map[string][]int{} // by proposal, the lines transferred
		for _, ld := range loaded {
			l = quota.Evolve(l, ld.Recorded)
			require.NoError(t, l.CheckConservation(), "after %s at version %d", ld.Envelope.Type, ld.Envelope.Version)
			if tr, ok := ld.Recorded.Event.(quota.TransferredV1); ok && tr.ProposalID != "" {
				var line int
				_, err := fmt.Sscanf(tr.TransferID[len(tr.ProposalID):], "/%d", &line)
				require.NoError(t, err)
				transfers[tr.ProposalID] = append(transfers[tr.ProposalID], line)
			}
		}
		var allocated, free, open int64
		for _, bal := range l.Accounts() {
			require.GreaterOrEqual(t, bal.FreeRials(), int64(0), bal.Account.String())
			allocated += bal.AllocatedRials
			free += bal.FreeRials()
			open += bal.OpenChargesRials()
		}
		require.EqualValues(t, 4*each, allocated)
		require.Equal(t, allocated, free+open, "money is conserved")
		for _, id := range proposals {
			p, ok := l.Proposal(id)
			require.True(t, ok)
			switch p.Status {
			case quota.ProposalApproved:
				require.Equal(t, p.Approved, transfers[id], id)
			default:
				require.Empty(t, transfers[id], "%s is %s", id, p.Status)
			}
		}
	})
}
