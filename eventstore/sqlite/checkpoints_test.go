package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The contract itself (monotonic saves, independent keys, lease exclusion)
// is checked by projections/pubsub/pubsubtest, run from the pubsub tests.

func TestCheckpointsTableCreatedOnFirstUse(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, Config{Path: filepath.Join(t.TempDir(), "p.db")})
	count := func() (n int) {
		require.NoError(t, st.DB().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'subscription_checkpoints'`).Scan(&n))
		return n
	}
	require.Zero(t, count())
	c := NewCheckpoints(st)
	pos, err := c.Load(ctx, "g", "t")
	require.NoError(t, err)
	require.Zero(t, pos)
	require.Equal(t, 1, count())
}

// TestCheckpointsShareFile: two Stores on one file (in one process) share
// checkpoints and leases; a store on another file leases independently;
// checkpoints survive reopening.
func TestCheckpointsShareFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	a := NewCheckpoints(openStore(t, Config{Path: path}))
	b := NewCheckpoints(openStore(t, Config{Path: path}))
	other := NewCheckpoints(openStore(t, Config{Path: filepath.Join(dir, "other.db")}))

	require.NoError(t, a.Save(ctx, "g", "t", 42))
	pos, err := b.Load(ctx, "g", "t")
	require.NoError(t, err)
	require.EqualValues(t, 42, pos)

	_, release, err := a.Lease(ctx, "g", "t")
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, _, err = b.Lease(short, "g", "t")
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "same file: excluded")
	_, releaseOther, err := other.Lease(ctx, "g", "t")
	require.NoError(t, err, "another file: independent")
	releaseOther()
	release()
	_, release, err = b.Lease(ctx, "g", "t")
	require.NoError(t, err)
	release()

	st := openStore(t, Config{Path: path})
	pos, err = NewCheckpoints(st).Load(ctx, "g", "t")
	require.NoError(t, err)
	require.EqualValues(t, 42, pos)
}

func TestCheckpointsAfterClose(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "p.db")})
	require.NoError(t, err)
	c := NewCheckpoints(st)
	require.NoError(t, st.Close())
	_, err = c.Load(ctx, "g", "t")
	require.Error(t, err)
	require.Error(t, c.Save(ctx, "g", "t", 1))
}
