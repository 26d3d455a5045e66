package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

// post sends a JSON command as p.
func (e *queryEnv) post(t *testing.T, p auth.Principal, path string, body any) qReply {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token(t, p))
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return qReply{status: res.StatusCode, header: res.Header, body: out}
}

// TestReallocationWorkflow walks the ministry's workflow over HTTP on both
// backends: utilisation, a proposal, its approval moving the balances, a
// proposal refused because its donor's figure fell, a cancellation, and
// who may do what.
func TestReallocationWorkflow(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newQueryEnv(t, b, 10, Config{MaxWait: 5 * time.Second})
		ctx := context.Background()
		// Ledger 1404/home-business: relief-committee in IR-07 was given
		// 20,000M rials 200 days ago and has absorbed nothing; welfare in
		// IR-07 has 1,000M and four plans of 1,500M each waiting for
		// their bank.
		const fy, program = 1404, "home-business"
		old := ledger.Meta{Actor: projectionstest.Ministry, OccurredAt: time.Now().AddDate(0, 0, -200), BackdateReason: "allocated by letter"}
		donor := quota.AccountKey{Agency: "relief-committee", Province: "IR-07"}
		receiver := quota.AccountKey{Agency: "welfare", Province: "IR-07"}
		for _, a := range []struct {
			k      quota.AccountKey
			amount int64
		}{{donor, 20_000_000_000}, {receiver, 1_000_000_000}} {
			_, err := e.svc.Quota(ctx, quota.Allocate{FiscalYear: fy, Program: program, Account: a.k, AmountRials: a.amount, JobsTarget: 100,
				LegalBasis: "1404 budget law note 18", DecisionRef: "MCLS-1404-0001", At: old.OccurredAt}, old)
			require.NoError(t, err)
		}
		waitingPlans(t, e, 0, 4)
		head := e.catchUp(t)

		// Utilisation.
		var accounts qPage[quotaAccountView]
		e.ok(t, qMinistry, fmt.Sprintf("/v1/quotas/accounts?fiscal_year=%d&program=%s&province=IR-07&min_position=%d", fy, program, head), &accounts)
		require.Len(t, accounts.Items, 2)
		byAgency := map[string]quotaAccountView{}
		for _, a := range accounts.Items {
			byAgency[a.Agency] = a
		}
		require.EqualValues(t, 6_000_000_000, byAgency["welfare"].UnmetRequestedRials)
		require.NotNil(t, byAgency["relief-committee"].DaysSinceAllocation)
		require.GreaterOrEqual(t, *byAgency["relief-committee"].DaysSinceAllocation, 199)

		// The agency ranking of the ledger the demo history fills.
		var ranking agencyRanking
		e.ok(t, qAuditor, "/v1/quotas/agency-ranking?fiscal_year=1403&program=home-business", &ranking)
		require.NotEmpty(t, ranking.Items)
		require.Contains(t, ranking.Method, "verified jobs per billion rials")
		for i, a := range ranking.Items {
			require.Equal(t, i+1, a.Rank)
			if i > 0 {
				require.GreaterOrEqual(t, a.Score, ranking.Items[i-1].Score)
			}
		}
		require.Equal(t, http.StatusForbidden, e.get(t, qPrincipal(auth.RoleAgency, "welfare"), "/v1/quotas/agency-ranking?fiscal_year=1403&program=home-business").status)
		require.Equal(t, http.StatusUnprocessableEntity, e.get(t, qMinistry, "/v1/quotas/agency-ranking?fiscal_year=1403").status)

		policy := map[string]any{"fiscal_year": fy, "program": program, "scope": map[string]any{"province": "IR-07"},
			"donors":                 map[string]any{"max_absorption_pct": 30, "min_days_since_allocation": 90},
			"receivers":              map[string]any{"min_unmet_demand_rials": 1_000_000_000},
			"cap_per_transfer_rials": 0}

		// Only the ministry asks.
		r := e.post(t, qAuditor, "/v1/quota/reallocation-proposals", policy)
		require.Equal(t, http.StatusForbidden, r.status, string(r.body))

		r = e.post(t, qMinistry, "/v1/quota/reallocation-proposals", policy)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		var prop proposalAnswer
		r.json(t, &prop)
		require.Equal(t, "1404.home-business.1", prop.ProposalID)
		require.Equal(t, quota.ProposalPending, prop.Status)
		require.GreaterOrEqual(t, prop.BasedOnPosition, head)
		require.Len(t, prop.Lines, 1)
		line := prop.Lines[0]
		require.Equal(t, donor, line.From)
		require.Equal(t, receiver, line.To)
		require.EqualValues(t, 5_000_000_000, line.AmountRials, "unmet 6,000M − 1,000M free")
		require.EqualValues(t, 20_000_000_000, line.Donor.FreeRials)
		require.EqualValues(t, 6_000_000_000, line.Receiver.UnmetRequestedRials)

		var got proposalState
		e.ok(t, qAuditor, "/v1/quota/reallocation-proposals/1404.home-business.1", &got)
		require.Equal(t, prop.Lines, got.Lines)

		// Approved: the balances move.
		r = e.post(t, qMinistry, "/v1/quota/reallocation-proposals/1404.home-business.1/approval",
			map[string]any{"legal_basis": "1404 budget law note 15", "decision_ref": "MCLS-1404-0200"})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var approved CommandResult
		r.json(t, &approved)
		require.Len(t, approved.EventIDs, 2, "the approval and its transfer")
		e.ok(t, qMinistry, fmt.Sprintf("/v1/quotas/accounts?fiscal_year=%d&program=%s&province=IR-07&min_position=%d", fy, program, approved.Position), &accounts)
		for _, a := range accounts.Items {
			byAgency[a.Agency] = a
		}
		require.EqualValues(t, 15_000_000_000, byAgency["relief-committee"].FreeRials)
		require.EqualValues(t, 6_000_000_000, byAgency["welfare"].FreeRials)
		e.ok(t, qMinistry, "/v1/quota/reallocation-proposals/1404.home-business.1", &got)
		require.Equal(t, quota.ProposalApproved, got.Status)
		require.Equal(t, []int{1}, got.ApprovedLines)

		// A second proposal for the remaining need; then the donor gives
		// quota away elsewhere before the approval: refused, nothing moves.
		more := map[string]any{"fiscal_year": fy, "program": program,
			"donors": map[string]any{"max_absorption_pct": 30, "min_days_since_allocation": 90}, "receivers": map[string]any{"min_unmet_demand_rials": 0}}
		e.catchUp(t)
		// Two more plans wait in IR-07.
		waitingPlans(t, e, 4, 6)
		e.catchUp(t)
		r = e.post(t, qMinistry, "/v1/quota/reallocation-proposals", more)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		r.json(t, &prop)
		require.Equal(t, "1404.home-business.2", prop.ProposalID)
		tr := e.post(t, qMinistry, fmt.Sprintf("/v1/quotas/%d/%s/transfers", fy, program), map[string]any{
			"transfer_id": "elsewhere-1", "from": map[string]any{"agency": "relief-committee", "province": "IR-07"},
			"to": map[string]any{"agency": "welfare", "province": "IR-23"}, "amount_rials": 1_000_000_000,
			"legal_basis": "1404 budget law note 15", "decision_ref": "MCLS-1404-0201"})
		require.Equal(t, http.StatusCreated, tr.status, string(tr.body))
		r = e.post(t, qMinistry, "/v1/quota/reallocation-proposals/1404.home-business.2/approval",
			map[string]any{"legal_basis": "1404 budget law note 15", "decision_ref": "MCLS-1404-0202"})
		require.Equal(t, http.StatusConflict, r.status, string(r.body))
		var stale struct {
			Type       string            `json:"type"`
			ProposalID string            `json:"proposal_id"`
			Lines      []quota.StaleLine `json:"stale_lines"`
		}
		r.json(t, &stale)
		require.Equal(t, ProblemTypeBase+"conflict", stale.Type)
		require.Equal(t, "1404.home-business.2", stale.ProposalID)
		require.Len(t, stale.Lines, 1)
		require.EqualValues(t, 15_000_000_000, stale.Lines[0].Proposed)
		require.EqualValues(t, 14_000_000_000, stale.Lines[0].Current)
		e.ok(t, qMinistry, "/v1/quota/reallocation-proposals/1404.home-business.2", &got)
		require.Equal(t, quota.ProposalPending, got.Status, "nothing was recorded")

		// Cancelled; then it cannot be approved.
		r = e.post(t, qMinistry, "/v1/quota/reallocation-proposals/1404.home-business.2/cancellation", map[string]any{"reason": "figures moved"})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		r = e.post(t, qMinistry, "/v1/quota/reallocation-proposals/1404.home-business.2/approval",
			map[string]any{"legal_basis": "x", "decision_ref": "y"})
		require.Equal(t, http.StatusConflict, r.status, string(r.body))

		// A policy nothing meets records nothing; unknown proposals are 404.
		none := map[string]any{"fiscal_year": fy, "program": program,
			"donors": map[string]any{"max_absorption_pct": 0, "min_days_since_allocation": 0}, "receivers": map[string]any{"min_unmet_demand_rials": 0}}
		before := e.env.Head(t)
		r = e.post(t, qMinistry, "/v1/quota/reallocation-proposals", none)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
		require.Equal(t, before, e.env.Head(t))
		require.Equal(t, http.StatusNotFound, e.get(t, qMinistry, "/v1/quota/reallocation-proposals/1404.home-business.9").status)
		require.Equal(t, http.StatusNotFound, e.get(t, qMinistry, "/v1/quota/reallocation-proposals/nonsense").status)
	})
}

// waitingPlans registers plans from to to (exclusive) of 1,500M rials for
// welfare in IR-07, ledger 1404/home-business, reviewed and referred to a
// bank: unmet demand on welfare's account.
func waitingPlans(t *testing.T, e *queryEnv, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		id := fmt.Sprintf("realloc-%d", i)
		_, err := e.svc.Register(ctx, ledger.RegisterFacility{
			Register: facility.Register{FacilityID: id, FiscalYear: 1404, Program: "home-business", Agency: "welfare", Province: "IR-07",
				Title: "waiting for quota", RequestedRials: 1_500_000_000, JobsPromised: 2, At: time.Now()},
			Applicant: applicant.Personal{NationalID: nationalid.Generate(uint64(90_000 + i)), Name: "W", Phone: "09120000005"},
		}, ledger.Meta{Actor: projectionstest.Ministry})
		require.NoError(t, err)
		_, err = e.svc.Facility(ctx, facility.Review{FacilityID: id, Decision: facility.ReviewApproved, Bank: "melli", Expert: "x-1", At: time.Now()},
			ledger.Meta{Actor: projectionstest.Ministry})
		require.NoError(t, err)
	}
}
