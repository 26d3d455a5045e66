// Package checkpoint is the signed checkpoint: a statement, signed with an
// Ed25519 key kept away from the database, that the log's head was at a
// position with a hash at a moment. Kept outside the database (a file, a
// printout, another organisation's archive), it proves later that the log
// still extends that head: an attacker with full control of the database
// can recompute the whole hash chain after rewriting history, or cut events
// off its end, but cannot make the event at the checkpoint's position have
// the signed hash again, nor sign a new checkpoint.
//
// The same signed object is appended to the log as an event (type
// checkpoint.signed.v1, stream Stream), so the log records its own
// checkpoints. The package depends on the standard library only.
package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
)

// Format names the signed message's layout and the file format; it is the
// first line of what is signed, so a signature cannot be carried over to
// another format.
const Format = "payesh-checkpoint/v1"

// Stream is the stream checkpoints are appended to.
const Stream = "audit-checkpoints"

// TypeSigned is the event type of a recorded checkpoint.
const TypeSigned = "checkpoint.signed.v1"

// Checkpoint is a signed head of the log. As a file it is this object as
// JSON; as an event its payload is the same object.
type Checkpoint struct {
	Format string `json:"format"`
	// Position and Hash are the head signed: the event at Position has
	// Hash (64 lowercase hex digits).
	Position uint64 `json:"position"`
	Hash     string `json:"hash"`
	// LogID is the hash of the event at position 1: it names the log the
	// checkpoint is of (two logs share it only if they share their first
	// event), so a checkpoint is not checked against the wrong store.
	LogID string `json:"log_id"`
	// SignedAt is when the checkpoint was signed (UTC, microseconds).
	SignedAt time.Time `json:"signed_at"`
	// KeyID names the signing key (see api/auth.KeyID: the same IDs as
	// token keys), to pick the public key; the signature is what proves.
	KeyID string `json:"key_id"`
	// Signature is the Ed25519 signature of Message(), base64url without
	// padding.
	Signature string `json:"signature"`
}

// EventType implements domain.Event.
func (Checkpoint) EventType() string { return TypeSigned }

// EventTypes lists every event type of this package, for the registry.
func EventTypes() []domain.EventType {
	return []domain.EventType{domain.Type[Checkpoint]()}
}

// Message returns the bytes that are signed: the format and every field but
// the signature, one "name=value" line each, in a fixed order:
//
//	payesh-checkpoint/v1
//	position=<decimal>
//	hash=<hex>
//	log_id=<hex>
//	signed_at=<RFC 3339, UTC, nanosecond precision as needed>
//	key_id=<id>
//
// each line ending in "\n".
func (c Checkpoint) Message() []byte {
	var b bytes.Buffer
	b.WriteString(Format + "\n")
	b.WriteString("position=" + strconv.FormatUint(c.Position, 10) + "\n")
	b.WriteString("hash=" + c.Hash + "\n")
	b.WriteString("log_id=" + c.LogID + "\n")
	b.WriteString("signed_at=" + c.SignedAt.UTC().Format(time.RFC3339Nano) + "\n")
	b.WriteString("key_id=" + c.KeyID + "\n")
	return b.Bytes()
}

// New returns the unsigned checkpoint of a head: position and hash of the
// head (hex), the hash of the first event, and when.
func New(position uint64, hash, logID string, at time.Time) Checkpoint {
	return Checkpoint{Format: Format, Position: position, Hash: hash, LogID: logID,
		SignedAt: at.UTC().Truncate(time.Microsecond)}
}

// Sign fills in KeyID and Signature. It refuses a checkpoint that Validate
// refuses.
func (c Checkpoint) Sign(priv ed25519.PrivateKey, keyID string) (Checkpoint, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Checkpoint{}, errors.New("checkpoint: not an Ed25519 private key")
	}
	c.KeyID = keyID
	c.Signature = ""
	if err := c.validate(false); err != nil {
		return Checkpoint{}, err
	}
	c.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, c.Message()))
	return c, nil
}

// ErrBadSignature is returned by Verify when no key given verifies the
// signature: the checkpoint was not signed by them, or was altered.
var ErrBadSignature = errors.New("checkpoint: the signature does not verify with any of the public keys given")

// Verify checks the checkpoint's fields and that one of keys signed it.
func (c Checkpoint) Verify(keys []ed25519.PublicKey) error {
	if err := c.validate(true); err != nil {
		return err
	}
	sig, _ := base64.RawURLEncoding.DecodeString(c.Signature) // checked by validate
	msg := c.Message()
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig) {
			return nil
		}
	}
	return ErrBadSignature
}

// validate checks the fields; signed says whether Signature must be there.
func (c Checkpoint) validate(signed bool) error {
	var v domain.Validator
	v.Check(c.Format == Format, "format", "unknown", fmt.Sprintf("must be %q", Format), fmt.Sprintf("باید %q باشد", Format))
	v.Check(c.Position > 0, "position", "required", "must be at least 1: an empty log has no head to sign", "باید دست‌کم ۱ باشد")
	v.Check(isHash(c.Hash), "hash", "malformed", "must be 64 lowercase hex digits", "باید ۶۴ رقم هگزادسیمال کوچک باشد")
	v.Check(isHash(c.LogID), "log_id", "malformed", "must be 64 lowercase hex digits", "باید ۶۴ رقم هگزادسیمال کوچک باشد")
	v.Check(!c.SignedAt.IsZero(), "signed_at", "required", "is required", "لازم است")
	v.Check(c.KeyID != "", "key_id", "required", "is required", "لازم است")
	if signed {
		sig, err := base64.RawURLEncoding.DecodeString(c.Signature)
		v.Check(err == nil && len(sig) == ed25519.SignatureSize, "signature", "malformed",
			"must be a 64-byte Ed25519 signature in base64url without padding", "باید امضای ۶۴ بایتی Ed25519 به base64url باشد")
	}
	if err := v.Err(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && s == strings.ToLower(s)
}

// Marshal encodes the checkpoint as its file: indented JSON and a final
// newline.
func (c Checkpoint) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse decodes a checkpoint file strictly (unknown fields refused). It
// does not verify the signature; Verify does.
func Parse(data []byte) (Checkpoint, error) {
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: not a checkpoint file: %w", err)
	}
	if dec.More() {
		return Checkpoint{}, errors.New("checkpoint: not a checkpoint file: more than one JSON value")
	}
	return c, nil
}
