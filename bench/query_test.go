package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
)

// TestQueryQuick runs the query scenarios end to end at smoke-test sizes,
// on SQLite and on the test PostgreSQL: both sides in this process, each
// starting a real payeshd (built into the work directory) on the seeded
// log, and checks what they measured. Every request of the mix must have
// been answered 2xx.
func TestQueryQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds two logs and starts payeshd on each")
	}
	env, log := quickEnv(t, readModels()...)
	scenarios, err := Find("query-sqlite,query-pg")
	require.NoError(t, err)
	results := (&Runner{Env: env}).Run(context.Background(), scenarios)
	t.Log(log.String())
	require.Len(t, results, 2)

	for _, res := range results {
		require.False(t, res.Failed(), "%s: %s%s\n%s", res.Scenario.Name, res.Payesh.Err, res.Baseline.Err, log.String())
		for _, side := range []SideResult{res.Payesh, res.Baseline} {
			all, ok := side.Point(queryAllKey)
			require.True(t, ok, "%s: %s: all", res.Scenario.Name, side.Label)
			require.Positive(t, all.Rate())
			require.Contains(t, all.Note, "errors: none", "%s: %s", res.Scenario.Name, side.Label)
			// Keep-alive holds while measuring. Before, the transport may
			// have replaced a connection (seen once in a loaded test run:
			// 33 opened in all).
			require.Regexp(t, `keep-alive: 3[23] connections, none opened while measuring`, all.Note)
			if _, err := os.Stat("/proc/self/status"); err == nil {
				require.Positive(t, all.PeakRSS, "payeshd's peak RSS")
			}
			lat, ok := side.Point(queryLatencyKey)
			require.True(t, ok)
			requireLatency(t, lat)
		}
		for _, k := range queryKinds {
			p, ok := res.Payesh.Point(queryKey(k.name))
			require.True(t, ok, "%s: %s", res.Scenario.Name, k.name)
			require.Positive(t, p.Events, "%s: %s was asked", res.Scenario.Name, k.name)
			require.Contains(t, p.Note, "errors: none", "%s: %s", res.Scenario.Name, k.name)
			require.Contains(t, p.Note, "slowest variant: ")
			requireLatency(t, p)
		}
		lat, _ := res.Payesh.Point(queryLatencyKey)
		require.Contains(t, lat.Note, "read models rebuilt (RebuildAll of ", "the payesh side brought the read models up")
		require.Contains(t, lat.Note, "payeshd ready")
		for _, l := range res.Lines(env.Sizes) {
			if l.Row.Key == queryAllKey {
				require.NotNil(t, l.Met, "%s: the rate target is judged", res.Scenario.Name)
				require.Positive(t, l.Ratio, "compared with /healthz")
			}
		}
	}

	// The baseline, the logs' last reader, dropped them; the servers are
	// gone.
	left, err := RunSchemas(context.Background(), env.PG, env.RunID)
	require.NoError(t, err)
	require.Empty(t, left)
	for _, name := range []string{"rebuild.db", "rebuild-sqlite.json", "rebuild-pg.json"} {
		_, err := os.Stat(filepath.Join(env.Work, name))
		require.ErrorIs(t, err, os.ErrNotExist, name)
	}
}

func requireLatency(t *testing.T, p Point) {
	t.Helper()
	require.NotNil(t, p.Latency, p.Key)
	require.Positive(t, p.Latency.Median, p.Key)
	require.LessOrEqual(t, p.Latency.Median, p.Latency.P99, p.Key)
	require.LessOrEqual(t, p.Latency.P99, p.Latency.Max, p.Key)
}

func testSample() []sampledFacility {
	return []sampledFacility{
		{ID: "1401-23-0000001", FiscalYear: 1401, Province: "IR-23", Agency: "relief-committee", Program: "p1", Bank: "melli"},
		{ID: "1403-01-0000002", FiscalYear: 1403, Province: "IR-01", Agency: "imam-khomeini", Program: "p2"},
	}
}

func TestQueryMixDrawsEveryKindWithAToken(t *testing.T) {
	mix, err := newQueryMix(testSample(), time.Minute)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 1))
	seen := map[string]int{}
	for range 20_000 {
		q := mix.next(r)
		seen[q.kind]++
		require.NotEmpty(t, q.token, q.path)
		require.Equal(t, q.kind, variantKind(q.variant()), "the variant's label names its kind")
		u, err := url.Parse(q.path)
		require.NoError(t, err)
		// A scoped principal never filters on another scope of its own
		// kind: the API would refuse it (403).
		if q.role == string(auth.RoleProvinceOffice) {
			require.Empty(t, u.Query().Get("province"), q.path)
		}
		if q.kind != "facilities" {
			require.Zero(t, q.pagesLeft)
		}
	}
	for _, k := range queryKinds {
		require.Positive(t, seen[k.name], k.name)
	}
	require.InDelta(t, 0.25, float64(seen["facility"])/20_000, 0.02)
	require.InDelta(t, 0.03, float64(seen["quota-totals"])/20_000, 0.01)
	require.Len(t, seen, len(queryKinds))

	_, err = newQueryMix(nil, time.Minute)
	require.Error(t, err)
}

func TestQueryVariantElidesValues(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/facilities?province=IR-23&fiscal_year=1401&sort=recent":     "ministry /v1/facilities?fiscal_year&province&sort=recent",
		"/v1/facilities/1401-23-0000001":                                 "ministry /v1/facilities/{id}",
		"/v1/facilities?cursor=abc&province=IR-01":                       "ministry /v1/facilities?page>1&province",
		"/v1/job-counts?group_by=agency%2Cprogram&fiscal_year=1402":      "ministry /v1/job-counts?fiscal_year&group_by=agency,program",
		"/v1/banks/performance":                                          "ministry /v1/banks/performance",
		"/v1/deviations?kind=discrepancy&sort=updated&state=open&bank=x": "ministry /v1/deviations?bank&kind=discrepancy&sort=updated&state=open",
	} {
		require.Equal(t, want, queryRequest{role: "ministry", path: path}.variant())
	}
}

func TestLoadStatsCountEveryFailure(t *testing.T) {
	s := newLoadStats()
	for i := range 100 {
		s.record(200, nil, time.Duration(i+1)*time.Millisecond, nil)
	}
	require.Equal(t, "errors: none", s.errorsNote())
	l := s.latency()
	require.Equal(t, 50.0, l.Median)
	require.Equal(t, 99.0, l.P99)
	require.Equal(t, 100.0, l.Max)

	s.record(403, nil, time.Millisecond, []byte(`{"type":"x","title":"Forbidden","detail":"bank reads only its own bank"}`))
	s.record(403, nil, time.Millisecond, []byte(`{"title":"Forbidden","detail":"another"}`))
	s.record(502, nil, time.Millisecond, []byte("bad gateway"))
	s.record(0, &url.Error{Op: "Get", URL: "http://x", Err: errors.New("connection reset by peer")}, time.Millisecond, nil)
	s.record(0, &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}, time.Millisecond, nil)
	require.Equal(t, 5, s.errorCount())
	require.Len(t, s.ok, 100, "errors are not latencies")
	note := s.errorsNote()
	for _, want := range []string{
		"**errors: 5**", `HTTP 403 ×2 ("Forbidden: bank reads only its own bank")`, `HTTP 502 ×1 ("bad gateway")`,
		`transport ×1 ("connection reset by peer")`, "timeout ×1",
	} {
		require.Contains(t, note, want)
	}
	require.NotContains(t, note, "failed", "the bench report must not read as a failed run")

	all := newLoadStats()
	all.merge(s)
	all.merge(s)
	require.Equal(t, 10, all.errorCount())
	require.Len(t, all.ok, 200)
}

func TestSlowestAreKeptInOrder(t *testing.T) {
	var s []slowRequest
	for _, ms := range []int{5, 1, 9, 3, 7, 12, 2, 8, 4, 6, 11, 10, 0} {
		s = addSlow(s, slowRequest{latency: time.Duration(ms) * time.Millisecond})
	}
	require.Len(t, s, keepSlowest)
	require.Equal(t, 12*time.Millisecond, s[0].latency)
	require.Equal(t, 3*time.Millisecond, s[keepSlowest-1].latency)
}

func TestServerLogFindsTheAddress(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	l := &serverLog{f: f, addr: make(chan string, 1)}
	lines := `{"level":"WARN","msg":"development mode"}` + "\n" +
		`{"time":"2025-01-01T00:00:00Z","level":"INFO","msg":"payeshd serving","addr":"127.0.0.1:41234","role":"all"}` + "\n" +
		`{"msg":"request"}` + "\n"
	// In pieces, as a pipe delivers them.
	for _, piece := range []string{lines[:30], lines[30:70], lines[70:]} {
		n, err := l.Write([]byte(piece))
		require.NoError(t, err)
		require.Equal(t, len(piece), n)
	}
	require.Equal(t, "127.0.0.1:41234", <-l.addr)
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.Equal(t, lines, string(b), "everything reaches the log file")
	require.True(t, strings.HasSuffix(string(b), `{"msg":"request"}`+"\n"))
}

func TestNextPage(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"items":[{"id":"a","stage":"next"}],"next_cursor":"c1","next":"/v1/facilities?cursor=c1&fiscal_year=1403","position":9}`,
			"/v1/facilities?cursor=c1&fiscal_year=1403"},
		{`{"items":[],"next": "/v1/x?a=\"q\"\u0026b=1"}`, `/v1/x?a="q"&b=1`},
		{`{"items":[{"id":"a"}],"position":9}`, ""},
		{`{"items":[],"next":null}`, ""},
		{`{"items":[],"next":"unterminated`, ""},
		{`not json`, ""},
	} {
		require.Equal(t, tc.want, nextPage([]byte(tc.body)), tc.body)
	}
}
