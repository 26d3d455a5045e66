package nationalid_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/nationalid"
)

// requireInvalid checks that err is a national_id validation error with code.
func requireInvalid(t *testing.T, err error, code string) {
	t.Helper()
	require.ErrorIs(t, err, domain.ErrInvalid)
	var ve *domain.ValidationError
	require.True(t, errors.As(err, &ve))
	require.Len(t, ve.Fields, 1)
	require.Equal(t, "national_id", ve.Fields[0].Field)
	require.Equal(t, code, ve.Fields[0].Code)
	require.NotEmpty(t, ve.Fields[0].MessageFa)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // normalised ID; empty when an error is expected
		code string // expected error code
	}{
		{"valid", "0499370899", "0499370899", ""},
		{"valid leading zeros", "0013542419", "0013542419", ""},
		{"valid check digit from r below 2", "1000000001", "1000000001", ""},
		{"valid 4608968882", "4608968882", "4608968882", ""},
		{"persian digits", "۰۴۹۹۳۷۰۸۹۹", "0499370899", ""},
		{"arabic-indic digits", "٠٤٩٩٣٧٠٨٩٩", "0499370899", ""},
		{"printed form with hyphens", "049-937089-9", "0499370899", ""},
		{"surrounding space", "  0499370899\n", "0499370899", ""},
		{"wrong check digit", "0499370898", "", "checksum"},
		{"transposed digits", "4099370899", "", "checksum"},
		{"all zeros", "0000000000", "", "repeated"},
		{"all ones", "1111111111", "", "repeated"},
		{"all nines persian", "۹۹۹۹۹۹۹۹۹۹", "", "repeated"},
		{"nine digits", "499370899", "", "format"},
		{"eleven digits", "04993708990", "", "format"},
		{"letters", "04993708A9", "", "format"},
		{"empty", "", "", "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nationalid.Validate(tt.in)
			if tt.code != "" {
				requireInvalid(t, err, tt.code)
				require.Empty(t, got)
				if tt.in != "" {
					require.NotContains(t, err.Error(), tt.in, "messages must not echo personal data")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestAllRepeatedDigitsRefused(t *testing.T) {
	for d := '0'; d <= '9'; d++ {
		id := string([]rune{d, d, d, d, d, d, d, d, d, d})
		t.Run(id, func(t *testing.T) {
			_, err := nationalid.Validate(id)
			requireInvalid(t, err, "repeated")
		})
	}
}

func TestCheckDigit(t *testing.T) {
	tests := []struct {
		body string
		want byte
	}{
		{"049937089", 9},
		{"100000000", 1}, // sum 10, r 10 → 1
		{"000000001", 9}, // sum 2, r 2 → 9
		{"000000005", 1}, // sum 10, r 10 → 1
		{"001354241", 9},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			require.Equal(t, tt.want, nationalid.CheckDigit(tt.body))
		})
	}
	require.Panics(t, func() { nationalid.CheckDigit("12") })
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name string
		seq  uint64
		want string
	}{
		{"zero skips the all-zero body", 0, "0000000019"},
		{"one", 1, "0000000027"},
		{"skips 111111111", 111111110, "1111111121"},
		{"last before wrap", nationalid.GenerateLimit - 1, "9999999980"},
		{"wraps", nationalid.GenerateLimit, "0000000019"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nationalid.Generate(tt.seq)
			require.Equal(t, tt.want, got)
			v, err := nationalid.Validate(got)
			require.NoError(t, err)
			require.Equal(t, got, v)
		})
	}

	t.Run("distinct", func(t *testing.T) {
		seen := map[string]uint64{}
		for seq := uint64(0); seq < 20_000; seq++ {
			id := nationalid.Generate(seq)
			prev, dup := seen[id]
			require.False(t, dup, "seq %d and %d both give %s", prev, seq, id)
			seen[id] = seq
		}
	})
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"0499370899", "۰۴۹۹۳۷۰۸۹۹", "1111111111", "", "abc", "049-937089-9", "\u200f12"} {
		f.Add(s, uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, s string, seq uint64) {
		if got, err := nationalid.Validate(s); err == nil {
			require.Len(t, got, nationalid.Length)
			again, err := nationalid.Validate(got)
			require.NoError(t, err, "a normalised ID must validate again")
			require.Equal(t, got, again)
		} else {
			require.ErrorIs(t, err, domain.ErrInvalid)
		}
		id := nationalid.Generate(seq)
		got, err := nationalid.Validate(id)
		require.NoError(t, err, "Generate(%d) = %s", seq, id)
		require.Equal(t, id, got)
	})
}
