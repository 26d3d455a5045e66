package applicant_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
)

// testKey returns a deterministic 32-byte key that differs per seed.
func testKey(t *testing.T, seed byte) []byte {
	t.Helper()
	return bytes.Repeat([]byte{seed}, applicant.KeySize)
}

func TestRefOf(t *testing.T) {
	hk := testKey(t, 7)
	ref := applicant.RefOf(hk, "0499370899")

	tests := []struct {
		name string
		in   string
	}{
		{"same input", "0499370899"},
		{"persian digits", "۰۴۹۹۳۷۰۸۹۹"},
		{"printed form", "049-937089-9"},
		{"spaces", " 0499370899 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, ref, applicant.RefOf(hk, tt.in))
		})
	}

	t.Run("format", func(t *testing.T) {
		require.True(t, applicant.ValidRef(ref))
		require.Len(t, ref, 64)
		require.NotContains(t, ref, "0499370899")
	})
	t.Run("known value", func(t *testing.T) {
		// HMAC-SHA256(key = 32×0x07, "0499370899"), checked with Python's
		// hmac module. Pinned so that a change of normalisation or
		// encoding, which would orphan every applicant stream, shows up.
		require.Equal(t, "0fd0498fe036f6f5653543e43b21ab3a780f1a2e84c11a092e7e0d28501337a8", ref)
	})
	t.Run("other ID or key differs", func(t *testing.T) {
		require.NotEqual(t, ref, applicant.RefOf(hk, "0013542419"))
		require.NotEqual(t, ref, applicant.RefOf(testKey(t, 8), "0499370899"))
	})
	t.Run("short key panics", func(t *testing.T) {
		require.Panics(t, func() { applicant.RefOf([]byte("short"), "0499370899") })
		require.Error(t, applicant.CheckPseudonymKey(make([]byte, 31)))
		require.NoError(t, applicant.CheckPseudonymKey(make([]byte, 32)))
	})
}

func TestSealOpen(t *testing.T) {
	key := testKey(t, 1)
	ref := applicant.RefOf(testKey(t, 9), "0499370899")
	keyID := applicant.KeyIDFor(ref, 1)
	p := applicant.Personal{NationalID: "0499370899", Name: "زهرا احمدی", Phone: "+989121234567"}

	sealed, err := applicant.Seal(key, p, ref, keyID)
	require.NoError(t, err)
	require.Equal(t, ref, sealed.Ref)
	require.Equal(t, keyID, sealed.KeyID)
	require.NotContains(t, string(sealed.Ciphertext), "0499370899")

	t.Run("round trip", func(t *testing.T) {
		got, err := applicant.Open(key, sealed)
		require.NoError(t, err)
		require.Equal(t, p, got)
	})
	t.Run("round trip through JSON", func(t *testing.T) {
		b, err := json.Marshal(sealed)
		require.NoError(t, err)
		require.NotContains(t, string(b), "0499370899")
		require.Contains(t, string(b), `"key_id":"`+keyID+`"`)
		var back applicant.Sealed
		require.NoError(t, json.Unmarshal(b, &back))
		got, err := applicant.Open(key, back)
		require.NoError(t, err)
		require.Equal(t, p, got)
	})
	t.Run("fresh nonce each time", func(t *testing.T) {
		again, err := applicant.Seal(key, p, ref, keyID)
		require.NoError(t, err)
		require.NotEqual(t, sealed.Ciphertext, again.Ciphertext)
	})

	tamper := func(f func(s *applicant.Sealed)) applicant.Sealed {
		s := sealed
		s.Ciphertext = append([]byte(nil), sealed.Ciphertext...)
		f(&s)
		return s
	}
	failures := []struct {
		name string
		key  []byte
		s    applicant.Sealed
	}{
		{"wrong key", testKey(t, 2), sealed},
		{"flipped ciphertext bit", key, tamper(func(s *applicant.Sealed) { s.Ciphertext[len(s.Ciphertext)-1] ^= 1 })},
		{"flipped nonce bit", key, tamper(func(s *applicant.Sealed) { s.Ciphertext[0] ^= 1 })},
		{"other ref", key, tamper(func(s *applicant.Sealed) { s.Ref = strings.Repeat("a", 64) })},
		{"truncated", key, tamper(func(s *applicant.Sealed) { s.Ciphertext = s.Ciphertext[:10] })},
		{"empty", key, tamper(func(s *applicant.Sealed) { s.Ciphertext = nil })},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			_, err := applicant.Open(tt.key, tt.s)
			require.ErrorIs(t, err, applicant.ErrCannotOpen)
		})
	}

	t.Run("bad key size", func(t *testing.T) {
		_, err := applicant.Seal(key[:16], p, ref, keyID)
		require.ErrorIs(t, err, domain.ErrInvalid)
		_, err = applicant.Open(key[:16], sealed)
		require.ErrorIs(t, err, domain.ErrInvalid)
	})
	t.Run("bad ref or key ID", func(t *testing.T) {
		_, err := applicant.Seal(key, p, "not-a-ref", keyID)
		require.ErrorIs(t, err, domain.ErrInvalid)
		_, err = applicant.Seal(key, p, ref, "")
		require.ErrorIs(t, err, domain.ErrInvalid)
	})
}

func TestKeyIDFor(t *testing.T) {
	ref := strings.Repeat("ab", 32)
	require.Equal(t, ref+"-k1", applicant.KeyIDFor(ref, 1))
	require.Equal(t, ref+"-k12", applicant.KeyIDFor(ref, 12))
	require.Equal(t, "applicant-"+ref, applicant.StreamFor(ref))
}
