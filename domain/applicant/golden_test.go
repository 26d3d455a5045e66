package applicant_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/domaintest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSamples returns one representative payload per event type.
func goldenSamples() []domain.Event {
	ref := strings.Repeat("0f", 32)
	return []domain.Event{
		applicant.Claimed{FacilityID: "0192f1c4-6c1e-7a51-9a53-3f0d7e2c1b11", FiscalYear: 1403, Program: "home-business"},
		applicant.Released{FacilityID: "0192f1c4-6c1e-7a51-9a53-3f0d7e2c1b11", Reason: "rejected in expert review"},
		applicant.Erased{KeyID: applicant.KeyIDFor(ref, 1), Reason: "erasure request 1403-117"},
	}
}

func TestGoldenEvents(t *testing.T) {
	domaintest.GoldenEvents(t, applicant.EventTypes(), goldenSamples(), *update)
}
