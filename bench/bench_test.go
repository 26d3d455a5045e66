package bench

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

func TestPayloadIsTheStoreBenchmarksPayload(t *testing.T) {
	require.Equal(t, eventstoretest.Payload(), payload)
}

func TestScenarioNamesAreUniqueAndFound(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Scenarios() {
		require.False(t, seen[s.Name], s.Name)
		seen[s.Name] = true
		require.NotNil(t, s.Payesh.Run, s.Name)
		require.NotNil(t, s.Baseline.Run, s.Name)
		require.Contains(t, sectionNotes, s.Section, "every section has its prose")
		for _, sizes := range []Sizes{FullSizes(), QuickSizes()} {
			rows := s.Rows(sizes)
			require.NotEmpty(t, rows, s.Name)
			for _, r := range rows {
				if r.Target.FlatWith != "" {
					require.True(t, slices.ContainsFunc(rows, func(o Row) bool { return o.Key == r.Target.FlatWith }), "%s: %s", s.Name, r.Key)
				}
			}
		}
		found, err := Find(s.Name)
		require.NoError(t, err)
		require.Len(t, found, 1)
	}
	_, err := Find("append-pg,nope")
	require.ErrorContains(t, err, `no scenario "nope"`)
	all, err := Find("all")
	require.NoError(t, err)
	require.Len(t, all, len(Scenarios()))
}

func TestSizesFitTheirChunks(t *testing.T) {
	for _, s := range []Sizes{FullSizes(), QuickSizes()} {
		for _, n := range s.LogSizes {
			require.Zero(t, n%s.Chunk, "log sizes are whole chunks")
		}
		require.True(t, slices.IsSorted(s.LogSizes))
		require.Equal(t, s.Window, s.LogSizes[0], "the first log size is the window: delivery of all of it")
		require.NotEmpty(t, s.RebuildFacilities)
		require.True(t, slices.IsSorted(s.RebuildFacilities))
		for _, f := range s.RebuildFacilities {
			require.Zero(t, f%s.BulkPiece, "rebuild sizes are whole pieces of the seeded history")
		}
		require.Positive(t, s.LagAppends)
	}
	require.GreaterOrEqual(t, FullSizes().RebuildFacilities[len(FullSizes().RebuildFacilities)-1], 1_000_000)
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{100_000: "100k", 1_000_000: "1M", 10_000_000: "10M", 2500: "2.5k", 137_000: "137k", 999: "999", 1_500_000: "1.5M"} {
		require.Equal(t, want, Count(n))
	}
	require.Equal(t, "1,234,568/s", Rate(1234567.6))
	require.Equal(t, "—", Rate(0))
}

func TestHistoryIsDeterministicAndChunksAreExact(t *testing.T) {
	h := newHistory(7, 2000)
	a, b := h.chunk(3), h.chunk(3)
	require.Equal(t, a, b)
	require.Equal(t, 2000, countEvents(a))
	ids := map[string]bool{}
	for i := range 4 {
		appends := h.chunk(i)
		require.Equal(t, 2000, countEvents(appends))
		for _, ap := range appends {
			require.NoError(t, eventstore.Validate(ap.Stream, ap.Events, time.Now()))
			for _, e := range ap.Events {
				require.False(t, ids[e.ID], "IDs are unique across chunks")
				ids[e.ID] = true
			}
		}
	}
}

func TestChainMatchesBuild(t *testing.T) {
	h := newHistory(1, 500)
	versions := map[string]uint64{}
	rows, head := chain(h.chunk(0), eventstore.Head{}, versions, time.Now())
	require.Len(t, rows, 500)
	require.Equal(t, uint64(500), head.Position)
	var prev eventstore.Hash
	for i := range rows {
		require.Equal(t, uint64(i+1), rows[i].Position)
		require.Equal(t, prev, rows[i].PrevHash)
		h, _ := eventstore.Chain(prev, &rows[i], nil)
		require.Equal(t, h, rows[i].Hash)
		prev = h
	}
}

func TestLinesJudgeTargets(t *testing.T) {
	s := subscribeScenario()
	sizes := FullSizes()
	res := Result{
		Scenario: s,
		Payesh: SideResult{Label: "P", Points: []Point{
			{Key: newestKey(100_000), Events: 100_000, Seconds: 0.5},        // 200k/s
			{Key: newestKey(1_000_000), Events: 100_000, Seconds: 0.5},      // 200k/s
			{Key: newestKey(10_000_000), Events: 100_000, Seconds: 1},       // 100k/s: not flat
			{Key: allKey(10_000_000), Events: 10_000_000, Seconds: 55},      // 182k/s: flat
			{Key: allKey(1_000_000), Events: 1_000_000, Seconds: 5},         // 200k/s
			{Key: "stray", Events: 1, Seconds: 1},                           // ignored
			{Key: newestKey(123), Events: 1, Seconds: 1, Note: "not a row"}, // ignored
		}},
		Baseline: SideResult{Label: "B", Points: []Point{
			{Key: newestKey(100_000), Events: 100_000, Seconds: 20}, // 5k/s: 40×
			{Key: allKey(1_000_000), Events: 20_000, Seconds: 180, Capped: true},
		}},
	}
	lines := res.Lines(sizes)
	byKey := map[string]Line{}
	for _, l := range lines {
		byKey[l.Row.Key] = l
	}
	first := byKey[newestKey(100_000)]
	require.InDelta(t, 40, first.Ratio, 0.001)
	require.True(t, *first.Met)
	require.False(t, *byKey[newestKey(10_000_000)].Met)
	require.True(t, *byKey[allKey(10_000_000)].Met)
	require.Nil(t, byKey[newestKey(1_000_000)].Met, "no target")

	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, Report{Command: "payesh bench --x", Sizes: sizes, Results: []Result{res}, PG: "postgres://u:secret@h/db"}))
	md := buf.String()
	for _, want := range []string{
		"# Benchmarks", "`payesh bench --x`", "## Targets", "## Subscription delivery", "### PostgreSQL",
		"| 100k in the log: all 100k | 200,000/s | 5,000/s | 40× | ≥ 20× | yes |",
		"111/s (capped)", "**no**", "## Peak memory",
	} {
		require.Contains(t, md, want)
	}
	require.NotContains(t, md, "secret")
	tables, _, _ := strings.Cut(md, dataMarker)
	require.NotContains(t, tables, "stray", "points without a row are not shown")

	// The report carries its measurements and renders again identically.
	back, err := ParseReport(buf.Bytes())
	require.NoError(t, err)
	var again bytes.Buffer
	require.NoError(t, WriteMarkdown(&again, back))
	require.Equal(t, md, again.String())
	_, err = ParseReport([]byte("# Benchmarks\n"))
	require.Error(t, err)
}

func TestLinesJudgeMemoryAndShowLatency(t *testing.T) {
	s := rebuildScenario(backendPostgres)
	sizes := FullSizes()
	small, large := rebuildKey(sizes.RebuildFacilities[0]), rebuildKey(sizes.RebuildFacilities[1])
	res := Result{
		Scenario: s,
		Payesh: SideResult{Label: "Payesh rebuild", Points: []Point{
			{Key: small, Events: 1_800_000, Seconds: 12, PeakRSS: 200 * 1024}, // 150k/s, 200 MiB: met
			{Key: large, Events: 7_300_000, Seconds: 50, PeakRSS: 600 * 1024}, // 146k/s but 600 MiB: not met
			{Key: lagKey, Events: 200, Seconds: 1, Latency: &Latency{Median: 4.25, P99: 31, Max: 40}},
		}},
		Baseline: SideResult{Label: "raw read", Points: []Point{
			{Key: small, Events: 1_800_000, Seconds: 6},
			{Key: lagKey, Events: 200, Seconds: 0.2, Latency: &Latency{Median: 0.8, P99: 2, Max: 3}},
		}},
	}
	byKey := map[string]Line{}
	for _, l := range res.Lines(sizes) {
		byKey[l.Row.Key] = l
	}
	require.True(t, *byKey[small].Met)
	require.InDelta(t, 0.5, byKey[small].Ratio, 0.001)
	require.False(t, *byKey[large].Met, "fast enough, but over the memory target")
	require.Equal(t, "≥ 100,000/s, RSS < 512 MiB", byKey[large].Target)
	require.Nil(t, byKey[lagKey].Met, "no target for the lag")
	require.Zero(t, byKey[lagKey].Ratio, "latencies are not rates")

	// A slow rebuild within memory misses the target too.
	res.Payesh.Points[0].Seconds = 30
	for _, l := range res.Lines(sizes) {
		if l.Row.Key == small {
			require.False(t, *l.Met)
		}
	}

	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, Report{Command: "payesh bench", Sizes: sizes, Results: []Result{res}}))
	md := buf.String()
	for _, want := range []string{
		"## Projection rebuild", "4.2 ms median, 31 ms p99", "0.8 ms median, 2.0 ms p99",
		"| seeded history of 1M facilities: every read model | 146,000/s | — |",
		"146,000/s, 600 MiB RSS", "600 / —",
	} {
		require.Contains(t, md, want)
	}
}

// A later run of some benchmarks replaces their results in a report and
// is recorded in it; the others stay; the order is the harness's.
func TestMergeReplacesTheRunBenchmarksOnly(t *testing.T) {
	all := Scenarios()
	first, second, third := all[0], all[1], all[2]
	side := func(label string) SideResult { return SideResult{Label: label} }
	t0 := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	rep := Report{Command: "payesh bench", Started: t0, Duration: time.Hour, Sizes: FullSizes(), Results: []Result{
		{Scenario: first, Payesh: side("old-1")}, {Scenario: second, Payesh: side("old-2")},
	}}
	rep.Sizes = Sizes{} // a report from before some benchmarks existed
	rep.Merge(Report{Command: "payesh bench --scenario x --merge", Started: t0.Add(3 * time.Hour), Duration: time.Minute, Sizes: FullSizes(),
		Results: []Result{{Scenario: third, Payesh: side("new-3")}, {Scenario: first, Payesh: side("new-1")}}})
	require.Len(t, rep.Results, 3)
	require.Equal(t, []string{"new-1", "old-2", "new-3"}, []string{rep.Results[0].Payesh.Label, rep.Results[1].Payesh.Label, rep.Results[2].Payesh.Label})
	require.Equal(t, FullSizes(), rep.Sizes, "the merged run's sizes")
	require.Equal(t, []MergedRun{{Command: "payesh bench --scenario x --merge", Started: t0.Add(3 * time.Hour), Duration: time.Minute,
		Scenarios: []string{third.Name, first.Name}}}, rep.Merged)

	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, rep))
	require.Contains(t, buf.String(), "| then | `payesh bench --scenario x --merge`, 2026-11-22 01:00 UTC, took 1m0s: its results replace the first run's for "+third.Name+", "+first.Name+" |")
	back, err := ParseReport(buf.Bytes())
	require.NoError(t, err)
	require.Equal(t, rep.Merged, back.Merged)
}
