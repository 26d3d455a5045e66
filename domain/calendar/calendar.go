// Package calendar converts between instants and the Solar Hijri (Jalali)
// calendar that Iranian budget law, quotas and reports use, and defines the
// fiscal year.
//
// Time zone. Every calendar date in this package is a date in Tehran. Tehran
// time is modelled as the fixed offset UTC+03:30 (Tehran returns it); the
// system time zone database is never consulted, so results do not depend on
// the machine. Iran abolished daylight saving time in 1401 (2022), so for
// dates from 1402 on this is exact. Before that, clocks moved to UTC+04:30
// between the end of 1 Farvardin and the end of 30 Shahrivar; this package
// deliberately ignores that historical DST. Fiscal-year boundaries
// (1 Farvardin 00:00) were never inside a DST period, so FiscalYearOf is
// exact for every year; only wall-clock times of summer instants before 1402
// are one hour off, and ParseDate and FormatJalali agree with each other, so
// dates round-trip.
//
// Leap years follow the 33-year arithmetic cycle of
// github.com/yaa110/go-persian-calendar, which matches the official
// (astronomical) calendar for every year this ledger handles.
package calendar

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	ptime "github.com/yaa110/go-persian-calendar"

	"github.com/payesh/payesh/domain"
)

// tehranOffset is Iran Standard Time, UTC+03:30, in seconds.
const tehranOffset = 3*3600 + 1800

// tehran is read-only after initialisation; Tehran hands it out.
var tehran = time.FixedZone("IRST", tehranOffset)

// Tehran returns the fixed UTC+03:30 zone that this package uses for every
// calendar date. It is exposed so that callers who format wall-clock times
// for Iranian users agree with the package's dates.
func Tehran() *time.Location { return tehran }

// Range of fiscal years the ledger accepts. 1380 predates every programme
// in the reference data; 1500 leaves room for long repayment schedules.
const (
	// MinFiscalYear is the earliest fiscal year FiscalYear.Validate accepts.
	MinFiscalYear FiscalYear = 1380
	// MaxFiscalYear is the latest fiscal year FiscalYear.Validate accepts.
	MaxFiscalYear FiscalYear = 1500
)

// FiscalYear is an Iranian fiscal year, which is a Solar Hijri year: fiscal
// year 1403 runs from 1 Farvardin 1403 (20 March 2024) 00:00 Tehran time up to,
// not including, 1 Farvardin 1404. Budget notes, quotas and claims are keyed
// by it. In JSON it is a plain number.
type FiscalYear int

// FiscalYearOf returns the fiscal year that contains the instant t.
func FiscalYearOf(t time.Time) FiscalYear {
	return FiscalYear(ptime.New(t.In(tehran)).Year())
}

// Start returns the first instant of the fiscal year (1 Farvardin 00:00
// Tehran time), in UTC because the ledger stores UTC instants.
func (y FiscalYear) Start() time.Time {
	return jalaliInstant(int(y), 1, 1, 0, 0, 0)
}

// End returns the first instant after the fiscal year, that is the Start of
// the next one, in UTC. A fiscal year is the half-open interval [Start, End),
// which lets consecutive years tile the time line without gaps or overlap.
func (y FiscalYear) End() time.Time { return (y + 1).Start() }

// Contains reports whether the instant t falls within the fiscal year.
func (y FiscalYear) Contains(t time.Time) bool {
	return !t.Before(y.Start()) && t.Before(y.End())
}

// IsLeap reports whether the year has 366 days, that is whether Esfand has
// 30 days.
func (y FiscalYear) IsLeap() bool {
	return ptime.Date(int(y), ptime.Farvardin, 1, 12, 0, 0, 0, tehran).IsLeap()
}

// String formats the year with ASCII digits, such as "1403".
func (y FiscalYear) String() string { return strconv.Itoa(int(y)) }

// Validate reports, as a *domain.ValidationError matching domain.ErrInvalid,
// a year outside MinFiscalYear..MaxFiscalYear. A Gregorian year typed by
// mistake (2024) is the usual cause, so the message says so.
func (y FiscalYear) Validate() error {
	var v domain.Validator
	v.Check(y >= MinFiscalYear && y <= MaxFiscalYear, "fiscal_year", "out_of_range",
		fmt.Sprintf("fiscal year %d is outside %d..%d (use the Solar Hijri year, such as 1403)", int(y), MinFiscalYear, MaxFiscalYear),
		PersianDigits(fmt.Sprintf("سال مالی %d خارج از بازهٔ %d تا %d است (سال هجری شمسی مانند 1403 را وارد کنید)", int(y), MinFiscalYear, MaxFiscalYear)))
	return v.Err()
}

// ParseFiscalYear reads a fiscal year written as a Solar Hijri year in
// ASCII, Persian or Arabic-Indic digits ("1403", "۱۴۰۳"), surrounded by
// optional white space, and validates its range. Errors match
// domain.ErrInvalid.
func ParseFiscalYear(s string) (FiscalYear, error) {
	n := strings.TrimSpace(stripMarks(NormalizeDigits(s)))
	if !allDigits(n) || len(n) != 4 {
		var v domain.Validator
		v.Add("fiscal_year", "format",
			fmt.Sprintf("fiscal year %q is not a four-digit Solar Hijri year such as 1403", s),
			fmt.Sprintf("سال مالی %q یک سال چهاررقمی هجری شمسی مانند ۱۴۰۳ نیست", s))
		return 0, v.Err()
	}
	y, _ := strconv.Atoi(n) // four ASCII digits always parse
	fy := FiscalYear(y)
	if err := fy.Validate(); err != nil {
		return 0, err
	}
	return fy, nil
}

// DaysInMonth returns the number of days of a Solar Hijri month: 31 for
// Farvardin to Shahrivar (1–6), 30 for Mehr to Bahman (7–11), and 29 or 30
// for Esfand (12) depending on leap years. It returns 0 for a month outside
// 1..12.
func DaysInMonth(year, month int) int {
	switch {
	case month >= 1 && month <= 6:
		return 31
	case month >= 7 && month <= 11:
		return 30
	case month == 12:
		if FiscalYear(year).IsLeap() {
			return 30
		}
		return 29
	default:
		return 0
	}
}

// FormatJalali formats the Tehran calendar date of t as "1403/09/15", with
// ASCII digits; use PersianDigits on the result for Persian text.
func FormatJalali(t time.Time) string {
	y, m, d := t.In(tehran).Date()
	key := int32(y)<<9 | int32(m)<<5 | int32(d)
	if s, ok := jalaliDays.Load(key); ok {
		return s.(string)
	}
	p := ptime.New(t.In(tehran))
	s := fmt.Sprintf("%04d/%02d/%02d", p.Year(), int(p.Month()), p.Day())
	if y >= 1900 && y < 2200 { // bounded: at most 110k days, whatever clients ask
		jalaliDays.Store(key, s)
	}
	return s
}

// jalaliDays memoises FormatJalali by Tehran civil date: answers carry
// several dates of each of up to a thousand facilities, a few thousand
// distinct days in all, and the calendar conversion costs about twenty
// times the lookup.
var jalaliDays sync.Map // int32 (year<<9 | month<<5 | day) -> string

// FormatJalaliTime formats the Tehran date and wall-clock time of t as
// "1403/09/15 14:30", the form ParseDate reads back.
func FormatJalaliTime(t time.Time) string {
	p := ptime.New(t.In(tehran))
	return fmt.Sprintf("%04d/%02d/%02d %02d:%02d", p.Year(), int(p.Month()), p.Day(), p.Hour(), p.Minute())
}

// jalaliInstant converts a Solar Hijri date and Tehran wall-clock time, which
// the caller has already validated, to a UTC instant.
func jalaliInstant(year, month, day, hour, minute, sec int) time.Time {
	return ptime.Date(year, ptime.Month(month), day, hour, minute, sec, 0, tehran).Time().UTC()
}
