package calendar

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
)

// Years below gregorianFrom in a date are Solar Hijri, years from it on are
// Gregorian. The two ranges cannot be confused in practice: Solar Hijri 1700
// is Gregorian 2321, and Gregorian 1699 predates every record in the ledger.
const gregorianFrom = 1700

// minJalaliYear is the earliest Solar Hijri year ParseDate accepts; the
// conversion library gives no results before Gregorian 1097.
const minJalaliYear = 1000

// dateForm matches a calendar date with an optional wall-clock time, after
// digits were normalised: "1403/09/15", "1403-09-15 14:30",
// "2024-12-05T14:30:05". Compiled regular expressions are safe for
// concurrent use and never modified.
var dateForm = regexp.MustCompile(`^(\d{4})([-/])(\d{1,2})([-/])(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$`)

// NormalizeDigits replaces Persian (۰–۹, U+06F0–U+06F9) and Arabic-Indic
// (٠–٩, U+0660–U+0669) digits with ASCII digits and leaves every other rune
// alone. Iranian users type any of the three, often mixed, so every parser of
// numbers in the ledger runs its input through this first.
func NormalizeDigits(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '۰' && r <= '۹':
			return '0' + (r - '۰')
		case r >= '٠' && r <= '٩':
			return '0' + (r - '٠')
		default:
			return r
		}
	}, s)
}

// PersianDigits replaces ASCII digits with Persian digits, for messages and
// documents shown to Persian readers.
func PersianDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '۰' + (r - '0')
		}
		return r
	}, s)
}

// stripMarks removes the invisible bidirectional marks (LRM, RLM, ALM) that
// Persian keyboards and copy-paste from right-to-left text insert around
// numbers; they carry no meaning in a date.
func stripMarks(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\u200e', '\u200f', '\u061c':
			return -1
		default:
			return r
		}
	}, s)
}

// JalaliDate returns the instant of 00:00 Tehran time on the given Solar
// Hijri date, in UTC. Unlike the conversion library it does not roll an
// impossible date over into the next month: 1403/13/01 and 1404/12/30 are
// errors matching domain.ErrInvalid.
func JalaliDate(year, month, day int) (time.Time, error) {
	if err := checkJalali(fmt.Sprintf("%04d/%02d/%02d", year, month, day), year, month, day); err != nil {
		return time.Time{}, err
	}
	return jalaliInstant(year, month, day, 0, 0, 0), nil
}

// ParseDate reads a date or an instant as people in the ministry write them
// and returns the instant in UTC. Accepted forms, with ASCII, Persian or
// Arabic-Indic digits anywhere:
//
//   - RFC 3339 timestamps with a zone: "2024-12-05T14:30:00Z",
//     "2024-12-05T18:00:00+03:30";
//   - Gregorian dates, ISO 8601 style: "2024-12-05" (also "2024/12/05");
//   - Solar Hijri dates: "1403/09/15" or "1403-09-15";
//   - either kind of date followed by a wall-clock time: "1403/09/15 14:30",
//     "2024-12-05T14:30:05".
//
// A four-digit year below 1700 marks a Solar Hijri date, anything from 1700
// on a Gregorian one. Dates and times without a zone are Tehran time (see
// Tehran); a date without a time means 00:00. Impossible dates such as
// 1403/13/01 or 1404/12/30 (1404 is not a leap year) are refused rather than
// rolled over. Every error is a *domain.ValidationError for the field "date"
// and matches domain.ErrInvalid.
func ParseDate(s string) (time.Time, error) {
	n := strings.TrimSpace(stripMarks(NormalizeDigits(s)))
	if n == "" {
		return time.Time{}, dateError("required", "date is empty", "تاریخ خالی است")
	}
	if t, err := time.Parse(time.RFC3339Nano, n); err == nil {
		if t.Year() < gregorianFrom {
			return time.Time{}, dateError("calendar",
				fmt.Sprintf("timestamp %q has year %d: timestamps must be Gregorian; write a Solar Hijri date as 1403/09/15 14:30", s, t.Year()),
				fmt.Sprintf("زمان %q سال %d دارد: زمان کامل باید میلادی باشد؛ تاریخ شمسی را به شکل ۱۴۰۳/۰۹/۱۵ ۱۴:۳۰ بنویسید", s, t.Year()))
		}
		return t.UTC(), nil
	}
	m := dateForm.FindStringSubmatch(n)
	if m == nil || m[2] != m[4] {
		return time.Time{}, dateError("format",
			fmt.Sprintf("%q is not a date: use 1403/09/15, 1403/09/15 14:30, 2024-12-05 or an RFC 3339 timestamp", s),
			fmt.Sprintf("%q تاریخ معتبری نیست: به شکل ۱۴۰۳/۰۹/۱۵، ۱۴۰۳/۰۹/۱۵ ۱۴:۳۰ یا ۲۰۲۴-۱۲-۰۵ بنویسید", s))
	}
	year, month, day := atoi(m[1]), atoi(m[3]), atoi(m[5])
	hour, minute, sec := 0, 0, 0
	if m[6] != "" {
		hour, minute = atoi(m[6]), atoi(m[7])
		if m[8] != "" {
			sec = atoi(m[8])
		}
		if hour > 23 || minute > 59 || sec > 59 {
			return time.Time{}, dateError("time",
				fmt.Sprintf("%q has an impossible time of day", s),
				fmt.Sprintf("ساعت در %q نامعتبر است", s))
		}
	}
	if year >= gregorianFrom {
		t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, tehran)
		if y, mo, d := t.Date(); y != year || int(mo) != month || d != day {
			return time.Time{}, dateError("day",
				fmt.Sprintf("%q is not a Gregorian calendar date", s),
				fmt.Sprintf("%q تاریخ میلادی معتبری نیست", s))
		}
		return t.UTC(), nil
	}
	if err := checkJalali(s, year, month, day); err != nil {
		return time.Time{}, err
	}
	return jalaliInstant(year, month, day, hour, minute, sec), nil
}

// checkJalali refuses a Solar Hijri date that does not exist; input is the
// text shown in the message.
func checkJalali(input string, year, month, day int) error {
	switch {
	case year < minJalaliYear || year >= gregorianFrom:
		return dateError("year",
			fmt.Sprintf("%q: Solar Hijri year %d is outside %d..%d", input, year, minJalaliYear, gregorianFrom-1),
			PersianDigits(fmt.Sprintf("%q: سال شمسی %d خارج از بازهٔ %d تا %d است", input, year, minJalaliYear, gregorianFrom-1)))
	case month < 1 || month > 12:
		return dateError("month",
			fmt.Sprintf("%q: month %d does not exist; Solar Hijri months are 1 (Farvardin) to 12 (Esfand)", input, month),
			PersianDigits(fmt.Sprintf("%q: ماه %d وجود ندارد؛ ماه‌های شمسی از ۱ (فروردین) تا ۱۲ (اسفند) هستند", input, month)))
	}
	if days := DaysInMonth(year, month); day < 1 || day > days {
		en := fmt.Sprintf("%q: day %d does not exist; month %d of %d has %d days", input, day, month, year, days)
		if month == 12 && day == 30 {
			en += fmt.Sprintf(" (%d is not a leap year)", year)
		}
		return dateError("day", en,
			PersianDigits(fmt.Sprintf("%q: روز %d وجود ندارد؛ ماه %d سال %d، %d روز دارد", input, day, month, year, days)))
	}
	return nil
}

// dateError builds the validation error ParseDate and JalaliDate return.
func dateError(code, en, fa string) error {
	var v domain.Validator
	v.Add("date", code, en, fa)
	return v.Err()
}

// atoi converts a string the date pattern has already checked to be at most
// four ASCII digits.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// allDigits reports whether s is non-empty and only ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
