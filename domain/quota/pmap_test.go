package quota

import (
	"fmt"
	"maps"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPmap(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{name: "few keys", n: 3},
		{name: "more keys than shards", n: 3 * shardCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m pmap[int]
			want := map[string]int{}
			var versions []pmap[int]
			var wants []map[string]int
			for i := range tc.n {
				k := fmt.Sprint("k", i)
				m = m.with(k, i)
				want[k] = i
				versions = append(versions, m)
				wants = append(wants, maps.Clone(want))
			}
			m = m.with("k0", -1) // overwrite keeps the count
			require.Equal(t, tc.n, m.len())
			for i := range tc.n {
				m = m.without(fmt.Sprint("k", i))
			}
			require.Equal(t, pmap[int]{}, m, "emptied map equals the zero map")
			require.Equal(t, m, m.without("absent"))
			for i, v := range versions {
				got := maps.Collect(v.all())
				require.Equal(t, wants[i], got, "version %d changed", i)
				require.Equal(t, len(wants[i]), v.len())
			}
		})
	}
}
