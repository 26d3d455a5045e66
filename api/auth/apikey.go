package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// APIKeyPrefix starts every API key NewAPIKey makes, so that keys found in
// logs or repositories are recognisable, and Chain can tell them from
// tokens at a glance.
const APIKeyPrefix = "payesh.key."

// NewAPIKey returns a new random API key: APIKeyPrefix followed by 32
// random bytes in base64url. Give the key to the client once; keep only
// HashAPIKey of it.
func NewAPIKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: generate API key: %w", err)
	}
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashAPIKey returns the lower-case hex SHA-256 of key, the form a key file
// stores. Keys are random and long, so an unsalted fast hash suffices: it
// keeps the file from being a list of usable credentials, and looking up
// the hash of a presented key reveals nothing about the stored keys through
// timing.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// KeyEntry is one line of a key file.
//
// A key file is JSON Lines: one JSON object per line; blank lines and lines
// whose first non-blank character is '#' are ignored. Each object has
//
//	sha256      the lower-case hex SHA-256 of the key (HashAPIKey)
//	subject     the principal's subject
//	role        the principal's role
//	scope       {"kind": "...", "id": "..."} as in tokens
//	expires_at  optional RFC 3339 time after which the key is refused
//	note        optional free text: who holds the key, the ticket
//
// for example
//
//	{"sha256":"9f86d0…","subject":"melli-core-banking","role":"bank","scope":{"kind":"bank","id":"melli"},"note":"core banking integration"}
//
// Revoking a key is deleting its line and reloading the file.
type KeyEntry struct {
	SHA256    string     `json:"sha256"`
	Subject   string     `json:"subject"`
	Role      Role       `json:"role"`
	Scope     Scope      `json:"scope"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Note      string     `json:"note,omitempty"`
}

// Principal returns the principal the entry grants.
func (e KeyEntry) Principal() Principal {
	return Principal{Subject: e.Subject, Role: e.Role, Scope: e.Scope}
}

// NewKeyEntry returns the key-file entry for key granting p.
func NewKeyEntry(key string, p Principal, expiresAt *time.Time, note string) KeyEntry {
	return KeyEntry{SHA256: HashAPIKey(key), Subject: p.Subject, Role: p.Role, Scope: p.Scope, ExpiresAt: expiresAt, Note: note}
}

// Line returns the entry as one key-file line, without the newline.
func (e KeyEntry) Line() string {
	b, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("auth: marshal key entry: %v", err))
	}
	return string(b)
}

// ErrKeyFileFormat is matched by every error ParseKeyFile reports.
var ErrKeyFileFormat = errors.New("auth: bad key file")

// ParseKeyFile reads key-file lines from r and validates each entry: the
// hash is 64 hex digits and unique in the file, the principal is valid
// (against cat when it is not nil). It reports every bad line, each with
// its line number, joined in one error matching ErrKeyFileFormat.
func ParseKeyFile(r io.Reader, cat Catalog) ([]KeyEntry, error) {
	var (
		entries []KeyEntry
		errs    []error
		seen    = map[string]int{}
		sc      = bufio.NewScanner(r)
		n       int
	)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: line %d: %s", ErrKeyFileFormat, n, fmt.Sprintf(format, args...)))
	}
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(line)))
		dec.DisallowUnknownFields()
		var e KeyEntry
		if err := dec.Decode(&e); err != nil {
			bad("not a key entry object: %v", err)
			continue
		}
		if dec.More() {
			bad("more than one JSON value on the line")
			continue
		}
		e.SHA256 = strings.ToLower(e.SHA256)
		if h, err := hex.DecodeString(e.SHA256); err != nil || len(h) != sha256.Size {
			bad("sha256 must be 64 hex digits (the SHA-256 of the key, never the key itself)")
			continue
		}
		if first, dup := seen[e.SHA256]; dup {
			bad("the same key hash as line %d", first)
			continue
		}
		if err := e.Principal().Validate(cat); err != nil {
			bad("%v", err)
			continue
		}
		seen[e.SHA256] = n
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%w: after line %d: %v", ErrKeyFileFormat, n, err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return entries, nil
}

// KeyFile authenticates API keys against a fixed set of entries. It is
// immutable and safe for concurrent use; to reload, build a new one and
// swap it in (for example behind an atomic.Pointer).
type KeyFile struct {
	byHash map[string]KeyEntry
	now    func() time.Time
}

// NewKeyFile returns a KeyFile for entries (from ParseKeyFile); now is the
// clock for expiries (time.Now when nil).
func NewKeyFile(entries []KeyEntry, now func() time.Time) *KeyFile {
	if now == nil {
		now = time.Now
	}
	k := &KeyFile{byHash: make(map[string]KeyEntry, len(entries)), now: now}
	for _, e := range entries {
		k.byHash[strings.ToLower(e.SHA256)] = e
	}
	return k
}

// ReadKeyFile parses the key file at path (see ParseKeyFile) into a
// KeyFile.
func ReadKeyFile(path string, cat Catalog, now func() time.Time) (*KeyFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: open key file: %w", err)
	}
	defer f.Close()
	entries, err := ParseKeyFile(f, cat)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewKeyFile(entries, now), nil
}

// Len returns the number of keys.
func (k *KeyFile) Len() int { return len(k.byHash) }

// Authenticate looks the hash of bearer up. It returns ErrMissingCredential
// for an empty bearer, ErrUnrecognised for a Payesh token (so that Chain
// passes it to a Verifier), ErrUnknownAPIKey for a key not in the file and
// ErrAPIKeyExpired for one past its expiry. It does no I/O and ignores ctx.
func (k *KeyFile) Authenticate(_ context.Context, bearer string) (Principal, error) {
	switch {
	case bearer == "":
		return Principal{}, ErrMissingCredential
	case strings.HasPrefix(bearer, "payesh.v"):
		return Principal{}, fmt.Errorf("%w: a Payesh token, not an API key", ErrUnrecognised)
	}
	e, ok := k.byHash[HashAPIKey(bearer)]
	if !ok {
		return Principal{}, ErrUnknownAPIKey
	}
	if e.ExpiresAt != nil && !k.now().Before(*e.ExpiresAt) {
		return Principal{}, fmt.Errorf("%w at %s (subject %s)", ErrAPIKeyExpired, e.ExpiresAt.UTC().Format(time.RFC3339), e.Subject)
	}
	return e.Principal(), nil
}
