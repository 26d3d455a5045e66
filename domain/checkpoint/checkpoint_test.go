package checkpoint_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/checkpoint"
)

func keys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

func signed(t *testing.T, priv ed25519.PrivateKey) checkpoint.Checkpoint {
	t.Helper()
	c, err := checkpoint.New(42, strings.Repeat("ab", 32), strings.Repeat("cd", 32),
		time.Date(2025, 1, 2, 3, 4, 5, 6789, time.FixedZone("IRST", 12600))).Sign(priv, "kid-1")
	require.NoError(t, err)
	return c
}

func TestSignVerifyAndFileRoundTrip(t *testing.T) {
	pub, priv := keys(t)
	c := signed(t, priv)
	require.Equal(t, time.Date(2025, 1, 1, 23, 34, 5, 6000, time.UTC), c.SignedAt, "UTC, microseconds")
	require.NoError(t, c.Verify([]ed25519.PublicKey{pub}))

	file, err := c.Marshal()
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(file), "}\n"))
	back, err := checkpoint.Parse(file)
	require.NoError(t, err)
	require.Equal(t, c, back)
	require.NoError(t, back.Verify([]ed25519.PublicKey{pub}), "the file verifies as it was signed")

	other, _ := keys(t)
	require.NoError(t, c.Verify([]ed25519.PublicKey{other, pub}), "any of several keys")
	require.ErrorIs(t, c.Verify([]ed25519.PublicKey{other}), checkpoint.ErrBadSignature)
	require.ErrorIs(t, c.Verify(nil), checkpoint.ErrBadSignature)
}

// Every signed field is covered by the signature.
func TestEveryFieldIsSigned(t *testing.T) {
	pub, priv := keys(t)
	mutations := map[string]func(c *checkpoint.Checkpoint){
		"position":  func(c *checkpoint.Checkpoint) { c.Position++ },
		"hash":      func(c *checkpoint.Checkpoint) { c.Hash = strings.Repeat("ac", 32) },
		"log_id":    func(c *checkpoint.Checkpoint) { c.LogID = strings.Repeat("ce", 32) },
		"signed_at": func(c *checkpoint.Checkpoint) { c.SignedAt = c.SignedAt.Add(time.Microsecond) },
		"key_id":    func(c *checkpoint.Checkpoint) { c.KeyID = "kid-2" },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			c := signed(t, priv)
			mutate(&c)
			require.ErrorIs(t, c.Verify([]ed25519.PublicKey{pub}), checkpoint.ErrBadSignature)
		})
	}
}

func TestMalformedCheckpointsAreRefused(t *testing.T) {
	pub, priv := keys(t)
	cases := map[string]func(c *checkpoint.Checkpoint){
		"format":           func(c *checkpoint.Checkpoint) { c.Format = "payesh-checkpoint/v0" },
		"position 0":       func(c *checkpoint.Checkpoint) { c.Position = 0 },
		"short hash":       func(c *checkpoint.Checkpoint) { c.Hash = "abcd" },
		"upper-case hash":  func(c *checkpoint.Checkpoint) { c.Hash = strings.ToUpper(c.Hash) },
		"log id not hex":   func(c *checkpoint.Checkpoint) { c.LogID = strings.Repeat("zz", 32) },
		"no time":          func(c *checkpoint.Checkpoint) { c.SignedAt = time.Time{} },
		"no key id":        func(c *checkpoint.Checkpoint) { c.KeyID = "" },
		"signature base64": func(c *checkpoint.Checkpoint) { c.Signature = "not base64!" },
		"short signature":  func(c *checkpoint.Checkpoint) { c.Signature = c.Signature[:40] },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := signed(t, priv)
			mutate(&c)
			require.ErrorIs(t, c.Verify([]ed25519.PublicKey{pub}), domain.ErrInvalid)
			if name != "signature base64" && name != "short signature" {
				_, err := c.Sign(priv, c.KeyID)
				require.ErrorIs(t, err, domain.ErrInvalid, "nothing malformed is signed")
			}
		})
	}
	_, err := checkpoint.New(1, strings.Repeat("ab", 32), strings.Repeat("cd", 32), time.Now()).Sign(priv[:10], "k")
	require.Error(t, err)
}

func TestParseIsStrict(t *testing.T) {
	_, err := checkpoint.Parse([]byte(`{"format":"payesh-checkpoint/v1","position":1,"extra":true}`))
	require.ErrorContains(t, err, "unknown field")
	_, err = checkpoint.Parse([]byte(`{"format":"payesh-checkpoint/v1"} {}`))
	require.ErrorContains(t, err, "more than one")
	_, err = checkpoint.Parse([]byte(`not json`))
	require.Error(t, err)
}
