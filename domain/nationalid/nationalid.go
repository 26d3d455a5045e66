// Package nationalid validates Iranian national identification numbers
// (کد ملی). A national ID is personal data: this package only checks and
// normalises it; keeping it out of the plaintext log is package applicant's
// job.
package nationalid

import (
	"fmt"
	"strings"

	"github.com/payesh/payesh/domain"
)

// Length is the number of digits of a national ID, the tenth being a check
// digit.
const Length = 10

// Normalize converts Persian and Arabic-Indic digits to ASCII and drops
// surrounding white space and the hyphens of the printed form
// ("001-234567-8"). It does not validate; Validate calls it first. A local
// copy of the digit mapping keeps this package free of dependencies on its
// siblings.
func Normalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '۰' && r <= '۹':
			return '0' + (r - '۰')
		case r >= '٠' && r <= '٩':
			return '0' + (r - '٠')
		case r == '-', r == ' ', r == '\t', r == '\u200e', r == '\u200f', r == '\u200c':
			return -1
		default:
			return r
		}
	}, strings.TrimSpace(s))
}

// Validate checks a national ID and returns it normalised to ten ASCII
// digits. Leading zeros are significant (IDs issued in Tehran start with
// 00), so an ID that lost them, for instance in a spreadsheet, is refused
// rather than padded: padding could turn a typo into somebody else's valid
// ID. The check digit is verified (see CheckDigit), and IDs made of one
// repeated digit, which pass the checksum but are never issued, are refused.
// Errors are *domain.ValidationError for the field "national_id" and match
// domain.ErrInvalid; their messages never repeat the input, which is
// personal data.
func Validate(s string) (string, error) {
	n := Normalize(s)
	var v domain.Validator
	if len(n) != Length || !digitsOnly(n) {
		v.Add("national_id", "format",
			"national ID must be exactly 10 digits",
			"کد ملی باید دقیقاً ۱۰ رقم باشد")
		return "", v.Err()
	}
	if strings.Count(n, n[:1]) == Length {
		v.Add("national_id", "repeated",
			"national ID cannot be one digit repeated ten times",
			"کد ملی نمی‌تواند از تکرار یک رقم تشکیل شده باشد")
		return "", v.Err()
	}
	if n[9]-'0' != CheckDigit(n[:9]) {
		v.Add("national_id", "checksum",
			"national ID check digit does not match; the number was probably mistyped",
			"رقم کنترل کد ملی درست نیست؛ احتمالاً کد اشتباه وارد شده است")
		return "", v.Err()
	}
	return n, nil
}

// CheckDigit computes the tenth digit for the first nine digits of a
// national ID: with s = Σ digit[i]·(10−i) for i = 0..8 and r = s mod 11, the
// check digit is r when r < 2 and 11 − r otherwise. body must be nine ASCII
// digits; anything else is a programming error and panics.
func CheckDigit(body string) byte {
	if len(body) != Length-1 || !digitsOnly(body) {
		panic(fmt.Sprintf("nationalid: CheckDigit needs 9 ASCII digits, got %d bytes", len(body)))
	}
	sum := 0
	for i := 0; i < Length-1; i++ {
		sum += int(body[i]-'0') * (Length - i)
	}
	r := sum % 11
	if r < 2 {
		return byte(r)
	}
	return byte(11 - r)
}

// bodies is the number of nine-digit bodies.
const bodies = 1_000_000_000

// repdigits is the number of nine-digit bodies made of one repeated digit
// (d·111111111 for d = 0..9). Generate skips them so that it never produces
// an ID that Validate refuses.
const repdigits = 10

// Generate builds a valid national ID from a sequence number, for test data
// and the data generator. It is deterministic and injective for seq below
// GenerateLimit (999,999,990): seq is mapped onto the nine-digit bodies in
// ascending order, skipping the ten repeated-digit bodies, and the check
// digit is appended. Larger seq values wrap around. The IDs are syntactically
// valid but random-looking; they are not derived from real people.
func Generate(seq uint64) string {
	body := seq % GenerateLimit
	for d := uint64(0); d < repdigits; d++ { // ascending, so each skip shifts the rest
		if body >= d*111_111_111 {
			body++
		}
	}
	s := fmt.Sprintf("%09d", body)
	return s + string('0'+CheckDigit(s))
}

// GenerateLimit is the number of distinct IDs Generate produces before it
// wraps around.
const GenerateLimit = bodies - repdigits

// digitsOnly reports whether s consists of ASCII digits only.
func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
