package inspections_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/seed"
)

// BenchmarkRebuild measures a full blue/green rebuild of the inspections read
// model over a seeded national history (payesh seed) on both backends:
// events of the log replayed per second (the log's every event, as the
// Engine's figure counts them) and the peak heap.
// PAYESH_BENCH_FACILITIES sets the history's size (default 15,000
// facilities, about 110k events).
//
//	go test -run '^$' -bench BenchmarkRebuild -benchtime 3x ./projections/inspections/
func BenchmarkRebuild(b *testing.B) {
	n := 15_000
	if v := os.Getenv("PAYESH_BENCH_FACILITIES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	for _, backend := range projectionstest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			env := backend.Open(b)
			_, err := seed.Run(ctx, env.Store, env.Vault, seed.Config{
				Facilities: n, Seed: 1, Now: time.Now(), PseudonymKey: []byte(strings.Repeat("k", 32)),
			}, seed.Options{})
			require.NoError(b, err)
			head := env.Head(b)
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{inspections.New()}})
			require.NoError(b, err)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for b.Loop() {
				require.NoError(b, e.Rebuild(ctx, inspections.Name, nil))
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(after.HeapSys)/(1<<20), "heap-sys-MiB")
			b.ReportMetric(float64(head), "log-events")
		})
	}
}
