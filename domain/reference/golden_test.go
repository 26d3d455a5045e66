package reference_test

import (
	"flag"
	"testing"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/domaintest"
	"github.com/payesh/payesh/domain/reference"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSamples returns one representative payload per event type.
func goldenSamples() []domain.Event {
	from := time.Date(2024, 3, 19, 20, 30, 0, 0, time.UTC) // 1403/01/01 00:00 Tehran
	return []domain.Event{
		reference.AgencyAdded{ID: "welfare", NameEn: "State Welfare Organization", NameFa: "سازمان بهزیستی کشور", ValidFrom: from},
		reference.BankAdded{ID: "post-bank", NameEn: "Post Bank of Iran", NameFa: "پست بانک ایران", ValidFrom: from},
		reference.ProgramAdded{ID: "home-business", NameEn: "Home-based businesses", NameFa: "مشاغل خانگی",
			Note: "interest-free loans with a 4% fee under budget note 15 (1404)", MaxLoanRials: 2_000_000_000, ValidFrom: from},
		reference.CountyAdded{ID: "IR-23-pardis", Province: "IR-23", NameEn: "Pardis", NameFa: "پردیس", ValidFrom: from},
		reference.FirmAdded{ID: "markazi-field-monitoring", NameEn: "Markazi Field Monitoring Consultants",
			NameFa: "مشاوران نظارت میدانی مرکزی", SeatProvince: "IR-00", ValidFrom: from},
		reference.EntityRenamed{Kind: reference.KindAgency, ID: "welfare", NameEn: "Welfare Organization of Iran",
			NameFa: "سازمان بهزیستی", ValidFrom: from.AddDate(1, 0, 0)},
	}
}

func TestGoldenEvents(t *testing.T) {
	domaintest.GoldenEvents(t, reference.EventTypes(), goldenSamples(), *update)
}
