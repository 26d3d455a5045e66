package auth_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
)

// grants is the expected policy, written independently of policyTable and
// transposed (role by role instead of action by action), so that a slip in
// either shows up as a failing cell. Every cell not listed is a refusal.
type grants struct {
	everywhere []auth.Action // allowed on every resource
	own        []auth.Action // allowed only on resources in the principal's scope
}

var (
	allReads = []auth.Action{
		auth.ActionReadFacilities, auth.ActionReadJobCounts, auth.ActionReadQuotas, auth.ActionReadBanks,
		auth.ActionReadInspections, auth.ActionReadDeviations, auth.ActionReadReference,
		auth.ActionReadEvents, auth.ActionVerifyLog,
	}
	expected = map[auth.Role]grants{
		// Every read but the last, ActionVerifyLog: verifying the whole log
		// is for auditors and the admin.
		auth.RoleMinistry: {everywhere: append([]auth.Action{
			auth.ActionAllocateQuota, auth.ActionTransferQuota, auth.ActionReallocateQuota, auth.ActionCorrectAllocation,
			auth.ActionOpenDeviation, auth.ActionAddDeviationEvidence, auth.ActionResolveDeviation,
		}, allReads[:len(allReads)-1]...)},
		auth.RoleProvinceOffice: {
			everywhere: []auth.Action{auth.ActionReadReference},
			own: []auth.Action{
				auth.ActionOpenDeviation, auth.ActionAddDeviationEvidence, auth.ActionResolveDeviation,
				auth.ActionReadFacilities, auth.ActionReadJobCounts, auth.ActionReadQuotas, auth.ActionReadBanks,
				auth.ActionReadInspections, auth.ActionReadDeviations, auth.ActionReadEvents,
			},
		},
		auth.RoleAgency: {
			everywhere: []auth.Action{auth.ActionReadReference},
			own: []auth.Action{
				auth.ActionRegisterFacility, auth.ActionReviewFacility, auth.ActionReportJobs,
				auth.ActionCorrectRegistration, auth.ActionCorrectJobs, auth.ActionCloseFacility,
				auth.ActionReadFacilities, auth.ActionReadJobCounts, auth.ActionReadQuotas, auth.ActionReadBanks,
				auth.ActionReadInspections, auth.ActionReadDeviations, auth.ActionReadEvents,
			},
		},
		auth.RoleBank: {
			everywhere: []auth.Action{auth.ActionReadReference},
			own: []auth.Action{
				auth.ActionApproveLoan, auth.ActionRejectLoan, auth.ActionDisburseTranche, auth.ActionReportJobs,
				auth.ActionCorrectJobs, auth.ActionCorrectTranche,
				auth.ActionReadFacilities, auth.ActionReadJobCounts, auth.ActionReadBanks,
				auth.ActionReadInspections, auth.ActionReadDeviations, auth.ActionReadEvents,
			},
		},
		auth.RoleInspector: {
			everywhere: []auth.Action{auth.ActionReadReference, auth.ActionReadFacilities},
			own:        []auth.Action{auth.ActionRecordInspection, auth.ActionCorrectInspection, auth.ActionReadInspections},
		},
		auth.RoleAuditor: {everywhere: append([]auth.Action{auth.ActionOpenDeviation, auth.ActionAddDeviationEvidence}, allReads...)},
		auth.RoleAdmin:   {everywhere: append([]auth.Action{auth.ActionManageReference, auth.ActionEraseApplicant}, allReads...)},
	}
)

// everyAction is the list of actions the brief asks for, written out so
// that an action added to or dropped from the policy fails the test.
var everyAction = append([]auth.Action{
	auth.ActionAllocateQuota, auth.ActionTransferQuota, auth.ActionReallocateQuota, auth.ActionCorrectAllocation,
	auth.ActionRegisterFacility, auth.ActionReviewFacility, auth.ActionApproveLoan, auth.ActionRejectLoan,
	auth.ActionDisburseTranche, auth.ActionReportJobs, auth.ActionRecordInspection,
	auth.ActionOpenDeviation, auth.ActionAddDeviationEvidence, auth.ActionResolveDeviation,
	auth.ActionCorrectRegistration, auth.ActionCorrectJobs, auth.ActionCorrectInspection, auth.ActionCorrectTranche,
	auth.ActionCloseFacility, auth.ActionManageReference, auth.ActionEraseApplicant,
}, allReads...)

// scopeOf names, per role, the resource attribute its scope is compared
// with ("" for national roles); the test's own knowledge, not the
// package's.
var scopeOf = map[auth.Role]string{
	auth.RoleMinistry: "", auth.RoleAuditor: "", auth.RoleAdmin: "",
	auth.RoleProvinceOffice: "province", auth.RoleAgency: "agency", auth.RoleBank: "bank", auth.RoleInspector: "firm",
}

// Two organisations of each kind, all in the default catalogue.
var orgs = map[string][2]string{
	"province": {"IR-23", "IR-05"},
	"agency":   {"welfare", "barakat"},
	"bank":     {"melli", "sepah"},
	"firm":     {"tehran-field-monitoring", "kermanshah-field-monitoring"},
}

func attr(r auth.Resource, name string) string {
	switch name {
	case "province":
		return r.Province
	case "agency":
		return r.Agency
	case "bank":
		return r.Bank
	case "firm":
		return r.Firm
	}
	return ""
}

func withAttr(r auth.Resource, name, v string) auth.Resource {
	switch name {
	case "province":
		r.Province = v
	case "agency":
		r.Agency = v
	case "bank":
		r.Bank = v
	case "firm":
		r.Firm = v
	}
	return r
}

// resources returns the resources every cell is tried on: everything of
// the first organisations; the same with one attribute moved to the second
// organisation or emptied (so a rule that checks the wrong attribute
// fails); and the empty resource.
func resources() map[string]auth.Resource {
	home := auth.Resource{}
	for name, o := range orgs {
		home = withAttr(home, name, o[0])
	}
	out := map[string]auth.Resource{"home": home, "empty": {}}
	for name, o := range orgs {
		out["other "+name] = withAttr(home, name, o[1])
		out["no "+name] = withAttr(home, name, "")
	}
	return out
}

func TestPolicyCoversEveryActionAndRole(t *testing.T) {
	require.ElementsMatch(t, everyAction, auth.Actions())
	roles := make([]auth.Role, 0, len(expected))
	for r, g := range expected {
		roles = append(roles, r)
		for _, a := range append(slices.Clone(g.everywhere), g.own...) {
			require.Contains(t, everyAction, a, "expectation for %s names an unknown action", r)
		}
		for _, a := range g.own {
			require.NotContains(t, g.everywhere, a, "%s: %s listed twice", r, a)
		}
	}
	require.ElementsMatch(t, auth.Roles(), roles)
}

// TestPolicyMatrix walks every role × scope (two of each kind for scoped
// roles) × every action × every resource variant, in scope and out of it,
// and checks each cell against expected.
func TestPolicyMatrix(t *testing.T) {
	pol := auth.DefaultPolicy()
	cells := 0
	for _, role := range auth.Roles() {
		g := expected[role]
		kind := scopeOf[role]
		scopes := []string{""} // national roles have one scope
		if kind != "" {
			scopes = []string{orgs[kind][0], orgs[kind][1]}
		}
		for _, id := range scopes {
			p := auth.Principal{Subject: "s", Role: role, Scope: auth.Scope{Kind: role.ScopeKind(), ID: id}}
			require.NoError(t, p.Validate(nil))
			for _, a := range everyAction {
				t.Run(fmt.Sprintf("%s/%s/%s", role, p.Scope, a), func(t *testing.T) {
					for name, res := range resources() {
						cells++
						err := pol.Authorize(p, a, res)
						switch {
						case slices.Contains(g.everywhere, a):
							require.NoError(t, err, name)
							require.Equal(t, auth.Everywhere, pol.Reach(role, a))
						case slices.Contains(g.own, a) && attr(res, kind) == p.Scope.ID:
							require.NoError(t, err, name)
							require.Equal(t, auth.InScope, pol.Reach(role, a))
						case slices.Contains(g.own, a):
							requireDenied(t, err, a, p, auth.DeniedScope)
						default:
							requireDenied(t, err, a, p, auth.DeniedRole)
							require.Equal(t, auth.Nowhere, pol.Reach(role, a))
						}
					}
				})
			}
		}
	}
	// (3 national roles + 4 scoped roles × 2 scopes) × 30 actions × 10 resources
	require.Equal(t, (3+4*2)*30*10, cells)
}

func requireDenied(t *testing.T, err error, a auth.Action, p auth.Principal, want auth.Denial) {
	t.Helper()
	require.ErrorIs(t, err, auth.ErrForbidden)
	require.NotErrorIs(t, err, auth.ErrUnauthenticated)
	var de *auth.DeniedError
	require.ErrorAs(t, err, &de)
	require.Equal(t, want, de.Denial, de.Reason)
	require.Equal(t, a, de.Action)
	require.Equal(t, p.Role, de.Role)
	require.Equal(t, p.Scope, de.Scope)
	require.NotEmpty(t, de.Reason)
	require.NotEmpty(t, de.ReasonFa)
}

func TestReadFilter(t *testing.T) {
	pol := auth.DefaultPolicy()
	for _, role := range auth.Roles() {
		p := auth.DevPrincipal(role)
		for _, a := range allReads {
			t.Run(string(role)+"/"+string(a), func(t *testing.T) {
				f, err := pol.ReadFilter(p, a)
				g := expected[role]
				switch {
				case slices.Contains(g.everywhere, a):
					require.NoError(t, err)
					require.True(t, f.IsZero())
				case slices.Contains(g.own, a):
					require.NoError(t, err)
					want := auth.Filter{}
					switch scopeOf[role] {
					case "province":
						want.Province = p.Scope.ID
					case "agency":
						want.Agency = p.Scope.ID
					case "bank":
						want.Bank = p.Scope.ID
					case "firm":
						want.Firm = p.Scope.ID
					}
					require.Equal(t, want, f)
					require.False(t, f.IsZero())
				default:
					requireDenied(t, err, a, p, auth.DeniedRole)
				}
			})
		}
	}
	t.Run("write actions are not reads", func(t *testing.T) {
		_, err := pol.ReadFilter(auth.DevPrincipal(auth.RoleMinistry), auth.ActionAllocateQuota)
		require.ErrorIs(t, err, auth.ErrUnknownAction)
	})
	t.Run("scoped principal without a scope ID reads nothing", func(t *testing.T) {
		_, err := pol.ReadFilter(auth.Principal{Subject: "x", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank}}, auth.ActionReadFacilities)
		require.ErrorIs(t, err, auth.ErrForbidden)
	})
}

func TestPolicyFailsClosed(t *testing.T) {
	t.Run("empty scope ID never matches an empty attribute", func(t *testing.T) {
		for _, role := range []auth.Role{auth.RoleProvinceOffice, auth.RoleAgency, auth.RoleBank, auth.RoleInspector} {
			p := auth.Principal{Subject: "x", Role: role, Scope: auth.Scope{Kind: role.ScopeKind()}}
			for _, a := range expected[role].own {
				require.ErrorIs(t, auth.DefaultPolicy().Authorize(p, a, auth.Resource{}), auth.ErrForbidden, "%s %s", role, a)
			}
		}
	})
	t.Run("scope kind that does not fit the role", func(t *testing.T) {
		p := auth.Principal{Subject: "x", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeProvince, ID: "melli"}}
		err := auth.DefaultPolicy().Authorize(p, auth.ActionApproveLoan, auth.Resource{Province: "melli", Bank: "melli"})
		require.ErrorIs(t, err, auth.ErrForbidden)
		_, err = auth.DefaultPolicy().ReadFilter(p, auth.ActionReadFacilities)
		require.ErrorIs(t, err, auth.ErrForbidden)
	})
	t.Run("unknown role", func(t *testing.T) {
		p := auth.Principal{Subject: "x", Role: "governor", Scope: auth.National}
		for _, a := range everyAction {
			require.ErrorIs(t, auth.DefaultPolicy().Authorize(p, a, auth.Resource{}), auth.ErrForbidden, a)
		}
	})
	t.Run("zero policy refuses everything", func(t *testing.T) {
		var zero auth.Policy
		for _, a := range everyAction {
			err := zero.Authorize(auth.DevPrincipal(auth.RoleAdmin), a, auth.Resource{})
			require.ErrorIs(t, err, auth.ErrUnknownAction, a)
			require.NotErrorIs(t, err, auth.ErrForbidden)
		}
	})
	t.Run("unknown action is an error, not a grant", func(t *testing.T) {
		err := auth.DefaultPolicy().Authorize(auth.DevPrincipal(auth.RoleAdmin), "facility.teleport", auth.Resource{})
		require.ErrorIs(t, err, auth.ErrUnknownAction)
		require.Equal(t, auth.Nowhere, auth.DefaultPolicy().Reach(auth.RoleAdmin, "facility.teleport"))
	})
}

func TestDeniedReasons(t *testing.T) {
	pol := auth.DefaultPolicy()
	bank := auth.DevPrincipal(auth.RoleBank) // melli
	err := pol.Authorize(bank, auth.ActionApproveLoan, auth.Resource{Province: "IR-23", Agency: "welfare", Bank: "sepah"})
	require.EqualError(t, err, `auth: forbidden: bank may approve loans only within its own bank "melli"; this resource's referred bank is "sepah"`)

	err = pol.Authorize(bank, auth.ActionApproveLoan, auth.Resource{Province: "IR-23"})
	require.EqualError(t, err, `auth: forbidden: bank may approve loans only within its own bank "melli"; this resource's referred bank is none`)

	err = pol.Authorize(auth.DevPrincipal(auth.RoleAuditor), auth.ActionResolveDeviation, auth.Resource{})
	require.EqualError(t, err, "auth: forbidden: the auditor role may not resolve deviation cases; allowed: ministry, province_office (own province)")
	var de *auth.DeniedError
	require.ErrorAs(t, err, &de)
	require.Equal(t, "نقش «حسابرس» اجازهٔ «مختومه کردن پرونده انحراف» را ندارد", de.ReasonFa)
}

func TestNarrow(t *testing.T) {
	for _, tc := range []struct {
		client, mandatory, want string
		ok                      bool
	}{
		{"", "", "", true},
		{"IR-05", "", "IR-05", true},
		{"", "IR-23", "IR-23", true},
		{"IR-23", "IR-23", "IR-23", true},
		{"IR-05", "IR-23", "", false},
	} {
		got, ok := auth.Narrow(tc.client, tc.mandatory)
		require.Equal(t, tc.want, got, "%+v", tc)
		require.Equal(t, tc.ok, ok, "%+v", tc)
	}
}
