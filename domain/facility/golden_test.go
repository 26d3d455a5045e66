package facility_test

import (
	"flag"
	"testing"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/domaintest"
	"github.com/payesh/payesh/domain/facility"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSamples holds one representative payload per event type, with every
// optional field set so that the golden file shows the whole schema.
func goldenSamples() []domain.Event {
	return []domain.Event{
		facility.RegisteredV1{
			FacilityID: "f-1403-000123", FiscalYear: 1403, Program: "home-business",
			Agency: "relief-committee", Province: "IR-00", County: "IR-00-arak",
			Applicant: facility.Applicant{Ref: "app-7f3a", KeyID: "key-2024-01", Ciphertext: []byte("sealed national id")},
			Title:     "کارگاه خیاطی خانگی", RequestedRials: 1_000_000_000, JobsPromised: 2,
		},
		facility.ReviewedV1{Decision: facility.ReviewApproved, Bank: "keshavarzi", Expert: "expert-42", Notes: "plan complete"},
		facility.LoanApprovedV1{Bank: "keshavarzi", AmountRials: 900_000_000, QuotaAccount: "relief-committee/IR-00/IR-00-arak"},
		facility.LoanRejectedV1{Bank: "keshavarzi", Reason: "no guarantor"},
		facility.TrancheDisbursedV1{Tranche: 1, AmountRials: 450_000_000},
		facility.JobsReportedV1{Jobs: 2, ReportedBy: facility.ReportedByAgency, Period: "1403-Q2"},
		facility.InspectedV1{
			InspectionID: "insp-1403-0001", Firm: "firm-arak-consult", GuidelineVersion: "1403.2",
			Status: facility.InspectionActive, Confirmed: true, VerifiedJobs: 2, Notes: "workshop operating",
		},
		facility.DeviationOpenedV1{
			DeviationID: "dev-1", Kind: facility.KindDiscrepancy, InspectionID: "insp-1403-0001",
			Description: "one of two promised jobs not found",
		},
		facility.DeviationEvidenceAddedV1{DeviationID: "dev-1", Evidence: "insurance list shows one employee", DocumentRef: "doc-991"},
		facility.DeviationResolvedV1{
			DeviationID: "dev-1", Resolution: facility.ResolutionFundsRecovered, RecoveredRials: 100_000_000, Note: "repaid",
		},
		facility.ClosedV1{Reason: "loan fully repaid"},
		facility.CorrectedV1{
			CorrectsEventID: "0190d7a4-7b1e-7c3a-9f00-000000000001", CorrectsEventType: facility.TypeJobsReported,
			Field: facility.FieldJobs, OldValue: facility.IntValue(20), NewValue: facility.IntValue(2),
			Reason: "extra digit typed by the agency",
		},
	}
}

func TestGoldenEvents(t *testing.T) {
	domaintest.GoldenEvents(t, facility.EventTypes(), goldenSamples(), *update)
}
