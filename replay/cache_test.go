package replay_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/replay"
)

func snapshotDirs(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	return len(entries)
}

// TestCache checks that concurrent callers of one cut share one replay,
// that snapshots beyond Size are removed once released (and not before),
// that the size limit refuses long replays before any work, and that
// Close removes everything.
func TestCache(t *testing.T) {
	env := projectionstest.Backends()[0].Open(t)
	projectionstest.Build(t, env.Service(t), 12, 3)
	head := env.Head(t)
	dir := t.TempDir()
	c := replay.NewCache(replay.CacheConfig{
		Log: env.Store, Projectors: []projections.Projector{facilities.New()}, Size: 1, MaxEvents: head, TempDir: dir,
	})
	ctx := context.Background()

	t.Run("one replay for concurrent callers", func(t *testing.T) {
		var wg sync.WaitGroup
		snaps := make([]*replay.Snapshot, 8)
		for i := range snaps {
			wg.Go(func() {
				s, release, err := c.At(ctx, replay.Cut{Position: head})
				require.NoError(t, err)
				defer release()
				snaps[i] = s
			})
		}
		wg.Wait()
		for _, s := range snaps {
			require.Same(t, snaps[0], s)
		}
		require.Equal(t, 1, c.Len())
		require.Equal(t, 1, snapshotDirs(t, dir))
	})

	t.Run("eviction waits for readers", func(t *testing.T) {
		a, releaseA, err := c.At(ctx, replay.Cut{Position: head})
		require.NoError(t, err)
		b, releaseB, err := c.At(ctx, replay.Cut{Position: head - 5})
		require.NoError(t, err)
		require.Equal(t, 1, c.Len(), "a is out of the cache")
		require.Equal(t, 2, snapshotDirs(t, dir), "but still readable")
		page, err := facilities.NewReader(a.DB).JobCounts(ctx, facilities.Filter{})
		require.NoError(t, err)
		require.Equal(t, head, page.Position)
		page, err = facilities.NewReader(b.DB).JobCounts(ctx, facilities.Filter{})
		require.NoError(t, err)
		require.Equal(t, head-5, page.Position)
		releaseA()
		releaseA() // a second call is harmless
		require.Equal(t, 1, snapshotDirs(t, dir))
		releaseB()
	})

	t.Run("too large", func(t *testing.T) {
		_, _, err := c.At(ctx, replay.Cut{Position: head + 1})
		var tl *replay.TooLargeError
		require.ErrorAs(t, err, &tl)
		require.Equal(t, head, tl.Max)
		_, _, err = c.At(ctx, replay.Cut{})
		require.Error(t, err, "a cut without a position")
	})

	t.Run("a caller that gives up leaves the replay running", func(t *testing.T) {
		quick, cancel := context.WithTimeout(ctx, time.Microsecond)
		defer cancel()
		<-quick.Done()
		_, _, err := c.At(quick, replay.Cut{Position: head - 1})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		s, release, err := c.At(ctx, replay.Cut{Position: head - 1})
		require.NoError(t, err)
		require.Equal(t, head-1, s.Position)
		release()
	})

	require.NoError(t, c.Close())
	require.Zero(t, snapshotDirs(t, dir))
	_, _, err := c.At(ctx, replay.Cut{Position: head})
	require.ErrorIs(t, err, replay.ErrClosed)
}
