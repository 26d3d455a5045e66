package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections/facilities"
)

// TestRebuildQuick runs the rebuild scenarios end to end at smoke-test
// sizes, on SQLite and on the test PostgreSQL, both sides in this process,
// and checks what they measured.
func TestRebuildQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds and rebuilds two logs")
	}
	env, log := quickEnv(t, facilities.New())
	scenarios, err := Find("rebuild-sqlite,rebuild-pg")
	require.NoError(t, err)
	results := (&Runner{Env: env}).Run(context.Background(), scenarios)
	t.Log(log.String())
	require.Len(t, results, 2)

	sizes := env.Sizes
	for _, res := range results {
		require.False(t, res.Failed(), "%s: %s%s\n%s", res.Scenario.Name, res.Payesh.Err, res.Baseline.Err, log.String())
		var prev int64
		for _, f := range sizes.RebuildFacilities {
			p, ok := res.Payesh.Point(rebuildKey(f))
			require.True(t, ok, "%s: rebuild at %d facilities", res.Scenario.Name, f)
			raw, ok := res.Baseline.Point(rebuildKey(f))
			require.True(t, ok)
			require.Greater(t, p.Events, prev, "the log grows between sizes")
			require.Equal(t, raw.Events, p.Events, "both sides read the same log, to the same position")
			require.Positive(t, p.Rate())
			require.Positive(t, raw.Rate())
			require.Positive(t, p.PeakRSS)
			require.Contains(t, p.Note, "one read of the log")
			require.Regexp(t, `: facilities [0-9.]+(µs|ms|s)\b`, p.Note, "the time in each projector")
			require.Contains(t, p.Note, "Go heap peak")
			prev = p.Events
		}
		for _, side := range []SideResult{res.Payesh, res.Baseline} {
			lag, ok := side.Point(lagKey)
			require.True(t, ok, "%s: %s lag", res.Scenario.Name, side.Label)
			require.Equal(t, int64(sizes.LagAppends), lag.Events)
			require.NotNil(t, lag.Latency)
			require.Positive(t, lag.Latency.Median)
			require.LessOrEqual(t, lag.Latency.Median, lag.Latency.P99)
			require.LessOrEqual(t, lag.Latency.P99, lag.Latency.Max)
		}
		for _, l := range res.Lines(sizes) {
			if l.Row.Key != lagKey {
				require.NotNil(t, l.Met, "%s %s: the memory target is judged", res.Scenario.Name, l.Row.Key)
			}
		}
	}

	// The baseline, the logs' last reader, dropped them.
	left, err := RunSchemas(context.Background(), env.PG, env.RunID)
	require.NoError(t, err)
	require.Empty(t, left)
	for _, name := range []string{"rebuild.db", "rebuild-sqlite.json", "rebuild-pg.json"} {
		_, err := os.Stat(filepath.Join(env.Work, name))
		require.ErrorIs(t, err, os.ErrNotExist, name)
	}
}
