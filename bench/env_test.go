package bench

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/payesh/payesh/internal/pgtest"
	"github.com/payesh/payesh/projections"
	bankmodel "github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/quotas"
)

// quickEnv is a run at smoke-test sizes on the test PostgreSQL (skipped,
// or failed under CI, when it is unreachable), with a fresh run id and
// work directory, rebuilding and running projectors; its progress goes to
// the returned buffer.
func quickEnv(t *testing.T, projectors ...projections.Projector) (Env, *bytes.Buffer) {
	t.Helper()
	pgtest.Connect(t)
	var id [4]byte
	_, _ = crand.Read(id[:])
	var log bytes.Buffer
	return Env{
		Sizes: QuickSizes(), PG: pgtest.URL(), Work: t.TempDir(), RunID: hex.EncodeToString(id[:]), Log: &log,
		Projectors: projectors,
	}, &log
}

// readModels is payesh bench's list of projectors (cmd/internal/readmodels'),
// which this package cannot import.
func readModels() []projections.Projector {
	return []projections.Projector{facilities.New(), quotas.New(), inspections.New(), deviations.New(), bankmodel.New()}
}
