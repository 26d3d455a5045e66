package auth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
)

func TestNewAPIKey(t *testing.T) {
	a, err := auth.NewAPIKey()
	require.NoError(t, err)
	b, err := auth.NewAPIKey()
	require.NoError(t, err)
	require.Regexp(t, `^payesh\.key\.[A-Za-z0-9_-]{43}$`, a)
	require.NotEqual(t, a, b)

	sum := sha256.Sum256([]byte(a))
	require.Equal(t, hex.EncodeToString(sum[:]), auth.HashAPIKey(a))
}

func TestKeyFile(t *testing.T) {
	now := t0
	bankKey, err := auth.NewAPIKey()
	require.NoError(t, err)
	auditKey, err := auth.NewAPIKey()
	require.NoError(t, err)
	expiredKey, err := auth.NewAPIKey()
	require.NoError(t, err)
	bank := auth.Principal{Subject: "melli-core", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "melli"}}
	yesterday := t0.Add(-24 * time.Hour)
	nextYear := t0.AddDate(1, 0, 0)

	file := strings.Join([]string{
		"# Payesh API keys",
		"",
		auth.NewKeyEntry(bankKey, bank, &nextYear, "core banking").Line(),
		"   " + auth.NewKeyEntry(auditKey, auth.DevPrincipal(auth.RoleAuditor), nil, "").Line(),
		auth.NewKeyEntry(expiredKey, auth.DevPrincipal(auth.RoleAgency), &yesterday, "old").Line(),
	}, "\n")
	entries, err := auth.ParseKeyFile(strings.NewReader(file), reference.DefaultCatalog())
	require.NoError(t, err)
	require.Len(t, entries, 3)
	require.Equal(t, "core banking", entries[0].Note)
	require.NotContains(t, file, bankKey, "the file holds hashes, not keys")

	kf := auth.NewKeyFile(entries, fixedClock(&now))
	require.Equal(t, 3, kf.Len())

	p, err := kf.Authenticate(t.Context(), bankKey)
	require.NoError(t, err)
	require.Equal(t, bank, p)
	p, err = kf.Authenticate(t.Context(), auditKey)
	require.NoError(t, err)
	require.Equal(t, auth.DevPrincipal(auth.RoleAuditor), p)

	for _, tc := range []struct {
		name, bearer string
		want         error
	}{
		{"expired", expiredKey, auth.ErrAPIKeyExpired},
		{"unknown", "payesh.key.not-issued", auth.ErrUnknownAPIKey},
		{"key with a character changed", bankKey[:len(bankKey)-1] + "x", auth.ErrUnknownAPIKey},
		{"a token", "payesh.v1.abc.def", auth.ErrUnrecognised},
		{"empty", "", auth.ErrMissingCredential},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := kf.Authenticate(t.Context(), tc.bearer)
			require.ErrorIs(t, err, tc.want)
			require.ErrorIs(t, err, auth.ErrUnauthenticated)
			require.Zero(t, p)
			if tc.bearer != "" {
				require.NotContains(t, err.Error(), tc.bearer)
			}
		})
	}

	t.Run("the key expires at its instant", func(t *testing.T) {
		now = nextYear.Add(-time.Second)
		_, err := kf.Authenticate(t.Context(), bankKey)
		require.NoError(t, err)
		now = nextYear
		_, err = kf.Authenticate(t.Context(), bankKey)
		require.ErrorIs(t, err, auth.ErrAPIKeyExpired)
		require.ErrorContains(t, err, "API key expired at 2026-03-21T08:00:00Z (subject melli-core)")
	})
}

func TestParseKeyFileErrors(t *testing.T) {
	h := strings.Repeat("ab", 32)
	line := func(hash, role, kind, id string) string {
		return `{"sha256":"` + hash + `","subject":"s","role":"` + role + `","scope":{"kind":"` + kind + `","id":"` + id + `"}}`
	}
	file := strings.Join([]string{
		line(h, "bank", "bank", "melli"),                            // 1 fine
		"{not json",                                                 // 2
		line("abcd", "bank", "bank", "melli"),                       // 3 short hash
		line(h, "bank", "bank", "melli"),                            // 4 duplicate of 1
		line(strings.Repeat("cd", 32), "bank", "province", "IR-23"), // 5 wrong scope kind
		line(strings.Repeat("ef", 32), "bank", "bank", "atlantis"),  // 6 unknown bank
		`{"sha256":"` + strings.Repeat("12", 32) + `","subject":"s","role":"admin","scope":{"kind":"national"},"password":"x"}`, // 7
		`{} {}`, // 8
		line(strings.Repeat("1", 64)+"zz", "bank", "bank", "melli"), // 9 not hex
	}, "\n")
	_, err := auth.ParseKeyFile(strings.NewReader(file), reference.DefaultCatalog())
	require.ErrorIs(t, err, auth.ErrKeyFileFormat)
	for _, want := range []string{
		"line 2: not a key entry object",
		"line 3: sha256 must be 64 hex digits",
		"line 4: the same key hash as line 1",
		"line 5: auth: invalid principal: role bank needs a bank scope",
		`line 6: auth: unknown scope: no bank "atlantis"`,
		`line 7: not a key entry object: json: unknown field "password"`,
		"line 8: more than one JSON value on the line",
		"line 9: sha256 must be 64 hex digits",
	} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "line 1:")

	t.Run("upper-case hashes are accepted", func(t *testing.T) {
		key := "payesh.key.upper"
		entries, err := auth.ParseKeyFile(strings.NewReader(line(strings.ToUpper(auth.HashAPIKey(key)), "admin", "national", "")), nil)
		require.NoError(t, err)
		_, err = auth.NewKeyFile(entries, nil).Authenticate(t.Context(), key)
		require.NoError(t, err)
	})
}

func TestReadKeyFile(t *testing.T) {
	key, err := auth.NewAPIKey()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "api-keys.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(auth.NewKeyEntry(key, auth.DevPrincipal(auth.RoleInspector), nil, "").Line()+"\n"), 0o600))
	kf, err := auth.ReadKeyFile(path, reference.DefaultCatalog(), nil)
	require.NoError(t, err)
	p, err := kf.Authenticate(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, auth.DevPrincipal(auth.RoleInspector), p)

	require.NoError(t, os.WriteFile(path, []byte("junk\n"), 0o600))
	_, err = auth.ReadKeyFile(path, nil, nil)
	require.ErrorIs(t, err, auth.ErrKeyFileFormat)
	require.ErrorContains(t, err, path+": auth: bad key file: line 1")

	_, err = auth.ReadKeyFile(filepath.Join(t.TempDir(), "absent"), nil, nil)
	require.ErrorIs(t, err, os.ErrNotExist)
}
