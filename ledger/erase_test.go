package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/projections/quotas"
)

func readModels() []projections.Projector {
	return []projections.Projector{facilities.New(), quotas.New(), inspections.New(), deviations.New(), banks.New()}
}

// follow runs the live projections until they reflect the head, and
// returns every read-model table's rows.
func follow(t *testing.T, env *projectionstest.Env) map[string][]string {
	t.Helper()
	e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: readModels(), RetryBackoff: time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	head := env.Head(t)
	for _, p := range readModels() {
		_, err := e.Reader().WaitFor(context.Background(), p.Name(), head, time.Minute)
		require.NoError(t, err)
	}
	out := map[string][]string{}
	for _, p := range readModels() {
		for _, table := range p.Tables() {
			rows := projectionstest.Dump(t, env.DB, table, "1")
			slices.Sort(rows) // whole rows, whatever the key's columns
			out[table] = rows
		}
	}
	return out
}

// sealedOf returns the applicant's sealed data in a facility's
// registration as stored in the log, with the event's bytes.
func sealedOf(t *testing.T, st eventstore.Store, facilityID string) (applicant.Sealed, []byte) {
	t.Helper()
	evs, err := st.ReadStream(context.Background(), facility.Stream(facilityID), 1, eventstore.Forwards, 1)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	var reg struct {
		Applicant applicant.Sealed `json:"applicant"`
	}
	require.NoError(t, json.Unmarshal(evs[0].Data, &reg))
	return reg.Applicant, evs[0].Data
}

// TestEraseApplicant erases an applicant on both backends and checks that
// the personal data can no longer be opened anywhere it is sealed, that
// the log still verifies, that no read model changes, that erasing again
// changes nothing, and that the applicant may apply again under a new key.
func TestEraseApplicant(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		ctx := context.Background()
		env := b.Open(t)
		svc := env.Service(t)
		h := projectionstest.Build(t, svc, 10, 4)
		nid := nationalid.Generate(900_001)
		person := applicant.Personal{NationalID: nid, Name: "Maryam Karimi", Phone: "09121112233"}
		reg := ledger.RegisterFacility{
			Register: facility.Register{
				FacilityID: "f-erase", FiscalYear: 1403, Program: "home-business", Agency: "welfare",
				Province: "IR-23", County: "IR-23-tehran", Title: "bakery", RequestedRials: 900_000_000, JobsPromised: 2,
				At: projectionstest.Start,
			},
			Applicant: person,
		}
		meta := ledger.Meta{Actor: projectionstest.Ministry, OccurredAt: projectionstest.Start, BackdateReason: "test"}
		_, err := svc.Register(ctx, reg, meta)
		require.NoError(t, err)
		h.Step()
		before := follow(t, env)

		sealed, stored := sealedOf(t, env.Store, "f-erase")
		ref, err := svc.ApplicantRef(nid)
		require.NoError(t, err)
		require.Equal(t, sealed.Ref, ref, "the ref of the national ID names the applicant")
		key, err := env.Vault.Key(ctx, sealed.KeyID, false)
		require.NoError(t, err)
		opened, err := applicant.Open(key, sealed)
		require.NoError(t, err)
		require.Equal(t, person, opened)

		admin := ledger.Meta{Actor: projectionstest.Ministry}
		head := env.Head(t)
		t.Run("bad requests change nothing", func(t *testing.T) {
			_, err := svc.EraseApplicant(ctx, "not-a-ref", "request 12", admin)
			var ve *domain.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "ref", ve.Fields[0].Field)
			_, err = svc.EraseApplicant(ctx, ref, "  ", admin)
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "reason", ve.Fields[0].Field)
			unknown, err := svc.ApplicantRef(nationalid.Generate(900_002))
			require.NoError(t, err)
			_, err = svc.EraseApplicant(ctx, unknown, "request 12", admin)
			require.ErrorIs(t, err, domain.ErrNotFound)
			_, err = svc.ApplicantRef("123")
			require.ErrorAs(t, err, &ve)
			require.Equal(t, head, env.Head(t))
			_, err = env.Vault.Key(ctx, sealed.KeyID, false)
			require.NoError(t, err, "the key is still there")
		})

		er, err := svc.EraseApplicant(ctx, ref, "erasure request 1403-77 (Article 11)", admin)
		require.NoError(t, err)
		require.Len(t, er.EventIDs, 1)
		require.Equal(t, head+1, er.Position)
		require.Equal(t, []string{sealed.KeyID}, er.Destroyed)

		// The sealed data is where it was, byte for byte, and no key opens
		// it: the vault refuses the erased key for good.
		again, storedAfter := sealedOf(t, env.Store, "f-erase")
		require.Equal(t, stored, storedAfter)
		_, err = env.Vault.Key(ctx, again.KeyID, false)
		require.ErrorIs(t, err, applicant.ErrErased)
		_, err = env.Vault.Key(ctx, again.KeyID, true)
		require.ErrorIs(t, err, applicant.ErrErased, "an erased key is never created again")
		_, err = applicant.Open(bytes.Repeat([]byte{1}, applicant.KeySize), again)
		require.ErrorIs(t, err, applicant.ErrCannotOpen)

		rep, err := eventstore.Verify(ctx, env.Store, eventstore.VerifyOptions{})
		require.NoError(t, err, "the log still verifies")
		require.Equal(t, head+1, rep.Events)
		require.Equal(t, before, follow(t, env), "no read model changes")
		var erased applicant.Erased
		evs, err := env.Store.ReadAll(ctx, head, 1, eventstore.Filter{})
		require.NoError(t, err)
		require.Equal(t, applicant.StreamFor(ref), evs[0].Stream)
		require.NoError(t, json.Unmarshal(evs[0].Data, &erased))
		require.Equal(t, sealed.KeyID, erased.KeyID)
		require.NotContains(t, string(evs[0].Data), nid, "the erasure names no personal data")

		t.Run("erasing again appends nothing", func(t *testing.T) {
			er, err := svc.EraseApplicant(ctx, ref, "repeated request", admin)
			require.NoError(t, err)
			require.Empty(t, er.EventIDs)
			require.Equal(t, []string{sealed.KeyID}, er.Destroyed)
			require.Equal(t, head+1, env.Head(t))
		})

		t.Run("the applicant applies again under a new key, erased in turn", func(t *testing.T) {
			reg2 := reg
			reg2.FacilityID, reg2.FiscalYear = "f-erase-2", 1402
			_, err := svc.Register(ctx, reg2, meta)
			require.NoError(t, err)
			s2, _ := sealedOf(t, env.Store, "f-erase-2")
			require.Equal(t, applicant.KeyIDFor(ref, 2), s2.KeyID)
			k2, err := env.Vault.Key(ctx, s2.KeyID, false)
			require.NoError(t, err)
			p2, err := applicant.Open(k2, s2)
			require.NoError(t, err)
			require.Equal(t, person, p2)
			er, err := svc.EraseApplicant(ctx, ref, "second request", admin)
			require.NoError(t, err)
			require.Len(t, er.EventIDs, 1)
			require.Equal(t, []string{sealed.KeyID, s2.KeyID}, er.Destroyed)
			_, err = env.Vault.Key(ctx, s2.KeyID, false)
			require.ErrorIs(t, err, applicant.ErrErased)
		})
	})
}
