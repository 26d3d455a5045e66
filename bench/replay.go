package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/payesh/payesh/replay"
)

const replayKey = "replay"

// replayScenario: an auditor's recompute, replay.Run of every read model
// from the log alone to its head (what payesh replay does), over a seeded
// history of Sizes.ReplayFacilities (about 10M events at full size; the
// read models need the real domain events, which the synthetic log
// Verify walks only imitates), against a raw paged read of the same rows.
// See notes/replay.md.
func replayScenario(b backend) Scenario {
	return Scenario{
		Name:    "replay-" + b.short,
		Section: sectionReplay,
		Backend: b.name,
		Payesh: Side{Label: "Payesh replay", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return replayPayesh(ctx, env, b)
		}},
		Baseline: Side{Label: "raw paged read", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return replayBaseline(ctx, env, b)
		}},
		Rows: func(s Sizes) []Row {
			return []Row{{Key: replayKey, Label: fmt.Sprintf("seeded history of %s facilities, to its head, every read model", Count(s.ReplayFacilities))}}
		},
	}
}

func replayPayesh(ctx context.Context, env *Env, b backend) ([]Point, error) {
	if len(env.Projectors) == 0 {
		return nil, fmt.Errorf("bench: replay needs the read models' projectors (Env.Projectors)")
	}
	seeded := !env.seededLogComplete(b, replayLabel, []int{env.Sizes.ReplayFacilities})
	start := time.Now()
	lg, err := env.openSeededLog(ctx, b, replayLabel, []int{env.Sizes.ReplayFacilities})
	if err != nil {
		return nil, err
	}
	defer lg.close()
	var note string
	if seeded {
		note = fmt.Sprintf("log seeded here in %s", roundDuration(time.Since(start)))
	}
	st := lg.st
	var (
		heapPeak uint64
		lastLog  = time.Now()
		mu       sync.Mutex
	)
	// Progress is called as the replay advances: a line every 15 s, and
	// a sample of the Go heap.
	progress := func(pos, end uint64) {
		mu.Lock()
		defer mu.Unlock()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heapPeak = max(heapPeak, ms.HeapAlloc)
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			env.logf("  replayed %d of %d events", pos, end)
		}
	}
	m := startPoint()
	snap, err := replay.Run(ctx, replay.Config{Log: st, Projectors: env.Projectors, TempDir: env.Work, Progress: progress})
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	p := m.point(replayKey, int64(snap.Position))
	p.Note = joinNotes(fmt.Sprintf("%d read models recomputed into a fresh SQLite database; Go heap peak %s (sampled)",
		len(env.Projectors), mib(heapPeak)), note)
	env.logf("Payesh replay: %d events, %s", snap.Position, Rate(p.Rate()))
	return []Point{p}, nil
}

// replayBaseline reads the replay log raw, then drops it (it runs last).
func replayBaseline(ctx context.Context, env *Env, b backend) ([]Point, error) {
	lg, err := env.openSeededLog(ctx, b, replayLabel, []int{env.Sizes.ReplayFacilities})
	if err != nil {
		return nil, err
	}
	defer lg.dropUnlessKept()
	raw, err := openRawReader(ctx, env, b, lg.schema, lg.path)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	p, err := raw.measure(ctx, env, replayKey, math.MaxInt64)
	p.Note = fmt.Sprintf("pages of %s by position", Count(readPage))
	return []Point{p}, err
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", math.Round(float64(b)/(1<<20))) }
