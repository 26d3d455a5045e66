// Package vaulttest is the contract test suite for applicant.Vault. Every
// implementation runs it from its own tests:
//
//	func TestVault(t *testing.T) {
//		vaulttest.Run(t, func(t *testing.T) applicant.Vault { return newTestVault(t) })
//	}
//
// It is test support code and is imported only from _test files.
package vaulttest

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
)

// Run checks the Vault contract. newVault must return an empty vault, or at
// least one that shares no key IDs with other calls, for every subtest; it
// may register cleanups on t.
func Run(t *testing.T, newVault func(t *testing.T) applicant.Vault) {
	t.Helper()
	ctx := context.Background()

	t.Run("create then read returns the same key", func(t *testing.T) {
		v := newVault(t)
		k1, err := v.Key(ctx, "a-k1", true)
		require.NoError(t, err)
		require.Len(t, k1, applicant.KeySize)
		k2, err := v.Key(ctx, "a-k1", false)
		require.NoError(t, err)
		require.Equal(t, k1, k2)
		k3, err := v.Key(ctx, "a-k1", true)
		require.NoError(t, err)
		require.Equal(t, k1, k3, "create must not replace an existing key")
	})

	t.Run("missing key without create", func(t *testing.T) {
		v := newVault(t)
		_, err := v.Key(ctx, "missing-k1", false)
		require.ErrorIs(t, err, applicant.ErrNoKey)
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, err = v.Key(ctx, "missing-k1", false)
		require.ErrorIs(t, err, applicant.ErrNoKey, "a failed read must not create the key")
	})

	t.Run("keys differ between IDs and look random", func(t *testing.T) {
		v := newVault(t)
		k1, err := v.Key(ctx, "a-k1", true)
		require.NoError(t, err)
		k2, err := v.Key(ctx, "b-k1", true)
		require.NoError(t, err)
		require.NotEqual(t, k1, k2)
		require.NotEqual(t, make([]byte, applicant.KeySize), k1)
	})

	t.Run("returned key is a copy", func(t *testing.T) {
		v := newVault(t)
		k1, err := v.Key(ctx, "a-k1", true)
		require.NoError(t, err)
		want := append([]byte(nil), k1...)
		clear(k1)
		k2, err := v.Key(ctx, "a-k1", false)
		require.NoError(t, err)
		require.Equal(t, want, k2)
	})

	t.Run("destroyed key is erased for good", func(t *testing.T) {
		v := newVault(t)
		_, err := v.Key(ctx, "a-k1", true)
		require.NoError(t, err)
		require.NoError(t, v.Destroy(ctx, "a-k1"))
		_, err = v.Key(ctx, "a-k1", false)
		require.ErrorIs(t, err, applicant.ErrErased)
		_, err = v.Key(ctx, "a-k1", true)
		require.ErrorIs(t, err, applicant.ErrErased, "a destroyed key must never be recreated")
	})

	t.Run("destroy is idempotent", func(t *testing.T) {
		v := newVault(t)
		_, err := v.Key(ctx, "a-k1", true)
		require.NoError(t, err)
		require.NoError(t, v.Destroy(ctx, "a-k1"))
		require.NoError(t, v.Destroy(ctx, "a-k1"))
		_, err = v.Key(ctx, "a-k1", true)
		require.ErrorIs(t, err, applicant.ErrErased)
	})

	t.Run("destroying an unknown key blocks it", func(t *testing.T) {
		v := newVault(t)
		require.NoError(t, v.Destroy(ctx, "never-k1"))
		_, err := v.Key(ctx, "never-k1", true)
		require.ErrorIs(t, err, applicant.ErrErased)
	})

	t.Run("destroy leaves other keys alone", func(t *testing.T) {
		v := newVault(t)
		k2, err := v.Key(ctx, "a-k2", true)
		require.NoError(t, err)
		require.NoError(t, v.Destroy(ctx, "a-k1"))
		got, err := v.Key(ctx, "a-k2", false)
		require.NoError(t, err)
		require.Equal(t, k2, got)
	})

	t.Run("empty key ID", func(t *testing.T) {
		v := newVault(t)
		_, err := v.Key(ctx, "", true)
		require.ErrorIs(t, err, domain.ErrInvalid)
		require.ErrorIs(t, v.Destroy(ctx, ""), domain.ErrInvalid)
	})

	t.Run("cancelled context", func(t *testing.T) {
		v := newVault(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := v.Key(cctx, "a-k1", true)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, v.Destroy(cctx, "a-k1"), context.Canceled)
		_, err = v.Key(ctx, "a-k1", true)
		require.NoError(t, err, "a cancelled Destroy must not have erased the key")
	})

	t.Run("concurrent creation agrees on one key", func(t *testing.T) {
		v := newVault(t)
		const n = 16
		keys := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { keys[i], errs[i] = v.Key(ctx, "shared-k1", true) })
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, keys[0], keys[i])
		}
	})

	t.Run("concurrent destroy and create never resurrect", func(t *testing.T) {
		v := newVault(t)
		var wg sync.WaitGroup
		wg.Go(func() { _ = v.Destroy(ctx, "race-k1") })
		wg.Go(func() { _, _ = v.Key(ctx, "race-k1", true) })
		wg.Wait()
		_, err := v.Key(ctx, "race-k1", true)
		require.ErrorIs(t, err, applicant.ErrErased)
	})
}
