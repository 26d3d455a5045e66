package applicant_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
)

var testRef = strings.Repeat("0f", 32)

// history folds events into a State the way the store would replay them.
func history(t *testing.T, events ...domain.Event) applicant.State {
	t.Helper()
	rec := make([]domain.Recorded, len(events))
	for i, e := range events {
		rec[i] = domain.Recorded{Stream: applicant.StreamFor(testRef), Version: uint64(i + 1), Event: e}
	}
	return applicant.Decider().Fold(rec)
}

func TestDecide(t *testing.T) {
	k1 := applicant.KeyIDFor(testRef, 1)
	k2 := applicant.KeyIDFor(testRef, 2)
	claimed := applicant.Claimed{FacilityID: "f-1", FiscalYear: 1403, Program: "home-business"}

	tests := []struct {
		name    string
		given   []domain.Event
		cmd     applicant.Command
		want    []domain.Event
		target  error  // expected error category; nil for success
		field   string // for validation errors
		message string // expected substring of the English reason
	}{
		{
			name: "first claim",
			cmd:  applicant.ClaimFacility{FacilityID: "f-1", FiscalYear: 1403, Program: "home-business"},
			want: []domain.Event{claimed},
		},
		{
			name:    "second facility same year and programme",
			given:   []domain.Event{claimed},
			cmd:     applicant.ClaimFacility{FacilityID: "f-2", FiscalYear: 1403, Program: "home-business"},
			target:  domain.ErrConflict,
			message: "already has an open facility (f-1)",
		},
		{
			name:  "same programme next year",
			given: []domain.Event{claimed},
			cmd:   applicant.ClaimFacility{FacilityID: "f-2", FiscalYear: 1404, Program: "home-business"},
			want:  []domain.Event{applicant.Claimed{FacilityID: "f-2", FiscalYear: 1404, Program: "home-business"}},
		},
		{
			name:  "other programme same year",
			given: []domain.Event{claimed},
			cmd:   applicant.ClaimFacility{FacilityID: "f-2", FiscalYear: 1403, Program: "rural-nomadic"},
			want:  []domain.Event{applicant.Claimed{FacilityID: "f-2", FiscalYear: 1403, Program: "rural-nomadic"}},
		},
		{
			name:  "after release",
			given: []domain.Event{claimed, applicant.Released{FacilityID: "f-1", Reason: "rejected"}},
			cmd:   applicant.ClaimFacility{FacilityID: "f-2", FiscalYear: 1403, Program: "home-business"},
			want:  []domain.Event{applicant.Claimed{FacilityID: "f-2", FiscalYear: 1403, Program: "home-business"}},
		},
		{
			name:  "retry of the same claim is a no-op",
			given: []domain.Event{claimed},
			cmd:   applicant.ClaimFacility{FacilityID: "f-1", FiscalYear: 1403, Program: "home-business"},
		},
		{
			name:    "same facility for another programme",
			given:   []domain.Event{claimed},
			cmd:     applicant.ClaimFacility{FacilityID: "f-1", FiscalYear: 1403, Program: "rural-nomadic"},
			target:  domain.ErrConflict,
			message: "facility f-1 already holds a claim",
		},
		{
			name:  "released facility may claim again",
			given: []domain.Event{claimed, applicant.Released{FacilityID: "f-1", Reason: "withdrawn"}},
			cmd:   applicant.ClaimFacility{FacilityID: "f-1", FiscalYear: 1403, Program: "home-business"},
			want:  []domain.Event{claimed},
		},
		{
			name:  "claims continue after erasure",
			given: []domain.Event{claimed, applicant.Erased{KeyID: k1, Reason: "request 42"}},
			cmd:   applicant.ClaimFacility{FacilityID: "f-2", FiscalYear: 1404, Program: "home-business"},
			want:  []domain.Event{applicant.Claimed{FacilityID: "f-2", FiscalYear: 1404, Program: "home-business"}},
		},
		{
			name:    "erasure does not free the slot",
			given:   []domain.Event{claimed, applicant.Erased{KeyID: k1, Reason: "request 42"}},
			cmd:     applicant.ClaimFacility{FacilityID: "f-2", FiscalYear: 1403, Program: "home-business"},
			target:  domain.ErrConflict,
			message: "already has an open facility",
		},
		{
			name:   "claim without facility",
			cmd:    applicant.ClaimFacility{FiscalYear: 1403, Program: "home-business"},
			target: domain.ErrInvalid, field: "facility_id",
		},
		{
			name:   "claim with padded facility ID",
			cmd:    applicant.ClaimFacility{FacilityID: " f-1", FiscalYear: 1403, Program: "home-business"},
			target: domain.ErrInvalid, field: "facility_id",
		},
		{
			name:   "claim with gregorian year",
			cmd:    applicant.ClaimFacility{FacilityID: "f-1", FiscalYear: 2024, Program: "home-business"},
			target: domain.ErrInvalid, field: "fiscal_year",
		},
		{
			name:   "claim with bad programme",
			cmd:    applicant.ClaimFacility{FacilityID: "f-1", FiscalYear: 1403, Program: "Home Business"},
			target: domain.ErrInvalid, field: "program",
		},
		{
			name:  "release",
			given: []domain.Event{claimed},
			cmd:   applicant.ReleaseFacility{FacilityID: "f-1", Reason: " rejected by the bank "},
			want:  []domain.Event{applicant.Released{FacilityID: "f-1", Reason: "rejected by the bank"}},
		},
		{
			name:   "release unknown claim",
			given:  []domain.Event{claimed},
			cmd:    applicant.ReleaseFacility{FacilityID: "f-9", Reason: "rejected"},
			target: domain.ErrNotFound,
		},
		{
			name:  "release twice is a no-op",
			given: []domain.Event{claimed, applicant.Released{FacilityID: "f-1", Reason: "rejected"}},
			cmd:   applicant.ReleaseFacility{FacilityID: "f-1", Reason: "rejected"},
		},
		{
			name:   "release without reason",
			given:  []domain.Event{claimed},
			cmd:    applicant.ReleaseFacility{FacilityID: "f-1", Reason: "  "},
			target: domain.ErrInvalid, field: "reason",
		},
		{
			name:   "release with overlong reason",
			given:  []domain.Event{claimed},
			cmd:    applicant.ReleaseFacility{FacilityID: "f-1", Reason: strings.Repeat("x", 501)},
			target: domain.ErrInvalid, field: "reason",
		},
		{
			name: "erase current key",
			cmd:  applicant.Erase{Ref: testRef, KeyID: k1, Reason: "request 42"},
			want: []domain.Event{applicant.Erased{KeyID: k1, Reason: "request 42"}},
		},
		{
			name:  "erase retried is a no-op",
			given: []domain.Event{applicant.Erased{KeyID: k1, Reason: "request 42"}},
			cmd:   applicant.Erase{Ref: testRef, KeyID: k1, Reason: "request 42"},
		},
		{
			name:  "erase second generation",
			given: []domain.Event{applicant.Erased{KeyID: k1, Reason: "request 42"}},
			cmd:   applicant.Erase{Ref: testRef, KeyID: k2, Reason: "request 43"},
			want:  []domain.Event{applicant.Erased{KeyID: k2, Reason: "request 43"}},
		},
		{
			name:   "erase a future generation",
			cmd:    applicant.Erase{Ref: testRef, KeyID: k2, Reason: "request 42"},
			target: domain.ErrNotFound,
		},
		{
			name:   "erase with bad ref",
			cmd:    applicant.Erase{Ref: "XYZ", KeyID: k1, Reason: "request 42"},
			target: domain.ErrInvalid, field: "ref",
		},
		{
			name:   "erase without reason",
			cmd:    applicant.Erase{Ref: testRef, KeyID: k1},
			target: domain.ErrInvalid, field: "reason",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := applicant.Decider().Decide(history(t, tt.given...), tt.cmd)
			if tt.target == nil {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.Nil(t, got)
			require.ErrorIs(t, err, tt.target)
			if tt.field != "" {
				var ve *domain.ValidationError
				require.True(t, errors.As(err, &ve))
				require.Equal(t, tt.field, ve.Fields[0].Field)
				require.NotEmpty(t, ve.Fields[0].MessageFa)
			}
			if tt.message != "" {
				var ce *domain.ConflictError
				require.ErrorAs(t, err, &ce)
				require.Contains(t, ce.Reason, tt.message)
				require.Contains(t, ce.ReasonFa, "۱۴۰۳")
			}
		})
	}
}

func TestState(t *testing.T) {
	k1 := applicant.KeyIDFor(testRef, 1)

	t.Run("new applicant", func(t *testing.T) {
		s := applicant.Decider().Initial()
		require.Equal(t, 1, s.KeyGeneration())
		require.Equal(t, k1, s.KeyID(testRef))
		require.Empty(t, s.OpenClaims())
		require.Empty(t, s.Erased())
	})

	t.Run("claims and erasure", func(t *testing.T) {
		s := history(t,
			applicant.Claimed{FacilityID: "f-2", FiscalYear: 1403, Program: "micro-jobs"},
			applicant.Claimed{FacilityID: "f-1", FiscalYear: 1403, Program: "home-business"},
			applicant.Released{FacilityID: "f-2", Reason: "withdrawn"},
			applicant.Erased{KeyID: k1, Reason: "request 42"},
			applicant.Erased{KeyID: k1, Reason: "duplicate delivery"},
		)
		require.Equal(t, []applicant.Claim{{FacilityID: "f-1", FiscalYear: 1403, Program: "home-business", Open: true}}, s.OpenClaims())
		c, ok := s.Claim("f-2")
		require.True(t, ok)
		require.False(t, c.Open)
		require.Equal(t, 2, s.KeyGeneration(), "a duplicate erasure must not skip a generation")
		require.Equal(t, applicant.KeyIDFor(testRef, 2), s.KeyID(testRef))
		require.Equal(t, []string{k1}, s.Erased())
	})

	t.Run("earlier states are not changed", func(t *testing.T) {
		d := applicant.Decider()
		s1 := d.Evolve(d.Initial(), domain.Recorded{Event: applicant.Claimed{FacilityID: "f-1", FiscalYear: 1403, Program: "home-business"}})
		s2 := d.Evolve(s1, domain.Recorded{Event: applicant.Released{FacilityID: "f-1", Reason: "x"}})
		s3 := d.Evolve(s2, domain.Recorded{Event: applicant.Erased{KeyID: k1, Reason: "x"}})
		require.Len(t, s1.OpenClaims(), 1)
		require.Empty(t, s2.OpenClaims())
		require.Empty(t, s2.Erased())
		require.Len(t, s3.Erased(), 1)
	})

	t.Run("decoded pointer events", func(t *testing.T) {
		reg, err := domain.NewRegistry(applicant.EventTypes())
		require.NoError(t, err)
		e, err := reg.Decode("applicant.claimed.v1", []byte(`{"facility_id":"f-1","fiscal_year":1403,"program":"home-business"}`))
		require.NoError(t, err)
		s := applicant.Decider().Evolve(applicant.State{}, domain.Recorded{Event: e})
		require.Len(t, s.OpenClaims(), 1)
	})
}
