package schema_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/schema"
)

func TestEveryTypeIsNamedAndVersioned(t *testing.T) {
	_, err := domain.NewRegistry(schema.Types()...)
	require.NoError(t, err, "no type name is registered twice")
	names := schema.Registry().Names()
	require.GreaterOrEqual(t, len(names), 25)
	pattern := regexp.MustCompile(`^(reference|applicant|facility|quota|checkpoint)\.[a-z_]+\.v[0-9]+$`)
	for _, n := range names {
		require.Regexp(t, pattern, n)
	}
}
