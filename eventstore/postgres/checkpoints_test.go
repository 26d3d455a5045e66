package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/internal/pgtest"
)

// The contract itself (monotonic saves, independent keys, lease exclusion)
// is checked by projections/pubsub/pubsubtest, run from the pubsub tests.

func TestCheckpointsTableInSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := pgtest.Schema(t)
	st := openTest(t, url, schema, nil)
	c := NewCheckpoints(st)
	require.NoError(t, c.Save(ctx, "g", "t", 5))
	var exists bool
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`,
		pgx.Identifier{schema, "subscription_checkpoints"}.Sanitize()).Scan(&exists))
	require.True(t, exists)
}

// TestCheckpointsLeaseAcrossStores: two separately opened stores (as two
// processes) exclude each other, and see each other's checkpoints.
func TestCheckpointsLeaseAcrossStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := pgtest.Schema(t)
	a := NewCheckpoints(openTest(t, url, schema, nil))
	b := NewCheckpoints(openTest(t, url, schema, nil))
	a.LeaseRetry, b.LeaseRetry = 20*time.Millisecond, 20*time.Millisecond

	require.NoError(t, a.Save(ctx, "g", "t", 9))
	pos, err := b.Load(ctx, "g", "t")
	require.NoError(t, err)
	require.EqualValues(t, 9, pos)

	heldA, releaseA, err := a.Lease(ctx, "g", "t")
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, _, err = b.Lease(short, "g", "t")
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Other keys, and the same key in another schema, are free.
	_, r, err := b.Lease(ctx, "g", "t2")
	require.NoError(t, err)
	r()
	url2, schema2 := pgtest.Schema(t)
	c := NewCheckpoints(openTest(t, url2, schema2, nil))
	_, r, err = c.Lease(ctx, "g", "t")
	require.NoError(t, err)
	r()

	got := make(chan func(), 1)
	go func() {
		_, r, err := b.Lease(ctx, "g", "t")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("both stores hold the lease")
	case <-time.After(200 * time.Millisecond):
	}
	releaseA()
	require.Error(t, heldA.Err())
	select {
	case r := <-got:
		require.NotNil(t, r)
		r()
	case <-time.After(10 * time.Second):
		t.Fatal("b did not get the lease a released")
	}
}

// TestCheckpointsLeaseLost: when the lease session dies, PostgreSQL frees
// the lock; the holder's context is cancelled and another store can take
// the lease.
func TestCheckpointsLeaseLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, schema := pgtest.Schema(t)
	a := NewCheckpoints(openTest(t, url, schema, nil))
	b := NewCheckpoints(openTest(t, url, schema, nil))
	a.LeaseRetry, b.LeaseRetry = 20*time.Millisecond, 20*time.Millisecond
	a.LeaseCheck = 100 * time.Millisecond

	held, release, err := a.Lease(ctx, "g", "t")
	require.NoError(t, err)
	defer release()

	key := a.leaseKey("g", "t")
	conn := pgtest.Connect(t)
	var pid int32
	require.NoError(t, conn.QueryRow(ctx, `
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND classid::bigint = $1 AND objid::bigint = $2`,
		int64(uint64(key)>>32), int64(uint32(uint64(key)))).Scan(&pid))
	_, err = conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
	require.NoError(t, err)

	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder was not told that its lease was lost")
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, r, err := b.Lease(waitCtx, "g", "t")
	require.NoError(t, err, "the lock was freed with the session")
	r()
	release()

	// a recovers with a new session.
	_, r, err = a.Lease(waitCtx, "g", "t")
	require.NoError(t, err)
	r()
}
