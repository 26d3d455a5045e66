// Package quota is the aggregate for the quota ledger of one fiscal year and
// program: the money and job targets allocated to each agency in each
// province or county, the ministry's transfers between them, and the charges
// that approved loans make against them.
//
// The aggregate is the ledger, not the account, and each ledger is one
// stream, quota-<fiscal year>-<program>. A transfer moves quota between two
// accounts of the same ledger, so it is one event in one append: it cannot be
// half done, and optimistic concurrency on the stream makes the free-balance
// check race-free.
package quota

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Fiscal years a ledger may have. The bounds cover every Solar Hijri year in
// which these schemes have run or could plausibly run, and reject Gregorian
// years and typing mistakes.
const (
	MinFiscalYear = 1380 // the first year the ledger accepts
	MaxFiscalYear = 1500 // the last year the ledger accepts
)

// streamPrefix starts every quota ledger stream name.
const streamPrefix = "quota-"

// Stream returns the stream of the ledger of a fiscal year and program.
func Stream(fiscalYear int, program string) string {
	return streamPrefix + strconv.Itoa(fiscalYear) + "-" + program
}

// ParseStream is the inverse of Stream; ok is false when the name is not a
// quota ledger stream.
func ParseStream(stream string) (fiscalYear int, program string, ok bool) {
	rest, ok := strings.CutPrefix(stream, streamPrefix)
	if !ok {
		return 0, "", false
	}
	fy, program, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, "", false
	}
	n, err := strconv.Atoi(fy)
	if err != nil || n < MinFiscalYear || n > MaxFiscalYear || !ValidProgram(program) {
		return 0, "", false
	}
	return n, program, true
}

// ValidProgram reports whether a program id can name a ledger: 1 to 64
// lower-case ASCII letters, digits and hyphens, starting with a letter or
// digit, as in the programs reference list (e.g. home-business). Program ids
// are part of stream names, so they keep to a portable alphabet.
func ValidProgram(p string) bool {
	if len(p) == 0 || len(p) > 64 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// AccountKey names one quota account of a ledger: an agency's quota in a
// province, or in one county of it when County is set.
type AccountKey struct {
	Agency   string `json:"agency"`
	Province string `json:"province"`
	County   string `json:"county,omitempty"`
}

// String returns the stable text form, agency/province or
// agency/province/county, used as a map key, in facility events and in URLs.
func (k AccountKey) String() string {
	if k.County == "" {
		return k.Agency + "/" + k.Province
	}
	return k.Agency + "/" + k.Province + "/" + k.County
}

// Valid reports whether the agency and province are set and every part is a
// valid key part.
func (k AccountKey) Valid() bool {
	return ValidKeyPart(k.Agency) && ValidKeyPart(k.Province) && (k.County == "" || ValidKeyPart(k.County))
}

// ValidKeyPart reports whether s can be part of an account key: non-empty,
// without the '/' separator and without surrounding white space, so that
// String and ParseAccountKey are exact inverses.
func ValidKeyPart(s string) bool {
	return s != "" && !strings.Contains(s, "/") && strings.TrimSpace(s) == s
}

// ErrMalformedKey is returned by ParseAccountKey for text that is not an
// account key.
var ErrMalformedKey = errors.New("quota: malformed account key")

// ParseAccountKey parses the String form of an account key.
func ParseAccountKey(s string) (AccountKey, error) {
	parts := strings.Split(s, "/")
	var k AccountKey
	switch len(parts) {
	case 2:
		k = AccountKey{Agency: parts[0], Province: parts[1]}
	case 3:
		if parts[2] == "" {
			return AccountKey{}, fmt.Errorf("%w: %q", ErrMalformedKey, s)
		}
		k = AccountKey{Agency: parts[0], Province: parts[1], County: parts[2]}
	default:
		return AccountKey{}, fmt.Errorf("%w: %q", ErrMalformedKey, s)
	}
	if !k.Valid() {
		return AccountKey{}, fmt.Errorf("%w: %q", ErrMalformedKey, s)
	}
	return k, nil
}
