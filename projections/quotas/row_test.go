package quotas

import (
	"database/sql"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/quota"
)

// bigPPM is ppm computed with arbitrary precision: the reference.
func bigPPM(num, den int64) sql.NullInt64 {
	if den <= 0 {
		return sql.NullInt64{}
	}
	q := new(big.Int).Quo(new(big.Int).Mul(big.NewInt(num), big.NewInt(1_000_000)), big.NewInt(den))
	switch {
	case q.Cmp(big.NewInt(math.MaxInt64)) > 0:
		return sql.NullInt64{Int64: math.MaxInt64, Valid: true}
	case q.Cmp(big.NewInt(-math.MaxInt64)) < 0:
		return sql.NullInt64{Int64: -math.MaxInt64, Valid: true}
	}
	return sql.NullInt64{Int64: q.Int64(), Valid: true}
}

func TestPPM(t *testing.T) {
	for _, c := range []struct{ num, den int64 }{
		{0, 0}, {5, 0}, {5, -1}, {0, 7}, {1, 3}, {2, 3}, {-1, 3}, {3, 3}, {7, 2},
		{9_000_000_000_000_000_000, 9_000_000_000_000_000_000}, // products far beyond int64
		{math.MaxInt64, math.MaxInt64 - 1}, {math.MaxInt64, 1}, {math.MinInt64, 1}, {math.MinInt64, math.MaxInt64},
		{10_000_000_000_000_000, 30_000_000_000_000_000},
	} {
		require.Equal(t, bigPPM(c.num, c.den), ppm(c.num, c.den), "%d ÷ %d", c.num, c.den)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		num, den := rnd.Int64()>>rnd.IntN(63), rnd.Int64()>>rnd.IntN(63)
		if rnd.IntN(2) == 0 {
			num = -num
		}
		require.Equal(t, bigPPM(num, den), ppm(num, den), "%d ÷ %d", num, den)
	}
}

func TestAccountIDRoundTrips(t *testing.T) {
	for _, k := range []quota.AccountKey{
		{Agency: "welfare", Province: "IR-23"},
		{Agency: "welfare", Province: "IR-23", County: "IR-23-pardis"},
		{Agency: "a:b c", Province: "x"},
	} {
		id := accountID(1403, "home-business", k)
		fy, program, got, err := parseAccountID(id)
		require.NoError(t, err)
		require.Equal(t, int64(1403), fy)
		require.Equal(t, "home-business", program)
		require.Equal(t, k, got)
	}
	for _, bad := range []string{"", "1403", "1403/home-business", "x/p/a/b", "1403/p/a", "1403/p/a/b/c/d", "1403/p/a/b/"} {
		_, _, _, err := parseAccountID(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestInspectionsColumnRoundTrips(t *testing.T) {
	for _, ins := range [][]inspection{
		nil,
		{{eventID: "0192f1c2-aaaa", confirmed: true, verified: 3}},
		{{eventID: "e1", verified: 0}, {eventID: "e2", confirmed: true, verified: 12}, {eventID: "e3", verified: 4}},
	} {
		got, err := decodeInspections(encodeInspections(ins))
		require.NoError(t, err)
		require.Equal(t, ins, got)
	}
	require.Equal(t, int64(12), latestVerified([]inspection{{eventID: "e1", confirmed: true, verified: 5}, {eventID: "e2", confirmed: true, verified: 12}, {eventID: "e3", verified: 4}}))
	require.Zero(t, latestVerified([]inspection{{eventID: "e1", verified: 4}}))
	for _, bad := range []string{"e1", "e1:2:3", "e1:1:x", "e1:1:3;", ";"} {
		_, err := decodeInspections(bad)
		require.Error(t, err, "%q", bad)
	}
}
