package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

// String renders the hash as lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash (the predecessor of the first event).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash reads a hash from 64 hex characters.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("eventstore: %q is not a 64-character hex hash", s)
	}
	copy(h[:], b)
	return h, nil
}

// HashFromBytes copies a 32-byte slice into a Hash.
func HashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return h, fmt.Errorf("eventstore: hash has %d bytes, want %d", len(b), len(h))
	}
	copy(h[:], b)
	return h, nil
}

// canonicalTag versions the canonical encoding itself: a change to the layout
// below must change the tag, so old chains stay verifiable.
const canonicalTag = "payesh/event/v1"

// Canonical appends the canonical bytes of e to dst: every envelope field that
// carries meaning (position, stream, version, id, type, both times, backdate
// reason, actor, idempotency key, correlation and causation ids) and the
// payload, each length-prefixed so no two different events share an encoding.
// The hashes themselves are not part of it.
func Canonical(dst []byte, e *Event) []byte {
	dst = appendString(dst, canonicalTag)
	dst = binary.BigEndian.AppendUint64(dst, e.Position)
	dst = appendString(dst, e.Stream)
	dst = binary.BigEndian.AppendUint64(dst, e.Version)
	dst = appendString(dst, e.ID)
	dst = appendString(dst, e.Type)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.OccurredAt.UnixMicro()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.RecordedAt.UnixMicro()))
	dst = appendString(dst, e.BackdateReason)
	dst = appendString(dst, e.Actor.ID)
	dst = appendString(dst, e.Actor.Role)
	dst = appendString(dst, e.Actor.Org)
	dst = appendString(dst, e.IdempotencyKey)
	dst = appendString(dst, e.CorrelationID)
	dst = appendString(dst, e.CausationID)
	dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
	return append(dst, e.Data...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Chain computes an event's hash: SHA-256 over the predecessor's hash followed
// by the event's canonical bytes. buf is scratch space, returned for reuse.
func Chain(prev Hash, e *Event, buf []byte) (Hash, []byte) {
	buf = append(buf[:0], prev[:]...)
	buf = Canonical(buf, e)
	return sha256.Sum256(buf), buf
}

// Normalize truncates a time the way every backend stores it: UTC,
// microsecond precision. Hashes are computed over normalized times so that a
// round trip through any database reproduces them.
func Normalize(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
