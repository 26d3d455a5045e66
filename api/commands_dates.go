package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
)

// parseTime reads an instant given by a client — a request body's date
// field, or a query parameter such as as_of — and returns it in UTC. It
// accepts every form calendar.ParseDate does, with ASCII, Persian (۱۴۰۳) or
// Arabic-Indic digits and stray bidirectional marks:
//
//   - RFC 3339 / ISO 8601 timestamps with a zone: "2024-12-05T14:30:00Z",
//     "2024-12-05T18:00:00+03:30";
//   - Gregorian dates: "2024-12-05" (or "2024/12/05");
//   - Solar Hijri dates: "1403/09/15" or "1403-09-15";
//   - either kind of date with a wall-clock time: "1403/09/15 14:30",
//     "2024-12-05T14:30:05".
//
// A date or wall-clock time without a zone is Tehran time; a date alone
// means 00:00 Tehran time (so "1403/09/15" is 2024-12-04T20:30:00Z). A year
// below 1700 is Solar Hijri. Impossible dates (1403/13/01, 1404/12/30) are
// refused, never rolled over. field names the input in the error, which is
// a *domain.ValidationError (422, with the message in English and Persian)
// whose one field problem is field.
func parseTime(field, value string) (time.Time, error) {
	t, err := calendar.ParseDate(value)
	if err != nil {
		return time.Time{}, renameFields(err, map[string]string{"date": field})
	}
	return t, nil
}

// parseDate reads a calendar day in any of parseTime's date forms
// ("1403/09/15", "۱۴۰۳/۰۹/۱۵", "2024-12-05") and returns the instant its day
// begins in Tehran, in UTC. A time of day is refused: a filter or field that
// means a whole day ("issued on", "from", "until") should not silently take
// a moment inside it. Errors are as parseTime's.
func parseDate(field, value string) (time.Time, error) {
	t, err := parseTime(field, value)
	if err != nil {
		return time.Time{}, err
	}
	if h, m, s := t.In(calendar.Tehran()).Clock(); h != 0 || m != 0 || s != 0 || t.Nanosecond() != 0 {
		var v domain.Validator
		v.Add(field, "not_a_date",
			fmt.Sprintf("%q has a time of day; give a date such as 1403/09/15 or 2024-12-05", value),
			fmt.Sprintf("%q ساعت دارد؛ تاریخ را به شکل ۱۴۰۳/۰۹/۱۵ یا ۲۰۲۴-۱۲-۰۵ بنویسید", value))
		return time.Time{}, v.Err()
	}
	return t, nil
}

// renameFields returns err with the field names of its validation problems
// translated by names (a domain name → the request's name, such as "at" →
// "occurred_at"); other errors come back unchanged.
func renameFields(err error, names map[string]string) error {
	var ve *domain.ValidationError
	if len(names) == 0 || !errors.As(err, &ve) {
		return err
	}
	out := &domain.ValidationError{Fields: make([]domain.FieldError, len(ve.Fields))}
	for i, f := range ve.Fields {
		if n, ok := names[f.Field]; ok {
			f.Field = n
		}
		out.Fields[i] = f
	}
	return out
}
