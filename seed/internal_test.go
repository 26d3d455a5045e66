package seed

import (
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/reference"
)

// Distinct facilities get distinct, valid national IDs: the multiplier is
// coprime with the number of IDs Generate makes.
func TestNationalIDsDistinct(t *testing.T) {
	gcd := new(big.Int).GCD(nil, nil, big.NewInt(idMultiplier), big.NewInt(nationalid.GenerateLimit))
	require.Equal(t, int64(1), gcd.Int64())
	seen := map[string]bool{}
	for i := range 20_000 {
		id := nationalid.Generate(nationalSeq(1403, i))
		_, err := nationalid.Validate(id)
		require.NoError(t, err, id)
		require.False(t, seen[id], id)
		seen[id] = true
	}
}

// The province table follows the reference data's order and codes.
func TestProvinceTable(t *testing.T) {
	provinces := reference.Provinces()
	require.Len(t, provinceTable, len(provinces))
	for i, p := range provinces {
		require.Equal(t, p.Code, provinceTable[i].code)
	}
	var total float64
	for _, p := range programTable() {
		total += p.weight
		_, ok := reference.DefaultCatalog().Program(p.id)
		require.True(t, ok, p.id)
		for _, a := range p.agencies {
			_, ok := reference.DefaultCatalog().Agency(a.v)
			require.True(t, ok, a.v)
		}
		for _, b := range p.banks {
			_, ok := reference.DefaultCatalog().Bank(b.v)
			require.True(t, ok, b.v)
		}
	}
	require.InDelta(t, 1, total, 1e-9)
}

// A quasi-random sequence takes a branch of probability p in p of its
// steps, to within a step or two, whatever the seed.
func TestQuasiProportions(t *testing.T) {
	for s := range uint64(20) {
		g := &Generator{cfg: Config{Seed: s}, weyl: map[string]float64{}}
		for _, p := range []float64{0.0033, 0.06, 0.5, 0.797} {
			hits := 0
			for range 1000 {
				if g.quasi("k", alphaBank) < p {
					hits++
				}
			}
			require.InDelta(t, 1000*p, float64(hits), 3, "seed %d p %v", s, p)
		}
	}
}
