// Package bench measures Payesh beside the baselines it is judged against.
//
// Every benchmark is a Scenario with two Sides: Payesh and its baseline (raw
// INSERTs, a raw COPY, watermill-sql's PostgreSQL Pub/Sub, a raw read). The
// development machines are shared and noisy, so both sides run in the same
// invocation, back to back, on the same data, and what is compared is their
// ratio. Each side runs in its own child process (see Runner) so that its
// peak memory is its own.
//
// Scenarios are listed by Scenarios, in the order they run; a later issue
// adds its measures there (and its prose to notes/). Nothing here keeps
// package-level mutable state: everything a run needs is in its Env.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/payesh/payesh/projections"
)

// Scenario is one benchmark: what Payesh does, what it is compared with, and
// the rows of the table that compares them.
type Scenario struct {
	// Name selects the scenario on the command line (payesh bench
	// --scenario NAME); it also names its PostgreSQL schemas.
	Name string
	// Section groups scenarios under one heading of the report, e.g.
	// "Command appends"; Backend is "SQLite" or "PostgreSQL".
	Section, Backend string
	// Payesh and Baseline are measured one after the other, each in its
	// own process.
	Payesh, Baseline Side
	// Rows lists the table's rows, in order, for the given sizes: each
	// row joins the two sides' points with the same key and may carry a
	// target.
	Rows func(Sizes) []Row
}

// Side is one half of a scenario.
type Side struct {
	// Label heads the side's column, e.g. "raw INSERT".
	Label string
	// Run measures and returns one point per row key it covers. Progress
	// goes to env.Log.
	Run func(ctx context.Context, env *Env) ([]Point, error)
}

// Sides of a scenario, as named on the command line.
const (
	SidePayesh   = "payesh"
	SideBaseline = "baseline"
)

// Side returns the named side.
func (s Scenario) Side(name string) (Side, error) {
	switch name {
	case SidePayesh:
		return s.Payesh, nil
	case SideBaseline:
		return s.Baseline, nil
	}
	return Side{}, fmt.Errorf("bench: scenario %s has no side %q (want %s or %s)", s.Name, name, SidePayesh, SideBaseline)
}

// Row is one line of a scenario's table.
type Row struct {
	Key    string // the points' key, e.g. "writers=32"
	Label  string // what the reader sees, e.g. "32 writers"
	Target Target // zero: no target for this row
}

// Point is one measurement by one side.
type Point struct {
	Key     string  `json:"key"`
	Events  int64   `json:"events"`  // events (or messages) handled
	Seconds float64 `json:"seconds"` // wall time they took
	// Capped is set when the measurement stopped at its time cap before
	// handling everything it was meant to: Events is what it managed.
	Capped bool `json:"capped,omitempty"`
	// PeakRSS is the process's peak resident set during this point, in
	// KiB (0 when the platform cannot tell).
	PeakRSS int64 `json:"peak_rss_kib,omitempty"`
	// Latency, when set, makes the point a measurement of latency (of
	// Events events) rather than of rate: the tables show it instead.
	Latency *Latency `json:"latency,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// Latency summarises the latencies of a point's events, in milliseconds.
type Latency struct {
	Median float64 `json:"median_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

// String renders the latency for the tables.
func (l Latency) String() string {
	return fmt.Sprintf("%s median, %s p99", millis(l.Median), millis(l.P99))
}

func millis(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// Rate is the point's events per second.
func (p Point) Rate() float64 {
	if p.Seconds <= 0 {
		return 0
	}
	return float64(p.Events) / p.Seconds
}

// Target is what a row must reach. Set at most one of Ratio, Rate and
// FlatWith; MaxRSS may be set beside any of them, and then both must be met.
type Target struct {
	// Ratio: Payesh's rate must be at least Ratio × the baseline's.
	Ratio float64
	// Rate: Payesh's rate must be at least Rate events/s.
	Rate float64
	// FlatWith names another row of the same table: Payesh's rate here
	// must be no more than Within (a fraction) below its rate there (the
	// issue's "10M within 20% of 100k": the rate must not fall as the log
	// grows; rising is fine).
	FlatWith string
	Within   float64
	// MaxRSS: Payesh's peak resident set during the point must stay below
	// this many KiB.
	MaxRSS int64
}

// IsZero reports whether there is no target.
func (t Target) IsZero() bool {
	return t.Ratio == 0 && t.Rate == 0 && t.FlatWith == "" && t.MaxRSS == 0
}

// String renders the target for the table.
func (t Target) String(flatLabel string) string {
	var parts []string
	switch {
	case t.Ratio > 0:
		parts = append(parts, fmt.Sprintf("≥ %.2g×", t.Ratio))
	case t.Rate > 0:
		parts = append(parts, "≥ "+Rate(t.Rate))
	case t.FlatWith != "":
		// "Flat" means not falling as the log grows: faster is fine.
		parts = append(parts, fmt.Sprintf("≥ %.2g× the rate at “%s”", 1-t.Within, flatLabel))
	}
	if t.MaxRSS > 0 {
		parts = append(parts, "RSS < "+MiB(t.MaxRSS))
	}
	return strings.Join(parts, ", ")
}

// Sizes are the amounts of work a run does.
type Sizes struct {
	Quick bool
	// Writers are the concurrency levels of command appends, and
	// Appends the appends made at each level by each side.
	Writers []int
	Appends int
	// BulkFacilities is the size of the seeded history imported (payesh
	// seed's generator: about 7.3 events per facility), BulkPiece
	// facilities at a time (one AppendMany call or one COPY).
	BulkFacilities, BulkPiece int
	// Chunk is the number of events of synthetic history appended at a
	// time when the shared logs are grown (one AppendMany call); log sizes
	// are multiples of it.
	Chunk int
	// LogSizes are the sizes of the PostgreSQL log at which subscription
	// delivery is measured, smallest first; Window is how many of the
	// newest events a fresh subscription delivers at each; CatchUp are
	// the log sizes at which a full catch-up from position 0 is also
	// measured.
	LogSizes []int
	Window   int
	CatchUp  []int
	// PeerSizes are the watermill-sql table sizes measured. PeerCap bounds
	// each of its full catch-ups of a table larger than Window (at its
	// measured rates they would take hours); consuming a window gets four
	// times as long, which it does not need.
	PeerSizes []int
	PeerCap   time.Duration
	// RebuildFacilities are the sizes of seeded history, in facilities,
	// at which every read model is rebuilt, smallest first, each a
	// multiple of BulkPiece: one history of the largest size is seeded
	// piece by piece and rebuilt as it reaches each size. LagAppends is
	// how many single-event appends live lag is timed over.
	RebuildFacilities []int
	LagAppends        int
	// ReplayFacilities is the size of the seeded history, in facilities,
	// every read model is replayed from (a multiple of BulkPiece; 1.4M
	// facilities is about 10M events).
	ReplayFacilities int
}

// FullSizes are the sizes the issue asks for.
func FullSizes() Sizes {
	return Sizes{
		Writers:        []int{1, 8, 32},
		Appends:        5000,
		BulkFacilities: 137_000,
		BulkPiece:      1000,
		Chunk:          10_000,
		LogSizes:       []int{100_000, 1_000_000, 10_000_000},
		Window:         100_000,
		CatchUp:        []int{1_000_000, 10_000_000},
		PeerSizes:      []int{100_000, 1_000_000},
		PeerCap:        2 * time.Minute,

		RebuildFacilities: []int{250_000, 1_000_000},
		LagAppends:        200,
		ReplayFacilities:  1_400_000,
	}
}

// QuickSizes are small enough for a smoke test.
func QuickSizes() Sizes {
	return Sizes{
		Quick:          true,
		Writers:        []int{1, 8, 32},
		Appends:        100,
		BulkFacilities: 120,
		BulkPiece:      40,
		Chunk:          1000,
		LogSizes:       []int{2000, 4000, 8000},
		Window:         2000,
		CatchUp:        []int{4000},
		PeerSizes:      []int{2000, 4000},
		PeerCap:        20 * time.Second,

		RebuildFacilities: []int{400, 1200},
		LagAppends:        40,
		ReplayFacilities:  800,
	}
}

// Env is what a side needs to run: sizes, where the databases are, where to
// report progress. One Env is shared by every process of a run (the parent
// passes it to its children on their command lines), so fixtures such as the
// 10M-event log are built once and found again by name.
type Env struct {
	Sizes Sizes
	// PG is the PostgreSQL server's URL (no schema parameter).
	PG string
	// Work is a directory private to the run: SQLite files live there.
	Work string
	// RunID makes the run's schema names unique; the parent drops every
	// schema named bench_*_<RunID> when the run ends.
	RunID string
	// Keep leaves the seeded logs in place when the run ends (payesh bench
	// --keep): a later run with the same Work and RunID reuses them.
	Keep bool
	// Log receives progress lines.
	Log io.Writer
	// Projectors are the read models the rebuild scenarios rebuild and
	// run. They cannot travel on a command line: every process of a run
	// is given the same list by its caller (payesh bench passes
	// cmd/internal/readmodels' list, the one payesh and payeshd run,
	// which this package cannot import).
	Projectors []projections.Projector
}

func (env *Env) logf(format string, args ...any) {
	if env.Log != nil {
		fmt.Fprintf(env.Log, "  "+format+"\n", args...)
	}
}

// Scenarios returns every benchmark, in the order a full run measures them.
// Later issues add theirs here. The order matters only for speed: verify-pg
// walks the log subscribe-pg grew, verify-sqlite the file bulk-sqlite
// imported (each builds its log itself when run alone). The rebuild
// scenarios seed their own logs; the query scenarios serve the rebuild log
// of their backend, seeding it again when it is gone.
func Scenarios() []Scenario {
	return []Scenario{
		appendScenario(backendSQLite),
		appendScenario(backendPostgres),
		bulkScenario(backendSQLite),
		bulkScenario(backendPostgres),
		subscribeScenario(),
		verifyScenario(backendPostgres),
		verifyScenario(backendSQLite),
		replayScenario(backendPostgres),
		replayScenario(backendSQLite),
		rebuildScenario(backendPostgres),
		rebuildScenario(backendSQLite),
		queryScenario(backendPostgres),
		queryScenario(backendSQLite),
	}
}

// Find returns the scenarios named (comma-separated names, or "all").
func Find(names string) ([]Scenario, error) {
	all := Scenarios()
	if names == "" || names == "all" {
		return all, nil
	}
	var out []Scenario
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		found := false
		for _, s := range all {
			if s.Name == n {
				out = append(out, s)
				found = true
				break
			}
		}
		if !found {
			var known []string
			for _, s := range all {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("bench: no scenario %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// Count renders an event count the way the tables do: 100k, 1M, 10M, 2.5k.
func Count(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return trimZero(float64(n)/1e6) + "M"
	case n >= 1000 && n%100 == 0:
		return trimZero(float64(n)/1e3) + "k"
	}
	return fmt.Sprint(n)
}

func trimZero(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

// Rate renders events per second with thousands separators.
func Rate(v float64) string {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return thousands(int64(math.Round(v))) + "/s"
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// MiB renders KiB as MiB.
func MiB(kib int64) string {
	if kib <= 0 {
		return "—"
	}
	return fmt.Sprintf("%s MiB", thousands((kib+512)/1024))
}
