package banks_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/seed"
)

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		return n
	}
	return def
}

// BenchmarkRebuild measures a full blue/green rebuild of the read model
// over a seeded national history (payesh seed), on both backends: events of
// the log replayed per second (the aggregates computed by Finish included).
// PAYESH_BENCH_FACILITIES sets the history's size (default 15,000).
//
//	PAYESH_BENCH_FACILITIES=15000 go test -run '^$' -bench BenchmarkRebuild -benchtime 1x ./projections/banks/
func BenchmarkRebuild(b *testing.B) {
	n := envInt(b, "PAYESH_BENCH_FACILITIES", 15_000)
	for _, backend := range projectionstest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			env := backend.Open(b)
			_, err := seed.Run(ctx, env.Store, env.Vault, seed.Config{
				Facilities: n, Seed: 1, Now: time.Now(), PseudonymKey: []byte(strings.Repeat("k", 32)),
			}, seed.Options{})
			require.NoError(b, err)
			head := env.Head(b)
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{banks.New()}})
			require.NoError(b, err)
			b.ResetTimer()
			for b.Loop() {
				require.NoError(b, e.Rebuild(ctx, banks.Name, nil))
			}
			b.StopTimer()
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			rep, err := banks.NewReader(env.DB).Performance(ctx, banks.Query{AsOf: seed.HistoryEnd()})
			require.NoError(b, err)
			require.NotEmpty(b, rep.Rows)
		})
	}
}

// BenchmarkQueries measures the queries dashboards make, over a synthetic
// bank_facilities table of PAYESH_BENCH_FACILITIES facilities (default
// 100,000) spread like a national history: five fiscal years, 31
// provinces and their capitals' counties, 12 agencies, 7 programs, 10
// banks, waits from days to more than a year. The aggregates are computed
// by Finish, as after a rebuild. It reports each query's p50 and p99, and
// the aggregate tables' sizes.
//
//	PAYESH_BENCH_FACILITIES=1000000 go test -run '^$' -bench BenchmarkQueries/postgres -benchtime 200x ./projections/banks/
func BenchmarkQueries(b *testing.B) {
	n := envInt(b, "PAYESH_BENCH_FACILITIES", 100_000)
	for _, backend := range projectionstest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			ctx := context.Background()
			env := backend.Open(b)
			env.Service(b)
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: []projections.Projector{banks.New()}})
			require.NoError(b, err)
			require.NoError(b, e.Prepare(ctx, banks.Name)) // the tables
			start := time.Now()
			fill(b, env.DB, n)
			b.Logf("%d facilities written in %s", n, time.Since(start))
			start = time.Now()
			tx, err := env.DB.Write.BeginTx(ctx, nil)
			require.NoError(b, err)
			require.NoError(b, banks.New().Finish(ctx, projections.NewTx(tx, env.DB.Dialect), projections.LiveTables(1)))
			require.NoError(b, tx.Commit())
			b.Logf("Finish: %s", time.Since(start))
			if env.DB.Dialect.IsPostgres() {
				_, err := env.DB.Write.ExecContext(ctx, "ANALYZE")
				require.NoError(b, err)
			}
			for _, t := range []string{banks.BacklogTable, banks.DurationsTable} {
				var rows, bytes int64
				require.NoError(b, env.DB.Read.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(LENGTH(hist)), 0) FROM "+t).Scan(&rows, &bytes))
				b.Logf("%s: %d rows, %d bytes of histograms", t, rows, bytes)
			}

			r := banks.NewReader(env.DB)
			asOf := calendar.FiscalYear(1405).Start().AddDate(0, 2, 0)
			queries := []struct {
				name string
				q    banks.Query
			}{
				{"national by bank", banks.Query{}},
				{"year by bank", banks.Query{Filter: banks.Filter{FiscalYear: 1403}}},
				{"by year", banks.Query{GroupBy: banks.DimFiscalYear}},
				{"by province", banks.Query{GroupBy: banks.DimProvince}},
				{"year by province", banks.Query{Filter: banks.Filter{FiscalYear: 1404}, GroupBy: banks.DimProvince}},
				{"province by bank", banks.Query{Filter: banks.Filter{Province: "IR-23"}}},
				{"province by county", banks.Query{Filter: banks.Filter{Province: "IR-23"}, GroupBy: banks.DimCounty}},
				{"agency by bank", banks.Query{Filter: banks.Filter{Agency: "a03"}}},
				{"by program", banks.Query{GroupBy: banks.DimProgram}},
				{"province and agency", banks.Query{Filter: banks.Filter{Province: "IR-10", Agency: "a01"}}},
				{"county", banks.Query{Filter: banks.Filter{County: "IR-09-c", FiscalYear: 1403}}},
				{"bank by county", banks.Query{Filter: banks.Filter{Bank: "b04"}, GroupBy: banks.DimCounty}},
			}
			for _, c := range queries {
				c.q.AsOf = asOf
				c.q.Limit = banks.MaxLimit
				b.Run(strings.ReplaceAll(c.name, " ", "_"), func(b *testing.B) {
					var lat []time.Duration
					for b.Loop() {
						t0 := time.Now()
						rep, err := r.Performance(ctx, c.q)
						lat = append(lat, time.Since(t0))
						require.NoError(b, err)
						require.NotEmpty(b, rep.Rows)
					}
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				})
			}
		})
	}
}

// fill writes n synthetic facilities into bank_facilities.
func fill(b *testing.B, db *projections.DB, n int) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	u := projections.Upsert{Table: banks.FacilitiesTable, Key: 1, Columns: []string{
		"facility_id", "fiscal_year", "province", "county", "agency", "program", "bank", "stage",
		"requested_rials", "approved_rials", "paid_rials", "referred_day", "approved_day", "first_paid_day",
	}}
	exp := func(mean float64) int64 { return int64(rnd.ExpFloat64() * mean) }
	var rows [][]any
	flush := func() {
		tx, err := db.Write.BeginTx(ctx, nil)
		require.NoError(b, err)
		require.NoError(b, u.Write(ctx, projections.NewTx(tx, db.Dialect), rows))
		require.NoError(b, tx.Commit())
		rows = rows[:0]
	}
	none := sql.NullInt64{}
	day := func(d int64) sql.NullInt64 { return sql.NullInt64{Int64: d, Valid: true} }
	for i := range n {
		fy := 1400 + rnd.IntN(5)
		prov := fmt.Sprintf("IR-%02d", rnd.IntN(31))
		county := ""
		if rnd.Float64() < 0.55 {
			county = prov + "-c"
		}
		program := rnd.IntN(7)
		agency := fmt.Sprintf("a%02d", (program*2+rnd.IntN(3))%12) // a few agencies per program
		bank := fmt.Sprintf("b%02d", (program+rnd.IntN(4))%10)     // a few banks per program
		requested := int64(200+rnd.IntN(1800)) * 1_000_000
		start := calendar.FiscalYear(fy).Start().Unix()/86400 + int64(rnd.IntN(365))
		r := []any{fmt.Sprintf("f-%08d", i), int64(fy), prov, county, agency, fmt.Sprintf("p%d", program), "",
			"registered", requested, int64(0), int64(0), none, none, none}
		switch x := rnd.Float64(); {
		case x < 0.1: // not referred
		case x < 0.15: // waiting for the bank
			r[6], r[7], r[11] = bank, "referred", day(start)
		default:
			approved := requested * 8 / 10
			ap := start + exp(35)
			r[6], r[9], r[11], r[12] = bank, approved, day(start), day(ap)
			switch y := rnd.Float64(); {
			case y < 0.06:
				r[7] = "loan_approved"
			case y < 0.12:
				r[7], r[10], r[13] = "disbursing", approved/2, day(ap+exp(20))
			default:
				r[7], r[10], r[13] = "disbursed", approved, day(ap+exp(20))
			}
		}
		rows = append(rows, r)
		if len(rows) == 10_000 {
			flush()
		}
	}
	if len(rows) > 0 {
		flush()
	}
}
