package auth

import (
	"crypto/ed25519"
	"crypto/subtle"
	"fmt"
	"time"
)

// ─────────────────────────────────────────────────────────────────────────
//
//	THE DEVELOPMENT KEY PAIR IS PUBLIC. NEVER USE IT IN PRODUCTION.
//
// DevPrivateKeyPEM and DevPublicKeyPEM are a fixed Ed25519 key pair checked
// into this repository so that `make run` and the README's curl examples
// work without any set-up: anyone who has read this file can mint a token
// for any role, so a server that trusts this key has no authentication at
// all. The seed is SHA-256("payesh development signing key - public, never
// use in production"), which makes the key reproducible and obviously not
// secret.
//
// Safeguards: NewVerifier refuses a key set containing the dev public key
// unless VerifierConfig.DevMode is set; a verifier not in dev mode answers
// tokens signed with it with ErrDevKeyRefused; CheckProductionKeys and
// IsDevKey let the server's composition root refuse to start, and it must
// set DevMode only from an explicit flag (payeshd --dev), never by default
// and never from a configuration file shared with production. Production
// keys are made with `payesh token keygen`.
//
// ─────────────────────────────────────────────────────────────────────────
const (
	DevPrivateKeyPEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIE7QvSKwqEW5UGX4fXbri6kY0n0ANBfHEn0VpTzbu5IZ
-----END PRIVATE KEY-----
`
	DevPublicKeyPEM = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAKeqVRM9rCkUimZHmBUUTdI2rSezXk06WKvt4l5Jc0mQ=
-----END PUBLIC KEY-----
`
	// DevKeyID is KeyID of the development public key; tokens signed with
	// the development key carry it, which is how a verifier that does not
	// hold the key still recognises them and says so.
	DevKeyID = "XudPjpDgoehmP2fU"
)

// DevKeys returns the development key pair parsed from the PEM constants.
func DevKeys() (ed25519.PublicKey, ed25519.PrivateKey) {
	priv, err := ParsePrivateKeyPEM([]byte(DevPrivateKeyPEM))
	if err != nil {
		panic("auth: development private key constant is broken: " + err.Error())
	}
	return priv.Public().(ed25519.PublicKey), priv
}

// IsDevKey reports whether pub is the development public key.
func IsDevKey(pub ed25519.PublicKey) bool {
	dev, _ := DevKeys()
	return len(pub) == len(dev) && subtle.ConstantTimeCompare(pub, dev) == 1
}

// CheckProductionKeys returns ErrDevKeyInProduction if keys contain the
// development key. A server not started in dev mode calls it (NewVerifier
// does) before it trusts any key.
func CheckProductionKeys(keys []ed25519.PublicKey) error {
	for i, k := range keys {
		if IsDevKey(k) {
			return fmt.Errorf("%w (key %d, ID %s)", ErrDevKeyInProduction, i+1, DevKeyID)
		}
	}
	return nil
}

// DevIssuer returns an issuer that signs with the development key, for
// `payesh token mint --dev` and tests. Its tokens are accepted only by a
// verifier in dev mode.
func DevIssuer(now func() time.Time) *Issuer {
	_, priv := DevKeys()
	iss, err := NewIssuer(IssuerConfig{Key: priv, Now: now})
	if err != nil {
		panic("auth: development issuer: " + err.Error())
	}
	return iss
}

// DevVerifier returns a verifier in dev mode that accepts the development
// key, checking scopes against cat when it is not nil.
func DevVerifier(cat Catalog, now func() time.Time) *Verifier {
	pub, _ := DevKeys()
	v, err := NewVerifier(VerifierConfig{Keys: []ed25519.PublicKey{pub}, DevMode: true, Catalog: cat, Now: now})
	if err != nil {
		panic("auth: development verifier: " + err.Error())
	}
	return v
}

// DevScopeID returns the scope ID development tokens of role get when none
// is given: Tehran (IR-23) for a province office, the Relief Committee, Bank
// Melli, and Tehran's placeholder inspection firm, all in the default
// reference catalogue; empty for national roles.
func DevScopeID(role Role) string {
	switch role.ScopeKind() {
	case ScopeProvince:
		return "IR-23"
	case ScopeAgency:
		return "relief-committee"
	case ScopeBank:
		return "melli"
	case ScopeFirm:
		return "tehran-field-monitoring"
	}
	return ""
}

// DevPrincipal returns the development principal of role: subject
// "dev-ROLE" with the DevScopeID scope. It is invalid for an unknown role.
func DevPrincipal(role Role) Principal {
	return Principal{Subject: "dev-" + string(role), Role: role, Scope: Scope{Kind: role.ScopeKind(), ID: DevScopeID(role)}}
}
