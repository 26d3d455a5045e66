package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// TestCurrent checks the checkpoint Reader.Current tells: its Engine's
// commits at once, another process's within the poll interval, and a
// rebuild's new build by its version and generation.
func TestCurrent(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		ctx := context.Background()
		env := b.Open(t)
		svc := env.Service(t)
		hist := projectionstest.Build(t, svc, 6, 3)
		v1 := &counter{name: "test_counts", version: 1}

		never := projections.NewReader(env.DB, v1)
		cp, err := never.Current(ctx, v1.name)
		require.NoError(t, err)
		require.Zero(t, cp, "a projection that never ran")
		_, err = never.Current(ctx, "nothing")
		require.ErrorIs(t, err, projections.ErrUnknownProjection)

		e := newEngine(t, env, 40, v1)
		stop := start(t, e)
		waitHead(t, e, env, v1.name)
		own := e.Reader()
		cp, err = own.Current(ctx, v1.name)
		require.NoError(t, err)
		require.Equal(t, projections.Checkpoint{Position: env.Head(t), Version: 1, Generation: 1}, cp)

		// The Engine's next commit is seen by its Reader at once (no
		// waiting out the poll interval), and by a polling Reader within it.
		polling := projections.NewReader(env.DB, v1)
		_, err = polling.Current(ctx, v1.name)
		require.NoError(t, err)
		hist.Register(1) // appends a facility
		head := env.Head(t)
		waitHead(t, e, env, v1.name)
		cp, err = own.Current(ctx, v1.name)
		require.NoError(t, err)
		require.Equal(t, head, cp.Position)
		require.Eventually(t, func() bool {
			cp, err := polling.Current(ctx, v1.name)
			return err == nil && cp.Position == head
		}, 5*time.Second, 5*time.Millisecond)

		// A new version, built by another Engine: a new build.
		stop()
		v2 := &counter{name: "test_counts", version: 2}
		e2 := newEngine(t, env, 40, v2)
		start(t, e2)
		waitHead(t, e2, env, v2.name)
		require.Eventually(t, func() bool {
			cp, err := polling.Current(ctx, v1.name)
			return err == nil && cp.Version == 2 && cp.Generation == 2 && cp.Position == head
		}, 5*time.Second, 5*time.Millisecond)
	})
}
