package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
)

// chainFixture is a verifier and a key file behind one Chain, with a valid
// token, an expired token and an API key.
type chainFixture struct {
	chain           auth.Chain
	token, expired  string
	apiKey          string
	tokenP, apiKeyP auth.Principal
}

func newChainFixture(t *testing.T, reversed bool) chainFixture {
	t.Helper()
	now := t0
	k := newKeyPair(t)
	iss := newIssuer(t, k, fixedClock(&now))
	f := chainFixture{tokenP: auth.DevPrincipal(auth.RoleBank), apiKeyP: auth.DevPrincipal(auth.RoleAgency)}
	var err error
	f.token, _, err = iss.Issue(f.tokenP, time.Hour)
	require.NoError(t, err)
	old := t0.Add(-2 * time.Hour)
	f.expired, _, err = newIssuer(t, k, fixedClock(&old)).Issue(f.tokenP, time.Hour)
	require.NoError(t, err)
	f.apiKey, err = auth.NewAPIKey()
	require.NoError(t, err)
	kf := auth.NewKeyFile([]auth.KeyEntry{auth.NewKeyEntry(f.apiKey, f.apiKeyP, nil, "")}, fixedClock(&now))
	v := newVerifier(t, fixedClock(&now), k.pub)
	f.chain = auth.Chain{v, kf}
	if reversed {
		f.chain = auth.Chain{kf, v}
	}
	return f
}

func TestChain(t *testing.T) {
	for _, reversed := range []bool{false, true} {
		f := newChainFixture(t, reversed)
		name := "verifier first"
		if reversed {
			name = "key file first"
		}
		t.Run(name, func(t *testing.T) {
			p, err := f.chain.Authenticate(t.Context(), f.token)
			require.NoError(t, err)
			require.Equal(t, f.tokenP, p)
			p, err = f.chain.Authenticate(t.Context(), f.apiKey)
			require.NoError(t, err)
			require.Equal(t, f.apiKeyP, p)

			_, err = f.chain.Authenticate(t.Context(), f.expired)
			require.ErrorIs(t, err, auth.ErrExpired, "an expired token is reported as expired, not as an unknown key")
			_, err = f.chain.Authenticate(t.Context(), "payesh.v1.garbage")
			require.ErrorIs(t, err, auth.ErrMalformedToken)
			_, err = f.chain.Authenticate(t.Context(), "some-old-password")
			require.ErrorIs(t, err, auth.ErrUnknownAPIKey)
			_, err = f.chain.Authenticate(t.Context(), "")
			require.ErrorIs(t, err, auth.ErrMissingCredential)
		})
	}
	t.Run("nothing recognises the credential", func(t *testing.T) {
		f := newChainFixture(t, false)
		_, err := auth.Chain{f.chain[0]}.Authenticate(t.Context(), "eyJhbGciOi.x.y")
		require.ErrorIs(t, err, auth.ErrUnrecognised)
		require.ErrorContains(t, err, "neither a Payesh token nor an API key")
		_, err = auth.Chain{}.Authenticate(t.Context(), "x")
		require.ErrorIs(t, err, auth.ErrUnrecognised)
	})
}

func TestBearerCredential(t *testing.T) {
	for _, tc := range []struct {
		header, want string
		err          error
	}{
		{"Bearer abc", "abc", nil},
		{"bearer   abc  ", "abc", nil},
		{"BEARER payesh.v1.x.y", "payesh.v1.x.y", nil},
		{"", "", auth.ErrMissingCredential},
		{"Basic dXNlcjpwYXNz", "", auth.ErrUnrecognised},
		{"Bearer", "", auth.ErrUnrecognised},
		{"Bearer ", "", auth.ErrUnrecognised},
		{"Bearerabc", "", auth.ErrUnrecognised},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/facilities", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		got, err := auth.BearerCredential(r)
		if tc.err != nil {
			require.ErrorIs(t, err, tc.err, tc.header)
			continue
		}
		require.NoError(t, err, tc.header)
		require.Equal(t, tc.want, got)
	}
}

func TestMiddleware(t *testing.T) {
	f := newChainFixture(t, false)
	var seen []auth.Principal
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		require.True(t, ok)
		seen = append(seen, p)
		w.WriteHeader(http.StatusNoContent)
	})
	fail := func(w http.ResponseWriter, _ *http.Request, err error) {
		require.ErrorIs(t, err, auth.ErrUnauthenticated)
		w.Header().Set("WWW-Authenticate", auth.Challenge(err))
		http.Error(w, err.Error(), http.StatusUnauthorized)
	}
	h := auth.Middleware(f.chain, fail)(next)
	serve := func(header string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/facilities", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	require.Equal(t, http.StatusNoContent, serve("Bearer "+f.token).Code)
	require.Equal(t, http.StatusNoContent, serve("Bearer "+f.apiKey).Code)
	require.Equal(t, []auth.Principal{f.tokenP, f.apiKeyP}, seen)

	w := serve("")
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Equal(t, `Bearer realm="payesh"`, w.Header().Get("WWW-Authenticate"))

	w = serve("Bearer " + f.expired)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.True(t, strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="payesh", error="invalid_token", error_description="auth: token expired at `))
	require.Len(t, seen, 2, "refused requests never reach the handler")
}

func TestChallenge(t *testing.T) {
	require.Equal(t, `Bearer realm="payesh"`, auth.Challenge(auth.ErrMissingCredential))
	require.Equal(t, `Bearer realm="payesh"`, auth.Challenge(errors.New("other")))
	// A quoted ID cannot break out of the header's quoted strings.
	h := auth.Challenge(&auth.UnknownScopeError{Kind: auth.ScopeBank, ID: "x\"\\\nبانک"})
	require.True(t, strings.HasPrefix(h, `Bearer realm="payesh", error="invalid_token", error_description="auth: unknown scope: no bank '`), h)
	require.Equal(t, 6, strings.Count(h, `"`), h)
	require.NotContains(t, h, `\`)
	for _, r := range h {
		require.True(t, r >= 0x20 && r <= 0x7e, "%q in %s", r, h)
	}
}
