package checkpoint_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/checkpoint"
	"github.com/payesh/payesh/domain/domaintest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSamples returns one representative payload per event type.
func goldenSamples() []domain.Event {
	return []domain.Event{
		checkpoint.Checkpoint{
			Format: checkpoint.Format, Position: 1_204_311, Hash: strings.Repeat("3c", 32), LogID: strings.Repeat("a2", 32),
			SignedAt: time.Date(2025, 3, 20, 9, 30, 0, 123456000, time.UTC), KeyID: "XudPjpDgoehmP2fU",
			Signature: strings.Repeat("A", 86),
		},
	}
}

func TestGoldenEvents(t *testing.T) {
	domaintest.GoldenEvents(t, checkpoint.EventTypes(), goldenSamples(), *update)
}
