package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/internal/pgtest"
	"github.com/payesh/payesh/seed"
)

func seedCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, append([]string{"seed"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// checkSeeded runs a small seed twice into url and verifies the log.
func checkSeeded(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	code, out, errOut := seedCmd(t, ctx, "--store", url, "--facilities", "400", "--chunk", "100", "--seed", "7")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "WARNING: no pseudonymisation key given")
	require.Contains(t, errOut, "seed: 400/400 facilities (100.0%)")
	require.Contains(t, out, "seeded 400 facilities in")
	require.Contains(t, out, "metric")
	for _, m := range []string{"Markazi rural: approved / sent to bank", "field inspections confirmed", "quick-yield: active", "Ardabil: jobs registered / committed"} {
		require.Contains(t, out, m)
	}

	code, out, errOut = seedCmd(t, ctx, "--store", url, "--facilities", "400", "--chunk", "100", "--seed", "7")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, ": 0 events written (resumed: 4 of 4 pieces already stored")

	code, vout := verify(t, url)
	require.Equal(t, 0, code, vout)
	require.Contains(t, vout, "chain intact")

	// Another history into the same store is refused.
	code, _, errOut = seedCmd(t, ctx, "--store", url, "--facilities", "400", "--chunk", "100", "--seed", "8")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "different history")
}

func TestSeedSQLite(t *testing.T) {
	t.Setenv(backend.PseudonymKeyEnv, "")
	checkSeeded(t, "sqlite://"+filepath.Join(t.TempDir(), "seed.db"))
}

func TestSeedPostgres(t *testing.T) {
	t.Setenv(backend.PseudonymKeyEnv, "")
	base, schema := pgtest.Schema(t)
	checkSeeded(t, base+"&schema="+schema)
}

func TestSeedUsage(t *testing.T) {
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "seed.db")
	for _, args := range [][]string{
		{"--store", url, "--facilities", "0"},
		{"--store", url, "--chunk", "-1"},
		{"--store", url, "extra"},
		{"--store", url, "--pseudonym-key", filepath.Join(t.TempDir(), "missing")},
	} {
		code, _, errOut := seedCmd(t, ctx, args...)
		require.Equal(t, 2, code, "%v: %s", args, errOut)
	}
	code, _, _ := seedCmd(t, ctx, "-h")
	require.Equal(t, 0, code)

	// Cancelled (Ctrl-C): exit 1 and say how to resume.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	code, _, errOut := seedCmd(t, cancelled, "--store", url, "--facilities", "100")
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "Run the same command again to resume:\n  payesh seed --store "+url+" --facilities 100")
}

// TestBulkKeys checks the bulk key adapters against the vaults' own Key.
func TestBulkKeys(t *testing.T) {
	ctx := context.Background()
	urls := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "keys.db") },
		"postgres": func(t *testing.T) string {
			base, schema := pgtest.Schema(t)
			return base + "&schema=" + schema
		},
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			st, err := backend.Open(ctx, url(t))
			require.NoError(t, err)
			defer st.Close()
			v, err := vaultOf(st)
			require.NoError(t, err)
			b := v.(seed.KeyBatcher)

			old, err := v.Key(ctx, "a-k1", true)
			require.NoError(t, err)
			ids := []string{"a-k1", "b-k1", "c-k1"}
			keys, err := b.Keys(ctx, ids)
			require.NoError(t, err)
			require.Len(t, keys, 3)
			require.Equal(t, old, keys["a-k1"])
			for _, id := range ids {
				k, err := v.Key(ctx, id, false)
				require.NoError(t, err)
				require.Equal(t, k, keys[id])
			}
			again, err := b.Keys(ctx, ids)
			require.NoError(t, err)
			require.Equal(t, keys, again)

			require.NoError(t, v.Destroy(ctx, "b-k1"))
			_, err = b.Keys(ctx, ids)
			require.ErrorIs(t, err, applicant.ErrErased)
			_, err = b.Keys(ctx, []string{""})
			require.Error(t, err)
		})
	}
}

func TestSeedIfEmptyLeavesAFilledStoreAlone(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "demo.db")
	var out, errOut bytes.Buffer
	args := []string{"seed", "--store", url, "--facilities", "50", "--if-empty"}
	require.Equal(t, 0, run(context.Background(), args, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "seeded 50 facilities")

	out.Reset()
	require.Equal(t, 0, run(context.Background(), args, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "not seeding (--if-empty)")
}
