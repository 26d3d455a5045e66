// Package applicant keeps applicants' personal data out of the immutable log
// in plaintext, by crypto-shredding, and prevents one applicant from holding
// two open facilities of the same programme in the same fiscal year.
//
// Personal data (national ID, name, phone) is sealed with AES-256-GCM under a
// data key that belongs to one applicant and lives in a Vault, outside the
// log. Events carry only the Sealed form. Destroying the data key makes every
// sealed copy in the log unreadable, which is how an applicant is erased
// although the log itself is never rewritten.
//
// To find an applicant again without decrypting anything, events also carry
// a Ref: a keyed hash (HMAC-SHA256) of the normalised national ID under one
// system-wide pseudonymisation key. The same national ID always gives the
// same Ref, so duplicate checks work on Refs; without the pseudonymisation
// key a Ref cannot be turned back into a national ID by trying all 10^9
// candidates. The per-applicant duplicate check is a small aggregate whose
// stream is StreamFor(ref).
package applicant

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/nationalid"
)

// KeySize is the size in bytes of data keys (AES-256) and the minimum size of
// the pseudonymisation key.
const KeySize = 32

// ErrCannotOpen is returned by Open when the ciphertext does not
// authenticate: the key is wrong (for instance a later generation's key), or
// the ciphertext, its Ref or its nonce was altered.
var ErrCannotOpen = errors.New("applicant: sealed data cannot be opened with this key")

// Personal is an applicant's personal data in plaintext. It exists only in
// memory and inside Sealed.Ciphertext, never in an event.
type Personal struct {
	NationalID string `json:"national_id"` // normalised, see nationalid.Validate
	Name       string `json:"name"`
	Phone      string `json:"phone"`
}

// Sealed is personal data as it goes into events.
type Sealed struct {
	// Ref is the applicant's pseudonym, RefOf(pseudonymKey, NationalID): 64
	// lowercase hex digits, the full HMAC-SHA256. Truncating it would save
	// little space and give up collision resistance on a key that decides
	// whether two applications belong to the same person.
	Ref string `json:"ref"`
	// KeyID names the data key in the Vault: KeyIDFor(Ref, generation), see
	// KeyIDFor.
	KeyID string `json:"key_id"`
	// Ciphertext is the 12-byte GCM nonce followed by the AES-256-GCM
	// encryption of Personal as JSON, authenticated together with Ref. In
	// JSON it is standard base64.
	Ciphertext []byte `json:"ciphertext"`
}

// refPattern matches a Ref: a full HMAC-SHA256 in lowercase hex.
var refPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidRef reports whether s has the form of a Ref. It says nothing about
// whether any applicant has that Ref.
func ValidRef(s string) bool { return refPattern.MatchString(s) }

// RefOf computes an applicant's Ref from a national ID: the HMAC-SHA256,
// under the system-wide pseudonymisation key, of the ID after
// nationalid.Normalize (so Persian digits and hyphens give the same Ref),
// in lowercase hex. The key must be at least KeySize bytes; a shorter key is
// a configuration fault that would weaken every pseudonym, so RefOf panics
// rather than return a weak Ref. The composition root checks the key at
// start-up with CheckPseudonymKey.
func RefOf(hmacKey []byte, nationalID string) string {
	if err := CheckPseudonymKey(hmacKey); err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, hmacKey)
	m.Write([]byte(nationalid.Normalize(nationalID)))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckPseudonymKey reports a pseudonymisation key shorter than KeySize
// bytes.
func CheckPseudonymKey(key []byte) error {
	if len(key) < KeySize {
		return fmt.Errorf("applicant: pseudonymisation key has %d bytes, need at least %d", len(key), KeySize)
	}
	return nil
}

// KeyIDFor names the data key of one generation of an applicant's personal
// data: the Ref, "-k" and the generation number, such as "<ref>-k1". An
// applicant starts at generation 1; erasure destroys the current
// generation's key, and because a destroyed key can never be recreated, any
// later data is sealed under the next generation (State.KeyID). Deriving the
// ID from the Ref keeps key IDs unique across applicants without a lookup.
func KeyIDFor(ref string, generation int) string {
	return ref + "-k" + strconv.Itoa(generation)
}

// Seal encrypts p with the 32-byte data key using AES-256-GCM with a fresh
// random nonce, binding the ciphertext to ref as additional authenticated
// data so that it cannot be passed off as another applicant's. It does not
// check that ref is the Ref of p.NationalID (it has no pseudonymisation key);
// callers compute ref with RefOf and keyID from the applicant's State.
func Seal(key []byte, p Personal, ref, keyID string) (Sealed, error) {
	if !ValidRef(ref) {
		return Sealed{}, fmt.Errorf("applicant: seal: ref is not 64 lowercase hex digits: %w", domain.ErrInvalid)
	}
	if keyID == "" {
		return Sealed{}, fmt.Errorf("applicant: seal: empty key ID: %w", domain.ErrInvalid)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return Sealed{}, err
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return Sealed{}, fmt.Errorf("applicant: seal: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("applicant: seal: nonce: %w", err)
	}
	return Sealed{Ref: ref, KeyID: keyID, Ciphertext: aead.Seal(nonce, nonce, plain, []byte(ref))}, nil
}

// Open decrypts s with the data key named by s.KeyID. It returns
// ErrCannotOpen when the key is wrong or anything in s was altered, and an
// error matching domain.ErrInvalid when the key is not 32 bytes.
func Open(key []byte, s Sealed) (Personal, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return Personal{}, err
	}
	if len(s.Ciphertext) < aead.NonceSize()+aead.Overhead() {
		return Personal{}, ErrCannotOpen
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, s.Ciphertext[:n], s.Ciphertext[n:], []byte(s.Ref))
	if err != nil {
		return Personal{}, ErrCannotOpen
	}
	var p Personal
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Personal{}, fmt.Errorf("applicant: open: %w", err)
	}
	return p, nil
}

// newAEAD builds AES-256-GCM for a data key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("applicant: data key has %d bytes, need %d: %w", len(key), KeySize, domain.ErrInvalid)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("applicant: %w", err)
	}
	return cipher.NewGCM(block)
}
