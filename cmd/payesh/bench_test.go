package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/bench"
	"github.com/payesh/payesh/internal/pgtest"
)

// childEnv makes the test binary behave as payesh: payesh bench re-executes
// itself (os.Executable) for each side of each benchmark, which under go
// test is this binary.
const childEnv = "PAYESH_TEST_RUN_AS_PAYESH"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestBenchQuick runs every benchmark end to end at smoke-test sizes,
// against SQLite and the test PostgreSQL, each side in its own process, and
// checks the report.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark against PostgreSQL")
	}
	pgtest.Connect(t) // skips (or fails in CI) when PostgreSQL is unreachable
	t.Setenv(childEnv, "1")
	// Under -race each child would otherwise sleep a second before exiting.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--quick", "--pg", pgtest.URL(), "--out", out}, &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())

	md, err := os.ReadFile(out)
	require.NoError(t, err)
	report := string(md)
	for _, want := range []string{
		"# Benchmarks", "payesh bench --quick", "## Targets",
		"## Command appends", "## Bulk import", "## Subscription delivery", "## Verify", "## Peak memory",
		"### SQLite", "### PostgreSQL", "raw INSERT", "raw COPY", "watermill-sql v3.1.0", "raw paged read",
		"### Where the time goes", // the kept analysis
	} {
		require.Contains(t, report, want)
	}
	require.NotContains(t, report, "## Failures")
	require.NotContains(t, report, "failed")
	// Every side ran in its own process and reported its peak memory.
	require.NotContains(t, strings.Split(report, "## Peak memory")[1], "| — |")
	// The report can be rewritten from the measurements it holds.
	require.Equal(t, 0, run(context.Background(), []string{"bench", "--rerender", "--out", out}, &stdout, &stderr), stderr.String())
	again, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, report, string(again))
	// Tables went to stdout as the benchmarks finished.
	require.Contains(t, stdout.String(), "Command appends — PostgreSQL")

	// Nothing of the run is left in the database.
	var runID string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "payesh bench: run "); ok {
			runID, _, _ = strings.Cut(rest, ",")
		}
	}
	require.NotEmpty(t, runID)
	left, err := bench.RunSchemas(context.Background(), pgtest.URL(), runID)
	require.NoError(t, err)
	require.Empty(t, left)
}

func TestBenchUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"bench", "--list"}, &out, &errOut))
	for _, s := range bench.Scenarios() {
		require.Contains(t, out.String(), s.Name)
	}
	require.Equal(t, 2, run(context.Background(), []string{"bench", "--scenario", "nope"}, &out, &errOut))
	require.Contains(t, errOut.String(), `no scenario "nope"`)
	require.Equal(t, 2, run(context.Background(), []string{"bench", "--side", "payesh", "--scenario", "append-pg"}, &out, &errOut))
	require.Contains(t, errOut.String(), "--side needs --work and --run-id")
}
