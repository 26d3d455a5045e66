package seed

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// idSource derives event IDs from the history's identity, so that the same
// configuration always produces the same IDs (which is what makes a re-run
// resume: the store answers Duplicate for appends it already holds) and a
// different configuration never collides with them.
type idSource struct {
	key [32]byte // identity of the history: see Config.historyKey
}

// eventID returns a UUIDv7-shaped ID: the 48-bit Unix millisecond timestamp
// is the event's business time, version 7 and RFC 9562 variant bits are set,
// and the 74 remaining bits come from SHA-256 of the history key and the
// event's place, which is unique: its stream and version.
func (s *idSource) eventID(at time.Time, stream string, version uint64) string {
	buf := make([]byte, 0, len(s.key)+len(stream)+9)
	buf = append(buf, s.key[:]...)
	buf = append(buf, stream...)
	buf = append(buf, '@')
	buf = binary.BigEndian.AppendUint64(buf, version)
	sum := sha256.Sum256(buf)

	var u [16]byte
	ms := uint64(at.UnixMilli())
	if at.Before(time.Unix(0, 0)) {
		ms = 0
	}
	binary.BigEndian.PutUint64(u[0:8], ms<<16)
	copy(u[6:], sum[:10])
	u[6] = 0x70 | (u[6] & 0x0f) // version 7
	u[8] = 0x80 | (u[8] & 0x3f) // variant 10
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
