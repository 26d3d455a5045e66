package bench

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReplayQuick runs the replay scenarios end to end at smoke-test
// sizes: every read model recomputed from each backend's seeded log to its
// head, and a raw read of the same rows.
func TestReplayQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("grows two logs")
	}
	env, log := quickEnv(t, readModels()...)
	t.Cleanup(func() {
		names, err := RunSchemas(context.Background(), env.PG, env.RunID)
		if err == nil {
			err = DropSchemas(context.Background(), env.PG, names)
		}
		require.NoError(t, err)
	})
	scenarios, err := Find("replay-pg,replay-sqlite")
	require.NoError(t, err)
	results := (&Runner{Env: env}).Run(context.Background(), scenarios)
	t.Log(log.String())
	require.Len(t, results, 2)
	for _, res := range results {
		require.False(t, res.Failed(), "%s: %s%s", res.Scenario.Name, res.Payesh.Err, res.Baseline.Err)
		p, ok := res.Payesh.Point(replayKey)
		require.True(t, ok)
		raw, ok := res.Baseline.Point(replayKey)
		require.True(t, ok)
		require.Positive(t, p.Events)
		require.Equal(t, raw.Events, p.Events, "%s: the replay reached the head the raw read read", res.Scenario.Name)
		require.Contains(t, p.Note, "5 read models recomputed")
	}
}
