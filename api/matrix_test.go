package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// TestRoleScopeEndpointMatrix walks every /v1 route with every role, each
// scoped role both in the scope of the facility the request is about and
// outside it, and checks that the endpoint enforces the policy: a refused
// write is a 403 that appends nothing, a refused read of one record
// outside the caller's scope is a 404 (existence does not leak), a read the
// role may never make is a 403, and everything the policy allows gets past
// authorisation (whatever the record's state then says). The policy table
// itself is checked cell by cell against an independent expectation in
// package auth; this test checks the wiring of every endpoint to it.
func TestRoleScopeEndpointMatrix(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		e.fund()
		e.ok(http.StatusCreated, asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("welfare", "IR-23", 1_000_000_000))
		alloc := e.ok(http.StatusCreated, asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("welfare", "IR-23", 1_000_000_000))
		// The facility every request is about: the Relief Committee's, in
		// Tehran, referred to Bank Melli, paid, inspected, with an audit case.
		const fid = "f-matrix"
		e.paid(fid, 1)
		jobs := e.ok(http.StatusCreated, asAgency, "/v1/facilities/"+fid+"/job-reports", map[string]any{"jobs": 2, "period": "1403-Q3"})
		e.ok(http.StatusCreated, asInspector, "/v1/facilities/"+fid+"/inspections", map[string]any{
			"inspection_id": "in-m", "guideline_version": "v1", "status": "active", "confirmed": true, "verified_jobs": 1})
		e.ok(http.StatusCreated, asProvince, "/v1/facilities/"+fid+"/deviations", map[string]any{
			"deviation_id": "dv-m", "kind": "deviation", "description": "d"})
		facility := auth.Resource{Province: "IR-23", Agency: "relief-committee", Bank: "melli"}
		engine, err := projections.New(projections.Config{Store: e.env.Store, DB: e.env.DB, Projectors: queryProjectors()})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = engine.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })

		// A pending reallocation proposal for the proposal routes.
		welfare := quota.AccountKey{Agency: "welfare", Province: "IR-23"}
		_, err = e.svc.Quota(context.Background(), quota.ProposeReallocation{FiscalYear: 1403, Program: "home-business", At: time.Now(),
			Lines: []quota.ProposedLine{{Line: 1, From: welfare, To: quota.AccountKey{Agency: "relief-committee", Province: "IR-23"},
				AmountRials: 1, Donor: quota.AccountFigures{Account: welfare, FreeRials: 1}}}}, ledger.Meta{Actor: projectionstest.Ministry})
		require.NoError(t, err)

		verification := e.startVerification(asAuditor, map[string]any{})
		asOtherFirm := auth.Principal{Subject: "markazi-firm", Role: auth.RoleInspector, Scope: auth.Scope{Kind: auth.ScopeFirm, ID: "markazi-field-monitoring"}}
		principals := []auth.Principal{asMinistry, asAuditor, asAdmin, asProvince, asOtherProvince,
			asAgency, asOtherAgency, asBank, asOtherBank, asInspector, asOtherFirm}

		seq := uint64(100)
		next := func() uint64 { seq++; return seq }
		// body returns the request body for a command route and the
		// resource the policy judges it on.
		body := func(pattern string, p auth.Principal) (any, auth.Resource) {
			n := next()
			switch {
			case pattern == "/v1/audit/verifications":
				return map[string]any{}, auth.Resource{}
			case pattern == "/v1/facilities":
				reg := cmdRegistration(fmt.Sprintf("f-m-%d", n), n)
				res := auth.Resource{Province: "IR-23"}
				if p.Role == auth.RoleAgency {
					res.Agency = p.Scope.ID // the registration is in the caller's own agency
				}
				return reg, res
			case pattern == "/v1/quota/reallocation-proposals":
				return map[string]any{"fiscal_year": 1403, "program": "home-business",
					"donors":    map[string]any{"max_absorption_pct": 50, "min_days_since_allocation": 0},
					"receivers": map[string]any{"min_unmet_demand_rials": 0}}, auth.Resource{}
			case strings.HasPrefix(pattern, "/v1/quota/reallocation-proposals/") && strings.HasSuffix(pattern, "/approval"):
				return map[string]any{"legal_basis": "b", "decision_ref": "d"}, auth.Resource{}
			case strings.HasSuffix(pattern, "/cancellation"):
				return map[string]any{"reason": "r"}, auth.Resource{}
			case strings.HasSuffix(pattern, "/review"):
				return map[string]any{"decision": "approved", "bank": "melli"}, facility
			case strings.HasSuffix(pattern, "/approval"):
				return map[string]any{"amount_rials": 1_000_000}, facility
			case strings.HasSuffix(pattern, "/rejection"):
				return map[string]any{"reason": "collateral"}, facility
			case strings.HasSuffix(pattern, "/tranches"):
				return map[string]any{"amount_rials": 1_000}, facility
			case strings.HasSuffix(pattern, "/job-reports"):
				return map[string]any{"jobs": 1, "period": "1403-Q4"}, facility
			case strings.HasSuffix(pattern, "/inspections"):
				res := facility
				res.Firm = p.Scope.ID
				return map[string]any{"inspection_id": fmt.Sprintf("in-%d", n), "guideline_version": "v1",
					"status": "active", "confirmed": true, "verified_jobs": 1}, res
			case strings.HasSuffix(pattern, "/evidence"):
				return map[string]any{"evidence": "photos"}, facility
			case strings.HasSuffix(pattern, "/resolution"):
				return map[string]any{"resolution": "corrected"}, facility
			case strings.HasSuffix(pattern, "/deviations"):
				return map[string]any{"deviation_id": fmt.Sprintf("dv-%d", n), "kind": "deviation", "description": "d"}, facility
			case strings.HasSuffix(pattern, "/corrections"):
				return map[string]any{"corrects_event_id": jobs.EventIDs[0], "field": "jobs", "new_value": 1, "reason": "r"}, facility
			case strings.HasSuffix(pattern, "/closure"):
				return map[string]any{"reason": "done"}, facility
			case strings.HasSuffix(pattern, "/allocations"):
				return cmdAllocation("relief-committee", "IR-23", 1_000), auth.Resource{}
			case strings.HasSuffix(pattern, "/transfers"):
				return map[string]any{"transfer_id": fmt.Sprintf("t-%d", n),
					"from": map[string]any{"agency": "welfare", "province": "IR-23"}, "to": map[string]any{"agency": "relief-committee", "province": "IR-23"},
					"amount_rials": 1, "legal_basis": "b", "decision_ref": "d"}, auth.Resource{}
			case strings.HasSuffix(pattern, "/allocation-corrections"):
				return map[string]any{"corrects_event_id": alloc.EventIDs[0], "amount_rials": 999_000_000, "jobs_target": 100, "reason": "r"}, auth.Resource{}
			case strings.HasSuffix(pattern, "/erasure"):
				return map[string]any{"reason": "erasure request"}, auth.Resource{}
			case strings.HasSuffix(pattern, "/names"):
				return map[string]any{"name_en": "n", "name_fa": "ن", "valid_from": "1403/01/01"}, auth.Resource{}
			case strings.HasPrefix(pattern, "/v1/reference/"):
				id := fmt.Sprintf("m-%d", n)
				switch {
				case strings.HasSuffix(pattern, "/counties"):
					return map[string]any{"id": "IR-23-" + id, "province": "IR-23", "name_en": "n", "name_fa": "ن", "valid_from": "1403/01/01"}, auth.Resource{}
				case strings.HasSuffix(pattern, "/firms"):
					return map[string]any{"id": id, "seat_province": "IR-23", "name_en": "n", "name_fa": "ن", "valid_from": "1403/01/01"}, auth.Resource{}
				}
				return map[string]any{"id": id, "name_en": "n", "name_fa": "ن", "valid_from": "1403/01/01"}, auth.Resource{}
			}
			t.Fatalf("no body for %s", pattern)
			return nil, auth.Resource{}
		}
		vars := strings.NewReplacer("{fiscal_year}", "1403", "{program}", "home-business", "{id}", fid,
			"{facility_id}", fid, "{deviation_id}", "dv-m", "{ref_id}", "melli", "{ref}", strings.Repeat("0", 64),
			"{proposal_id}", "1403.home-business.1")
		// inScope: whether a scoped principal's scope covers the facility.
		inScope := func(p auth.Principal) bool {
			switch p.Scope.Kind {
			case auth.ScopeProvince:
				return p.Scope.ID == facility.Province
			case auth.ScopeAgency:
				return p.Scope.ID == facility.Agency
			case auth.ScopeBank:
				return p.Scope.ID == facility.Bank
			}
			return true
		}

		cells := 0
		for _, rt := range e.srv.routes() {
			path := vars.Replace(rt.Pattern)
			if rt.Pattern == "/v1/quotas/agency-ranking" {
				path += "?fiscal_year=1403&program=home-business"
			}
			if rt.Pattern == "/v1/audit/verifications/{id}" {
				path = verificationsPath + "/" + verification.ID // a run this server knows
			}
			for _, p := range principals {
				cells++
				where := fmt.Sprintf("%s %s as %s", rt.Method, rt.Pattern, p)
				if rt.Method == http.MethodPost {
					b, res := body(rt.Pattern, p)
					if strings.HasSuffix(rt.Pattern, "/names") {
						path = vars.Replace(strings.Replace(rt.Pattern, "{ref_id}", refFor(rt.Pattern), 1))
					}
					want := e.srv.policy.Authorize(p, rt.Action, res)
					if strings.HasSuffix(rt.Pattern, "/corrections") {
						want = e.srv.policy.Authorize(p, auth.ActionCorrectJobs, res)
						if want == nil && p.Role == auth.RoleBank {
							// The corrected report is the agency's: whoever
							// recorded a figure corrects it.
							want = &auth.DeniedError{Denial: auth.DeniedMismatch}
						}
					}
					head := e.head()
					r := e.post(p, path, b)
					if want != nil {
						require.Equal(t, http.StatusForbidden, r.Status, "%s: %s", where, r.Body)
						require.Equal(t, head, e.head(), "%s: a refused command appends nothing", where)
					} else {
						require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.Status, "%s: %s", where, r.Body)
					}
					continue
				}
				for _, pr := range queryProjectors() {
					_, err := engine.Reader().WaitFor(context.Background(), pr.Name(), e.head(), time.Minute)
					require.NoError(t, err)
				}
				r := e.get(p, path)
				reach := e.srv.policy.Reach(p.Role, rt.Action)
				single := strings.Contains(rt.Pattern, "{")
				switch {
				case reach == auth.Nowhere:
					require.Equal(t, http.StatusForbidden, r.Status, "%s: %s", where, r.Body)
				case (rt.Pattern == "/v1/quotas/totals" || rt.Global) && reach != auth.Everywhere:
					require.Equal(t, http.StatusForbidden, r.Status, "%s: national reads: %s", where, r.Body)
				case single && reach == auth.InScope && !inScope(p):
					require.Equal(t, http.StatusNotFound, r.Status, "%s: %s", where, r.Body)
				default:
					require.Equal(t, http.StatusOK, r.Status, "%s: %s", where, r.Body)
				}
			}
		}
		require.Equal(t, len(e.srv.routes())*len(principals), cells)
	})
}

// refFor names an existing reference entity of the kind a rename route is for.
func refFor(pattern string) string {
	switch {
	case strings.Contains(pattern, "/agencies/"):
		return "welfare"
	case strings.Contains(pattern, "/banks/"):
		return "melli"
	case strings.Contains(pattern, "/programs/"):
		return "home-business"
	case strings.Contains(pattern, "/counties/"):
		return "IR-23-tehran"
	}
	return "markazi-field-monitoring"
}

// get reads path as p.
func (e *cmdEnv) get(p auth.Principal, path string) cmdReply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+e.token(p))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return cmdReply{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// A read model whose projection never ran on this database (an API node
// started before any projector) is unavailable, not an internal error.
func TestReadModelNotBuiltIsUnavailable(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		for _, path := range []string{"/v1/facilities", "/v1/job-counts", "/v1/quotas/accounts", "/v1/deviations"} {
			r := e.get(asMinistry, path)
			require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s: %s", path, r.Body)
			require.Contains(t, string(r.Body), "urn:payesh:problem:unavailable")
			require.Equal(t, "5", r.Header.Get("Retry-After"))
		}
	})
}
