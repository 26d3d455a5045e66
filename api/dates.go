package api

import (
	"time"

	"github.com/payesh/payesh/domain/calendar"
)

// Dates in query parameters and in answers. Clients write dates as people
// in the ministry do, and query parameters are read with parseTime
// (commands_dates.go, shared with the command handlers): ISO 8601 / RFC
// 3339, Gregorian 2024-12-05, Solar Hijri 1403/09/15, with a wall-clock
// time or not, in ASCII, Persian or Arabic-Indic digits; a time without a
// zone is Tehran time. Answers give every date that matters in both
// calendars: the instant in ISO 8601 UTC, and beside it, with the suffix
// _jalali, its Tehran calendar date in the Solar Hijri calendar
// ("1403/09/15").

// jalali returns the Tehran calendar date of t in the Solar Hijri
// calendar, "1403/09/15".
func jalali(t time.Time) string { return calendar.FormatJalali(t) }

// jalaliPtr is jalali for an optional time.
func jalaliPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := jalali(*t)
	return &s
}

// utcPtr returns t in UTC, nil for nil or the zero time.
func utcPtr(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
