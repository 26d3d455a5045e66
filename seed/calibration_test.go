package seed_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/seed"
)

// TestCalibration generates the default 20,000 facilities and compares
// them with the published figures: shares within 3 percentage points,
// other figures within 6%.
func TestCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 20,000 facilities")
	}
	_, g := generate(t, config(seed.DefaultFacilities, 1403))
	s := g.Stats()
	var report bytes.Buffer
	require.NoError(t, s.WriteReport(&report))
	t.Log("\n" + report.String())
	for _, m := range s.Calibration() {
		require.True(t, m.Within(), "%s: generated %.4f, published %.4f (diff %.2f, tolerance %.0f)",
			m.Name, m.Generated, m.Published, m.Diff(), m.Tolerance())
	}

	// The shape is not uniform: provinces differ in size and performance,
	// some quota runs out and is moved by the ministry, audit cases end
	// every way or stay open, and some figures are corrected.
	var sizes, shares []float64
	for _, f := range s.Provinces {
		sizes = append(sizes, float64(f.Registered))
		shares = append(shares, float64(f.JobsReported)/float64(f.JobsPromisedReporting))
	}
	require.Len(t, sizes, 31)
	require.Greater(t, slices.Max(sizes), 10*slices.Min(sizes))
	require.Greater(t, slices.Max(shares)-slices.Min(shares), 0.25)
	refused := 0
	for _, f := range s.Programs {
		refused += f.QuotaRefused
	}
	require.Positive(t, refused)
	require.Positive(t, s.Transfers)
	require.Len(t, s.Resolutions, 3)
	require.Positive(t, s.DeviationsOpen)
	require.Positive(t, s.Corrections)
	require.Equal(t, seed.DefaultFacilities, s.Facilities)
}
