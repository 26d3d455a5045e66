package quotas_test

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/projections/quotas"
	"github.com/payesh/payesh/seed"
)

// BenchmarkRebuild measures a full blue/green rebuild of the quota balances
// over a seeded national history (payesh seed), on both backends: events of
// the log replayed per second and the peak live heap. PAYESH_BENCH_FACILITIES
// sets the history's size (default 15,000 facilities), PAYESH_BENCH_BATCH
// the events per transaction.
//
//	PAYESH_BENCH_FACILITIES=15000 go test -run '^$' -bench BenchmarkRebuild -benchtime 3x ./projections/quotas/
func BenchmarkRebuild(b *testing.B) {
	n := 15_000
	if v := os.Getenv("PAYESH_BENCH_FACILITIES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	batch := 0 // the Engine's default
	if v := os.Getenv("PAYESH_BENCH_BATCH"); v != "" {
		var err error
		batch, err = strconv.Atoi(v)
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
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{quotas.New()}, BatchSize: batch})
			require.NoError(b, err)
			runtime.GC()
			stop := heapPeak()
			b.ResetTimer()
			for b.Loop() {
				require.NoError(b, e.Rebuild(ctx, quotas.Name, nil))
			}
			b.StopTimer()
			peak := stop()
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(head), "log-events")
			tot, err := quotas.NewReader(env.DB).Totals(ctx, quotas.Filter{})
			require.NoError(b, err)
			require.NotEmpty(b, tot.Ledgers)
			for _, l := range tot.Ledgers {
				require.True(b, l.Conserved)
			}
		})
	}
}

// BenchmarkAccounts measures the queries a utilisation dashboard makes: a
// page of accounts in each order, and the totals, over the seeded history.
func BenchmarkAccounts(b *testing.B) {
	for _, backend := range projectionstest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			env := backend.Open(b)
			_, err := seed.Run(ctx, env.Store, env.Vault, seed.Config{
				Facilities: 2000, Seed: 1, Now: time.Now(), PseudonymKey: []byte(strings.Repeat("k", 32)),
			}, seed.Options{})
			require.NoError(b, err)
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{quotas.New()}})
			require.NoError(b, err)
			require.NoError(b, e.Rebuild(ctx, quotas.Name, nil))
			r := quotas.NewReader(env.DB)
			sorts := []quotas.Sort{quotas.SortAccount, quotas.SortFree, quotas.SortAbsorption, quotas.SortFirstAllocated}
			var worst time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				p, err := r.Accounts(ctx, quotas.Filter{}, quotas.Page{Sort: sorts[i%len(sorts)]})
				require.NoError(b, err)
				require.NotEmpty(b, p.Accounts)
				_, err = r.Totals(ctx, quotas.Filter{})
				require.NoError(b, err)
				worst = max(worst, time.Since(start))
				i++
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}

// heapPeak samples the live heap every millisecond until stop is called,
// and returns the largest value seen.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	quit := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(quit)
		wg.Wait()
		return peak
	}
}
