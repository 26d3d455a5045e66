package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
)

func TestKeyPEMRoundTrip(t *testing.T) {
	pub, priv, err := auth.GenerateKey(nil)
	require.NoError(t, err)

	privPEM, err := auth.MarshalPrivateKeyPEM(priv)
	require.NoError(t, err)
	require.Contains(t, string(privPEM), "-----BEGIN PRIVATE KEY-----")
	gotPriv, err := auth.ParsePrivateKeyPEM(privPEM)
	require.NoError(t, err)
	require.True(t, priv.Equal(gotPriv))

	pubPEM, err := auth.MarshalPublicKeyPEM(pub)
	require.NoError(t, err)
	require.Contains(t, string(pubPEM), "-----BEGIN PUBLIC KEY-----")
	gotPub, err := auth.ParsePublicKeysPEM(pubPEM)
	require.NoError(t, err)
	require.Len(t, gotPub, 1)
	require.True(t, pub.Equal(gotPub[0]))

	// Two keys in one file: how a verifier learns the old and the new key.
	pub2, _, err := auth.GenerateKey(nil)
	require.NoError(t, err)
	pub2PEM, err := auth.MarshalPublicKeyPEM(pub2)
	require.NoError(t, err)
	both, err := auth.ParsePublicKeysPEM(append(append([]byte("# rotation 1404\n"), pubPEM...), pub2PEM...))
	require.NoError(t, err)
	require.Len(t, both, 2)
	require.True(t, pub2.Equal(both[1]))
}

func TestKeyID(t *testing.T) {
	pub, _, err := auth.GenerateKey(nil)
	require.NoError(t, err)
	id := auth.KeyID(pub)
	require.Regexp(t, `^[A-Za-z0-9_-]{16}$`, id)
	require.Equal(t, id, auth.KeyID(append(ed25519.PublicKey(nil), pub...)), "derived from the key only")
	other, _, err := auth.GenerateKey(nil)
	require.NoError(t, err)
	require.NotEqual(t, id, auth.KeyID(other))
}

func TestParseKeyErrors(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecPriv, err := x509.MarshalPKCS8PrivateKey(ec)
	require.NoError(t, err)
	ecPub, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	require.NoError(t, err)
	_, edPriv, err := auth.GenerateKey(nil)
	require.NoError(t, err)
	edPrivPEM, err := auth.MarshalPrivateKeyPEM(edPriv)
	require.NoError(t, err)
	edPubPEM, err := auth.MarshalPublicKeyPEM(edPriv.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not PEM", []byte("hello"), "no PEM block found"},
		{"public key given", edPubPEM, `PEM block is "PUBLIC KEY", want "PRIVATE KEY" (PKCS#8)`},
		{"ECDSA key", block("PRIVATE KEY", ecPriv), "not Ed25519"},
		{"garbage DER", block("PRIVATE KEY", []byte{1, 2, 3}), "not an Ed25519 key in PEM form"},
	} {
		t.Run("private/"+tc.name, func(t *testing.T) {
			_, err := auth.ParsePrivateKeyPEM(tc.data)
			require.ErrorIs(t, err, auth.ErrKeyFormat)
			require.ErrorContains(t, err, tc.want)
		})
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not PEM", []byte("hello"), "no PEM block found"},
		{"private key given", edPrivPEM, `PEM block 1 is "PRIVATE KEY", want "PUBLIC KEY" (PKIX)`},
		{"ECDSA key second", append(edPubPEM, block("PUBLIC KEY", ecPub)...), "PEM block 2 holds a *ecdsa.PublicKey, not an Ed25519 key"},
	} {
		t.Run("public/"+tc.name, func(t *testing.T) {
			_, err := auth.ParsePublicKeysPEM(tc.data)
			require.ErrorIs(t, err, auth.ErrKeyFormat)
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("marshal short keys", func(t *testing.T) {
		_, err := auth.MarshalPrivateKeyPEM(ed25519.PrivateKey{1})
		require.ErrorIs(t, err, auth.ErrKeyFormat)
		_, err = auth.MarshalPublicKeyPEM(ed25519.PublicKey{1})
		require.ErrorIs(t, err, auth.ErrKeyFormat)
	})
}

func TestWriteAndReadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := auth.GenerateKey(nil)
	require.NoError(t, err)
	privPath, pubPath, err := auth.WriteKeyFiles(dir, "signing", priv)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "signing.key"), privPath)
	require.Equal(t, filepath.Join(dir, "signing.pub"), pubPath)

	st, err := os.Stat(privPath)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), st.Mode().Perm(), "the private key is readable by its owner only")

	gotPriv, err := auth.ReadPrivateKeyFile(privPath)
	require.NoError(t, err)
	require.True(t, priv.Equal(gotPriv))
	gotPub, err := auth.ReadPublicKeysFile(pubPath)
	require.NoError(t, err)
	require.True(t, priv.Public().(ed25519.PublicKey).Equal(gotPub[0]))

	t.Run("never overwrites", func(t *testing.T) {
		_, other, err := auth.GenerateKey(nil)
		require.NoError(t, err)
		_, _, err = auth.WriteKeyFiles(dir, "signing", other)
		require.ErrorIs(t, err, fs.ErrExist)
		stillPriv, err := auth.ReadPrivateKeyFile(privPath)
		require.NoError(t, err)
		require.True(t, priv.Equal(stillPriv))
	})
	t.Run("existing public file alone blocks both", func(t *testing.T) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "half.pub"), []byte("x"), 0o644))
		_, _, err := auth.WriteKeyFiles(dir, "half", priv)
		require.ErrorIs(t, err, fs.ErrExist)
		_, err = os.Stat(filepath.Join(dir, "half.key"))
		require.ErrorIs(t, err, fs.ErrNotExist, "nothing written")
	})
	t.Run("missing directory", func(t *testing.T) {
		_, _, err := auth.WriteKeyFiles(filepath.Join(dir, "nope"), "k", priv)
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("read errors name the file", func(t *testing.T) {
		_, err := auth.ReadPrivateKeyFile(pubPath)
		require.ErrorIs(t, err, auth.ErrKeyFormat)
		require.ErrorContains(t, err, pubPath)
		_, err = auth.ReadPublicKeysFile(filepath.Join(dir, "absent.pub"))
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
}
