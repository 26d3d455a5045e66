package prefixset

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCommon(t *testing.T) {
	var c Common
	require.False(t, c.Has([]string{"a"}))
	c.Add([]string{"a", "b"})
	require.True(t, c.Has([]string{"a", "b"}))
	require.False(t, c.Has([]string{"ab"}), "the set, not the concatenation")
	require.False(t, c.Has([]string{"a"}))

	for i := range maxSets {
		c.Add([]string{fmt.Sprint(i)})
	}
	require.LessOrEqual(t, len(c.sets), maxSets, "bounded")
}
