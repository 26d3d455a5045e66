package auth_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
)

func TestDevKeyConstants(t *testing.T) {
	pub, priv := auth.DevKeys()
	seed := sha256.Sum256([]byte("payesh development signing key - public, never use in production"))
	require.True(t, ed25519.NewKeyFromSeed(seed[:]).Equal(priv), "the dev key is the documented, reproducible one")

	pubs, err := auth.ParsePublicKeysPEM([]byte(auth.DevPublicKeyPEM))
	require.NoError(t, err)
	require.True(t, pub.Equal(pubs[0]), "the two PEM constants are one pair")
	require.Equal(t, auth.DevKeyID, auth.KeyID(pub))

	require.True(t, auth.IsDevKey(pub))
	other := newKeyPair(t)
	require.False(t, auth.IsDevKey(other.pub))
	require.False(t, auth.IsDevKey(nil))
	require.NoError(t, auth.CheckProductionKeys([]ed25519.PublicKey{other.pub}))
	require.ErrorIs(t, auth.CheckProductionKeys([]ed25519.PublicKey{other.pub, pub}), auth.ErrDevKeyInProduction)
}

func TestDevTokens(t *testing.T) {
	now := t0
	cat := reference.DefaultCatalog()
	iss := auth.DevIssuer(fixedClock(&now))
	dev := auth.DevVerifier(cat, fixedClock(&now))
	prod := newVerifier(t, fixedClock(&now), newKeyPair(t).pub)

	for _, role := range auth.Roles() {
		t.Run(string(role), func(t *testing.T) {
			p := auth.DevPrincipal(role)
			require.NoError(t, p.Validate(cat), "every dev principal exists in the default catalogue")
			token, _, err := iss.Issue(p, 24*time.Hour)
			require.NoError(t, err)

			got, err := dev.Authenticate(t.Context(), token)
			require.NoError(t, err)
			require.Equal(t, p, got)

			_, err = prod.Authenticate(t.Context(), token)
			require.ErrorIs(t, err, auth.ErrDevKeyRefused)
			require.ErrorContains(t, err, "development key")
		})
	}
	require.Empty(t, auth.DevScopeID(auth.RoleMinistry))
	require.Error(t, auth.DevPrincipal("governor").Validate(nil))
}
