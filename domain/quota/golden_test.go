package quota_test

import (
	"flag"
	"testing"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/domaintest"
	"github.com/payesh/payesh/domain/quota"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSamples holds one representative payload per event type, with every
// optional field set.
func goldenSamples() []domain.Event {
	arak := quota.AccountKey{Agency: "relief-committee", Province: "IR-00", County: "IR-00-arak"}
	markazi := quota.AccountKey{Agency: "welfare", Province: "IR-00"}
	return []domain.Event{
		quota.AllocatedV1{
			FiscalYear: 1403, Program: "home-business", Account: arak, AmountRials: 1_169_000_000_000,
			JobsTarget: 1139, LegalBasis: "1403 budget law note 18", DecisionRef: "MCLS-1403-0042",
		},
		quota.TransferredV1{
			FiscalYear: 1403, Program: "home-business", TransferID: "tr-1403-0007", From: arak, To: markazi,
			AmountRials: 100_000_000_000, JobsTarget: 100,
			LegalBasis: "1403 budget law note 15; article 6 clause A note 1", DecisionRef: "MCLS-1403-0107",
			ProposalID: "prop-12",
		},
		quota.ChargedV1{FiscalYear: 1403, Program: "home-business", Account: arak, FacilityID: "f-1403-000123", AmountRials: 900_000_000},
		quota.ChargeReleasedV1{
			FiscalYear: 1403, Program: "home-business", Account: arak, FacilityID: "f-1403-000123",
			AmountRials: 500_000_000, Reason: "facility closed before the second tranche",
		},
		quota.AllocationCorrectedV1{
			FiscalYear: 1403, Program: "home-business", CorrectsEventID: "0190d7a4-7b1e-7c3a-9f00-000000000002",
			Account: arak, PreviousAmountRials: 1_169_000_000_000, PreviousJobsTarget: 1139,
			AmountRials: 1_196_000_000_000, JobsTarget: 1139, Reason: "digits transposed",
		},
		reallocationProposed(arak, markazi),
		quota.ReallocationApprovedV1{
			FiscalYear: 1403, Program: "home-business", ProposalID: "1403.home-business.3", Lines: []int{1},
			LegalBasis: "1403 budget law note 15", DecisionRef: "MCLS-1403-0200",
		},
		quota.ReallocationCancelledV1{FiscalYear: 1403, Program: "home-business", ProposalID: "1403.home-business.4", Reason: "superseded by proposal 5"},
	}
}

func TestGoldenEvents(t *testing.T) {
	domaintest.GoldenEvents(t, quota.EventTypes(), goldenSamples(), *update)
}

func reallocationProposed(from, to quota.AccountKey) quota.ReallocationProposedV1 {
	absorption, days := 12.5, 210
	var p quota.Policy
	p.Scope.Province = "IR-00"
	p.MaxAbsorptionPct, p.MinDaysSinceAllocation, p.MinUnmetDemandRials, p.CapPerTransferRials = 30, 90, 1_000_000_000, 50_000_000_000
	return quota.ReallocationProposedV1{
		FiscalYear: 1403, Program: "home-business", ProposalID: "1403.home-business.3", Policy: p, BasedOnPosition: 24_810,
		Lines: []quota.ProposedLine{{
			Line: 1, From: from, To: to, AmountRials: 50_000_000_000, JobsTarget: 48,
			Donor: quota.AccountFigures{Account: from, AllocatedRials: 1_196_000_000_000, AvailableRials: 1_196_000_000_000,
				ChargedRials: 149_500_000_000, FreeRials: 1_046_500_000_000, JobsTarget: 1139, AbsorptionPct: &absorption,
				DaysSinceAllocation: &days},
			Receiver: quota.AccountFigures{Account: to, AllocatedRials: 400_000_000_000, AvailableRials: 400_000_000_000,
				ChargedRials: 398_000_000_000, FreeRials: 2_000_000_000, JobsTarget: 380, DaysSinceAllocation: &days,
				UnmetFacilities: 61, UnmetRequestedRials: 73_200_000_000},
		}},
	}
}
