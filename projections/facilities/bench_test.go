package facilities_test

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/seed"
)

// benchFacilities is the size of the seeded history the rebuild benchmark
// replays: PAYESH_BENCH_FACILITIES, default 15,000 facilities (about 110k
// events, a seventh of them quota, reference and applicant events the
// projector skips).
func benchFacilities(b *testing.B) int {
	if v := os.Getenv("PAYESH_BENCH_FACILITIES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		return n
	}
	return 15_000
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

// BenchmarkRebuild measures a full blue/green rebuild of facilities and
// job_counts over a seeded national history (payesh seed), on both
// backends: events of the log replayed per second, the peak live heap, the
// process's CPU time per event, and, as the baseline, how fast the same log
// is merely read through the store. PAYESH_BENCH_FACILITIES sets the
// history's size, PAYESH_BENCH_BATCH the events per transaction.
//
//	PAYESH_BENCH_FACILITIES=15000 go test -run '^$' -bench BenchmarkRebuild -benchtime 3x ./projections/facilities/
func BenchmarkRebuild(b *testing.B) {
	n := benchFacilities(b)
	for _, backend := range projectionstest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			env := backend.Open(b)
			_, err := seed.Run(ctx, env.Store, env.Vault, seed.Config{
				Facilities: n, Seed: 1, Now: time.Now(), PseudonymKey: []byte(strings.Repeat("k", 32)),
			}, seed.Options{})
			require.NoError(b, err)
			head := env.Head(b)
			batch := 0 // the Engine's default
			if v := os.Getenv("PAYESH_BENCH_BATCH"); v != "" {
				batch, err = strconv.Atoi(v)
				require.NoError(b, err)
			}
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{facilities.New()}, BatchSize: batch})
			require.NoError(b, err)
			runtime.GC()
			var cpu time.Duration
			stop := heapPeak()
			var baseline time.Duration
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				baseline += readAll(b, env)
				b.StartTimer()
				cpu0 := cpuTime()
				require.NoError(b, e.Rebuild(ctx, facilities.Name, nil))
				cpu += cpuTime() - cpu0
			}
			b.StopTimer()
			peak := stop()
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(head)*float64(b.N)/baseline.Seconds(), "readall-events/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(head), "log-events")
			// The process's CPU time (for SQLite, all of the work; for
			// PostgreSQL, the client's share) per event: a figure the
			// machine's other load inflates much less than the rate.
			b.ReportMetric(float64(cpu.Microseconds())/float64(head)/float64(b.N), "cpu-µs/event")
			jc, err := facilities.NewReader(env.DB).JobCounts(ctx, facilities.Filter{})
			require.NoError(b, err)
			require.EqualValues(b, n, jc.Groups[0].Registered)
		})
	}
}

// cpuTime returns the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readAll is the baseline: reading the whole log through the store, in the
// rebuild's batches, decoding nothing and writing nothing.
func readAll(b *testing.B, env *projectionstest.Env) time.Duration {
	start := time.Now()
	var after uint64
	for {
		evs, err := env.Store.ReadAll(context.Background(), after, 5000, eventstore.Filter{})
		require.NoError(b, err)
		if len(evs) == 0 {
			return time.Since(start)
		}
		after = evs[len(evs)-1].Position
	}
}

// BenchmarkLiveLatency measures how long an appended event takes to show in
// the read models at idle: from the append's return to WaitFor's.
func BenchmarkLiveLatency(b *testing.B) {
	for _, backend := range projectionstest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			env := backend.Open(b)
			h := projectionstest.NewHistory(b, env.Service(b), 1)
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{facilities.New()}})
			require.NoError(b, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = e.Run(ctx) }()
			r := e.Reader()
			var worst, total time.Duration
			for b.Loop() {
				b.StopTimer()
				time.Sleep(10 * time.Millisecond) // idle
				h.Register(1)
				pos := env.Head(b)
				start := time.Now()
				b.StartTimer()
				_, err := r.WaitFor(ctx, facilities.Name, pos, 5*time.Second)
				require.NoError(b, err)
				d := time.Since(start)
				total += d
				worst = max(worst, d)
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "mean-ms")
		})
	}
}
