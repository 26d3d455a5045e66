package sqlite

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/applicant/vaulttest"
)

func TestVaultContract(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) applicant.Vault {
		s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "v.db")})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s.Vault()
	})
}

func TestDestroyedKeyLeavesNoCopyInTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	s, err := Open(ctx, Config{Path: path})
	require.NoError(t, err)
	v := s.Vault()
	key, err := v.Key(ctx, "applicant-k1", true)
	require.NoError(t, err)
	_, err = v.Key(ctx, "other-k1", true)
	require.NoError(t, err)
	require.NoError(t, v.Destroy(ctx, "applicant-k1"))
	require.NoError(t, s.Close())

	for _, f := range []string{path, path + "-wal"} {
		raw, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		require.False(t, bytes.Contains(raw, key), "%s still holds the destroyed key", filepath.Base(f))
	}
	s, err = Open(ctx, Config{Path: path})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Vault().Key(ctx, "applicant-k1", true)
	require.ErrorIs(t, err, applicant.ErrErased, "a destroyed key is never recreated")
}
