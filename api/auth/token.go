package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// TokenPrefix starts every token of format version 1. The signature covers
// it, so a token cannot be relabelled as another version.
const TokenPrefix = "payesh.v1."

// maxTokenLen bounds the bearer string a Verifier will decode; real tokens
// are about 400 bytes.
const maxTokenLen = 4096

// Claims is what a token asserts, as its JSON payload carries it.
type Claims struct {
	KeyID    string `json:"kid"` // KeyID of the signing key
	TokenID  string `json:"jti"` // unique per token, for logs and revocation lists
	Subject  string `json:"sub"`
	Role     Role   `json:"role"`
	Scope    Scope  `json:"scope"`
	IssuedAt int64  `json:"iat"` // Unix seconds
	Expires  int64  `json:"exp"` // Unix seconds
}

// Principal returns the principal the claims name.
func (c Claims) Principal() Principal {
	return Principal{Subject: c.Subject, Role: c.Role, Scope: c.Scope}
}

// IssuedTime returns IssuedAt as a UTC time.
func (c Claims) IssuedTime() time.Time { return time.Unix(c.IssuedAt, 0).UTC() }

// ExpiryTime returns Expires as a UTC time.
func (c Claims) ExpiryTime() time.Time { return time.Unix(c.Expires, 0).UTC() }

// DefaultMaxTTL is the longest lifetime an Issuer grants unless configured
// otherwise. Long-lived machine credentials should be API keys, which can
// be revoked by deleting a line.
const DefaultMaxTTL = 90 * 24 * time.Hour

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	Key ed25519.PrivateKey // required
	// Catalog, when set, makes Issue refuse principals whose agency, bank
	// or firm it does not know.
	Catalog Catalog
	// MaxTTL caps the lifetime of a token (default DefaultMaxTTL).
	MaxTTL time.Duration
	Now    func() time.Time // default time.Now
	NewID  func() string    // token IDs; default random UUIDs
}

func (c *IssuerConfig) setDefaults() {
	if c.MaxTTL <= 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.NewString
	}
}

// Validate reports a missing or malformed key.
func (c IssuerConfig) Validate() error {
	if len(c.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: issuer key has %d bytes, want an Ed25519 private key of %d", ErrKeyFormat, len(c.Key), ed25519.PrivateKeySize)
	}
	return nil
}

// Issuer mints tokens with one private key. It is safe for concurrent use.
type Issuer struct {
	cfg IssuerConfig
	kid string
}

// NewIssuer returns an issuer for cfg.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Issuer{cfg: cfg, kid: KeyID(cfg.Key.Public().(ed25519.PublicKey))}, nil
}

// KeyID returns the ID of the issuer's key, which its tokens carry.
func (i *Issuer) KeyID() string { return i.kid }

// Issue mints a token for p valid for ttl from now, which must be positive
// and at most the configured MaxTTL. The expiry is rounded down to whole
// seconds. It returns the token and its claims.
func (i *Issuer) Issue(p Principal, ttl time.Duration) (string, Claims, error) {
	if err := p.Validate(i.cfg.Catalog); err != nil {
		return "", Claims{}, err
	}
	if ttl < time.Second || ttl > i.cfg.MaxTTL {
		return "", Claims{}, fmt.Errorf("auth: token lifetime %s is outside 1s … %s", ttl, i.cfg.MaxTTL)
	}
	now := i.cfg.Now().Unix()
	c := Claims{
		KeyID: i.kid, TokenID: i.cfg.NewID(),
		Subject: p.Subject, Role: p.Role, Scope: p.Scope,
		IssuedAt: now, Expires: now + int64(ttl/time.Second),
	}
	return Sign(i.cfg.Key, c), c, nil
}

// Sign encodes and signs c as a version 1 token, exactly as documented in
// the package comment. Claims are signed as given: Issue is the checked way
// to mint tokens; Sign is for tests and tools that need odd claims.
func Sign(key ed25519.PrivateKey, c Claims) string {
	payload, err := json.Marshal(c)
	if err != nil {
		// Claims holds only strings and integers.
		panic(fmt.Sprintf("auth: marshal claims: %v", err))
	}
	signed := TokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signed)))
}

// ParseUnverified decodes a token's claims without checking its signature
// or any claim. It is for tools that show a token (payesh token inspect);
// never decide anything on its result. It returns the claims, the signed
// part (prefix and payload) and the signature.
func ParseUnverified(token string) (Claims, []byte, []byte, error) {
	switch {
	case token == "":
		return Claims{}, nil, nil, ErrMissingCredential
	case len(token) > maxTokenLen:
		return Claims{}, nil, nil, fmt.Errorf("%w: %d bytes is longer than any token", ErrMalformedToken, len(token))
	case !strings.HasPrefix(token, "payesh."):
		return Claims{}, nil, nil, fmt.Errorf("%w: not a Payesh token (no %q prefix)", ErrUnrecognised, TokenPrefix)
	case !strings.HasPrefix(token, TokenPrefix):
		v, _, _ := strings.Cut(strings.TrimPrefix(token, "payesh."), ".")
		if len(v) < 2 || v[0] != 'v' || strings.Trim(v[1:], "0123456789") != "" {
			return Claims{}, nil, nil, fmt.Errorf("%w: not a Payesh token (no %q prefix)", ErrUnrecognised, TokenPrefix)
		}
		return Claims{}, nil, nil, fmt.Errorf("%w: %q (this server reads v1)", ErrUnsupportedVersion, v)
	}
	body, sig64, ok := strings.Cut(strings.TrimPrefix(token, TokenPrefix), ".")
	if !ok || strings.Contains(sig64, ".") {
		return Claims{}, nil, nil, fmt.Errorf("%w: want %sPAYLOAD.SIGNATURE", ErrMalformedToken, TokenPrefix)
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return Claims{}, nil, nil, fmt.Errorf("%w: payload is not base64url: %v", ErrMalformedToken, err)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sig64)
	if err != nil {
		return Claims{}, nil, nil, fmt.Errorf("%w: signature is not base64url: %v", ErrMalformedToken, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return Claims{}, nil, nil, fmt.Errorf("%w: signature has %d bytes, want %d", ErrMalformedToken, len(sig), ed25519.SignatureSize)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var c Claims
	if err := dec.Decode(&c); err != nil {
		return Claims{}, nil, nil, fmt.Errorf("%w: claims are not the v1 JSON object: %v", ErrMalformedToken, err)
	}
	if dec.More() {
		return Claims{}, nil, nil, fmt.Errorf("%w: data after the claims object", ErrMalformedToken)
	}
	return c, []byte(TokenPrefix + body), sig, nil
}

// DefaultLeeway is the clock skew a Verifier tolerates by default, on both
// the issue and the expiry time.
const DefaultLeeway = time.Minute

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Keys are the public keys whose tokens are accepted; several during a
	// key rotation. Required.
	Keys []ed25519.PublicKey
	// Catalog, when set, makes tokens for an agency, bank or firm the
	// reference catalogue does not know fail with ErrUnknownScope.
	Catalog Catalog
	// DevMode allows the development key (see DevPublicKeyPEM). Without
	// it, NewVerifier refuses a configuration that contains the dev key,
	// and tokens signed by it fail with ErrDevKeyRefused.
	DevMode bool
	// Leeway is the clock skew tolerated (default DefaultLeeway).
	Leeway time.Duration
	Now    func() time.Time // default time.Now
}

func (c *VerifierConfig) setDefaults() {
	if c.Leeway <= 0 {
		c.Leeway = DefaultLeeway
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ErrDevKeyInProduction is returned by NewVerifier (and CheckProductionKeys)
// when the development key is configured outside development mode.
var ErrDevKeyInProduction = errors.New("auth: the development key is configured but dev mode is off; the dev key is public and must never be trusted in production")

// Validate reports every problem with the configuration.
func (c VerifierConfig) Validate() error {
	var errs []error
	if len(c.Keys) == 0 {
		errs = append(errs, errors.New("auth: verifier needs at least one public key"))
	}
	for i, k := range c.Keys {
		if len(k) != ed25519.PublicKeySize {
			errs = append(errs, fmt.Errorf("%w: key %d has %d bytes, want %d", ErrKeyFormat, i+1, len(k), ed25519.PublicKeySize))
		}
	}
	if !c.DevMode {
		if err := CheckProductionKeys(c.Keys); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Verifier checks tokens. It is safe for concurrent use and implements
// Authenticator.
type Verifier struct {
	cfg  VerifierConfig
	keys map[string]ed25519.PublicKey // by KeyID

	// verified remembers tokens that passed Verify, so a client sending
	// the same token with every request pays the signature check (about
	// a fifth of a cheap query's CPU) once a minute, not every time.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

// verifiedToken is a cached verdict, good until until.
type verifiedToken struct {
	p     Principal
	until time.Time
}

// The verdict cache: an entry lives at most verifiedFor (so a scope
// removed from the catalogue is noticed within it) and never past the
// token's expiry; at verifiedMax entries the cache starts afresh.
const (
	verifiedFor = time.Minute
	verifiedMax = 10_000
)

// NewVerifier returns a verifier for cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, keys: make(map[string]ed25519.PublicKey, len(cfg.Keys))}
	for _, k := range cfg.Keys {
		v.keys[KeyID(k)] = k
	}
	return v, nil
}

// Verify checks a token and returns its claims. The checks run in this
// order, and the first failure is returned wrapped with detail: format
// (ErrMissingCredential, ErrUnrecognised, ErrUnsupportedVersion,
// ErrMalformedToken), key (ErrDevKeyRefused, ErrUnknownKey), signature
// (ErrBadSignature), claims (ErrInvalidClaims), time (ErrNotYetValid,
// ErrExpired), scope (ErrUnknownScope). Nothing in the claims is looked at
// before the signature verifies, except the key ID that selects the key.
func (v *Verifier) Verify(token string) (Claims, error) {
	c, signed, sig, err := ParseUnverified(token)
	if err != nil {
		return Claims{}, err
	}
	key, ok := v.keys[c.KeyID]
	if !ok {
		if c.KeyID == DevKeyID && !v.cfg.DevMode {
			return Claims{}, ErrDevKeyRefused
		}
		return Claims{}, fmt.Errorf("%w: key ID %q", ErrUnknownKey, c.KeyID)
	}
	if !ed25519.Verify(key, signed, sig) {
		return Claims{}, ErrBadSignature
	}
	if c.TokenID == "" {
		return Claims{}, fmt.Errorf("%w: token ID (jti) is missing", ErrInvalidClaims)
	}
	if c.Expires <= c.IssuedAt {
		return Claims{}, fmt.Errorf("%w: expiry %d is not after issue time %d", ErrInvalidClaims, c.Expires, c.IssuedAt)
	}
	p := c.Principal()
	if err := p.Validate(nil); errors.Is(err, ErrInvalidPrincipal) {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	now := v.cfg.Now()
	if iat := c.IssuedTime(); iat.After(now.Add(v.cfg.Leeway)) {
		return Claims{}, fmt.Errorf("%w: issued at %s, now is %s", ErrNotYetValid, iat.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if exp := c.ExpiryTime(); !now.Before(exp.Add(v.cfg.Leeway)) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, exp.Format(time.RFC3339))
	}
	if err := p.Validate(v.cfg.Catalog); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// Authenticate verifies bearer as a token and returns its principal. It
// does no I/O and ignores ctx. Every error matches ErrUnauthenticated; see
// Verify for the specific ones.
func (v *Verifier) Authenticate(_ context.Context, bearer string) (Principal, error) {
	now := v.cfg.Now()
	v.mu.Lock()
	hit, ok := v.verified[bearer]
	v.mu.Unlock()
	if ok && now.Before(hit.until) {
		return hit.p, nil
	}
	c, err := v.Verify(bearer)
	if err != nil {
		return Principal{}, err
	}
	p := c.Principal()
	until := now.Add(verifiedFor)
	if exp := c.ExpiryTime().Add(v.cfg.Leeway); exp.Before(until) {
		until = exp
	}
	v.mu.Lock()
	if v.verified == nil || len(v.verified) >= verifiedMax {
		v.verified = map[string]verifiedToken{}
	}
	v.verified[bearer] = verifiedToken{p: p, until: until}
	v.mu.Unlock()
	return p, nil
}
