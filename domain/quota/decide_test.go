package quota_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
)

const (
	fy      = 1403
	program = "home-business"
)

func arak() quota.AccountKey {
	return quota.AccountKey{Agency: "relief-committee", Province: "IR-00", County: "IR-00-arak"}
}
func welfare() quota.AccountKey { return quota.AccountKey{Agency: "welfare", Province: "IR-00"} }
func tehran() quota.AccountKey {
	return quota.AccountKey{Agency: "relief-committee", Province: "IR-23"}
}

func at() time.Time { return time.Date(2024, 6, 1, 8, 0, 0, 0, time.UTC) }

func eventID(n int) string { return fmt.Sprintf("ev-%d", n) }

// fold replays a history with event IDs ev-1, ev-2, ...
func fold(t *testing.T, events ...domain.Event) quota.Ledger {
	t.Helper()
	d := quota.Decider()
	l := d.Initial()
	for i, e := range events {
		l = d.Evolve(l, domain.Recorded{
			ID: eventID(i + 1), Stream: quota.Stream(fy, program), Version: uint64(i + 1), OccurredAt: at(), Event: e,
		})
	}
	return l
}

func allocated(k quota.AccountKey, amount int64, jobs int) quota.AllocatedV1 {
	return quota.AllocatedV1{
		FiscalYear: fy, Program: program, Account: k, AmountRials: amount, JobsTarget: jobs,
		LegalBasis: "1403 budget law note 18", DecisionRef: "dec-1",
	}
}

func charged(k quota.AccountKey, facility string, amount int64) quota.ChargedV1 {
	return quota.ChargedV1{FiscalYear: fy, Program: program, Account: k, FacilityID: facility, AmountRials: amount}
}

func released(k quota.AccountKey, facility string, amount int64) quota.ChargeReleasedV1 {
	return quota.ChargeReleasedV1{FiscalYear: fy, Program: program, Account: k, FacilityID: facility, AmountRials: amount, Reason: "closed"}
}

// funded: ev-1 allocates 10,000M rials and 100 jobs to arak; ev-2 charges
// 3,000M for f-1.
func funded() []domain.Event {
	return []domain.Event{allocated(arak(), 10_000_000_000, 100), charged(arak(), "f-1", 3_000_000_000)}
}

type decideCase struct {
	name     string
	history  []domain.Event
	cmd      quota.Command
	want     []domain.Event
	wantErr  error
	fields   []string                   // validation errors: "field/code" of every problem
	exceeded *domain.QuotaExceededError // figures a quota error must carry
}

func runDecide(t *testing.T, tests []decideCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := quota.Decide(fold(t, tc.history...), tc.cmd)
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			require.Nil(t, got)
			if tc.fields != nil {
				var ve *domain.ValidationError
				require.ErrorAs(t, err, &ve)
				codes := make([]string, len(ve.Fields))
				for i, f := range ve.Fields {
					codes[i] = f.Field + "/" + f.Code
					require.NotEmpty(t, f.MessageFa)
				}
				require.ElementsMatch(t, tc.fields, codes)
			}
			if tc.exceeded != nil {
				var qe *domain.QuotaExceededError
				require.ErrorAs(t, err, &qe)
				require.Equal(t, tc.exceeded, qe)
			}
			var ce *domain.ConflictError
			if errors.As(err, &ce) {
				require.NotEmpty(t, ce.Reason)
				require.NotEmpty(t, ce.ReasonFa)
			}
		})
	}
}

func TestDecideAllocate(t *testing.T) {
	alloc := quota.Allocate{
		FiscalYear: fy, Program: program, Account: arak(), AmountRials: 10_000_000_000, JobsTarget: 100,
		LegalBasis: "1403 budget law note 18", DecisionRef: "dec-1", At: at(),
	}
	otherYear := alloc
	otherYear.FiscalYear = 1404
	otherYear.Program = "quick-yield"
	badCounty := alloc
	badCounty.Account.County = "IR-00/arak"
	badCounty.JobsTarget = -1

	runDecide(t, []decideCase{
		{name: "first allocation opens the ledger", cmd: alloc, want: funded()[:1]},
		{name: "supplementary allocation", history: funded(), cmd: alloc, want: funded()[:1]},
		{
			name: "every missing field at once", cmd: quota.Allocate{}, wantErr: domain.ErrInvalid,
			fields: []string{
				"fiscal_year/out_of_range", "program/malformed", "account.agency/required", "account.province/required",
				"amount_rials/out_of_range", "legal_basis/required", "decision_ref/required", "at/required",
			},
		},
		{
			name: "malformed county and negative job target", cmd: badCounty, wantErr: domain.ErrInvalid,
			fields: []string{"account.county/malformed", "jobs_target/out_of_range"},
		},
		{
			name: "command for another ledger", history: funded(), cmd: otherYear, wantErr: domain.ErrInvalid,
			fields: []string{"fiscal_year/wrong_ledger", "program/wrong_ledger"},
		},
	})
}

func TestDecideTransfer(t *testing.T) {
	transfer := quota.Transfer{
		FiscalYear: fy, Program: program, TransferID: "tr-1", From: arak(), To: welfare(),
		AmountRials: 7_000_000_000, JobsTarget: 70, LegalBasis: "1403 budget law note 15", DecisionRef: "dec-2", At: at(),
	}
	want := quota.TransferredV1{
		FiscalYear: fy, Program: program, TransferID: "tr-1", From: arak(), To: welfare(),
		AmountRials: 7_000_000_000, JobsTarget: 70, LegalBasis: "1403 budget law note 15", DecisionRef: "dec-2",
	}
	tooMuch := transfer
	tooMuch.AmountRials = 7_000_000_001
	tooManyJobs := transfer
	tooManyJobs.JobsTarget = 101
	self := transfer
	self.To = arak()
	fromEmpty := transfer
	fromEmpty.From = tehran()
	onward := transfer
	onward.TransferID = "tr-2"
	onward.From, onward.To = welfare(), tehran()
	wantOnward := want
	wantOnward.TransferID = "tr-2"
	wantOnward.From, wantOnward.To = welfare(), tehran()
	afterTransfer := append(funded(), want)

	runDecide(t, []decideCase{
		{name: "moves quota to an account without allocation", history: funded(), cmd: transfer, want: []domain.Event{want}},
		{name: "quota received by transfer can move on", history: afterTransfer, cmd: onward, want: []domain.Event{wantOnward}},
		{
			name: "more than the free balance", history: funded(), cmd: tooMuch, wantErr: domain.ErrConflict,
			exceeded: &domain.QuotaExceededError{Account: arak().String(), Free: 7_000_000_000, Requested: 7_000_000_001},
		},
		{name: "more than the job target", history: funded(), cmd: tooManyJobs, wantErr: domain.ErrConflict},
		{name: "to the same account", history: funded(), cmd: self, wantErr: domain.ErrInvalid, fields: []string{"to/same_account"}},
		{name: "from an account with no quota", history: funded(), cmd: fromEmpty, wantErr: domain.ErrNotFound},
		{name: "on an empty ledger", cmd: transfer, wantErr: domain.ErrNotFound},
		{name: "transfer ids are unique", history: afterTransfer, cmd: transfer, wantErr: domain.ErrConflict},
		{
			name: "legal basis and decision are required", history: funded(),
			cmd: quota.Transfer{
				FiscalYear: fy, Program: program, TransferID: "tr-1", From: arak(), To: welfare(), AmountRials: 1, At: at(),
			},
			wantErr: domain.ErrInvalid, fields: []string{"legal_basis/required", "decision_ref/required"},
		},
	})
}

func TestDecideCharges(t *testing.T) {
	charge := func(k quota.AccountKey, facility string, amount int64) quota.Charge {
		return quota.Charge{FiscalYear: fy, Program: program, Account: k, FacilityID: facility, AmountRials: amount, At: at()}
	}
	release := func(facility string, amount int64) quota.ReleaseCharge {
		return quota.ReleaseCharge{FiscalYear: fy, Program: program, FacilityID: facility, AmountRials: amount, Reason: "closed", At: at()}
	}
	fullyReleased := append(funded(), released(arak(), "f-1", 3_000_000_000))

	runDecide(t, []decideCase{
		{name: "charges a loan", history: funded(), cmd: charge(arak(), "f-2", 7_000_000_000), want: []domain.Event{charged(arak(), "f-2", 7_000_000_000)}},
		{
			name: "more than free", history: funded(), cmd: charge(arak(), "f-2", 7_000_000_001), wantErr: domain.ErrConflict,
			exceeded: &domain.QuotaExceededError{Account: arak().String(), Free: 7_000_000_000, Requested: 7_000_000_001},
		},
		{name: "one open charge per facility", history: funded(), cmd: charge(arak(), "f-1", 1), wantErr: domain.ErrConflict},
		{name: "unknown account", history: funded(), cmd: charge(tehran(), "f-2", 1), wantErr: domain.ErrNotFound},
		{name: "charge again once released", history: fullyReleased, cmd: charge(arak(), "f-1", 1), want: []domain.Event{charged(arak(), "f-1", 1)}},
		{
			name: "charge fields", history: funded(), cmd: quota.Charge{FiscalYear: fy, Program: program, Account: arak(), AmountRials: -5, At: at()},
			wantErr: domain.ErrInvalid, fields: []string{"facility_id/required", "amount_rials/out_of_range"},
		},
		{name: "partial release", history: funded(), cmd: release("f-1", 1_000_000_000), want: []domain.Event{released(arak(), "f-1", 1_000_000_000)}},
		{name: "full release", history: funded(), cmd: release("f-1", 3_000_000_000), want: []domain.Event{released(arak(), "f-1", 3_000_000_000)}},
		{name: "more than the charge", history: funded(), cmd: release("f-1", 3_000_000_001), wantErr: domain.ErrConflict},
		{name: "release without a charge", history: funded(), cmd: release("f-2", 1), wantErr: domain.ErrNotFound},
		{name: "release of a closed charge", history: fullyReleased, cmd: release("f-1", 1), wantErr: domain.ErrNotFound},
		{
			name: "release needs a reason", history: funded(),
			cmd:     quota.ReleaseCharge{FiscalYear: fy, Program: program, FacilityID: "f-1", AmountRials: 1, At: at()},
			wantErr: domain.ErrInvalid, fields: []string{"reason/required"},
		},
	})
}

func TestDecideCorrectAllocation(t *testing.T) {
	correct := func(event string, amount int64, jobs int) quota.CorrectAllocation {
		return quota.CorrectAllocation{FiscalYear: fy, Program: program, CorrectsEventID: event, AmountRials: amount, JobsTarget: jobs, Reason: "typo", At: at()}
	}
	corrected := func(amount int64, jobs int) []domain.Event {
		return []domain.Event{quota.AllocationCorrectedV1{
			FiscalYear: fy, Program: program, CorrectsEventID: eventID(1), Account: arak(),
			PreviousAmountRials: 10_000_000_000, PreviousJobsTarget: 100, AmountRials: amount, JobsTarget: jobs, Reason: "typo",
		}}
	}
	withTransfer := append(funded(), quota.TransferredV1{
		FiscalYear: fy, Program: program, TransferID: "tr-1", From: arak(), To: welfare(), AmountRials: 1, JobsTarget: 90,
		LegalBasis: "note 15", DecisionRef: "dec-2",
	})

	runDecide(t, []decideCase{
		{name: "raises an allocation", history: funded(), cmd: correct(eventID(1), 12_000_000_000, 120), want: corrected(12_000_000_000, 120)},
		{name: "lowers it down to what is charged", history: funded(), cmd: correct(eventID(1), 3_000_000_000, 100), want: corrected(3_000_000_000, 100)},
		{name: "cancels a mistaken allocation", history: funded()[:1], cmd: correct(eventID(1), 0, 0), want: corrected(0, 0)},
		{
			name: "below what is charged", history: funded(), cmd: correct(eventID(1), 2_999_999_999, 100), wantErr: domain.ErrConflict,
			exceeded: &domain.QuotaExceededError{Account: arak().String(), Free: 7_000_000_000, Requested: 7_000_000_001},
		},
		{name: "job target already transferred away", history: withTransfer, cmd: correct(eventID(1), 10_000_000_000, 80), wantErr: domain.ErrConflict},
		{name: "unknown event", history: funded(), cmd: correct("ev-9", 1, 1), wantErr: domain.ErrNotFound},
		{name: "not an allocation", history: funded(), cmd: correct(eventID(2), 1, 1), wantErr: domain.ErrNotFound},
		{name: "no change", history: funded(), cmd: correct(eventID(1), 10_000_000_000, 100), wantErr: domain.ErrInvalid, fields: []string{"amount_rials/unchanged"}},
		{
			name: "fields", history: funded(), cmd: quota.CorrectAllocation{FiscalYear: fy, Program: program, AmountRials: -1, JobsTarget: -1, At: at()},
			wantErr: domain.ErrInvalid, fields: []string{"corrects_event_id/required", "amount_rials/out_of_range", "jobs_target/out_of_range", "reason/required"},
		},
	})
}
