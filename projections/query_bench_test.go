package projections_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/projections/quotas"
	"github.com/payesh/payesh/seed"
)

// BenchmarkReaders measures what the read models' queries cost the process
// under load: 32 goroutines (on GOMAXPROCS 2) asking the Readers directly,
// no HTTP, over a seeded national history of PAYESH_BENCH_FACILITIES
// facilities (default 3,000). ns/op is the wall time per query with all of
// them running, the inverse of the throughput, and with PostgreSQL on the
// same machine it includes the server's share of the cores.
//
//	go test -run '^$' -bench BenchmarkReaders -benchtime 2000x ./projections/
func BenchmarkReaders(b *testing.B) {
	n := 3000
	if v := os.Getenv("PAYESH_BENCH_FACILITIES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	for _, backend := range projectionstest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			env := backend.Open(b)
			env.Service(b)
			_, err := seed.Run(ctx, env.Store, env.Vault, seed.Config{
				Facilities: n, Seed: 1, Now: time.Now(), PseudonymKey: []byte(strings.Repeat("k", 32)),
			}, seed.Options{})
			require.NoError(b, err)
			ps := []projections.Projector{facilities.New(), quotas.New(), banks.New(), inspections.New(), deviations.New()}
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: ps})
			require.NoError(b, err)
			for _, p := range ps {
				require.NoError(b, e.Rebuild(ctx, p.Name(), nil))
			}
			fr, qr, br := facilities.NewReader(env.DB), quotas.NewReader(env.DB), banks.NewReader(env.DB)
			ir, dr := inspections.NewReader(env.DB), deviations.NewReader(env.DB)
			page, err := fr.Facilities(ctx, facilities.Filter{}, facilities.Page{Limit: facilities.MaxLimit})
			require.NoError(b, err)
			require.NotEmpty(b, page.Facilities)
			f0 := page.Facilities[0]
			var backends []int
			if env.DB.Dialect.IsPostgres() {
				backends = backendPIDs(b, env.DB.Read)
			}
			asOf := time.Now()

			for _, q := range []struct {
				name string
				run  func(i int) error
			}{
				{"facility", func(i int) error {
					_, _, err := fr.Facility(ctx, page.Facilities[i%len(page.Facilities)].ID)
					return err
				}},
				{"facilities/filtered", func(int) error {
					_, err := fr.Facilities(ctx, facilities.Filter{FiscalYear: f0.FiscalYear, Province: f0.Province}, facilities.Page{Limit: 100})
					return err
				}},
				{"facilities/recent", func(int) error {
					_, err := fr.Facilities(ctx, facilities.Filter{}, facilities.Page{Sort: facilities.SortRecent})
					return err
				}},
				{"job-counts/province", func(int) error {
					_, err := fr.JobCounts(ctx, facilities.Filter{}, facilities.DimProvince)
					return err
				}},
				{"quotas/accounts", func(int) error {
					_, err := qr.Accounts(ctx, quotas.Filter{}, quotas.Page{Sort: quotas.SortAbsorption})
					return err
				}},
				{"quotas/totals", func(int) error {
					_, err := qr.Totals(ctx, quotas.Filter{})
					return err
				}},
				{"banks/performance", func(int) error {
					_, err := br.Performance(ctx, banks.Query{AsOf: asOf})
					return err
				}},
				{"inspections/by-firm", func(int) error {
					_, err := ir.Stats(ctx, inspections.Filter{}, inspections.Query{GroupBy: []inspections.Dim{inspections.DimFirm}})
					return err
				}},
				{"deviations/open", func(int) error {
					_, err := dr.Deviations(ctx, deviations.Filter{State: deviations.StateOpen}, deviations.Page{})
					return err
				}},
			} {
				require.NoError(b, q.run(0), q.name)
				b.Run(q.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetParallelism(16)
					cpu, server := processCPU(), serverCPU(backends)
					b.RunParallel(func(pb *testing.PB) {
						i := 0
						for pb.Next() {
							if err := q.run(i); err != nil {
								b.Error(err)
								return
							}
							i++
						}
					})
					b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
					if len(backends) > 0 {
						b.ReportMetric(float64((serverCPU(backends)-server).Microseconds())/float64(b.N), "server-cpu-µs/op")
					}
				})
			}
		})
	}
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendPIDs returns the process ids of the PostgreSQL backends behind
// every connection the pool can open (pgtest's stores open at most 8),
// holding them all at once so that each is a different one.
func backendPIDs(b *testing.B, db *sql.DB) []int {
	ctx := context.Background()
	var (
		pids  []int
		conns []*sql.Conn
	)
	for range 8 {
		c, err := db.Conn(ctx)
		require.NoError(b, err)
		conns = append(conns, c)
		var pid int
		require.NoError(b, c.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid))
		pids = append(pids, pid)
	}
	for _, c := range conns {
		require.NoError(b, c.Close())
	}
	return pids
}

// serverCPU returns the CPU time the backends have used (Linux: utime and
// stime of /proc/PID/stat, in clock ticks of 10 ms; 0 where unreadable).
func serverCPU(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the fields
		// counted from 3 start after its closing one.
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+s) * 10 * time.Millisecond
	}
	return total
}
