package facility_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
)

func registerCmd() facility.Register {
	return facility.Register{
		FacilityID: fid, FiscalYear: 1403, Program: "home-business", Agency: "relief-committee",
		Province: "IR-00", County: "IR-00-arak",
		Applicant: facility.Applicant{Ref: "app-1", KeyID: "key-1", Ciphertext: []byte{1, 2, 3}},
		Title:     "home tailoring workshop", RequestedRials: 1_000_000_000, JobsPromised: 2, At: now(),
	}
}

func TestDecideRegister(t *testing.T) {
	noCounty := registerCmd()
	noCounty.County = ""
	wantNoCounty := registered()[0].(facility.RegisteredV1)
	wantNoCounty.County = ""

	badID := registerCmd()
	badID.FacilityID = "-abc"
	badParts := registerCmd()
	badParts.County = "IR-00/arak"
	badParts.Program = "Home Business"
	badParts.FiscalYear = 2024
	badParts.Title = string(make([]rune, facility.MaxTitleLength+1))
	badParts.JobsPromised = facility.MaxJobs + 1

	runDecide(t, []decideCase{
		{name: "registers a plan", cmd: registerCmd(), want: registered()},
		{name: "county is optional", cmd: noCounty, want: []domain.Event{wantNoCounty}},
		{
			name: "reports every missing field at once", cmd: facility.Register{}, wantErr: domain.ErrInvalid,
			fields: []string{
				"facility_id/required", "fiscal_year/out_of_range", "program/malformed", "agency/required",
				"province/required", "applicant.ref/required", "applicant.key_id/required",
				"applicant.ciphertext/required", "title/required", "requested_rials/not_positive",
				"jobs_promised/out_of_range", "at/required",
			},
		},
		{name: "refuses a malformed id", cmd: badID, wantErr: domain.ErrInvalid, fields: []string{"facility_id/malformed"}},
		{
			name: "refuses out-of-range and malformed fields", cmd: badParts, wantErr: domain.ErrInvalid,
			fields: []string{
				"county/malformed", "program/malformed", "fiscal_year/out_of_range",
				"title/too_long", "jobs_promised/out_of_range",
			},
		},
		{name: "refuses a second registration", history: registered(), cmd: registerCmd(), wantErr: domain.ErrConflict},
	})
}

func TestDecideReview(t *testing.T) {
	approve := facility.Review{FacilityID: fid, Decision: facility.ReviewApproved, Bank: bank, Expert: "expert-42", At: now()}
	reject := facility.Review{FacilityID: fid, Decision: facility.ReviewRejected, Expert: "expert-42", Reason: "incomplete", At: now()}
	noBank := approve
	noBank.Bank = ""
	rejectBad := reject
	rejectBad.Reason = " "
	rejectBad.Bank = bank
	wrongStream := approve
	wrongStream.FacilityID = "f-other"
	early := approve
	early.At = hour(0)

	runDecide(t, []decideCase{
		{name: "approval refers the plan to a bank", history: registered(), cmd: approve, want: referred()[1:]},
		{name: "rejection ends the file", history: registered(), cmd: reject, want: reviewRejected()[1:]},
		{name: "approval needs a bank", history: registered(), cmd: noBank, wantErr: domain.ErrInvalid, fields: []string{"bank/required"}},
		{
			name: "rejection needs a reason and no bank", history: registered(), cmd: rejectBad,
			wantErr: domain.ErrInvalid, fields: []string{"reason/required", "bank/not_allowed"},
		},
		{
			name: "decision and expert are required", history: registered(),
			cmd:     facility.Review{FacilityID: fid, Decision: "maybe", At: now()},
			wantErr: domain.ErrInvalid, fields: []string{"decision/not_allowed", "expert/required"},
		},
		{name: "unknown facility", cmd: approve, wantErr: domain.ErrNotFound},
		{name: "command for another facility", history: registered(), cmd: wrongStream, wantErr: domain.ErrInvalid, fields: []string{"facility_id/wrong_stream"}},
		{name: "cannot review twice", history: referred(), cmd: approve, wantErr: domain.ErrIllegalTransition},
		{name: "cannot review a rejected plan", history: reviewRejected(), cmd: approve, wantErr: domain.ErrIllegalTransition},
		{name: "cannot be dated before registration", history: registered(), cmd: early, wantErr: domain.ErrInvalid, fields: []string{"at/out_of_order"}},
	})
}

func TestDecideLoanDecision(t *testing.T) {
	approve := facility.ApproveLoan{FacilityID: fid, Bank: bank, AmountRials: 900_000_000, QuotaAccount: account, At: now()}
	provinceLevel := approve
	provinceLevel.QuotaAccount = "relief-committee/IR-00"
	tooMuch := approve
	tooMuch.AmountRials = 1_000_000_001
	otherAgency := approve
	otherAgency.QuotaAccount = "welfare/IR-00/IR-00-arak"
	otherCounty := approve
	otherCounty.QuotaAccount = "relief-committee/IR-00/IR-00-khomein"
	malformed := approve
	malformed.QuotaAccount = "relief-committee"
	malformed.AmountRials = 0
	otherBank := approve
	otherBank.Bank = "post-bank"
	reject := facility.RejectLoan{FacilityID: fid, Bank: bank, Reason: "no guarantor", At: now()}
	rejectOther := reject
	rejectOther.Bank = "post-bank"

	runDecide(t, []decideCase{
		{name: "referred bank approves", history: referred(), cmd: approve, want: loanApproved()[2:]},
		{
			name: "province-level quota account", history: referred(), cmd: provinceLevel,
			want: []domain.Event{facility.LoanApprovedV1{Bank: bank, AmountRials: 900_000_000, QuotaAccount: "relief-committee/IR-00"}},
		},
		{name: "approval above the request", history: referred(), cmd: tooMuch, wantErr: domain.ErrInvalid, fields: []string{"amount_rials/exceeds_requested"}},
		{name: "quota of another agency", history: referred(), cmd: otherAgency, wantErr: domain.ErrInvalid, fields: []string{"quota_account/wrong_account"}},
		{name: "quota of another county", history: referred(), cmd: otherCounty, wantErr: domain.ErrInvalid, fields: []string{"quota_account/wrong_account"}},
		{
			name: "malformed account and zero amount", history: referred(), cmd: malformed,
			wantErr: domain.ErrInvalid, fields: []string{"quota_account/malformed", "amount_rials/not_positive"},
		},
		{name: "another bank cannot approve", history: referred(), cmd: otherBank, wantErr: domain.ErrIllegalTransition},
		{name: "not yet reviewed", history: registered(), cmd: approve, wantErr: domain.ErrIllegalTransition},
		{name: "already approved", history: loanApproved(), cmd: approve, wantErr: domain.ErrIllegalTransition},
		{name: "rejected by the agency", history: reviewRejected(), cmd: approve, wantErr: domain.ErrIllegalTransition},
		{name: "referred bank rejects", history: referred(), cmd: reject, want: loanRejected()[2:]},
		{name: "another bank cannot reject", history: referred(), cmd: rejectOther, wantErr: domain.ErrIllegalTransition},
		{
			name: "rejection needs a reason", history: referred(),
			cmd:     facility.RejectLoan{FacilityID: fid, Bank: bank, At: now()},
			wantErr: domain.ErrInvalid, fields: []string{"reason/required"},
		},
		{name: "cannot reject an approved loan", history: loanApproved(), cmd: reject, wantErr: domain.ErrIllegalTransition},
	})
}

func TestDecideDisburse(t *testing.T) {
	pay := func(n int, amount int64) facility.DisburseTranche {
		return facility.DisburseTranche{FacilityID: fid, Bank: bank, Tranche: n, AmountRials: amount, At: now()}
	}
	otherBank := pay(0, 1)
	otherBank.Bank = "post-bank"
	early := pay(0, 1)
	early.At = hour(2) // the loan was approved at hour(3)

	runDecide(t, []decideCase{
		{name: "first tranche", history: loanApproved(), cmd: pay(0, 400_000_000), want: disbursing()[3:]},
		{name: "numbered next tranche", history: disbursing(), cmd: pay(2, 500_000_000), want: disbursed()[4:]},
		{name: "repeated tranche number", history: disbursing(), cmd: pay(1, 400_000_000), wantErr: domain.ErrConflict},
		{name: "more than approved", history: disbursing(), cmd: pay(0, 500_000_001), wantErr: domain.ErrConflict},
		{name: "whole loan already paid", history: disbursed(), cmd: pay(0, 1), wantErr: domain.ErrIllegalTransition},
		{name: "before the bank approves", history: referred(), cmd: pay(0, 1), wantErr: domain.ErrIllegalTransition},
		{name: "after the bank rejects", history: loanRejected(), cmd: pay(0, 1), wantErr: domain.ErrIllegalTransition},
		{name: "only the approving bank pays", history: loanApproved(), cmd: otherBank, wantErr: domain.ErrIllegalTransition},
		{name: "dated before approval", history: loanApproved(), cmd: early, wantErr: domain.ErrInvalid, fields: []string{"at/out_of_order"}},
		{
			name: "invalid fields", history: loanApproved(),
			cmd:     facility.DisburseTranche{FacilityID: fid, Tranche: -1},
			wantErr: domain.ErrInvalid, fields: []string{"bank/required", "tranche/negative", "amount_rials/not_positive", "at/required"},
		},
	})
}

func TestDecideJobsAndInspections(t *testing.T) {
	report := facility.ReportJobs{FacilityID: fid, Jobs: 3, ReportedBy: facility.ReportedByBank, Period: "1403-Q2", At: now()}
	inspect := facility.RecordInspection{
		FacilityID: fid, InspectionID: "insp-1", Firm: "firm-1", GuidelineVersion: "1403.2",
		Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 2, At: now(),
	}
	doubled := inspect
	doubled.InspectionID = "insp-2"
	doubled.VerifiedJobs = 4
	tooMany := doubled
	tooMany.VerifiedJobs = 5
	notFound := inspect
	notFound.Status = facility.InspectionNotFound
	misused := inspect
	misused.Status = facility.InspectionMisused
	misused.Confirmed = false
	misused.VerifiedJobs = 0

	runDecide(t, []decideCase{
		{
			name: "jobs reported once a tranche is paid", history: disbursing(), cmd: report,
			want: []domain.Event{facility.JobsReportedV1{Jobs: 3, ReportedBy: facility.ReportedByBank, Period: "1403-Q2"}},
		},
		{name: "no jobs report before payment", history: loanApproved(), cmd: report, wantErr: domain.ErrIllegalTransition},
		{name: "no jobs report after closing", history: closed(), cmd: report, wantErr: domain.ErrIllegalTransition},
		{
			name: "jobs report fields", history: disbursing(),
			cmd:     facility.ReportJobs{FacilityID: fid, Jobs: -1, ReportedBy: "ministry", At: now()},
			wantErr: domain.ErrInvalid, fields: []string{"jobs/out_of_range", "reported_by/not_allowed"},
		},
		{name: "inspection after payment", history: disbursed(), cmd: inspect, want: inspected()[5:]},
		{
			name: "twice the promise is plausible", history: inspected(), cmd: doubled,
			want: []domain.Event{facility.InspectedV1{
				InspectionID: "insp-2", Firm: "firm-1", GuidelineVersion: "1403.2",
				Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 4,
			}},
		},
		{name: "more than twice the promise", history: inspected(), cmd: tooMany, wantErr: domain.ErrInvalid, fields: []string{"verified_jobs/implausible"}},
		{name: "inspection ids are unique", history: inspected(), cmd: inspect, wantErr: domain.ErrConflict},
		{name: "no inspection before payment", history: loanApproved(), cmd: inspect, wantErr: domain.ErrIllegalTransition},
		{
			name: "a business not found cannot be confirmed or employ", history: disbursed(), cmd: notFound,
			wantErr: domain.ErrInvalid, fields: []string{"confirmed/not_active", "verified_jobs/not_active"},
		},
		{
			name: "misuse is recorded", history: disbursed(), cmd: misused,
			want: []domain.Event{facility.InspectedV1{
				InspectionID: "insp-1", Firm: "firm-1", GuidelineVersion: "1403.2", Status: facility.InspectionMisused,
			}},
		},
		{
			name: "inspection fields", history: disbursed(),
			cmd:     facility.RecordInspection{FacilityID: fid, Status: "closed", VerifiedJobs: -1, At: now()},
			wantErr: domain.ErrInvalid,
			fields: []string{
				"inspection_id/required", "firm/required", "guideline_version/required",
				"status/not_allowed", "verified_jobs/out_of_range",
			},
		},
	})
}

func TestDecideDeviations(t *testing.T) {
	open := facility.OpenDeviation{
		FacilityID: fid, DeviationID: "dev-1", Kind: facility.KindDiscrepancy, InspectionID: "insp-1",
		Description: "one job missing", At: now(),
	}
	byAuditor := facility.OpenDeviation{FacilityID: fid, DeviationID: "dev-a", Kind: facility.KindViolation, Description: "forged invoice", At: now()}
	unknownInspection := open
	unknownInspection.InspectionID = "insp-9"
	evidence := facility.AddDeviationEvidence{FacilityID: fid, DeviationID: "dev-1", Evidence: "insurance list", DocumentRef: "doc-1", At: now()}
	resolve := facility.ResolveDeviation{FacilityID: fid, DeviationID: "dev-1", Resolution: facility.ResolutionCorrected, Note: "hired", At: now()}
	recover := facility.ResolveDeviation{FacilityID: fid, DeviationID: "dev-1", Resolution: facility.ResolutionFundsRecovered, RecoveredRials: 900_000_000, At: now()}
	overRecover := recover
	overRecover.RecoveredRials = 900_000_001
	resolved := append(withDeviation(), facility.DeviationResolvedV1{DeviationID: "dev-1", Resolution: facility.ResolutionDismissed})
	// A case opened before the agency rejected the plan is still followed up.
	rejectedWithCase := append(registered(),
		facility.DeviationOpenedV1{DeviationID: "dev-1", Kind: facility.KindViolation, Description: "forged documents"},
		facility.ReviewedV1{Decision: facility.ReviewRejected, Expert: "expert-42", Reason: "forged documents"},
	)

	runDecide(t, []decideCase{
		{name: "opened from an inspection", history: inspected(), cmd: open, want: withDeviation()[6:]},
		{
			name: "opened by an auditor before any payment", history: registered(), cmd: byAuditor,
			want: []domain.Event{facility.DeviationOpenedV1{DeviationID: "dev-a", Kind: facility.KindViolation, Description: "forged invoice"}},
		},
		{name: "unknown inspection", history: inspected(), cmd: unknownInspection, wantErr: domain.ErrNotFound},
		{name: "deviation ids are unique", history: withDeviation(), cmd: open, wantErr: domain.ErrConflict},
		{name: "not on a closed file", history: closed(), cmd: byAuditor, wantErr: domain.ErrIllegalTransition},
		{
			name: "opening fields", history: inspected(),
			cmd:     facility.OpenDeviation{FacilityID: fid, Kind: "fraud", At: now()},
			wantErr: domain.ErrInvalid, fields: []string{"deviation_id/required", "kind/not_allowed", "description/required"},
		},
		{
			name: "evidence on an open case", history: withDeviation(), cmd: evidence,
			want: []domain.Event{facility.DeviationEvidenceAddedV1{DeviationID: "dev-1", Evidence: "insurance list", DocumentRef: "doc-1"}},
		},
		{name: "evidence on an unknown case", history: inspected(), cmd: evidence, wantErr: domain.ErrNotFound},
		{name: "evidence on a resolved case", history: resolved, cmd: evidence, wantErr: domain.ErrIllegalTransition},
		{
			name: "resolved as corrected", history: withDeviation(), cmd: resolve,
			want: []domain.Event{facility.DeviationResolvedV1{DeviationID: "dev-1", Resolution: facility.ResolutionCorrected, Note: "hired"}},
		},
		{
			name: "funds recovered up to the amount paid", history: withDeviation(), cmd: recover,
			want: []domain.Event{facility.DeviationResolvedV1{DeviationID: "dev-1", Resolution: facility.ResolutionFundsRecovered, RecoveredRials: 900_000_000}},
		},
		{name: "cannot recover more than was paid", history: withDeviation(), cmd: overRecover, wantErr: domain.ErrConflict},
		{
			name: "recovery needs an amount", history: withDeviation(),
			cmd:     facility.ResolveDeviation{FacilityID: fid, DeviationID: "dev-1", Resolution: facility.ResolutionFundsRecovered, At: now()},
			wantErr: domain.ErrInvalid, fields: []string{"recovered_rials/not_positive"},
		},
		{
			name: "only a recovery has an amount", history: withDeviation(),
			cmd:     facility.ResolveDeviation{FacilityID: fid, DeviationID: "dev-1", Resolution: facility.ResolutionDismissed, RecoveredRials: 5, At: now()},
			wantErr: domain.ErrInvalid, fields: []string{"recovered_rials/not_allowed"},
		},
		{name: "cannot resolve twice", history: resolved, cmd: resolve, wantErr: domain.ErrIllegalTransition},
		{
			name: "case followed up after the plan is rejected", history: rejectedWithCase,
			cmd:  facility.ResolveDeviation{FacilityID: fid, DeviationID: "dev-1", Resolution: facility.ResolutionDismissed, At: now()},
			want: []domain.Event{facility.DeviationResolvedV1{DeviationID: "dev-1", Resolution: facility.ResolutionDismissed}},
		},
	})
}

func TestDecideClose(t *testing.T) {
	closeCmd := facility.Close{FacilityID: fid, Reason: "completed", At: now()}
	resolved := append(withDeviation(), facility.DeviationResolvedV1{DeviationID: "dev-1", Resolution: facility.ResolutionDismissed})

	runDecide(t, []decideCase{
		{name: "closes a paid facility", history: disbursed(), cmd: closeCmd, want: closed()[5:]},
		{name: "closes a withdrawn plan", history: registered(), cmd: closeCmd, want: []domain.Event{facility.ClosedV1{Reason: "completed"}}},
		{name: "closes once cases are resolved", history: resolved, cmd: closeCmd, want: []domain.Event{facility.ClosedV1{Reason: "completed"}}},
		{name: "open cases block closing", history: withDeviation(), cmd: closeCmd, wantErr: domain.ErrIllegalTransition},
		{name: "already closed", history: closed(), cmd: closeCmd, wantErr: domain.ErrIllegalTransition},
		{name: "rejected plans are final", history: loanRejected(), cmd: closeCmd, wantErr: domain.ErrIllegalTransition},
		{
			name: "reason and time are required", history: disbursed(), cmd: facility.Close{FacilityID: fid},
			wantErr: domain.ErrInvalid, fields: []string{"reason/required", "at/required"},
		},
		{name: "unknown facility", cmd: closeCmd, wantErr: domain.ErrNotFound},
	})
}

func TestDecideCorrect(t *testing.T) {
	withReports := append(disbursing(),
		facility.JobsReportedV1{Jobs: 20, ReportedBy: facility.ReportedByAgency}, // ev-5
	)
	withInactive := append(disbursed(), facility.InspectedV1{ // ev-6
		InspectionID: "insp-1", Firm: "firm-1", GuidelineVersion: "1403.2", Status: facility.InspectionInactive,
	})
	correct := func(event string, field facility.Field, v facility.Value) facility.Correct {
		return facility.Correct{FacilityID: fid, CorrectsEventID: event, Field: field, NewValue: v, Reason: "typing mistake", At: now()}
	}
	corrected := func(event, typ string, field facility.Field, old, nv facility.Value) []domain.Event {
		return []domain.Event{facility.CorrectedV1{
			CorrectsEventID: event, CorrectsEventType: typ, Field: field, OldValue: old, NewValue: nv, Reason: "typing mistake",
		}}
	}
	early := correct(eventID(5), facility.FieldJobs, facility.IntValue(2))
	early.At = hour(4)

	runDecide(t, []decideCase{
		{
			name: "reported jobs", history: withReports, cmd: correct(eventID(5), facility.FieldJobs, facility.IntValue(2)),
			want: corrected(eventID(5), facility.TypeJobsReported, facility.FieldJobs, facility.IntValue(20), facility.IntValue(2)),
		},
		{
			name: "jobs promised", history: registered(), cmd: correct(eventID(1), facility.FieldJobsPromised, facility.IntValue(3)),
			want: corrected(eventID(1), facility.TypeRegistered, facility.FieldJobsPromised, facility.IntValue(2), facility.IntValue(3)),
		},
		{
			name: "county", history: registered(), cmd: correct(eventID(1), facility.FieldCounty, facility.StringValue("IR-00-khomein")),
			want: corrected(eventID(1), facility.TypeRegistered, facility.FieldCounty, facility.StringValue("IR-00-arak"), facility.StringValue("IR-00-khomein")),
		},
		{
			name: "tranche amount within the approved loan", history: disbursing(),
			cmd:  correct(eventID(4), facility.FieldAmountRials, facility.IntValue(900_000_000)),
			want: corrected(eventID(4), facility.TypeTrancheDisbursed, facility.FieldAmountRials, facility.IntValue(400_000_000), facility.IntValue(900_000_000)),
		},
		{
			name: "confirmation withdrawn", history: inspected(), cmd: correct(eventID(6), facility.FieldConfirmed, facility.BoolValue(false)),
			want: corrected(eventID(6), facility.TypeInspected, facility.FieldConfirmed, facility.BoolValue(true), facility.BoolValue(false)),
		},
		{
			name: "correction on a closed file", history: closed(), cmd: correct(eventID(5), facility.FieldAmountRials, facility.IntValue(400_000_000)),
			want: corrected(eventID(5), facility.TypeTrancheDisbursed, facility.FieldAmountRials, facility.IntValue(500_000_000), facility.IntValue(400_000_000)),
		},
		{name: "unknown event", history: withReports, cmd: correct("ev-99", facility.FieldJobs, facility.IntValue(2)), wantErr: domain.ErrNotFound},
		{
			name: "field of another event type", history: registered(), cmd: correct(eventID(1), facility.FieldJobs, facility.IntValue(2)),
			wantErr: domain.ErrInvalid, fields: []string{"field/not_correctable"},
		},
		{
			name: "event with nothing correctable", history: referred(), cmd: correct(eventID(2), facility.FieldJobs, facility.IntValue(2)),
			wantErr: domain.ErrInvalid, fields: []string{"field/not_correctable"},
		},
		{
			name: "unknown field and malformed value", history: registered(),
			cmd:     correct(eventID(1), "title", facility.Value{Kind: facility.KindInt, Str: "x"}),
			wantErr: domain.ErrInvalid, fields: []string{"field/not_allowed", "new_value/malformed"},
		},
		{
			name: "value of the wrong kind", history: registered(), cmd: correct(eventID(1), facility.FieldJobsPromised, facility.StringValue("3")),
			wantErr: domain.ErrInvalid, fields: []string{"new_value/wrong_kind"},
		},
		{
			name: "no change", history: registered(), cmd: correct(eventID(1), facility.FieldJobsPromised, facility.IntValue(2)),
			wantErr: domain.ErrInvalid, fields: []string{"new_value/unchanged"},
		},
		{
			name: "reason is required", history: registered(),
			cmd:     facility.Correct{FacilityID: fid, CorrectsEventID: eventID(1), Field: facility.FieldJobsPromised, NewValue: facility.IntValue(3), At: now()},
			wantErr: domain.ErrInvalid, fields: []string{"reason/required"},
		},
		{
			name: "jobs promised stays positive", history: registered(), cmd: correct(eventID(1), facility.FieldJobsPromised, facility.IntValue(0)),
			wantErr: domain.ErrInvalid, fields: []string{"new_value/out_of_range"},
		},
		{
			name: "request below the approved loan", history: loanApproved(),
			cmd:     correct(eventID(1), facility.FieldRequestedRials, facility.IntValue(800_000_000)),
			wantErr: domain.ErrConflict,
		},
		{
			name: "tranche pushing the total over the approved loan", history: disbursed(),
			cmd:     correct(eventID(4), facility.FieldAmountRials, facility.IntValue(400_000_001)),
			wantErr: domain.ErrConflict,
		},
		{
			name: "tranche amount stays positive", history: disbursed(), cmd: correct(eventID(4), facility.FieldAmountRials, facility.IntValue(0)),
			wantErr: domain.ErrInvalid, fields: []string{"new_value/not_positive"},
		},
		{
			name: "verified jobs stay plausible", history: inspected(), cmd: correct(eventID(6), facility.FieldVerifiedJobs, facility.IntValue(5)),
			wantErr: domain.ErrInvalid, fields: []string{"new_value/implausible"},
		},
		{
			name: "an inactive business cannot be confirmed", history: withInactive, cmd: correct(eventID(6), facility.FieldConfirmed, facility.BoolValue(true)),
			wantErr: domain.ErrInvalid, fields: []string{"new_value/not_active"},
		},
		{
			name: "dated before the corrected event", history: withReports, cmd: early,
			wantErr: domain.ErrInvalid, fields: []string{"at/out_of_order"},
		},
	})
}

func TestDecideNeverChangesState(t *testing.T) {
	state := fold(t, withDeviation()...)
	before := fold(t, withDeviation()...)
	_, err := facility.Decide(state, facility.ResolveDeviation{
		FacilityID: fid, DeviationID: "dev-1", Resolution: facility.ResolutionDismissed, At: now(),
	})
	require.NoError(t, err)
	require.Equal(t, before, state, "Decide must not modify the state")
}
