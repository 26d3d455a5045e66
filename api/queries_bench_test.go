package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/seed"
)

// BenchmarkQueries measures the main queries end to end over loopback HTTP
// (authentication, scoping, the read model's query, JSON), one client at a
// time, on a seeded national history of a few thousand facilities
// (PAYESH_BENCH_FACILITIES, default 3,000), and reports each query's p50
// and p99 latency. The issue's target (p99 < 10 ms at 1M facilities with 32
// clients) is measured by the benchmark harness; this is the quick check.
//
//	go test -run '^$' -bench BenchmarkQueries -benchtime 2000x ./api/
func BenchmarkQueries(b *testing.B) {
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
			svc := env.Service(b)
			_, err := seed.Run(ctx, env.Store, env.Vault, seed.Config{
				Facilities: n, Seed: 1, Now: time.Now(), PseudonymKey: []byte(strings.Repeat("k", 32)),
			}, seed.Options{})
			require.NoError(b, err)
			e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: queryProjectors()})
			require.NoError(b, err)
			for _, p := range queryProjectors() {
				require.NoError(b, e.Rebuild(ctx, p.Name(), nil))
			}
			cat, err := svc.Catalog(ctx)
			require.NoError(b, err)
			srv := New(Config{Store: env.Store, Service: svc, ReadModels: env.DB, Auth: auth.DevVerifier(cat, time.Now),
				Logger: slog.New(slog.DiscardHandler)})
			ts := httptest.NewServer(srv)
			b.Cleanup(ts.Close)
			client := ts.Client()
			tokens := map[auth.Role]string{}
			for _, p := range []auth.Principal{
				{Subject: "m", Role: auth.RoleMinistry, Scope: auth.National},
				{Subject: "p", Role: auth.RoleProvinceOffice, Scope: auth.Scope{Kind: auth.ScopeProvince, ID: "IR-23"}},
				{Subject: "b", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "melli"}},
			} {
				tok, _, err := auth.DevIssuer(time.Now).Issue(p, 24*time.Hour)
				require.NoError(b, err)
				tokens[p.Role] = tok
			}
			get := func(role auth.Role, path string) []byte {
				req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
				require.NoError(b, err)
				req.Header.Set("Authorization", "Bearer "+tokens[role])
				res, err := client.Do(req)
				require.NoError(b, err)
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				require.NoError(b, err)
				require.Equal(b, http.StatusOK, res.StatusCode, "%s: %s", path, body)
				return body
			}
			var page struct {
				Items []struct {
					ID string `json:"id"`
				} `json:"items"`
			}
			require.NoError(b, jsonUnmarshal(get(auth.RoleMinistry, "/v1/facilities?limit=1000"), &page))
			require.NotEmpty(b, page.Items)
			ids := make([]string, len(page.Items))
			for i, it := range page.Items {
				ids[i] = it.ID
			}
			head := env.Head(b)

			for _, q := range []struct {
				name string
				role auth.Role
				path func(i int) string
			}{
				{"facilities/page", auth.RoleMinistry, func(int) string { return "/v1/facilities" }},
				{"facilities/province-office", auth.RoleProvinceOffice, func(int) string { return "/v1/facilities?sort=recent" }},
				{"facilities/filtered", auth.RoleMinistry, func(int) string { return "/v1/facilities?fiscal_year=1403&province=IR-07&stage=disbursed" }},
				{"facilities/bank", auth.RoleBank, func(int) string { return "/v1/facilities?sort=approved" }},
				{"facility", auth.RoleMinistry, func(i int) string { return "/v1/facilities/" + ids[i%len(ids)] }},
				{"facility/min_position", auth.RoleMinistry, func(i int) string {
					return fmt.Sprintf("/v1/facilities/%s?min_position=%d", ids[i%len(ids)], head)
				}},
				{"facility/as_of", auth.RoleMinistry, func(i int) string { return "/v1/facilities/" + ids[i%len(ids)] + "?as_of=1403/06/01" }},
				{"facility/events", auth.RoleMinistry, func(i int) string { return "/v1/facilities/" + ids[i%len(ids)] + "/events" }},
				{"job-counts/province", auth.RoleMinistry, func(int) string { return "/v1/job-counts?group_by=province" }},
				{"job-counts/bank-scoped", auth.RoleBank, func(int) string { return "/v1/job-counts?group_by=fiscal_year,province" }},
				{"quotas/accounts", auth.RoleMinistry, func(int) string { return "/v1/quotas/accounts?sort=absorption" }},
				{"quotas/totals", auth.RoleMinistry, func(int) string { return "/v1/quotas/totals" }},
				{"banks/performance", auth.RoleMinistry, func(int) string { return "/v1/banks/performance" }},
				{"inspections/by-firm", auth.RoleMinistry, func(int) string { return "/v1/inspections/stats?group_by=firm&sort=confirmation_rate" }},
				{"deviations/open", auth.RoleMinistry, func(int) string { return "/v1/deviations?state=open" }},
			} {
				b.Run(q.name, func(b *testing.B) {
					var took []time.Duration
					i := 0
					for b.Loop() {
						start := time.Now()
						get(q.role, q.path(i))
						took = append(took, time.Since(start))
						i++
					}
					slices.Sort(took)
					pct := func(p float64) float64 {
						return float64(took[min(len(took)-1, int(float64(len(took))*p))].Microseconds()) / 1000
					}
					b.ReportMetric(pct(0.50), "p50-ms")
					b.ReportMetric(pct(0.99), "p99-ms")
				})
			}
		})
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
