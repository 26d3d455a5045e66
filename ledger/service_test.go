package ledger_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/ledger"
)

var (
	ministry = ledger.Meta{Actor: eventstore.Actor{ID: "m1", Role: "ministry", Org: "ministry"}}
	day      = time.Date(2024, 6, 1, 9, 0, 0, 0, time.UTC)
)

func newService(t *testing.T) (*ledger.Service, *applicant.MemoryVault) {
	t.Helper()
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	vault := applicant.NewMemoryVault()
	svc, err := ledger.NewService(ledger.New(st, schema.Registry(), ledger.HotStreams()), vault, bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	require.NoError(t, svc.EnsureReference(context.Background(), ministry))
	require.NoError(t, svc.EnsureReference(context.Background(), ministry), "idempotent")
	return svc, vault
}

func backdated() ledger.Meta {
	m := ministry
	m.OccurredAt = day
	m.BackdateReason = "test history"
	return m
}

func registration(id string, seq uint64) ledger.RegisterFacility {
	return ledger.RegisterFacility{
		Register: facility.Register{
			FacilityID: id, FiscalYear: 1403, Program: "home-business", Agency: "relief-committee",
			Province: "IR-00", County: "IR-00-arak", Title: "tailoring workshop",
			RequestedRials: 1_000_000_000, JobsPromised: 2, At: day,
		},
		Applicant: applicant.Personal{NationalID: nationalid.Generate(seq), Name: "Zahra Ahmadi", Phone: "09120000000"},
	}
}

func allocate(t *testing.T, svc *ledger.Service, amount int64) {
	t.Helper()
	_, err := svc.Quota(context.Background(), quota.Allocate{
		FiscalYear: 1403, Program: "home-business",
		Account:     quota.AccountKey{Agency: "relief-committee", Province: "IR-00"},
		AmountRials: amount, JobsTarget: 10, LegalBasis: "1403 budget law note 18", DecisionRef: "D-1", At: day,
	}, backdated())
	require.NoError(t, err)
}

func headOf(t *testing.T, svc *ledger.Service) uint64 {
	t.Helper()
	h, err := svc.Ledger().Store().Head(context.Background())
	require.NoError(t, err)
	return h.Position
}

func TestRegisterSealsPersonalDataAndRefusesDuplicates(t *testing.T) {
	svc, vault := newService(t)
	ctx := context.Background()
	reg := registration("f-0001", 1)
	res, err := svc.Register(ctx, reg, backdated())
	require.NoError(t, err)
	require.Len(t, res.EventIDs, 1)

	// No event anywhere holds the national ID, name or phone in plaintext.
	all, err := svc.Ledger().Store().ReadAll(ctx, 0, 10_000, eventstore.Filter{})
	require.NoError(t, err)
	for _, e := range all {
		for _, secret := range []string{reg.Applicant.NationalID, reg.Applicant.Name, reg.Applicant.Phone} {
			require.NotContains(t, string(e.Data), secret, "event %s leaks personal data", e.Type)
		}
	}
	// The sealed data opens with the applicant's key.
	f, _, err := ledger.State(ctx, svc.Ledger(), facility.Stream("f-0001"), facility.Decider(), nil)
	require.NoError(t, err)
	sealed := applicant.Sealed{Ref: f.Applicant().Ref, KeyID: f.Applicant().KeyID, Ciphertext: f.Applicant().Ciphertext}
	key, err := vault.Key(ctx, sealed.KeyID, false)
	require.NoError(t, err)
	p, err := applicant.Open(key, sealed)
	require.NoError(t, err)
	require.Equal(t, reg.Applicant, p)

	// The same person, same year and program: refused, nothing written.
	before := headOf(t, svc)
	_, err = svc.Register(ctx, registration("f-0002", 1), backdated())
	require.ErrorIs(t, err, domain.ErrConflict)
	require.Equal(t, before, headOf(t, svc))

	// Another program is fine.
	other := registration("f-0003", 1)
	other.Program = "rural-nomadic"
	other.RequestedRials = 3_000_000_000
	_, err = svc.Register(ctx, other, backdated())
	require.NoError(t, err)
}

func TestRegisterRefusesBadInputAndChangesNothing(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	before := headOf(t, svc)
	cases := map[string]func(r *ledger.RegisterFacility){
		"national id checksum": func(r *ledger.RegisterFacility) { r.Applicant.NationalID = "0499370898" },
		"unknown agency":       func(r *ledger.RegisterFacility) { r.Agency = "no-such-agency" },
		"unknown province":     func(r *ledger.RegisterFacility) { r.Province = "IR-99" },
		"unknown county":       func(r *ledger.RegisterFacility) { r.County = "IR-00-nowhere" },
		"over program cap":     func(r *ledger.RegisterFacility) { r.RequestedRials = 5_000_000_000 },
		"no jobs promised":     func(r *ledger.RegisterFacility) { r.JobsPromised = 0 },
		"bad facility id":      func(r *ledger.RegisterFacility) { r.FacilityID = "F 1" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r := registration("f-0001", 5)
			mutate(&r)
			_, err := svc.Register(ctx, r, backdated())
			require.ErrorIs(t, err, domain.ErrInvalid)
			require.Equal(t, before, headOf(t, svc), "bad input changes nothing")
		})
	}
	// A facility ID already taken: refused before the applicant's slot is
	// claimed (nothing is written), so they can register elsewhere.
	_, err := svc.Register(ctx, registration("f-0009", 7), backdated())
	require.NoError(t, err)
	taken := headOf(t, svc)
	_, err = svc.Register(ctx, registration("f-0009", 8), backdated())
	require.ErrorIs(t, err, domain.ErrConflict)
	require.Equal(t, taken, headOf(t, svc))
	_, err = svc.Register(ctx, registration("f-0010", 8), backdated())
	require.NoError(t, err, "the refused registration claimed nothing")
}

func referred(t *testing.T, svc *ledger.Service, id string, seq uint64) {
	t.Helper()
	ctx := context.Background()
	_, err := svc.Register(ctx, registration(id, seq), backdated())
	require.NoError(t, err)
	_, err = svc.Facility(ctx, facility.Review{FacilityID: id, Decision: facility.ReviewApproved, Bank: "keshavarzi", Expert: "e1", At: day}, backdated())
	require.NoError(t, err)
}

func TestApproveLoanChargesQuotaOrIsRefused(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	allocate(t, svc, 1_500_000_000)
	referred(t, svc, "f-0001", 1)
	referred(t, svc, "f-0002", 2)

	approve := func(id string, amount int64, key string) (ledger.Result, error) {
		m := backdated()
		m.IdempotencyKey = key
		return svc.ApproveLoan(ctx, facility.ApproveLoan{FacilityID: id, Bank: "keshavarzi", AmountRials: amount, At: day}, m)
	}
	first, err := approve("f-0001", 1_000_000_000, "approve-1")
	require.NoError(t, err)
	again, err := approve("f-0001", 1_000_000_000, "approve-1")
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.EventIDs, again.EventIDs)

	ql, _, err := ledger.State(ctx, svc.Ledger(), quota.Stream(1403, "home-business"), quota.Decider(), nil)
	require.NoError(t, err)
	bal, ok := ql.Account(quota.AccountKey{Agency: "relief-committee", Province: "IR-00"})
	require.True(t, ok)
	require.Equal(t, int64(500_000_000), bal.FreeRials(), "charged once despite the retry")

	// Not enough quota left: refused with the figures, facility unchanged.
	before := headOf(t, svc)
	_, err = approve("f-0002", 900_000_000, "")
	var qe *domain.QuotaExceededError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, int64(500_000_000), qe.Free)
	require.Equal(t, before, headOf(t, svc))

	// A bank that was not referred the plan cannot approve it, and no quota
	// is charged for the attempt.
	_, err = svc.ApproveLoan(ctx, facility.ApproveLoan{FacilityID: "f-0002", Bank: "post-bank", AmountRials: 100, At: day}, backdated())
	require.ErrorIs(t, err, domain.ErrIllegalTransition)
	require.Equal(t, before, headOf(t, svc))
}

func TestCloseReleasesUndisbursedQuota(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	allocate(t, svc, 2_000_000_000)
	referred(t, svc, "f-0001", 1)
	_, err := svc.ApproveLoan(ctx, facility.ApproveLoan{FacilityID: "f-0001", Bank: "keshavarzi", AmountRials: 1_000_000_000, At: day}, backdated())
	require.NoError(t, err)
	_, err = svc.Facility(ctx, facility.DisburseTranche{FacilityID: "f-0001", Bank: "keshavarzi", Tranche: 1, AmountRials: 400_000_000, At: day}, backdated())
	require.NoError(t, err)
	_, err = svc.CloseFacility(ctx, facility.Close{FacilityID: "f-0001", Reason: "applicant withdrew", At: day}, backdated())
	require.NoError(t, err)

	ql, _, err := ledger.State(ctx, svc.Ledger(), quota.Stream(1403, "home-business"), quota.Decider(), nil)
	require.NoError(t, err)
	bal, _ := ql.Account(quota.AccountKey{Agency: "relief-committee", Province: "IR-00"})
	require.Equal(t, int64(1_600_000_000), bal.FreeRials(), "the unpaid 600m returned to the pool")
	require.NoError(t, ql.CheckConservation())
}

func TestSingleAggregateCommandsCheckReferences(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	_, err := svc.Register(ctx, registration("f-0001", 1), backdated())
	require.NoError(t, err)
	_, err = svc.Facility(ctx, facility.Review{FacilityID: "f-0001", Decision: facility.ReviewApproved, Bank: "no-bank", Expert: "e", At: day}, backdated())
	require.ErrorIs(t, err, domain.ErrInvalid)
	_, err = svc.Facility(ctx, facility.ApproveLoan{FacilityID: "f-0001"}, backdated())
	require.ErrorContains(t, err, "spans aggregates")
	_, err = svc.Quota(ctx, quota.Allocate{FiscalYear: 1403, Program: "home-business",
		Account: quota.AccountKey{Agency: "ghost", Province: "IR-00"}, AmountRials: 1, LegalBasis: "x", DecisionRef: "y", At: day}, backdated())
	require.ErrorIs(t, err, domain.ErrInvalid)
}
