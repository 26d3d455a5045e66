package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
)

func tokenCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"token"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// keygen writes a key pair into a fresh directory and returns its paths.
func keygen(t *testing.T) (priv, pub string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	code, _, errOut := tokenCmd(t, "keygen", "--out", dir)
	require.Equal(t, 0, code, errOut)
	return filepath.Join(dir, "payesh-token.key"), filepath.Join(dir, "payesh-token.pub")
}

// dirFiles lists the names in dir.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestTokenKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "keys")
	code, out, errOut := tokenCmd(t, "keygen", "--out", dir, "--name", "signing")
	require.Equal(t, 0, code, errOut)
	privPath, pubPath := filepath.Join(dir, "signing.key"), filepath.Join(dir, "signing.pub")
	require.Contains(t, out, "private key: "+privPath+" (mode 0600")
	require.Contains(t, out, "public key:  "+pubPath)

	st, err := os.Stat(privPath)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), st.Mode().Perm())
	st, err = os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), st.Mode().Perm(), "a directory keygen creates is private")

	priv, err := auth.ReadPrivateKeyFile(privPath)
	require.NoError(t, err)
	pubs, err := auth.ReadPublicKeysFile(pubPath)
	require.NoError(t, err)
	require.True(t, priv.Public().(ed25519.PublicKey).Equal(pubs[0]))
	require.Contains(t, out, "key ID:      "+auth.KeyID(pubs[0]))
	before, err := os.ReadFile(privPath)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"existing pair", []string{"--out", dir, "--name", "signing"}, "refusing to overwrite a key"},
		{"no --out", nil, "--out DIR is required"},
		{"path as name", []string{"--out", dir, "--name", "../x"}, `--name "../x" must be a plain file name`},
		{"stray argument", []string{"--out", dir, "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"--out", dir, "--bits", "4096"}, "flag provided but not defined: -bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tokenCmd(t, append([]string{"keygen"}, tc.args...)...)
			require.Equal(t, 2, code)
			require.Empty(t, out)
			require.Contains(t, errOut, tc.want)
			require.ElementsMatch(t, []string{"signing.key", "signing.pub"}, dirFiles(t, dir), "nothing written")
		})
	}
	after, err := os.ReadFile(privPath)
	require.NoError(t, err)
	require.Equal(t, before, after, "the existing key is untouched")

	t.Run("a refused keygen leaves no directory behind", func(t *testing.T) {
		parent := t.TempDir()
		code, _, _ := tokenCmd(t, "keygen", "--out", filepath.Join(parent, "k"), "--name", ".hidden")
		require.Equal(t, 2, code)
		require.Empty(t, dirFiles(t, parent))
	})
}

func TestTokenMint(t *testing.T) {
	privPath, pubPath := keygen(t)
	pubs, err := auth.ReadPublicKeysFile(pubPath)
	require.NoError(t, err)
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: pubs, Catalog: reference.DefaultCatalog()})
	require.NoError(t, err)
	dev := auth.DevVerifier(reference.DefaultCatalog(), nil)

	t.Run("with a key file", func(t *testing.T) {
		code, out, errOut := tokenCmd(t, "mint", "--key", privPath, "--role", "bank", "--bank", "melli", "--subject", "melli-branch-0412", "--ttl", "2h")
		require.Equal(t, 0, code, errOut)
		c, err := v.Verify(strings.TrimSuffix(out, "\n"))
		require.NoError(t, err)
		require.Equal(t, auth.Principal{Subject: "melli-branch-0412", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "melli"}}, c.Principal())
		require.Equal(t, int64(2*60*60), c.Expires-c.IssuedAt)
		require.Contains(t, errOut, "token for melli-branch-0412 (bank, bank:melli), key "+auth.KeyID(pubs[0]))
		_, err = dev.Verify(strings.TrimSpace(out))
		require.ErrorIs(t, err, auth.ErrUnknownKey, "a production token is not a dev token")
	})
	t.Run("default lifetime is a day", func(t *testing.T) {
		code, out, errOut := tokenCmd(t, "mint", "--key", privPath, "--role", "province_office", "--province", "IR-30", "--subject", "alborz")
		require.Equal(t, 0, code, errOut)
		c, err := v.Verify(strings.TrimSpace(out))
		require.NoError(t, err)
		require.Equal(t, int64(24*60*60), c.Expires-c.IssuedAt)
	})
	t.Run("dev tokens for every role", func(t *testing.T) {
		for _, role := range auth.Roles() {
			code, out, errOut := tokenCmd(t, "mint", "--dev", "--role", string(role))
			require.Equal(t, 0, code, errOut)
			require.Contains(t, errOut, "signed with the DEVELOPMENT key")
			p, err := dev.Authenticate(t.Context(), strings.TrimSpace(out))
			require.NoError(t, err)
			require.Equal(t, auth.DevPrincipal(role), p)
			_, err = v.Verify(strings.TrimSpace(out))
			require.ErrorIs(t, err, auth.ErrDevKeyRefused, "a production verifier refuses dev tokens")
		}
		code, out, errOut := tokenCmd(t, "mint", "--dev", "--role", "agency", "--agency", "barakat", "--subject", "me")
		require.Equal(t, 0, code, errOut)
		p, err := dev.Authenticate(t.Context(), strings.TrimSpace(out))
		require.NoError(t, err)
		require.Equal(t, auth.Principal{Subject: "me", Role: auth.RoleAgency, Scope: auth.Scope{Kind: auth.ScopeAgency, ID: "barakat"}}, p)
	})
	t.Run("skip-catalog mints for an entity added later", func(t *testing.T) {
		code, out, errOut := tokenCmd(t, "mint", "--key", privPath, "--role", "bank", "--bank", "new-bank", "--subject", "x", "--skip-catalog")
		require.Equal(t, 0, code, errOut)
		_, err := v.Verify(strings.TrimSpace(out))
		require.ErrorIs(t, err, auth.ErrUnknownScope, "the server still checks its catalogue")
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"both key and dev", []string{"--key", privPath, "--dev", "--role", "ministry", "--subject", "m"}, "give exactly one of --key FILE and --dev"},
		{"neither key nor dev", []string{"--role", "ministry", "--subject", "m"}, "give exactly one of --key FILE and --dev"},
		{"no role", []string{"--dev"}, "--role is required"},
		{"unknown role", []string{"--dev", "--role", "governor"}, `--role "governor" is not one of`},
		{"wrong scope flag", []string{"--dev", "--role", "bank", "--province", "IR-23"}, "--role bank takes --bank, not --province"},
		{"national role with scope", []string{"--dev", "--role", "auditor", "--bank", "melli"}, "--role auditor has national scope and takes no --bank"},
		{"missing scope", []string{"--key", privPath, "--role", "inspector", "--subject", "x"}, "--role inspector needs --firm ID"},
		{"missing subject", []string{"--key", privPath, "--role", "ministry"}, "--subject is required"},
		{"unknown bank", []string{"--key", privPath, "--role", "bank", "--bank", "atlantis", "--subject", "x"}, `no bank "atlantis" in the reference catalogue (use --skip-catalog`},
		{"unknown province", []string{"--key", privPath, "--role", "province_office", "--province", "IR-31", "--subject", "x", "--skip-catalog"}, `no province "IR-31"`},
		{"bad subject", []string{"--dev", "--role", "ministry", "--subject", "two words"}, "contains white space"},
		{"zero ttl", []string{"--dev", "--role", "ministry", "--ttl", "0s"}, "--ttl 0s is outside 1s"},
		{"ttl too long", []string{"--dev", "--role", "ministry", "--ttl", "2161h"}, "use an API key"},
		{"bad ttl", []string{"--dev", "--role", "ministry", "--ttl", "forever"}, `invalid value "forever" for flag -ttl`},
		{"missing key file", []string{"--key", privPath + ".nope", "--role", "ministry", "--subject", "m"}, "no such file"},
		{"public key as private", []string{"--key", pubPath, "--role", "ministry", "--subject", "m"}, `PEM block is "PUBLIC KEY", want "PRIVATE KEY"`},
		{"stray argument", []string{"--dev", "--role", "ministry", "now"}, `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tokenCmd(t, append([]string{"mint"}, tc.args...)...)
			require.Equal(t, 2, code, errOut)
			require.Empty(t, out, "no token on a refusal")
			require.Contains(t, errOut, tc.want)
		})
	}
}

func TestTokenInspect(t *testing.T) {
	privPath, pubPath := keygen(t)
	_, otherPub := keygen(t)
	code, out, errOut := tokenCmd(t, "mint", "--key", privPath, "--role", "agency", "--agency", "welfare", "--subject", "w-7")
	require.Equal(t, 0, code, errOut)
	token := strings.TrimSpace(out)
	priv, err := auth.ReadPrivateKeyFile(privPath)
	require.NoError(t, err)
	kid := auth.KeyID(priv.Public().(ed25519.PublicKey))

	t.Run("valid, flag after the token", func(t *testing.T) {
		code, out, errOut := tokenCmd(t, "inspect", token, "--pubkey", pubPath)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"sub": "w-7"`)
		require.Contains(t, out, `"role": "agency"`)
		require.Contains(t, out, "principal: w-7 (agency, agency:welfare)")
		require.Contains(t, out, "expires:   ")
		require.Contains(t, out, "(in 2")
		require.Contains(t, out, "key:       "+kid+"\n")
		require.Contains(t, out, "signature: valid ("+pubPath+")")
		require.Contains(t, out, "verdict:   valid")
	})
	t.Run("flag before the token, with a Bearer prefix", func(t *testing.T) {
		code, out, errOut := tokenCmd(t, "inspect", "--pubkey", pubPath, "Bearer "+token)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "verdict:   valid")
	})
	t.Run("no public key: claims only", func(t *testing.T) {
		code, out, errOut := tokenCmd(t, "inspect", token)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "principal: w-7")
		require.Contains(t, out, "signature: not checked (give --pubkey FILE)")
		require.NotContains(t, out, "verdict")
	})
	t.Run("dev tokens are checked with the built-in key", func(t *testing.T) {
		_, devOut, _ := tokenCmd(t, "mint", "--dev", "--role", "bank")
		code, out, errOut := tokenCmd(t, "inspect", strings.TrimSpace(devOut))
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "the public DEVELOPMENT key")
		require.Contains(t, out, "signature: valid (the built-in development key)")
	})
	t.Run("another key", func(t *testing.T) {
		code, out, _ := tokenCmd(t, "inspect", token, "--pubkey", otherPub)
		require.Equal(t, 1, code)
		require.Contains(t, out, "signature: NOT CHECKED: no key with ID "+kid+" in "+otherPub)
		require.Contains(t, out, "verdict:   REFUSED: auth: token signed with an unknown key")
	})
	t.Run("altered", func(t *testing.T) {
		c, _, _, err := auth.ParseUnverified(token)
		require.NoError(t, err)
		c.Scope.ID = "barakat"
		forged := strings.Join(strings.Split(auth.Sign(priv, c), ".")[:3], ".") + "." + strings.Split(token, ".")[3]
		code, out, errOut := tokenCmd(t, "inspect", forged, "--pubkey", pubPath)
		require.Equal(t, 1, code)
		require.Contains(t, out, "principal: w-7 (agency, agency:barakat)")
		require.Contains(t, out, "signature: INVALID with "+pubPath)
		require.Contains(t, out, "verdict:   REFUSED: auth: token signature does not verify")
		require.Contains(t, errOut, "the token would be refused")
	})
	t.Run("expired", func(t *testing.T) {
		old := time.Now().Add(-48 * time.Hour)
		expired := auth.Sign(priv, auth.Claims{KeyID: kid, TokenID: "t", Subject: "w-7", Role: auth.RoleAgency,
			Scope: auth.Scope{Kind: auth.ScopeAgency, ID: "welfare"}, IssuedAt: old.Unix(), Expires: old.Add(24 * time.Hour).Unix()})
		code, out, _ := tokenCmd(t, "inspect", expired, "--pubkey", pubPath)
		require.Equal(t, 1, code)
		require.Contains(t, out, "ago)")
		require.Contains(t, out, "signature: valid")
		require.Contains(t, out, "verdict:   REFUSED: auth: token expired at ")
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no token", nil, "want exactly one TOKEN argument, got 0"},
		{"two tokens", []string{token, token}, "want exactly one TOKEN argument, got 2"},
		{"not a token", []string{"eyJhbGciOi.x.y"}, "auth: credential not recognised: not a Payesh token"},
		{"malformed", []string{"payesh.v1.abc"}, "auth: malformed token"},
		{"missing key file", []string{token, "--pubkey", pubPath + ".nope"}, "no such file"},
		{"private key as public", []string{token, "--pubkey", privPath}, `PEM block 1 is "PRIVATE KEY"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tokenCmd(t, append([]string{"inspect"}, tc.args...)...)
			require.Equal(t, 2, code, errOut)
			require.Empty(t, out)
			require.Contains(t, errOut, tc.want)
		})
	}
}

func TestTokenAPIKey(t *testing.T) {
	code, out, errOut := tokenCmd(t, "apikey", "--role", "bank", "--bank", "sepah", "--subject", "sepah-core", "--ttl", "8760h", "--note", "core banking")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	key := lines[0][strings.LastIndex(lines[0], " ")+1:]
	require.True(t, strings.HasPrefix(key, "payesh.key."), lines[0])
	require.Equal(t, "key-file line (append to the server's API key file):", lines[1])
	require.NotContains(t, lines[2], key)

	entries, err := auth.ParseKeyFile(strings.NewReader(lines[2]), reference.DefaultCatalog())
	require.NoError(t, err)
	require.Equal(t, "core banking", entries[0].Note)
	require.WithinDuration(t, time.Now().Add(8760*time.Hour), *entries[0].ExpiresAt, time.Minute)
	p, err := auth.NewKeyFile(entries, nil).Authenticate(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, auth.Principal{Subject: "sepah-core", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "sepah"}}, p)

	code, out, _ = tokenCmd(t, "apikey", "--role", "auditor", "--subject", "aud")
	require.Equal(t, 0, code)
	require.NotContains(t, out, "expires_at", "no --ttl: no expiry")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no subject", []string{"--role", "ministry"}, "--subject is required"},
		{"unknown firm", []string{"--role", "inspector", "--firm", "nobody", "--subject", "x"}, `no firm "nobody"`},
		{"negative ttl", []string{"--role", "ministry", "--subject", "x", "--ttl", "-1h"}, "--ttl -1h0m0s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := tokenCmd(t, append([]string{"apikey"}, tc.args...)...)
			require.Equal(t, 2, code)
			require.Empty(t, out)
			require.Contains(t, errOut, tc.want)
		})
	}
}

func TestTokenUsage(t *testing.T) {
	code, _, errOut := tokenCmd(t)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "missing subcommand: keygen, mint, inspect or apikey")
	require.Contains(t, errOut, "payesh token keygen --out DIR")

	code, _, errOut = tokenCmd(t, "forge")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown subcommand "forge"`)

	code, _, errOut = tokenCmd(t, "help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "payesh token inspect TOKEN [--pubkey FILE]")

	var out, errBuf bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"help"}, &out, &errBuf))
	require.Contains(t, errBuf.String(), "token ")
}
