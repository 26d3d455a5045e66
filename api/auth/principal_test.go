package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
)

func TestPrincipalValidate(t *testing.T) {
	cat := reference.DefaultCatalog()
	p := func(subject string, role auth.Role, kind auth.ScopeKind, id string) auth.Principal {
		return auth.Principal{Subject: subject, Role: role, Scope: auth.Scope{Kind: kind, ID: id}}
	}
	valid := []auth.Principal{
		p("deputy-1", auth.RoleMinistry, auth.ScopeNational, ""),
		p("tehran-office", auth.RoleProvinceOffice, auth.ScopeProvince, "IR-23"),
		p("alborz-office", auth.RoleProvinceOffice, auth.ScopeProvince, "IR-30"),
		p("welfare-expert-7", auth.RoleAgency, auth.ScopeAgency, "welfare"),
		p("melli-branch-0412", auth.RoleBank, auth.ScopeBank, "melli"),
		p("insp-3", auth.RoleInspector, auth.ScopeFirm, "fars-field-monitoring"),
		p("aud-1", auth.RoleAuditor, auth.ScopeNational, ""),
		p("ops", auth.RoleAdmin, auth.ScopeNational, ""),
		p("کاربر-۱", auth.RoleAuditor, auth.ScopeNational, ""), // Persian subjects are fine
	}
	for _, pr := range valid {
		require.NoError(t, pr.Validate(cat), pr.String())
		require.NoError(t, pr.Validate(nil), pr.String())
	}

	for _, tc := range []struct {
		name string
		p    auth.Principal
		want string
	}{
		{"empty subject", p("", auth.RoleMinistry, auth.ScopeNational, ""), "subject is required"},
		{"subject with space", p("a b", auth.RoleMinistry, auth.ScopeNational, ""), `subject "a b" contains white space`},
		{"subject with control", p("a\x00", auth.RoleMinistry, auth.ScopeNational, ""), "unprintable"},
		{"long subject", p(strings.Repeat("x", 129), auth.RoleMinistry, auth.ScopeNational, ""), "longer than 128"},
		{"unknown role", p("x", "governor", auth.ScopeNational, ""), `role "governor" is not one of ministry, province_office, agency, bank, inspector, auditor, admin`},
		{"bank with province scope", p("x", auth.RoleBank, auth.ScopeProvince, "IR-23"), `role bank needs a bank scope, not "province"`},
		{"province office with national scope", p("x", auth.RoleProvinceOffice, auth.ScopeNational, ""), `role province_office needs a province scope`},
		{"ministry with an ID", p("x", auth.RoleMinistry, auth.ScopeNational, "labour-ministry"), "takes no scope ID"},
		{"agency without ID", p("x", auth.RoleAgency, auth.ScopeAgency, ""), "role agency needs the ID of its agency"},
		{"empty scope kind", p("x", auth.RoleInspector, "", "fars-field-monitoring"), `role inspector needs a firm scope, not ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate(cat)
			require.ErrorIs(t, err, auth.ErrInvalidPrincipal)
			require.ErrorContains(t, err, tc.want)
			require.NotErrorIs(t, err, auth.ErrUnknownScope)
		})
	}

	for _, tc := range []struct {
		name    string
		p       auth.Principal
		withCat bool // the error needs the catalogue
	}{
		{"unknown province", p("x", auth.RoleProvinceOffice, auth.ScopeProvince, "IR-31"), false},
		{"old-style province code", p("x", auth.RoleProvinceOffice, auth.ScopeProvince, "ir-23"), false},
		{"unknown agency", p("x", auth.RoleAgency, auth.ScopeAgency, "ghost-agency"), true},
		{"unknown bank", p("x", auth.RoleBank, auth.ScopeBank, "bank-of-atlantis"), true},
		{"unknown firm", p("x", auth.RoleInspector, auth.ScopeFirm, "nobody-consulting"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate(cat)
			require.ErrorIs(t, err, auth.ErrUnknownScope)
			require.ErrorIs(t, err, auth.ErrUnauthenticated)
			var use *auth.UnknownScopeError
			require.ErrorAs(t, err, &use)
			require.Equal(t, tc.p.Scope.Kind, use.Kind)
			require.Equal(t, tc.p.Scope.ID, use.ID)
			require.ErrorContains(t, err, "no "+string(tc.p.Scope.Kind)+` "`+tc.p.Scope.ID+`" in the reference catalogue`)
			if tc.withCat {
				require.NoError(t, tc.p.Validate(nil), "without a catalogue only provinces are checked")
			} else {
				require.ErrorIs(t, tc.p.Validate(nil), auth.ErrUnknownScope)
			}
		})
	}

	t.Run("a live catalogue through CatalogFunc", func(t *testing.T) {
		added := auth.CatalogFunc(func(k reference.Kind, id string) bool { return k == reference.KindBank && id == "new-bank" })
		require.NoError(t, p("x", auth.RoleBank, auth.ScopeBank, "new-bank").Validate(added))
		require.ErrorIs(t, p("x", auth.RoleBank, auth.ScopeBank, "melli").Validate(added), auth.ErrUnknownScope)
		require.ErrorIs(t, p("x", auth.RoleInspector, auth.ScopeFirm, "new-bank").Validate(added), auth.ErrUnknownScope,
			"a firm is looked up as a firm, not as a bank")
	})
}

func TestNewPrincipal(t *testing.T) {
	pr, err := auth.NewPrincipal("melli-1", auth.RoleBank, "melli", reference.DefaultCatalog())
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Subject: "melli-1", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "melli"}}, pr)

	_, err = auth.NewPrincipal("m", auth.RoleMinistry, "IR-23", nil)
	require.ErrorIs(t, err, auth.ErrInvalidPrincipal)
}

func TestPrincipalActor(t *testing.T) {
	for _, tc := range []struct {
		p    auth.Principal
		want eventstore.Actor
	}{
		{auth.DevPrincipal(auth.RoleMinistry), eventstore.Actor{ID: "dev-ministry", Role: "ministry", Org: "labour-ministry"}},
		{auth.DevPrincipal(auth.RoleProvinceOffice), eventstore.Actor{ID: "dev-province_office", Role: "province_office", Org: "IR-23"}},
		{auth.DevPrincipal(auth.RoleAgency), eventstore.Actor{ID: "dev-agency", Role: "agency", Org: "relief-committee"}},
		{auth.DevPrincipal(auth.RoleBank), eventstore.Actor{ID: "dev-bank", Role: "bank", Org: "melli"}},
		{auth.DevPrincipal(auth.RoleInspector), eventstore.Actor{ID: "dev-inspector", Role: "inspector", Org: "tehran-field-monitoring"}},
		{auth.DevPrincipal(auth.RoleAuditor), eventstore.Actor{ID: "dev-auditor", Role: "auditor", Org: "labour-ministry"}},
		{auth.DevPrincipal(auth.RoleAdmin), eventstore.Actor{ID: "dev-admin", Role: "admin", Org: "payesh"}},
	} {
		require.Equal(t, tc.want, tc.p.Actor(), tc.p.String())
	}
}

func TestRoleScopeKinds(t *testing.T) {
	want := map[auth.Role]auth.ScopeKind{
		auth.RoleMinistry: auth.ScopeNational, auth.RoleProvinceOffice: auth.ScopeProvince,
		auth.RoleAgency: auth.ScopeAgency, auth.RoleBank: auth.ScopeBank, auth.RoleInspector: auth.ScopeFirm,
		auth.RoleAuditor: auth.ScopeNational, auth.RoleAdmin: auth.ScopeNational,
	}
	require.Len(t, auth.Roles(), len(want))
	for _, r := range auth.Roles() {
		require.Equal(t, want[r], r.ScopeKind(), r)
		require.True(t, r.Valid())
	}
	require.False(t, auth.Role("governor").Valid())
	require.Equal(t, auth.ScopeKind(""), auth.Role("").ScopeKind())
}

func TestContext(t *testing.T) {
	_, ok := auth.FromContext(context.Background())
	require.False(t, ok)
	p := auth.DevPrincipal(auth.RoleBank)
	got, ok := auth.FromContext(auth.NewContext(context.Background(), p))
	require.True(t, ok)
	require.Equal(t, p, got)
}
