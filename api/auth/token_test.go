package auth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
)

// t0 is 1 Farvardin 1404, 08:00 UTC: the issue time of the tests' tokens.
var t0 = time.Date(2025, 3, 21, 8, 0, 0, 0, time.UTC)

// fixedClock returns a clock reading *at.
func fixedClock(at *time.Time) func() time.Time { return func() time.Time { return *at } }

type keyPair struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newKeyPair(t *testing.T) keyPair {
	t.Helper()
	pub, priv, err := auth.GenerateKey(nil)
	require.NoError(t, err)
	return keyPair{pub, priv}
}

func newIssuer(t *testing.T, k keyPair, now func() time.Time) *auth.Issuer {
	t.Helper()
	iss, err := auth.NewIssuer(auth.IssuerConfig{Key: k.priv, Now: now, NewID: func() string { return "tok-1" }})
	require.NoError(t, err)
	return iss
}

func newVerifier(t *testing.T, now func() time.Time, keys ...ed25519.PublicKey) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Catalog: reference.DefaultCatalog(), Now: now})
	require.NoError(t, err)
	return v
}

// b64 and unb64 are the format's base64url without padding, written out
// here rather than borrowed from the package.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestTokenRoundTrip(t *testing.T) {
	now := t0
	k := newKeyPair(t)
	iss := newIssuer(t, k, fixedClock(&now))
	v := newVerifier(t, fixedClock(&now), k.pub)

	p := auth.Principal{Subject: "melli-branch-0412", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "melli"}}
	token, claims, err := iss.Issue(p, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, auth.Claims{
		KeyID: auth.KeyID(k.pub), TokenID: "tok-1", Subject: "melli-branch-0412", Role: auth.RoleBank,
		Scope: auth.Scope{Kind: auth.ScopeBank, ID: "melli"}, IssuedAt: t0.Unix(), Expires: t0.Add(24 * time.Hour).Unix(),
	}, claims)
	require.Equal(t, auth.KeyID(k.pub), iss.KeyID())
	require.Equal(t, t0, claims.IssuedTime())
	require.Equal(t, t0.Add(24*time.Hour), claims.ExpiryTime())

	got, err := v.Verify(token)
	require.NoError(t, err)
	require.Equal(t, claims, got)
	require.Equal(t, p, got.Principal())
}

// TestTokenFormat checks the documented wire format with an independent
// decoder: prefix, two base64url parts, exactly the documented members, and
// an Ed25519 signature over the prefix and payload.
func TestTokenFormat(t *testing.T) {
	now := t0
	k := newKeyPair(t)
	token, _, err := newIssuer(t, k, fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleProvinceOffice), time.Hour)
	require.NoError(t, err)

	require.Regexp(t, `^payesh\.v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$`, token)
	rest := strings.TrimPrefix(token, "payesh.v1.")
	payload, sig, _ := strings.Cut(rest, ".")
	require.True(t, ed25519.Verify(k.pub, []byte("payesh.v1."+payload), unb64(t, sig)))

	var members map[string]any
	require.NoError(t, json.Unmarshal(unb64(t, payload), &members))
	require.Equal(t, map[string]any{
		"kid": auth.KeyID(k.pub), "jti": "tok-1", "sub": "dev-province_office", "role": "province_office",
		"scope": map[string]any{"kind": "province", "id": "IR-23"},
		"iat":   float64(t0.Unix()), "exp": float64(t0.Add(time.Hour).Unix()),
	}, members)

	// A national scope has no id member.
	token, _, err = newIssuer(t, k, fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleAuditor), time.Hour)
	require.NoError(t, err)
	payload, _, _ = strings.Cut(strings.TrimPrefix(token, "payesh.v1."), ".")
	require.Contains(t, string(unb64(t, payload)), `"scope":{"kind":"national"}`)
}

func TestIssuerRefuses(t *testing.T) {
	now := t0
	k := newKeyPair(t)
	iss := newIssuer(t, k, fixedClock(&now))
	p := auth.DevPrincipal(auth.RoleAgency)

	for _, ttl := range []time.Duration{0, -time.Hour, 500 * time.Millisecond, auth.DefaultMaxTTL + time.Second} {
		_, _, err := iss.Issue(p, ttl)
		require.ErrorContains(t, err, "is outside 1s", ttl)
	}
	_, _, err := iss.Issue(p, auth.DefaultMaxTTL)
	require.NoError(t, err)

	_, _, err = iss.Issue(auth.Principal{Subject: "x", Role: auth.RoleBank, Scope: auth.National}, time.Hour)
	require.ErrorIs(t, err, auth.ErrInvalidPrincipal)

	withCat, err := auth.NewIssuer(auth.IssuerConfig{Key: k.priv, Catalog: reference.DefaultCatalog()})
	require.NoError(t, err)
	_, _, err = withCat.Issue(auth.Principal{Subject: "x", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "atlantis"}}, time.Hour)
	require.ErrorIs(t, err, auth.ErrUnknownScope)

	_, err = auth.NewIssuer(auth.IssuerConfig{})
	require.ErrorIs(t, err, auth.ErrKeyFormat)
}

// TestVerifyFailures gives every failure its own token and checks that the
// error matches its sentinel, no other sentinel, and ErrUnauthenticated.
func TestVerifyFailures(t *testing.T) {
	now := t0
	k := newKeyPair(t)
	stranger := newKeyPair(t)
	v := newVerifier(t, fixedClock(&now), k.pub)
	kid := auth.KeyID(k.pub)

	good := auth.Claims{KeyID: kid, TokenID: "t", Subject: "s", Role: auth.RoleBank,
		Scope: auth.Scope{Kind: auth.ScopeBank, ID: "melli"}, IssuedAt: t0.Unix(), Expires: t0.Add(time.Hour).Unix()}
	with := func(f func(*auth.Claims)) string {
		c := good
		f(&c)
		return auth.Sign(k.priv, c)
	}
	// resign signs an arbitrary payload with the right key.
	resign := func(payload string) string {
		signed := "payesh.v1." + b64([]byte(payload))
		return signed + "." + b64(ed25519.Sign(k.priv, []byte(signed)))
	}
	valid := auth.Sign(k.priv, good)
	payload, sig, _ := strings.Cut(strings.TrimPrefix(valid, "payesh.v1."), ".")
	devToken, _, err := auth.DevIssuer(fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleBank), time.Hour)
	require.NoError(t, err)

	strangerClaims := good
	strangerClaims.KeyID = auth.KeyID(stranger.pub)
	strangerToken := auth.Sign(stranger.priv, strangerClaims)

	// The payload of a bank token rewritten to ministry, signature kept.
	forged := strings.Replace(string(unb64(t, payload)), `"role":"bank","scope":{"kind":"bank","id":"melli"}`,
		`"role":"ministry","scope":{"kind":"national"}`, 1)
	require.NotEqual(t, string(unb64(t, payload)), forged)

	sentinels := []error{
		auth.ErrMissingCredential, auth.ErrUnrecognised, auth.ErrUnsupportedVersion, auth.ErrMalformedToken,
		auth.ErrUnknownKey, auth.ErrDevKeyRefused, auth.ErrBadSignature, auth.ErrInvalidClaims,
		auth.ErrExpired, auth.ErrNotYetValid, auth.ErrUnknownScope, auth.ErrUnknownAPIKey, auth.ErrAPIKeyExpired,
	}
	for _, tc := range []struct {
		name  string
		token string
		want  error
		text  string
	}{
		{"empty", "", auth.ErrMissingCredential, "no bearer credential"},
		{"a JWT", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln", auth.ErrUnrecognised, "not a Payesh token"},
		{"an API key", "payesh.key.abc", auth.ErrUnrecognised, "not a Payesh token"},
		{"version 2", "payesh.v2." + payload + "." + sig, auth.ErrUnsupportedVersion, `"v2" (this server reads v1)`},
		{"no signature part", "payesh.v1." + payload, auth.ErrMalformedToken, "PAYLOAD.SIGNATURE"},
		{"three parts", valid + ".x", auth.ErrMalformedToken, "PAYLOAD.SIGNATURE"},
		{"padded base64", "payesh.v1." + payload + "=." + sig, auth.ErrMalformedToken, "payload is not base64url"},
		{"standard base64 signature", "payesh.v1." + payload + "." + strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "+", auth.ErrMalformedToken, "signature is not base64url"},
		{"short signature", "payesh.v1." + payload + "." + sig[:40], auth.ErrMalformedToken, "signature has 30 bytes, want 64"},
		{"payload not JSON", resign("not json"), auth.ErrMalformedToken, "claims are not the v1 JSON object"},
		{"unknown member", resign(`{"kid":"` + kid + `","admin":true}`), auth.ErrMalformedToken, `unknown field "admin"`},
		{"two JSON values", resign(`{"kid":"` + kid + `"} {}`), auth.ErrMalformedToken, "data after the claims object"},
		{"too long", "payesh.v1." + strings.Repeat("A", 5000), auth.ErrMalformedToken, "longer than any token"},
		{"stranger's key", strangerToken, auth.ErrUnknownKey, `key ID "` + auth.KeyID(stranger.pub) + `"`},
		{"stranger's key, our kid", auth.Sign(stranger.priv, good), auth.ErrBadSignature, ""},
		{"dev key outside dev mode", devToken, auth.ErrDevKeyRefused, "not in dev mode"},
		{"payload altered", "payesh.v1." + b64([]byte(forged)) + "." + sig, auth.ErrBadSignature, "does not verify"},
		{"signature of another token", "payesh.v1." + payload + "." + b64(ed25519.Sign(k.priv, []byte("x"))), auth.ErrBadSignature, ""},
		{"no token ID", with(func(c *auth.Claims) { c.TokenID = "" }), auth.ErrInvalidClaims, "token ID (jti) is missing"},
		{"expiry before issue", with(func(c *auth.Claims) { c.Expires = c.IssuedAt }), auth.ErrInvalidClaims, "is not after issue time"},
		{"unknown role", with(func(c *auth.Claims) { c.Role = "root" }), auth.ErrInvalidClaims, `role "root" is not one of`},
		{"scope not the role's", with(func(c *auth.Claims) { c.Scope = auth.Scope{Kind: auth.ScopeProvince, ID: "IR-23"} }), auth.ErrInvalidClaims, "role bank needs a bank scope"},
		{"no subject", with(func(c *auth.Claims) { c.Subject = "" }), auth.ErrInvalidClaims, "subject is required"},
		{"expired", with(func(c *auth.Claims) {
			c.IssuedAt = t0.Add(-3 * time.Hour).Unix()
			c.Expires = t0.Add(-time.Hour).Unix()
		}), auth.ErrExpired, "token expired at 2025-03-21T07:00:00Z"},
		{"from the future", with(func(c *auth.Claims) { c.IssuedAt = t0.Add(time.Hour).Unix(); c.Expires = t0.Add(2 * time.Hour).Unix() }), auth.ErrNotYetValid, "issued at 2025-03-21T09:00:00Z, now is 2025-03-21T08:00:00Z"},
		{"expired, unknown province: time is checked first", with(func(c *auth.Claims) {
			c.Role, c.Scope = auth.RoleProvinceOffice, auth.Scope{Kind: auth.ScopeProvince, ID: "IR-99"}
			c.IssuedAt, c.Expires = t0.Add(-3*time.Hour).Unix(), t0.Add(-time.Hour).Unix()
		}), auth.ErrExpired, "token expired"},
		{"unknown bank", with(func(c *auth.Claims) { c.Scope.ID = "atlantis" }), auth.ErrUnknownScope, `no bank "atlantis"`},
		{"unknown province", with(func(c *auth.Claims) {
			c.Role, c.Scope = auth.RoleProvinceOffice, auth.Scope{Kind: auth.ScopeProvince, ID: "IR-99"}
		}), auth.ErrUnknownScope, `no province "IR-99"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			_, err := v.Verify(token)
			require.ErrorIs(t, err, tc.want)
			require.ErrorIs(t, err, auth.ErrUnauthenticated)
			for _, s := range sentinels {
				if s != tc.want {
					require.NotErrorIs(t, err, s)
				}
			}
			require.ErrorContains(t, err, tc.text)
			if len(token) > 20 {
				require.NotContains(t, err.Error(), token[10:], "errors never echo the credential")
			}
			p, aerr := v.Authenticate(t.Context(), token)
			require.Equal(t, err, aerr)
			require.Zero(t, p)
		})
	}
	_, err = v.Verify(valid)
	require.NoError(t, err, "the unaltered token verifies")
}

func TestVerifyLeeway(t *testing.T) {
	now := t0
	k := newKeyPair(t)
	token, _, err := newIssuer(t, k, fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleAgency), time.Hour)
	require.NoError(t, err)
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: []ed25519.PublicKey{k.pub}, Leeway: 30 * time.Second, Now: fixedClock(&now)})
	require.NoError(t, err)

	for _, tc := range []struct {
		at   time.Time
		want error
	}{
		{t0.Add(-30 * time.Second), nil},                      // server clock 30s behind the issuer
		{t0.Add(-31 * time.Second), auth.ErrNotYetValid},      // beyond the leeway
		{t0.Add(time.Hour + 29*time.Second), nil},             // just expired, within the leeway
		{t0.Add(time.Hour + 30*time.Second), auth.ErrExpired}, // leeway used up
		{t0.Add(time.Hour + 24*time.Hour), auth.ErrExpired},   // long gone
		{t0.Add(30 * time.Minute), nil},                       // mid-life
		{t0.Add(-10 * time.Hour), auth.ErrNotYetValid},        // clock far behind
		{t0.Add(time.Hour - time.Nanosecond), nil},            // last instant of life
		{t0.Add(time.Hour + 30*time.Second + time.Minute), auth.ErrExpired},
	} {
		now = tc.at
		_, err := v.Verify(token)
		if tc.want == nil {
			require.NoError(t, err, tc.at)
		} else {
			require.ErrorIs(t, err, tc.want, tc.at)
		}
	}

	t.Run("default leeway is a minute", func(t *testing.T) {
		v := newVerifier(t, fixedClock(&now), k.pub)
		now = t0.Add(time.Hour + 59*time.Second)
		_, err := v.Verify(token)
		require.NoError(t, err)
		now = t0.Add(time.Hour + time.Minute)
		_, err = v.Verify(token)
		require.ErrorIs(t, err, auth.ErrExpired)
	})
}

func TestVerifierKeyRotation(t *testing.T) {
	now := t0
	old, cur := newKeyPair(t), newKeyPair(t)
	oldToken, _, err := newIssuer(t, old, fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleBank), time.Hour)
	require.NoError(t, err)
	curToken, _, err := newIssuer(t, cur, fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleAuditor), time.Hour)
	require.NoError(t, err)

	during := newVerifier(t, fixedClock(&now), old.pub, cur.pub)
	for _, tok := range []string{oldToken, curToken} {
		_, err := during.Verify(tok)
		require.NoError(t, err)
	}
	after := newVerifier(t, fixedClock(&now), cur.pub)
	_, err = after.Verify(oldToken)
	require.ErrorIs(t, err, auth.ErrUnknownKey)
	_, err = after.Verify(curToken)
	require.NoError(t, err)
}

func TestVerifierConfig(t *testing.T) {
	devPub, _ := auth.DevKeys()
	k := newKeyPair(t)
	_, err := auth.NewVerifier(auth.VerifierConfig{})
	require.ErrorContains(t, err, "at least one public key")

	_, err = auth.NewVerifier(auth.VerifierConfig{Keys: []ed25519.PublicKey{k.pub, {1, 2}}})
	require.ErrorIs(t, err, auth.ErrKeyFormat)

	_, err = auth.NewVerifier(auth.VerifierConfig{Keys: []ed25519.PublicKey{k.pub, devPub}})
	require.ErrorIs(t, err, auth.ErrDevKeyInProduction)
	require.ErrorContains(t, err, "key 2, ID "+auth.DevKeyID)

	_, err = auth.NewVerifier(auth.VerifierConfig{Keys: []ed25519.PublicKey{k.pub, devPub}, DevMode: true})
	require.NoError(t, err)

	// Both problems are reported at once.
	err = auth.VerifierConfig{Keys: []ed25519.PublicKey{{1}, devPub}}.Validate()
	require.ErrorIs(t, err, auth.ErrKeyFormat)
	require.ErrorIs(t, err, auth.ErrDevKeyInProduction)
}

func TestParseUnverified(t *testing.T) {
	now := t0
	k := newKeyPair(t)
	token, claims, err := newIssuer(t, k, fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleInspector), time.Hour)
	require.NoError(t, err)
	got, signed, sig, err := auth.ParseUnverified(token)
	require.NoError(t, err)
	require.Equal(t, claims, got)
	require.True(t, ed25519.Verify(k.pub, signed, sig))

	_, _, _, err = auth.ParseUnverified("payesh.v1.x")
	require.True(t, errors.Is(err, auth.ErrMalformedToken))
}

// Authenticate remembers a verified token for at most a minute and never
// past its expiry (with the leeway): a cached verdict cannot outlive the
// token, and a scope removed from the catalogue is noticed within a minute.
func TestAuthenticateCachesVerdictsWithinTheTokensLife(t *testing.T) {
	ctx := context.Background()
	now := t0
	k := newKeyPair(t)
	short, _, err := newIssuer(t, k, fixedClock(&now)).Issue(auth.DevPrincipal(auth.RoleBank), 90*time.Second)
	require.NoError(t, err)
	known := true
	cat := auth.CatalogFunc(func(reference.Kind, string) bool { return known })
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: []ed25519.PublicKey{k.pub}, Catalog: cat, Leeway: 10 * time.Second, Now: fixedClock(&now)})
	require.NoError(t, err)

	p, err := v.Authenticate(ctx, short)
	require.NoError(t, err)
	require.Equal(t, auth.DevPrincipal(auth.RoleBank), p)

	// The bank leaves the catalogue: the cached verdict holds for up to a
	// minute, then the token is checked again and refused.
	known = false
	now = t0.Add(59 * time.Second)
	_, err = v.Authenticate(ctx, short)
	require.NoError(t, err, "cached")
	now = t0.Add(61 * time.Second)
	_, err = v.Authenticate(ctx, short)
	require.ErrorIs(t, err, auth.ErrUnknownScope)

	// A cached verdict ends with the token (plus leeway), not a minute on.
	known = true
	_, err = v.Authenticate(ctx, short) // verified again at 61s, cached until 100s
	require.NoError(t, err)
	now = t0.Add(99 * time.Second)
	_, err = v.Authenticate(ctx, short)
	require.NoError(t, err)
	now = t0.Add(100 * time.Second)
	_, err = v.Authenticate(ctx, short)
	require.ErrorIs(t, err, auth.ErrExpired)

	// A tampered token is never served from the cache of the genuine one.
	now = t0.Add(10 * time.Second)
	_, err = v.Authenticate(ctx, short[:len(short)-2]+"AA")
	require.Error(t, err)
}
