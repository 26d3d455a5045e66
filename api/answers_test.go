package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

func (c *answerCache) count(result string) int {
	var m dto.Metric
	if err := c.lookups.WithLabelValues(result).Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// TestAnswerCache checks, over a real server and read models on both
// backends, that the answer cache serves an answer again only while it is
// the answer: per principal scope, never older than min_position, never
// for CSV or answers rebuilt from the log, and a fresh one after a commit.
func TestAnswerCache(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newQueryEnv(t, b, 40, Config{MaxWait: queryMaxWait})
		c := e.srv.answers
		require.NotNil(t, c, "the cache is on by default")

		t.Run("the same question is answered once", func(t *testing.T) {
			path := "/v1/job-counts?group_by=province"
			first := e.get(t, qMinistry, path)
			require.Equal(t, http.StatusOK, first.status, string(first.body))
			hits := c.count("hit")
			again := e.get(t, qMinistry, path)
			require.Equal(t, http.StatusOK, again.status)
			require.Equal(t, hits+1, c.count("hit"))
			require.Equal(t, string(first.body), string(again.body))
			require.Equal(t, first.header.Get(positionHeader), again.header.Get(positionHeader))
			require.Equal(t, "application/json", again.header.Get("Content-Type"))
		})

		t.Run("principals of other scopes get their own answers", func(t *testing.T) {
			var all qPage[jobCountView]
			e.ok(t, qMinistry, "/v1/job-counts?group_by=province", &all)
			require.GreaterOrEqual(t, len(all.Items), 2)
			for _, g := range all.Items[:2] {
				require.NotNil(t, g.Province)
				office := qPrincipal(auth.RoleProvinceOffice, *g.Province)
				for range 2 { // the second from the cache
					var mine qPage[jobCountView]
					e.ok(t, office, "/v1/job-counts?group_by=province", &mine)
					require.Len(t, mine.Items, 1)
					require.Equal(t, *g.Province, *mine.Items[0].Province)
					require.Equal(t, g.Registered, mine.Items[0].Registered)
				}
			}
		})

		t.Run("a commit moves the answer on", func(t *testing.T) {
			path := "/v1/job-counts?province=IR-07&fiscal_year=1403"
			var before qPage[jobCountView]
			e.ok(t, qMinistry, path, &before)
			e.ok(t, qMinistry, path, &before) // kept
			// Once the read model has the event, the question is asked of
			// it again: the in-process Engine's commit is seen at once.
			registerOne(t, e, "cache-1", 1)
			e.catchUp(t)
			var after qPage[jobCountView]
			e.ok(t, qMinistry, path, &after)
			require.Greater(t, after.Position, before.Position)
			require.Equal(t, total(before.Items)+1, total(after.Items))
			// With min_position, at once.
			res := registerOne(t, e, "cache-2", 2)
			var waited qPage[jobCountView]
			e.ok(t, qMinistry, fmt.Sprintf("%s&min_position=%d", path, res.Position), &waited)
			require.GreaterOrEqual(t, waited.Position, res.Position)
			require.Equal(t, total(after.Items)+1, total(waited.Items))
		})

		t.Run("min_position is never answered from an older answer", func(t *testing.T) {
			head := e.catchUp(t)
			e.get(t, qMinistry, "/v1/deviations")
			r := e.get(t, qMinistry, fmt.Sprintf("/v1/deviations?max_wait=50ms&min_position=%d", head+10))
			require.Equal(t, http.StatusServiceUnavailable, r.status, string(r.body))
			require.Equal(t, ProblemTypeBase+"position-not-reached", r.problem(t).Type)
		})

		t.Run("CSV and answers rebuilt from the log are not kept", func(t *testing.T) {
			head := e.catchUp(t)
			for _, tc := range []struct{ path, accept string }{
				{"/v1/job-counts?group_by=province", "text/csv"},
				{fmt.Sprintf("/v1/job-counts?group_by=province&as_of_position=%d", head), ""},
				{"/v1/quotas/accounts?as_of=2025-01-01", ""},
			} {
				before := c.count("bypass")
				var r qReply
				if tc.accept != "" {
					r = e.get(t, qMinistry, tc.path, "Accept", tc.accept)
				} else {
					r = e.get(t, qMinistry, tc.path)
				}
				require.Equal(t, http.StatusOK, r.status, "%s: %s", tc.path, r.body)
				require.Equal(t, before+1, c.count("bypass"), tc.path)
			}
		})

		t.Run("problems are not kept", func(t *testing.T) {
			before := c.count("hit")
			for range 2 {
				r := e.get(t, qMinistry, "/v1/facilities/no-such-facility")
				require.Equal(t, http.StatusNotFound, r.status)
			}
			require.Equal(t, before, c.count("hit"))
		})
	})
}

func total(gs []jobCountView) int64 {
	var n int64
	for _, g := range gs {
		n += g.Registered
	}
	return n
}

// registerOne registers a facility in IR-07, fiscal year 1403, for a new
// applicant.
func registerOne(t *testing.T, e *queryEnv, id string, applicantNo uint64) ledger.Result {
	t.Helper()
	res, err := e.svc.Register(context.Background(), ledger.RegisterFacility{
		Register: facility.Register{FacilityID: id, FiscalYear: 1403, Program: "home-business", Agency: "welfare",
			Province: "IR-07", Title: "answer cache", RequestedRials: 400_000_000, JobsPromised: 1, At: time.Now()},
		Applicant: applicant.Personal{NationalID: nationalid.Generate(80_000 + applicantNo), Name: "C", Phone: "09120000004"},
	}, ledger.Meta{Actor: projectionstest.Ministry})
	require.NoError(t, err)
	return res
}

// fakeCheckpoints is a read model whose checkpoint a test moves.
type fakeCheckpoints struct{ pos atomic.Uint64 }

func (f *fakeCheckpoints) Current(context.Context, string) (projections.Checkpoint, error) {
	return projections.Checkpoint{Position: f.pos.Load(), Version: 1, Generation: 1}, nil
}

// cacheServe runs one request through c with a handler answering at the
// checkpoint's position.
func cacheServe(c *answerCache, cp *fakeCheckpoints, path string, calls *atomic.Int32, gate <-chan struct{}) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	w := httptest.NewRecorder()
	err := c.serve(w, r, qMinistry, &cacheSpec{model: "m"}, func(w http.ResponseWriter) error {
		calls.Add(1)
		if gate != nil {
			<-gate
		}
		pos := cp.pos.Load()
		return answer(w, pos, map[string]any{"path": path, "position": pos})
	})
	if err != nil {
		panic(err)
	}
	return w
}

func TestAnswerCacheOneReadAtATime(t *testing.T) {
	cp := &fakeCheckpoints{}
	cp.pos.Store(7)
	c := newAnswerCache(cp, 1<<20)
	var calls atomic.Int32
	gate := make(chan struct{})
	var wg sync.WaitGroup
	answers := make([]*httptest.ResponseRecorder, 10)
	wg.Add(1)
	go func() { defer wg.Done(); answers[0] = cacheServe(c, cp, "/q", &calls, gate) }()
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	for i := 1; i < len(answers); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = cacheServe(c, cp, "/q", &calls, gate) }()
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	require.Equal(t, int32(1), calls.Load(), "concurrent askers of one question wait for the first read")
	for _, a := range answers {
		require.Equal(t, http.StatusOK, a.Code)
		require.Equal(t, "7", a.Header().Get(positionHeader))
		require.Equal(t, answers[0].Body.String(), a.Body.String())
	}

	// The read model moves: the next ask reads again, at the new position.
	cp.pos.Store(8)
	a := cacheServe(c, cp, "/q", &calls, nil)
	require.Equal(t, int32(2), calls.Load())
	require.Equal(t, "8", a.Header().Get(positionHeader))
}

func TestAnswerCacheBounded(t *testing.T) {
	cp := &fakeCheckpoints{}
	c := newAnswerCache(cp, 64<<10)
	var calls atomic.Int32
	for i := range 500 {
		cacheServe(c, cp, fmt.Sprintf("/q?i=%d&pad=%s", i, strings.Repeat("x", 1000)), &calls, nil)
		c.mu.Lock()
		require.LessOrEqual(t, c.size, c.max)
		require.Equal(t, len(c.items), c.lru.Len())
		c.mu.Unlock()
	}
	require.Equal(t, int32(500), calls.Load())
	// The most recent answers are kept, the oldest evicted.
	before := calls.Load()
	cacheServe(c, cp, fmt.Sprintf("/q?i=%d&pad=%s", 499, strings.Repeat("x", 1000)), &calls, nil)
	require.Equal(t, before, calls.Load())
	cacheServe(c, cp, fmt.Sprintf("/q?i=%d&pad=%s", 0, strings.Repeat("x", 1000)), &calls, nil)
	require.Equal(t, before+1, calls.Load())
}
