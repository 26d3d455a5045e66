package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBarReportsRateAndETA(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b := New(&out, "verify", "events", 1000)
	b.now = func() time.Time { return clock }
	b.start = clock

	clock = clock.Add(10 * time.Second)
	b.Set(250)
	require.Equal(t, "verify: 250/1000 events (25.0%), 25/s, ETA 30s\n", out.String())

	// Within the redraw interval nothing is written.
	clock = clock.Add(time.Second)
	b.Set(300)
	require.Equal(t, 1, strings.Count(out.String(), "\n"))

	clock = clock.Add(9 * time.Second)
	b.Set(1000)
	b.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Equal(t, "verify: 1000/1000 events (100.0%), 50/s, done in 20s", lines[len(lines)-1])
}

func TestBarWithoutTotal(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "export", "events", 0)
	b.Add(20000)
	b.Finish()
	require.Contains(t, out.String(), "export: 20000 events, ")
}
