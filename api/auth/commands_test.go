package auth_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
)

const fid = "f-1403-000777"

// history is a Welfare Organisation facility in Tehran referred to Bank
// Melli: ev-4 is tranche 1, ev-5 the agency's jobs report, ev-6 the bank's,
// ev-7 an inspection by Tehran's firm.
func history() []domain.Event {
	return []domain.Event{
		facility.RegisteredV1{
			FacilityID: fid, FiscalYear: 1403, Program: "home-business", Agency: "welfare",
			Province: "IR-23", County: "IR-23-pardis", Title: "bakery", RequestedRials: 900_000_000, JobsPromised: 3,
			Applicant: facility.Applicant{Ref: "app-1", KeyID: "k", Ciphertext: []byte{1}},
		},
		facility.ReviewedV1{Decision: facility.ReviewApproved, Bank: "melli", Expert: "e-1"},
		facility.LoanApprovedV1{Bank: "melli", AmountRials: 900_000_000, QuotaAccount: "welfare/IR-23"},
		facility.TrancheDisbursedV1{Tranche: 1, AmountRials: 900_000_000},
		facility.JobsReportedV1{Jobs: 3, ReportedBy: facility.ReportedByAgency},
		facility.JobsReportedV1{Jobs: 2, ReportedBy: facility.ReportedByBank},
		facility.InspectedV1{InspectionID: "in-1", Firm: "tehran-field-monitoring", GuidelineVersion: "1403.2",
			Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 2},
	}
}

func fold(t *testing.T, events []domain.Event) facility.Facility {
	t.Helper()
	d := facility.Decider()
	f := d.Initial()
	for i, e := range events {
		f = d.Evolve(f, domain.Recorded{
			ID: fmt.Sprintf("ev-%d", i+1), Stream: facility.Stream(fid), Version: uint64(i + 1),
			OccurredAt: t0.Add(time.Duration(i) * time.Hour), Event: e,
		})
	}
	return f
}

func principal(role auth.Role, id string) auth.Principal {
	return auth.Principal{Subject: "s", Role: role, Scope: auth.Scope{Kind: role.ScopeKind(), ID: id}}
}

func TestFacilityRequest(t *testing.T) {
	f := fold(t, history())
	require.Equal(t, "melli", f.Bank())
	require.Len(t, f.JobsReports(), 2)
	require.Len(t, f.Inspections(), 1)
	home := auth.Resource{Province: "IR-23", Agency: "welfare", Bank: "melli"}
	for _, tc := range []struct {
		cmd    facility.Command
		action auth.Action
		res    auth.Resource
	}{
		{facility.Review{FacilityID: fid}, auth.ActionReviewFacility, home},
		{facility.ApproveLoan{FacilityID: fid, Bank: "sepah"}, auth.ActionApproveLoan, home}, // the state's bank, not the command's
		{facility.RejectLoan{FacilityID: fid}, auth.ActionRejectLoan, home},
		{facility.DisburseTranche{FacilityID: fid}, auth.ActionDisburseTranche, home},
		{facility.ReportJobs{FacilityID: fid}, auth.ActionReportJobs, home},
		{facility.RecordInspection{FacilityID: fid, Firm: "fars-field-monitoring"}, auth.ActionRecordInspection,
			auth.Resource{Province: "IR-23", Agency: "welfare", Bank: "melli", Firm: "fars-field-monitoring"}},
		{facility.OpenDeviation{FacilityID: fid}, auth.ActionOpenDeviation, home},
		{facility.AddDeviationEvidence{FacilityID: fid}, auth.ActionAddDeviationEvidence, home},
		{facility.ResolveDeviation{FacilityID: fid}, auth.ActionResolveDeviation, home},
		{facility.Close{FacilityID: fid}, auth.ActionCloseFacility, home},
		{facility.Register{FacilityID: fid, Agency: "barakat", Province: "IR-05"}, auth.ActionRegisterFacility, home}, // exists: the state's
		{facility.Correct{FacilityID: fid, Field: facility.FieldJobsPromised}, auth.ActionCorrectRegistration, home},
		{facility.Correct{FacilityID: fid, Field: facility.FieldRequestedRials}, auth.ActionCorrectRegistration, home},
		{facility.Correct{FacilityID: fid, Field: facility.FieldCounty}, auth.ActionCorrectRegistration, home},
		{facility.Correct{FacilityID: fid, Field: facility.FieldJobs, CorrectsEventID: "ev-5"}, auth.ActionCorrectJobs, home},
		{facility.Correct{FacilityID: fid, Field: facility.FieldAmountRials, CorrectsEventID: "ev-4"}, auth.ActionCorrectTranche, home},
		{facility.Correct{FacilityID: fid, Field: facility.FieldConfirmed, CorrectsEventID: "ev-7"}, auth.ActionCorrectInspection,
			auth.Resource{Province: "IR-23", Agency: "welfare", Bank: "melli", Firm: "tehran-field-monitoring"}},
		{facility.Correct{FacilityID: fid, Field: facility.FieldVerifiedJobs, CorrectsEventID: "ev-404"}, auth.ActionCorrectInspection, home},
	} {
		a, res, err := auth.FacilityRequest(f, tc.cmd)
		require.NoError(t, err, "%T", tc.cmd)
		require.Equal(t, tc.action, a, "%T", tc.cmd)
		require.Equal(t, tc.res, res, "%T %s", tc.cmd, a)
	}

	t.Run("registering a new facility takes the command's agency and province", func(t *testing.T) {
		a, res, err := auth.FacilityRequest(facility.Facility{}, facility.Register{FacilityID: "f-new", Agency: "barakat", Province: "IR-05"})
		require.NoError(t, err)
		require.Equal(t, auth.ActionRegisterFacility, a)
		require.Equal(t, auth.Resource{Province: "IR-05", Agency: "barakat"}, res)
	})
	t.Run("an unknown field is an input error", func(t *testing.T) {
		_, _, err := auth.FacilityRequest(f, facility.Correct{FacilityID: fid, Field: "applicant"})
		require.ErrorIs(t, err, domain.ErrInvalid)
		require.ErrorContains(t, err, `field: "applicant" is not a correctable field`)
	})
}

func TestAuthorizeFacility(t *testing.T) {
	f := fold(t, history())
	pol := auth.DefaultPolicy()
	agency := principal(auth.RoleAgency, "welfare")
	bank := principal(auth.RoleBank, "melli")
	firm := principal(auth.RoleInspector, "tehran-field-monitoring")
	for _, tc := range []struct {
		name  string
		p     auth.Principal
		state facility.Facility
		cmd   facility.Command
		want  auth.Denial // "" for allowed
	}{
		{"agency reviews its own", agency, f, facility.Review{FacilityID: fid}, ""},
		{"another agency reviews", principal(auth.RoleAgency, "barakat"), f, facility.Review{FacilityID: fid}, auth.DeniedScope},
		{"agency registers new in its name", agency, facility.Facility{}, facility.Register{Agency: "welfare", Province: "IR-05"}, ""},
		{"agency registers new for another agency", agency, facility.Facility{}, facility.Register{Agency: "barakat", Province: "IR-05"}, auth.DeniedScope},
		{"agency re-registers someone else's id", principal(auth.RoleAgency, "barakat"), f, facility.Register{Agency: "barakat", Province: "IR-23"}, auth.DeniedScope},
		{"agency re-registers own id for another agency", agency, f, facility.Register{Agency: "barakat", Province: "IR-23"}, auth.DeniedMismatch},
		{"referred bank approves", bank, f, facility.ApproveLoan{FacilityID: fid, Bank: "melli"}, ""},
		{"referred bank approves naming another bank", bank, f, facility.ApproveLoan{FacilityID: fid, Bank: "sepah"}, auth.DeniedMismatch},
		{"other bank approves", principal(auth.RoleBank, "sepah"), f, facility.ApproveLoan{FacilityID: fid, Bank: "sepah"}, auth.DeniedScope},
		{"other bank rejects", principal(auth.RoleBank, "sepah"), f, facility.RejectLoan{FacilityID: fid, Bank: "sepah"}, auth.DeniedScope},
		{"other bank pays", principal(auth.RoleBank, "sepah"), f, facility.DisburseTranche{FacilityID: fid, Bank: "sepah"}, auth.DeniedScope},
		{"referred bank pays naming another", bank, f, facility.DisburseTranche{FacilityID: fid, Bank: "sepah"}, auth.DeniedMismatch},
		{"bank approves before referral", bank, fold(t, history()[:1]), facility.ApproveLoan{FacilityID: fid, Bank: "melli"}, auth.DeniedScope},
		{"bank reports as bank", bank, f, facility.ReportJobs{FacilityID: fid, ReportedBy: facility.ReportedByBank}, ""},
		{"bank reports as agency", bank, f, facility.ReportJobs{FacilityID: fid, ReportedBy: facility.ReportedByAgency}, auth.DeniedMismatch},
		{"agency reports as agency", agency, f, facility.ReportJobs{FacilityID: fid, ReportedBy: facility.ReportedByAgency}, ""},
		{"agency reports as bank", agency, f, facility.ReportJobs{FacilityID: fid, ReportedBy: facility.ReportedByBank}, auth.DeniedMismatch},
		{"agency corrects its jobs report", agency, f, facility.Correct{FacilityID: fid, Field: facility.FieldJobs, CorrectsEventID: "ev-5"}, ""},
		{"agency corrects the bank's jobs report", agency, f, facility.Correct{FacilityID: fid, Field: facility.FieldJobs, CorrectsEventID: "ev-6"}, auth.DeniedMismatch},
		{"bank corrects its jobs report", bank, f, facility.Correct{FacilityID: fid, Field: facility.FieldJobs, CorrectsEventID: "ev-6"}, ""},
		{"bank corrects the agency's jobs report", bank, f, facility.Correct{FacilityID: fid, Field: facility.FieldJobs, CorrectsEventID: "ev-5"}, auth.DeniedMismatch},
		{"bank corrects a tranche", bank, f, facility.Correct{FacilityID: fid, Field: facility.FieldAmountRials, CorrectsEventID: "ev-4"}, ""},
		{"agency corrects a tranche", agency, f, facility.Correct{FacilityID: fid, Field: facility.FieldAmountRials, CorrectsEventID: "ev-4"}, auth.DeniedRole},
		{"bank corrects the registration", bank, f, facility.Correct{FacilityID: fid, Field: facility.FieldJobsPromised}, auth.DeniedRole},
		{"firm corrects its inspection", firm, f, facility.Correct{FacilityID: fid, Field: facility.FieldConfirmed, CorrectsEventID: "ev-7"}, ""},
		{"another firm corrects it", principal(auth.RoleInspector, "fars-field-monitoring"), f, facility.Correct{FacilityID: fid, Field: facility.FieldConfirmed, CorrectsEventID: "ev-7"}, auth.DeniedScope},
		{"firm records its inspection anywhere", principal(auth.RoleInspector, "fars-field-monitoring"), f, facility.RecordInspection{FacilityID: fid, Firm: "fars-field-monitoring"}, ""},
		{"firm records in another firm's name", firm, f, facility.RecordInspection{FacilityID: fid, Firm: "fars-field-monitoring"}, auth.DeniedScope},
		{"province office opens a case at home", principal(auth.RoleProvinceOffice, "IR-23"), f, facility.OpenDeviation{FacilityID: fid}, ""},
		{"province office opens a case elsewhere", principal(auth.RoleProvinceOffice, "IR-05"), f, facility.OpenDeviation{FacilityID: fid}, auth.DeniedScope},
		{"auditor opens a case", auth.DevPrincipal(auth.RoleAuditor), f, facility.OpenDeviation{FacilityID: fid}, ""},
		{"auditor resolves a case", auth.DevPrincipal(auth.RoleAuditor), f, facility.ResolveDeviation{FacilityID: fid}, auth.DeniedRole},
		{"ministry resolves a case", auth.DevPrincipal(auth.RoleMinistry), f, facility.ResolveDeviation{FacilityID: fid}, ""},
		{"ministry closes a facility", auth.DevPrincipal(auth.RoleMinistry), f, facility.Close{FacilityID: fid}, auth.DeniedRole},
		{"agency closes its facility", agency, f, facility.Close{FacilityID: fid}, ""},
		{"admin approves a loan", auth.DevPrincipal(auth.RoleAdmin), f, facility.ApproveLoan{FacilityID: fid, Bank: "melli"}, auth.DeniedRole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := pol.AuthorizeFacility(tc.p, tc.state, tc.cmd)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, auth.ErrForbidden)
			var de *auth.DeniedError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.want, de.Denial, de.Reason)
			require.NotEmpty(t, de.ReasonFa)
		})
	}
	t.Run("mismatch reasons name both parties", func(t *testing.T) {
		err := pol.AuthorizeFacility(bank, f, facility.ApproveLoan{FacilityID: fid, Bank: "sepah"})
		require.EqualError(t, err, `auth: forbidden: the command names bank "sepah", but the caller acts for bank "melli"`)
		err = pol.AuthorizeFacility(agency, f, facility.Correct{FacilityID: fid, Field: facility.FieldJobs, CorrectsEventID: "ev-6"})
		require.EqualError(t, err, "auth: forbidden: event ev-6 is a jobs report by the bank; the agency role corrects only its own reports")
	})
}

func TestQuotaAndReferenceRequests(t *testing.T) {
	acct := quota.AccountKey{Agency: "welfare", Province: "IR-23", County: "IR-23-pardis"}
	a, res, err := auth.QuotaRequest(quota.Allocate{Account: acct})
	require.NoError(t, err)
	require.Equal(t, auth.ActionAllocateQuota, a)
	require.Equal(t, auth.Resource{Province: "IR-23", Agency: "welfare"}, res)

	a, res, err = auth.QuotaRequest(quota.Transfer{From: acct, To: quota.AccountKey{Agency: "barakat", Province: "IR-05"}})
	require.NoError(t, err)
	require.Equal(t, auth.ActionTransferQuota, a)
	require.Equal(t, auth.Resource{Province: "IR-23", Agency: "welfare"}, res)

	a, _, err = auth.QuotaRequest(quota.CorrectAllocation{})
	require.NoError(t, err)
	require.Equal(t, auth.ActionCorrectAllocation, a)

	for _, cmd := range []quota.Command{quota.Charge{}, quota.ReleaseCharge{}} {
		_, _, err := auth.QuotaRequest(cmd)
		require.ErrorIs(t, err, auth.ErrNotAPICommand)
	}

	for _, cmd := range []reference.Command{reference.AddAgency{}, reference.AddBank{}, reference.AddProgram{}, reference.AddCounty{}, reference.AddFirm{}, reference.Rename{}} {
		require.Equal(t, auth.ActionManageReference, auth.ReferenceAction(cmd))
	}

	r, ok := auth.ReporterOf(principal(auth.RoleBank, "melli"))
	require.True(t, ok)
	require.Equal(t, facility.ReportedByBank, r)
	r, ok = auth.ReporterOf(principal(auth.RoleAgency, "welfare"))
	require.True(t, ok)
	require.Equal(t, facility.ReportedByAgency, r)
	_, ok = auth.ReporterOf(auth.DevPrincipal(auth.RoleMinistry))
	require.False(t, ok)
}
