// Package domaintest holds test helpers shared by the domain packages.
package domaintest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
)

// GoldenEvents checks every event type against testdata/events/<type>.json:
// the sample's encoding (indented for readable diffs, field order included)
// must equal the file, and decoding the file through a registry of types must
// give the sample back. Every registered type needs exactly one sample, so a
// new event type cannot slip in without a golden file. With update set the
// files are rewritten; review the diff — a changed payload for an existing
// type name means the schema needs a new version instead.
func GoldenEvents(t *testing.T, types []domain.EventType, samples []domain.Event, update bool) {
	t.Helper()
	reg, err := domain.NewRegistry(types)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, s := range samples {
		seen[s.EventType()] = true
	}
	for _, name := range reg.Names() {
		require.True(t, seen[name], "event type %s has no golden sample", name)
	}
	require.Len(t, samples, len(reg.Names()), "one sample per event type")

	for _, sample := range samples {
		t.Run(sample.EventType(), func(t *testing.T) {
			raw, err := domain.Encode(sample)
			require.NoError(t, err)
			var pretty bytes.Buffer
			require.NoError(t, json.Indent(&pretty, raw, "", "  "))
			pretty.WriteByte('\n')

			path := filepath.Join("testdata", "events", sample.EventType()+".json")
			if update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, pretty.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create %s", path)
			require.Equal(t, string(want), pretty.String(), "schema changed: add a new version of the type, or run go test -update if this is intended")

			decoded, err := reg.Decode(sample.EventType(), want)
			require.NoError(t, err)
			require.Equal(t, sample, decoded, "the golden file decodes back to the sample")
		})
	}
}
