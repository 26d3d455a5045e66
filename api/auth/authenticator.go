package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Authenticator turns a bearer credential into the principal it stands
// for. Implementations are safe for concurrent use. A nil error means the
// principal is valid (Principal.Validate passed); every error matches
// ErrUnauthenticated and one specific sentinel of this package, and its
// text never contains the credential. Implementations in this package do
// no I/O and ignore ctx; others may do I/O and must then stop when ctx is
// cancelled, returning ctx's error (which is not a credential failure).
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (Principal, error)
}

// Chain asks each authenticator in turn and returns the first principal.
// An authenticator that answers ErrUnrecognised (the credential is not in
// its format) passes the credential on; any other error ends the chain, so
// an expired token is reported as expired rather than as "unknown API key".
// Chain{verifier, keyFile} accepts both tokens and API keys.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	if bearer == "" {
		return Principal{}, ErrMissingCredential
	}
	for _, a := range c {
		p, err := a.Authenticate(ctx, bearer)
		if err == nil || !errors.Is(err, ErrUnrecognised) {
			return p, err
		}
	}
	return Principal{}, fmt.Errorf("%w: neither a Payesh token nor an API key this server knows", ErrUnrecognised)
}

// BearerCredential returns the credential of an "Authorization: Bearer …"
// header (the scheme is case-insensitive, RFC 6750). A request without the
// header gets ErrMissingCredential; another scheme (Basic …) or an empty
// credential gets ErrUnrecognised.
func BearerCredential(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrMissingCredential
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return "", fmt.Errorf("%w: the Authorization header must be \"Bearer CREDENTIAL\"", ErrUnrecognised)
	}
	return cred, nil
}

// Middleware authenticates every request with a and passes it on with the
// principal in its context (FromContext). A request whose credential is
// missing or refused goes to fail instead, with the error; fail writes the
// 401 answer (with the WWW-Authenticate header Challenge returns) or, for
// an error that does not match ErrUnauthenticated (a cancelled context),
// whatever fits. Routes that need no authentication, such as /healthz,
// are mounted outside it.
func Middleware(a Authenticator, fail func(w http.ResponseWriter, r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cred, err := BearerCredential(r)
			if err == nil {
				var p Principal
				p, err = a.Authenticate(r.Context(), cred)
				if err == nil {
					next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
					return
				}
			}
			fail(w, r, err)
		})
	}
}
