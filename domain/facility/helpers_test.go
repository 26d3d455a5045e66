package facility_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
)

const (
	fid     = "f-1403-000123"
	bank    = "keshavarzi"
	account = "relief-committee/IR-00/IR-00-arak"
)

// hour returns the business time of the n-th event of a test history; the
// commands under test use later times.
func hour(n int) time.Time {
	return time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour)
}

// now is the business time of a command under test: after every history.
func now() time.Time { return hour(1000) }

// eventID is the ID fold gives the n-th event (1-based).
func eventID(n int) string { return fmt.Sprintf("ev-%d", n) }

// fold replays a history with event IDs ev-1, ev-2, ... and one hour between
// events.
func fold(t *testing.T, events ...domain.Event) facility.Facility {
	t.Helper()
	d := facility.Decider()
	f := d.Initial()
	for i, e := range events {
		f = d.Evolve(f, domain.Recorded{
			ID: eventID(i + 1), Stream: facility.Stream(fid), Version: uint64(i + 1),
			OccurredAt: hour(i + 1), Event: e,
		})
	}
	return f
}

// Histories of a facility at each stage.

func registered() []domain.Event {
	return []domain.Event{facility.RegisteredV1{
		FacilityID: fid, FiscalYear: 1403, Program: "home-business", Agency: "relief-committee",
		Province: "IR-00", County: "IR-00-arak",
		Applicant: facility.Applicant{Ref: "app-1", KeyID: "key-1", Ciphertext: []byte{1, 2, 3}},
		Title:     "home tailoring workshop", RequestedRials: 1_000_000_000, JobsPromised: 2,
	}}
}

func referred() []domain.Event {
	return append(registered(), facility.ReviewedV1{Decision: facility.ReviewApproved, Bank: bank, Expert: "expert-42"})
}

func reviewRejected() []domain.Event {
	return append(registered(), facility.ReviewedV1{Decision: facility.ReviewRejected, Expert: "expert-42", Reason: "incomplete"})
}

func loanApproved() []domain.Event {
	return append(referred(), facility.LoanApprovedV1{Bank: bank, AmountRials: 900_000_000, QuotaAccount: account})
}

func loanRejected() []domain.Event {
	return append(referred(), facility.LoanRejectedV1{Bank: bank, Reason: "no guarantor"})
}

// disbursing: ev-4 is tranche 1 of 400M out of 900M approved.
func disbursing() []domain.Event {
	return append(loanApproved(), facility.TrancheDisbursedV1{Tranche: 1, AmountRials: 400_000_000})
}

// disbursed: ev-5 is tranche 2 of 500M.
func disbursed() []domain.Event {
	return append(disbursing(), facility.TrancheDisbursedV1{Tranche: 2, AmountRials: 500_000_000})
}

// inspected: ev-6 is a confirmed inspection verifying 2 jobs.
func inspected() []domain.Event {
	return append(disbursed(), facility.InspectedV1{
		InspectionID: "insp-1", Firm: "firm-1", GuidelineVersion: "1403.2",
		Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 2,
	})
}

// withDeviation: ev-7 opens dev-1 from insp-1.
func withDeviation() []domain.Event {
	return append(inspected(), facility.DeviationOpenedV1{
		DeviationID: "dev-1", Kind: facility.KindDiscrepancy, InspectionID: "insp-1", Description: "one job missing",
	})
}

func closed() []domain.Event {
	return append(disbursed(), facility.ClosedV1{Reason: "completed"})
}

// decideCase is one row of a Decide table.
type decideCase struct {
	name    string
	history []domain.Event
	cmd     facility.Command
	want    []domain.Event
	wantErr error    // sentinel the error must match; nil for success
	fields  []string // for validation errors: "field/code" of every problem
}

func runDecide(t *testing.T, tests []decideCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := fold(t, tc.history...)
			got, err := facility.Decide(state, tc.cmd)
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			require.Nil(t, got)
			requireBilingual(t, err)
			if tc.fields != nil {
				require.ElementsMatch(t, tc.fields, fieldCodes(t, err))
			}
		})
	}
}

func fieldCodes(t *testing.T, err error) []string {
	t.Helper()
	var ve *domain.ValidationError
	require.ErrorAs(t, err, &ve)
	out := make([]string, len(ve.Fields))
	for i, f := range ve.Fields {
		out[i] = f.Field + "/" + f.Code
	}
	return out
}

// requireBilingual checks that an error explains itself in English and
// Persian.
func requireBilingual(t *testing.T, err error) {
	t.Helper()
	var (
		ve *domain.ValidationError
		te *domain.TransitionError
		ce *domain.ConflictError
	)
	switch {
	case errors.As(err, &ve):
		for _, f := range ve.Fields {
			require.NotEmpty(t, f.Message, f.Field)
			require.NotEmpty(t, f.MessageFa, f.Field)
		}
	case errors.As(err, &te):
		require.NotEmpty(t, te.Reason)
		require.NotEmpty(t, te.ReasonFa)
		require.Equal(t, "facility", te.Aggregate)
	case errors.As(err, &ce):
		require.NotEmpty(t, ce.Reason)
		require.NotEmpty(t, ce.ReasonFa)
	}
}
