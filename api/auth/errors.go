package auth

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnauthenticated is the category of every credential failure: a missing,
// malformed, forged, expired or otherwise unacceptable token or API key.
// The HTTP layer answers 401 for any error that matches it with errors.Is,
// using the error's text as the problem detail (it never contains the
// credential), and Challenge for the WWW-Authenticate header. Each failure
// also matches exactly one of the more specific sentinels below.
var ErrUnauthenticated = errors.New("auth: not authenticated")

// credentialError is the type of the specific credential sentinels: each is
// its own value for errors.Is, and all of them match ErrUnauthenticated.
type credentialError struct {
	msg  string
	code string // RFC 6750 error code for WWW-Authenticate
}

func (e *credentialError) Error() string { return e.msg }

// Is makes every credential sentinel match ErrUnauthenticated.
func (e *credentialError) Is(target error) bool { return target == ErrUnauthenticated }

// The specific credential failures. Verifier, KeyFile and Chain return them
// wrapped with detail ("%w: ..."), so callers test with errors.Is.
var (
	// ErrMissingCredential: no bearer credential was presented at all.
	ErrMissingCredential error = &credentialError{"auth: no bearer credential presented", ""}
	// ErrUnrecognised: the credential is not in a format this authenticator
	// handles (a Verifier given something that is not a Payesh token, a
	// KeyFile given a token). Chain tries the next authenticator on it.
	ErrUnrecognised error = &credentialError{"auth: credential not recognised", "invalid_token"}
	// ErrUnsupportedVersion: a Payesh token of a format version this build
	// does not know ("payesh.v2." ...).
	ErrUnsupportedVersion error = &credentialError{"auth: unsupported token version", "invalid_token"}
	// ErrMalformedToken: the token has the "payesh.v1." prefix but its parts,
	// encoding or claims JSON are broken.
	ErrMalformedToken error = &credentialError{"auth: malformed token", "invalid_token"}
	// ErrUnknownKey: the token names a signing key the verifier does not
	// hold (never issued here, or retired by key rotation).
	ErrUnknownKey error = &credentialError{"auth: token signed with an unknown key", "invalid_token"}
	// ErrDevKeyRefused: the token is signed with the public development key
	// and the verifier is not in development mode.
	ErrDevKeyRefused error = &credentialError{"auth: token signed with the development key, which this server refuses (not in dev mode)", "invalid_token"}
	// ErrBadSignature: the signature does not verify; the token was altered
	// or forged.
	ErrBadSignature error = &credentialError{"auth: token signature does not verify", "invalid_token"}
	// ErrInvalidClaims: the signature verifies but the claims are unusable
	// (missing subject or token ID, unknown role, scope that does not fit
	// the role, expiry not after issue).
	ErrInvalidClaims error = &credentialError{"auth: invalid token claims", "invalid_token"}
	// ErrExpired: the token's expiry, plus the verifier's leeway, has passed.
	ErrExpired error = &credentialError{"auth: token expired", "invalid_token"}
	// ErrNotYetValid: the token was issued in the future, beyond the
	// verifier's leeway: the issuer's or the server's clock is wrong.
	ErrNotYetValid error = &credentialError{"auth: token issued in the future", "invalid_token"}
	// ErrUnknownScope: the principal's province, agency, bank or firm does
	// not exist in the reference catalogue. UnknownScopeError carries which.
	ErrUnknownScope error = &credentialError{"auth: unknown scope", "invalid_token"}
	// ErrUnknownAPIKey: the credential is not a Payesh token and its hash is
	// not in the API key file.
	ErrUnknownAPIKey error = &credentialError{"auth: unknown API key", "invalid_token"}
	// ErrAPIKeyExpired: the API key is in the key file but past its expiry.
	ErrAPIKeyExpired error = &credentialError{"auth: API key expired", "invalid_token"}
)

// ErrInvalidPrincipal: a principal's subject, role or scope is malformed or
// inconsistent (a bank role with a province scope, an empty subject). It is
// a validation error, not a credential failure: the Verifier reports it
// wrapped in ErrInvalidClaims.
var ErrInvalidPrincipal = errors.New("auth: invalid principal")

// UnknownScopeError names the scope that the reference catalogue does not
// know. It matches ErrUnknownScope, and through it ErrUnauthenticated.
type UnknownScopeError struct {
	Kind ScopeKind
	ID   string
}

func (e *UnknownScopeError) Error() string {
	return fmt.Sprintf("auth: unknown scope: no %s %q in the reference catalogue", e.Kind, e.ID)
}

// Unwrap returns ErrUnknownScope.
func (e *UnknownScopeError) Unwrap() error { return ErrUnknownScope }

// ErrForbidden is the category of every authorisation refusal: the
// principal is authenticated but may not do this. The HTTP layer answers 403
// for errors that match it; DeniedError carries the reason.
var ErrForbidden = errors.New("auth: forbidden")

// Denial says why a request was refused, so clients can tell "your role may
// never do this" from "not for this resource".
type Denial string

// The reasons Policy refuses.
const (
	// DeniedRole: no principal of this role may do the action anywhere.
	DeniedRole Denial = "role_not_allowed"
	// DeniedScope: the role may do the action, but only on resources in
	// its own scope, and this resource is outside it.
	DeniedScope Denial = "out_of_scope"
	// DeniedMismatch: the command claims to speak for a party other than
	// the principal (a bank reporting jobs as the agency).
	DeniedMismatch Denial = "party_mismatch"
)

// DeniedError is a refusal with its reason in English and Persian, ready
// for a 403 problem document. It matches ErrForbidden.
type DeniedError struct {
	Action   Action
	Role     Role
	Scope    Scope
	Denial   Denial
	Reason   string
	ReasonFa string
}

func (e *DeniedError) Error() string { return "auth: forbidden: " + e.Reason }

// Is makes errors.Is(err, ErrForbidden) true.
func (e *DeniedError) Is(target error) bool { return target == ErrForbidden }

// Challenge returns the value of the WWW-Authenticate header for a 401
// answer to err (RFC 6750): the realm, and for a credential that was
// presented but refused, error="invalid_token" with err's text.
func Challenge(err error) string {
	var ce *credentialError
	if !errors.As(err, &ce) || ce.code == "" {
		return `Bearer realm="payesh"`
	}
	return `Bearer realm="payesh", error="` + ce.code + `", error_description="` + descriptionChars(err.Error()) + `"`
}

// descriptionChars keeps the characters RFC 6750 allows in
// error_description (printable ASCII except the double quote and the
// backslash) and replaces the others, so that an ID quoted in an error
// cannot break the header.
func descriptionChars(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\' || r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
}
