package calendar_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
)

// utc builds a UTC instant for expectations.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v.UTC()
}

// requireInvalid checks that err is a validation error for field with code.
func requireInvalid(t *testing.T, err error, field, code string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, domain.ErrInvalid)
	var ve *domain.ValidationError
	require.True(t, errors.As(err, &ve), "want *domain.ValidationError, got %T", err)
	require.Len(t, ve.Fields, 1)
	require.Equal(t, field, ve.Fields[0].Field)
	require.Equal(t, code, ve.Fields[0].Code)
	require.NotEmpty(t, ve.Fields[0].Message)
	require.NotEmpty(t, ve.Fields[0].MessageFa)
}

func TestTehranIsFixed(t *testing.T) {
	name, off := time.Date(2020, 7, 1, 12, 0, 0, 0, calendar.Tehran()).Zone()
	require.Equal(t, "IRST", name)
	require.Equal(t, 3*3600+1800, off, "summer before 1402 must still be +03:30: historical DST is ignored")
}

func TestNowruz(t *testing.T) {
	// Official 1 Farvardin dates; 00:00 Tehran is 20:30 UTC the day before.
	tests := []struct {
		year calendar.FiscalYear
		greg string // Gregorian date of 1 Farvardin
		leap bool   // whether the year itself is leap (Esfand has 30 days)
	}{
		{1399, "2020-03-20", true},
		{1400, "2021-03-21", false},
		{1401, "2022-03-21", false},
		{1402, "2023-03-21", false},
		{1403, "2024-03-20", true},
		{1404, "2025-03-21", false},
		{1405, "2026-03-21", false},
		{1407, "2028-03-20", false},
		{1408, "2029-03-20", true},
	}
	for _, tt := range tests {
		t.Run(tt.year.String(), func(t *testing.T) {
			want, err := time.ParseInLocation("2006-01-02", tt.greg, calendar.Tehran())
			require.NoError(t, err)
			require.True(t, want.Equal(tt.year.Start()), "start %s, want %s", tt.year.Start(), want)
			require.Equal(t, time.UTC, tt.year.Start().Location())
			require.Equal(t, (tt.year + 1).Start(), tt.year.End())
			require.Equal(t, tt.leap, tt.year.IsLeap())
			require.Equal(t, fmtFirst(tt.year), calendar.FormatJalali(tt.year.Start()))

			days := 365
			if tt.leap {
				days = 366
			}
			require.Equal(t, time.Duration(days)*24*time.Hour, tt.year.End().Sub(tt.year.Start()))
		})
	}
}

// fmtFirst is the expected FormatJalali output for 1 Farvardin of y.
func fmtFirst(y calendar.FiscalYear) string { return y.String() + "/01/01" }

func TestFiscalYearOf(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want calendar.FiscalYear
	}{
		{"nowruz 1403 at 00:00 Tehran", utc(t, "2024-03-19T20:30:00Z"), 1403},
		{"one second before nowruz 1403", utc(t, "2024-03-19T20:29:59Z"), 1402},
		{"last day of leap 1403", utc(t, "2025-03-20T12:00:00Z"), 1403},
		{"nowruz 1404", utc(t, "2025-03-20T20:30:00Z"), 1404},
		{"zone of the argument does not matter", time.Date(2024, 3, 20, 0, 0, 0, 0, time.FixedZone("X", -8*3600)), 1403},
		{"summer before DST abolition", utc(t, "2021-08-01T10:00:00Z"), 1400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := calendar.FiscalYearOf(tt.at)
			require.Equal(t, tt.want, got)
			require.True(t, got.Contains(tt.at))
			require.False(t, (got + 1).Contains(tt.at))
		})
	}
}

func TestFiscalYearValidate(t *testing.T) {
	tests := []struct {
		name string
		year calendar.FiscalYear
		ok   bool
	}{
		{"lower bound", 1380, true},
		{"upper bound", 1500, true},
		{"typical", 1403, true},
		{"below", 1379, false},
		{"above", 1501, false},
		{"gregorian by mistake", 2024, false},
		{"zero", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.year.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			requireInvalid(t, err, "fiscal_year", "out_of_range")
		})
	}
}

func TestParseFiscalYear(t *testing.T) {
	tests := []struct {
		in   string
		want calendar.FiscalYear
		code string // expected error code, empty when valid
	}{
		{"1403", 1403, ""},
		{"۱۴۰۳", 1403, ""},
		{"١٤٠٣", 1403, ""},
		{" 1404 ", 1404, ""},
		{"۱۴0۳", 1403, ""},
		{"", 0, "format"},
		{"14O3", 0, "format"},
		{"-1403", 0, "format"},
		{"14030", 0, "format"},
		{"2024", 0, "out_of_range"},
		{"1379", 0, "out_of_range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := calendar.ParseFiscalYear(tt.in)
			if tt.code != "" {
				requireInvalid(t, err, "fiscal_year", tt.code)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizeDigits(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"persian", "۰۱۲۳۴۵۶۷۸۹", "0123456789"},
		{"arabic-indic", "٠١٢٣٤٥٦٧٨٩", "0123456789"},
		{"mixed with text", "سال ۱۴۰۳ و ١٤٠٤ and 1405", "سال 1403 و 1404 and 1405"},
		{"ascii untouched", "2024-12-05", "2024-12-05"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, calendar.NormalizeDigits(tt.in))
		})
	}
	require.Equal(t, "۱۴۰۳/۰۹/۱۵", calendar.PersianDigits("1403/09/15"))
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // RFC 3339 UTC
	}{
		{"iso date is midnight tehran", "2024-12-05", "2024-12-04T20:30:00Z"},
		{"gregorian with slashes", "2024/12/05", "2024-12-04T20:30:00Z"},
		{"rfc3339 utc", "2024-12-05T14:30:00Z", "2024-12-05T14:30:00Z"},
		{"rfc3339 offset", "2024-12-05T18:00:00+03:30", "2024-12-05T14:30:00Z"},
		{"gregorian local time", "2024-12-05T18:00", "2024-12-05T14:30:00Z"},
		{"jalali slashes", "1403/09/15", "2024-12-04T20:30:00Z"},
		{"jalali dashes", "1403-09-15", "2024-12-04T20:30:00Z"},
		{"jalali single-digit parts", "1403/9/5", "2024-11-24T20:30:00Z"},
		{"jalali with time", "1403/09/15 14:30", "2024-12-05T11:00:00Z"},
		{"jalali with seconds", "1403/09/15 14:30:15", "2024-12-05T11:00:15Z"},
		{"persian digits", "۱۴۰۳/۰۹/۱۵", "2024-12-04T20:30:00Z"},
		{"arabic-indic digits with time", "١٤٠٣/٠٩/١٥ ١٤:٣٠", "2024-12-05T11:00:00Z"},
		{"persian digits in rfc3339", "۲۰۲۴-۱۲-۰۵T۱۴:۳۰:۰۰Z", "2024-12-05T14:30:00Z"},
		{"bidi marks and spaces", " \u200f1403/09/15\u200e ", "2024-12-04T20:30:00Z"},
		{"nowruz 1403", "1403/01/01", "2024-03-19T20:30:00Z"},
		{"leap day of 1403", "1403/12/30", "2025-03-19T20:30:00Z"},
		{"leap day of 1399", "1399/12/30", "2021-03-19T20:30:00Z"},
		{"last day of 1404", "1404/12/29", "2026-03-19T20:30:00Z"},
		{"31 shahrivar", "1402/06/31", "2023-09-21T20:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := calendar.ParseDate(tt.in)
			require.NoError(t, err)
			require.Equal(t, utc(t, tt.want), got)
			require.Equal(t, time.UTC, got.Location())
		})
	}
}

func TestParseDateErrors(t *testing.T) {
	tests := []struct {
		name, in, code string
	}{
		{"empty", "  ", "required"},
		{"garbage", "yesterday", "format"},
		{"mixed separators", "1403/09-15", "format"},
		{"two-digit year", "03/09/15", "format"},
		{"month 13", "1403/13/01", "month"},
		{"month 0", "1403/00/10", "month"},
		{"esfand 30 in non-leap 1404", "1404/12/30", "day"},
		{"esfand 30 in non-leap 1402", "1402/12/30", "day"},
		{"mehr 31", "1403/07/31", "day"},
		{"day 0", "1403/01/00", "day"},
		{"gregorian feb 30", "2024-02-30", "day"},
		{"gregorian month 13", "2024-13-01", "day"},
		{"hour 24", "1403/09/15 24:00", "time"},
		{"minute 60", "1403/09/15 10:60", "time"},
		{"jalali year too small", "0999/01/01", "year"},
		{"rfc3339 with solar year", "1403-09-15T10:00:00Z", "calendar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := calendar.ParseDate(tt.in)
			requireInvalid(t, err, "date", tt.code)
		})
	}
}

func TestJalaliDate(t *testing.T) {
	got, err := calendar.JalaliDate(1403, 9, 15)
	require.NoError(t, err)
	require.Equal(t, utc(t, "2024-12-04T20:30:00Z"), got)

	_, err = calendar.JalaliDate(1404, 12, 30)
	requireInvalid(t, err, "date", "day")
}

func TestDaysInMonth(t *testing.T) {
	tests := []struct {
		year, month, want int
	}{
		{1403, 1, 31}, {1403, 6, 31}, {1403, 7, 30}, {1403, 11, 30},
		{1403, 12, 30}, {1404, 12, 29}, {1404, 0, 0}, {1404, 13, 0},
	}
	for _, tt := range tests {
		t.Run(time.Month(tt.month).String(), func(t *testing.T) {
			require.Equal(t, tt.want, calendar.DaysInMonth(tt.year, tt.month))
		})
	}
}

func TestFormatJalali(t *testing.T) {
	tests := []struct {
		name, at, date, dateTime string
	}{
		{"evening utc is next day in tehran", "2024-12-04T20:30:00Z", "1403/09/15", "1403/09/15 00:00"},
		{"afternoon", "2024-12-05T11:00:00Z", "1403/09/15", "1403/09/15 14:30"},
		{"leap day", "2025-03-20T08:00:00Z", "1403/12/30", "1403/12/30 11:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := utc(t, tt.at)
			require.Equal(t, tt.date, calendar.FormatJalali(at))
			require.Equal(t, tt.dateTime, calendar.FormatJalaliTime(at))
			back, err := calendar.ParseDate(calendar.FormatJalaliTime(at))
			require.NoError(t, err)
			require.Equal(t, at.Truncate(time.Minute), back)
		})
	}
}

func TestRoundTripEveryDay(t *testing.T) {
	// Every day of the supported fiscal range formats and parses back to
	// itself, which catches off-by-one errors at month and year ends.
	for y := calendar.MinFiscalYear; y <= calendar.MaxFiscalYear; y++ {
		for day := y.Start(); day.Before(y.End()); day = day.Add(24 * time.Hour) {
			s := calendar.FormatJalali(day)
			back, err := calendar.ParseDate(s)
			require.NoError(t, err, s)
			require.Equal(t, day, back, s)
			require.Equal(t, y, calendar.FiscalYearOf(day), s)
		}
	}
}
