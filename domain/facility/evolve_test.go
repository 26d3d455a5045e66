package facility_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
)

// runner drives a facility through Decide and Evolve as the application
// layer would, numbering events and advancing business time.
type runner struct {
	t *testing.T
	f facility.Facility
	n int
}

func (r *runner) do(cmd facility.Command) []string {
	r.t.Helper()
	events, err := facility.Decide(r.f, cmd)
	require.NoError(r.t, err)
	var ids []string
	for _, e := range events {
		r.n++
		id := fmt.Sprintf("ev-%d", r.n)
		r.f = facility.Evolve(r.f, domain.Recorded{ID: id, Version: uint64(r.n), OccurredAt: hour(r.n), Event: e})
		ids = append(ids, id)
	}
	return ids
}

func TestLifecycle(t *testing.T) {
	r := &runner{t: t}
	reg := registerCmd()
	reg.At = hour(1)
	r.do(reg)
	require.Equal(t, facility.StageRegistered, r.f.Stage())
	require.Equal(t, fid, r.f.ID())
	require.Equal(t, 1403, r.f.FiscalYear())
	require.Equal(t, "IR-00-arak", r.f.County())
	require.Equal(t, eventID(1), r.f.RegisteredEventID())

	r.do(facility.Review{FacilityID: fid, Decision: facility.ReviewApproved, Bank: bank, Expert: "expert-42", At: hour(2)})
	require.Equal(t, facility.StageReferred, r.f.Stage())
	require.Equal(t, bank, r.f.Bank())

	r.do(facility.ApproveLoan{FacilityID: fid, Bank: bank, AmountRials: 900_000_000, QuotaAccount: account, At: hour(3)})
	require.Equal(t, facility.StageLoanApproved, r.f.Stage())
	require.Equal(t, int64(900_000_000), r.f.ApprovedRials())
	require.Equal(t, account, r.f.QuotaAccount())

	r.do(facility.DisburseTranche{FacilityID: fid, Bank: bank, AmountRials: 400_000_000, At: hour(4)})
	require.Equal(t, facility.StageDisbursing, r.f.Stage())
	require.Equal(t, int64(400_000_000), r.f.DisbursedRials())
	require.Equal(t, int64(500_000_000), r.f.UndisbursedRials())
	require.Equal(t, hour(4), r.f.FirstPaidAt())

	_, ok := r.f.JobsReported()
	require.False(t, ok)
	r.do(facility.ReportJobs{FacilityID: fid, Jobs: 5, ReportedBy: facility.ReportedByAgency, At: hour(5)})
	r.do(facility.ReportJobs{FacilityID: fid, Jobs: 3, ReportedBy: facility.ReportedByBank, At: hour(6)})
	jobs, ok := r.f.JobsReported()
	require.True(t, ok)
	require.Equal(t, 3, jobs, "the latest report is the reported figure")

	r.do(facility.RecordInspection{
		FacilityID: fid, InspectionID: "insp-1", Firm: "firm-1", GuidelineVersion: "1403.2",
		Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 1, At: hour(7),
	})
	verified, ok := r.f.JobsVerified()
	require.True(t, ok)
	require.Equal(t, 1, verified)
	last, ok := r.f.LastInspection()
	require.True(t, ok)
	require.Equal(t, "insp-1", last.ID)

	r.do(facility.OpenDeviation{FacilityID: fid, DeviationID: "dev-1", Kind: facility.KindDiscrepancy, InspectionID: "insp-1", Description: "2 jobs missing", At: hour(8)})
	r.do(facility.AddDeviationEvidence{FacilityID: fid, DeviationID: "dev-1", Evidence: "insurance list", At: hour(9)})
	require.Len(t, r.f.OpenDeviations(), 1)
	require.Len(t, r.f.OpenDeviations()[0].Evidence, 1)

	r.do(facility.DisburseTranche{FacilityID: fid, Bank: bank, Tranche: 2, AmountRials: 500_000_000, At: hour(10)})
	require.Equal(t, facility.StageDisbursed, r.f.Stage())
	require.Equal(t, 2, r.f.TrancheCount())

	r.do(facility.ResolveDeviation{FacilityID: fid, DeviationID: "dev-1", Resolution: facility.ResolutionFundsRecovered, RecoveredRials: 300_000_000, At: hour(11)})
	require.Empty(t, r.f.OpenDeviations())
	require.Equal(t, int64(300_000_000), r.f.RecoveredRials())
	dev, ok := r.f.Deviation("dev-1")
	require.True(t, ok)
	require.False(t, dev.Open())
	require.Equal(t, facility.ResolutionFundsRecovered, dev.Resolution)

	r.do(facility.Close{FacilityID: fid, Reason: "completed", At: hour(12)})
	require.Equal(t, facility.StageClosed, r.f.Stage())
	require.True(t, r.f.Stage().Terminal())
	require.Equal(t, "completed", r.f.CloseReason())
	require.Equal(t, uint64(12), r.f.Version())
}

func TestCorrectionsShowInState(t *testing.T) {
	history := append(inspected(), // ev-6: insp-1 confirmed, 2 jobs
		facility.JobsReportedV1{Jobs: 20, ReportedBy: facility.ReportedByAgency}, // ev-7
		facility.JobsReportedV1{Jobs: 30, ReportedBy: facility.ReportedByBank},   // ev-8
		facility.InspectedV1{InspectionID: "insp-2", Firm: "firm-2", GuidelineVersion: "1404.1", // ev-9
			Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 3},
	)
	correction := func(event string, typ string, field facility.Field, old, nv facility.Value) domain.Event {
		return facility.CorrectedV1{CorrectsEventID: event, CorrectsEventType: typ, Field: field, OldValue: old, NewValue: nv, Reason: "fix"}
	}
	tests := []struct {
		name  string
		event domain.Event
		check func(t *testing.T, f facility.Facility)
	}{
		{
			name:  "latest jobs report",
			event: correction(eventID(8), facility.TypeJobsReported, facility.FieldJobs, facility.IntValue(30), facility.IntValue(3)),
			check: func(t *testing.T, f facility.Facility) {
				jobs, _ := f.JobsReported()
				require.Equal(t, 3, jobs)
			},
		},
		{
			name:  "older jobs report leaves the reported figure",
			event: correction(eventID(7), facility.TypeJobsReported, facility.FieldJobs, facility.IntValue(20), facility.IntValue(2)),
			check: func(t *testing.T, f facility.Facility) {
				jobs, _ := f.JobsReported()
				require.Equal(t, 30, jobs)
				require.Equal(t, 2, f.JobsReports()[0].Jobs)
			},
		},
		{
			name:  "withdrawn confirmation falls back to the previous confirmed inspection",
			event: correction(eventID(9), facility.TypeInspected, facility.FieldConfirmed, facility.BoolValue(true), facility.BoolValue(false)),
			check: func(t *testing.T, f facility.Facility) {
				jobs, ok := f.JobsVerified()
				require.True(t, ok)
				require.Equal(t, 2, jobs)
				last, _ := f.LastInspection()
				require.Equal(t, "insp-2", last.ID)
				require.False(t, last.Confirmed)
			},
		},
		{
			name:  "verified jobs",
			event: correction(eventID(9), facility.TypeInspected, facility.FieldVerifiedJobs, facility.IntValue(3), facility.IntValue(4)),
			check: func(t *testing.T, f facility.Facility) {
				jobs, _ := f.JobsVerified()
				require.Equal(t, 4, jobs)
			},
		},
		{
			name:  "smaller tranche reopens disbursement",
			event: correction(eventID(5), facility.TypeTrancheDisbursed, facility.FieldAmountRials, facility.IntValue(500_000_000), facility.IntValue(400_000_000)),
			check: func(t *testing.T, f facility.Facility) {
				require.Equal(t, int64(800_000_000), f.DisbursedRials())
				require.Equal(t, facility.StageDisbursing, f.Stage())
				require.Equal(t, int64(400_000_000), f.Tranches()[1].AmountRials)
			},
		},
		{
			name:  "registration figures",
			event: correction(eventID(1), facility.TypeRegistered, facility.FieldJobsPromised, facility.IntValue(2), facility.IntValue(5)),
			check: func(t *testing.T, f facility.Facility) { require.Equal(t, 5, f.JobsPromised()) },
		},
		{
			name:  "county",
			event: correction(eventID(1), facility.TypeRegistered, facility.FieldCounty, facility.StringValue("IR-00-arak"), facility.StringValue("")),
			check: func(t *testing.T, f facility.Facility) { require.Empty(t, f.County()) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, fold(t, append(history, tc.event)...))
		})
	}
}

func TestEvolveAcceptsDecodedPayloads(t *testing.T) {
	reg, err := domain.NewRegistry(facility.EventTypes())
	require.NoError(t, err)
	values := withDeviation()
	decoded := make([]domain.Event, len(values))
	for i, e := range values {
		data, err := domain.Encode(e)
		require.NoError(t, err)
		decoded[i], err = reg.Decode(e.EventType(), data)
		require.NoError(t, err)
	}
	require.Equal(t, fold(t, values...), fold(t, decoded...))
}

func TestEvolveLeavesEarlierStatesIntact(t *testing.T) {
	base := fold(t, withDeviation()...)
	snapshot := fold(t, withDeviation()...)
	next := func(e domain.Event) facility.Facility {
		return facility.Evolve(base, domain.Recorded{ID: "ev-x", Version: 8, OccurredAt: hour(8), Event: e})
	}

	resolved := next(facility.DeviationResolvedV1{DeviationID: "dev-1", Resolution: facility.ResolutionDismissed})
	evidence := next(facility.DeviationEvidenceAddedV1{DeviationID: "dev-1", Evidence: "photo"})
	corrected := next(facility.CorrectedV1{CorrectsEventID: eventID(4), Field: facility.FieldAmountRials, NewValue: facility.IntValue(1)})
	reported := next(facility.JobsReportedV1{Jobs: 1, ReportedBy: facility.ReportedByBank})
	inspectedAgain := next(facility.InspectedV1{InspectionID: "insp-2", Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 1})

	require.Equal(t, snapshot, base, "evolving must not modify the earlier state")
	require.Empty(t, resolved.OpenDeviations())
	require.Len(t, evidence.OpenDeviations()[0].Evidence, 1)
	require.Equal(t, int64(500_000_001), corrected.DisbursedRials())
	jobs, _ := reported.JobsReported()
	require.Equal(t, 1, jobs)
	require.Len(t, inspectedAgain.Inspections(), 2)

	// Accessors hand out copies.
	tranches := base.Tranches()
	tranches[0].AmountRials = 0
	base.Applicant().Ciphertext[0] = 9
	require.Equal(t, snapshot, base)
}

func TestStream(t *testing.T) {
	require.Equal(t, "facility-f-1403-000123", facility.Stream(fid))
	tests := []struct {
		stream string
		id     string
		ok     bool
	}{
		{stream: "facility-f-1403-000123", id: "f-1403-000123", ok: true},
		{stream: "facility-abc", id: "abc", ok: true},
		{stream: "facility-ab", ok: false},
		{stream: "facility--abc", ok: false},
		{stream: "quota-1403-home-business", ok: false},
		{stream: "facility-ABC", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.stream, func(t *testing.T) {
			id, ok := facility.IDFromStream(tc.stream)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.id, id)
		})
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"abc", true},
		{"0a-", true},
		{"f-1403-000123", true},
		{"ab", false},
		{"-ab", false},
		{"a_b", false},
		{"abc def", false},
		{"Abc", false},
		{string(make([]byte, 65)), false},
		{"a" + string(make([]byte, 63)), false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.id), func(t *testing.T) {
			require.Equal(t, tc.ok, facility.ValidID(tc.id))
		})
	}
}

func TestValue(t *testing.T) {
	tests := []struct {
		name string
		v    facility.Value
		text string
	}{
		{name: "int", v: facility.IntValue(0), text: "0"},
		{name: "string", v: facility.StringValue(""), text: `""`},
		{name: "bool", v: facility.BoolValue(false), text: "false"},
		{name: "zero", v: facility.Value{}, text: "<invalid>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.text, tc.v.String())
		})
	}
}
