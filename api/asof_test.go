package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/replay"
)

// TestReportsAsOf asks the job counts and the quota reports as they stood
// at an earlier position and at a business time, on both backends, and
// checks them against what the live read models answered then: the same
// items, the same CSV, the position of the cut.
func TestReportsAsOf(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newQueryEnv(t, b, 24, Config{MaxWait: queryMaxWait})
		t.Cleanup(func() { require.NoError(t, e.srv.Close()) })
		reports := []string{
			"/v1/job-counts?group_by=province,agency",
			"/v1/job-counts?group_by=bank&sort=approved",
			"/v1/quotas/accounts?sort=free&limit=1000",
			"/v1/quotas/totals",
		}
		then := e.catchUp(t)
		before := map[string]json.RawMessage{}
		beforeCSV := map[string][]byte{}
		for _, path := range reports {
			var body json.RawMessage
			r := e.ok(t, qAuditor, path, &body)
			require.Equal(t, strconv.FormatUint(then, 10), r.header.Get(positionHeader))
			before[path] = body
			if path != "/v1/quotas/totals" {
				r := e.get(t, qAuditor, path, "Accept", "text/csv")
				require.Equal(t, http.StatusOK, r.status)
				beforeCSV[path] = r.body
			}
		}

		// The history goes on: registrations, steps, quota moves.
		for range 3 {
			e.hist.Register(4)
			e.hist.Step()
			e.hist.QuotaStep()
		}
		head := e.catchUp(t)
		require.Greater(t, head, then)
		now := map[string]json.RawMessage{}
		for _, path := range reports {
			var body json.RawMessage
			e.ok(t, qAuditor, path, &body)
			now[path] = body
			require.NotEqual(t, string(before[path]), string(body), "%s: the history must change the report", path)
		}

		withParam := func(path, k, v string) string {
			u, err := url.Parse(path)
			require.NoError(t, err)
			q := u.Query()
			q.Set(k, v)
			u.RawQuery = q.Encode()
			return u.String()
		}

		t.Run("as of an earlier position equals the live report then", func(t *testing.T) {
			for _, path := range reports {
				var body json.RawMessage
				r := e.ok(t, qAuditor, withParam(path, "as_of_position", strconv.FormatUint(then, 10)), &body)
				require.JSONEq(t, string(before[path]), string(body), path)
				require.Equal(t, strconv.FormatUint(then, 10), r.header.Get(positionHeader))
				if csv, ok := beforeCSV[path]; ok {
					r := e.get(t, qAuditor, withParam(path, "as_of_position", strconv.FormatUint(then, 10)), "Accept", "text/csv")
					require.Equal(t, http.StatusOK, r.status, string(r.body))
					require.Equal(t, string(csv), string(r.body), path)
				}
			}
		})

		t.Run("as of the head equals the live report", func(t *testing.T) {
			for _, path := range reports {
				var body json.RawMessage
				e.ok(t, qAuditor, withParam(path, "as_of_position", strconv.FormatUint(head, 10)), &body)
				require.JSONEq(t, string(now[path]), string(body), path)
			}
		})

		events, err := e.env.Store.ReadAll(context.Background(), 0, int(head), eventstore.Filter{})
		require.NoError(t, err)
		var latest time.Time
		for _, ev := range events {
			if ev.OccurredAt.After(latest) {
				latest = ev.OccurredAt
			}
		}

		t.Run("as of a business time", func(t *testing.T) {
			// After every event: the whole log at the head.
			for _, path := range reports {
				var body json.RawMessage
				r := e.ok(t, qAuditor, withParam(path, "as_of", latest.Add(time.Hour).Format(time.RFC3339)), &body)
				require.JSONEq(t, string(now[path]), string(body), path)
				require.Equal(t, strconv.FormatUint(head, 10), r.header.Get(positionHeader))
			}
			// Before every event: nothing had happened yet.
			var empty qPage[jobCountView]
			e.ok(t, qAuditor, "/v1/job-counts?group_by=province&as_of=2000-01-01", &empty)
			require.Empty(t, empty.Items)
			require.Equal(t, head, empty.Position)

			// Midway, on both axes at once: what a replay of the log to
			// then, keeping what had occurred by T, shows.
			mid := projectionstest.Start.Add(latest.Sub(projectionstest.Start) / 3).Truncate(time.Second)
			snap, err := replay.Run(context.Background(), replay.Config{
				Log: e.env.Store, Projectors: []projections.Projector{facilities.New()},
				Cut: replay.Cut{Position: then, OccurredAt: mid}, TempDir: t.TempDir(),
			})
			require.NoError(t, err)
			defer snap.Close()
			want, err := facilities.NewReader(snap.DB).JobCounts(context.Background(), facilities.Filter{}, facilities.DimProvince)
			require.NoError(t, err)
			var got qPage[jobCountView]
			e.ok(t, qAuditor, "/v1/job-counts?group_by=province&as_of="+url.QueryEscape(mid.Format(time.RFC3339))+
				"&as_of_position="+strconv.FormatUint(then, 10), &got)
			require.Equal(t, then, got.Position)
			require.Len(t, got.Items, len(want.Groups))
			for i, g := range want.Groups {
				require.Equal(t, g.Province, *got.Items[i].Province)
				require.Equal(t, g.Registered, got.Items[i].Registered)
			}
			require.Less(t, sumRegistered(got.Items), sumRegistered(allPages[jobCountView](t, e, qAuditor, "/v1/job-counts?group_by=province", 50)))
		})

		t.Run("pages of a business-time answer come from one replay", func(t *testing.T) {
			path := "/v1/job-counts?group_by=province,agency&limit=2&as_of=" + url.QueryEscape(latest.Format(time.RFC3339))
			var first qPage[jobCountView]
			e.ok(t, qAuditor, path, &first)
			require.NotEmpty(t, first.Next)
			require.Contains(t, first.Next, "as_of_position="+strconv.FormatUint(head, 10))
			e.hist.Register(1) // the log moves on; the next pages do not
			items := append(first.Items, allPages[jobCountView](t, e, qAuditor, first.Next, 2)...)
			var whole qPage[jobCountView]
			e.ok(t, qAuditor, "/v1/job-counts?group_by=province,agency&as_of_position="+strconv.FormatUint(head, 10), &whole)
			require.Equal(t, whole.Items, items)
		})

		t.Run("bad as-of parameters change nothing and say why", func(t *testing.T) {
			for _, tc := range []struct {
				path, field, code string
			}{
				{"/v1/job-counts?as_of_position=0", "as_of_position", "out_of_range"},
				{"/v1/job-counts?as_of_position=" + strconv.FormatUint(head+1000, 10), "as_of_position", "beyond_head"},
				{"/v1/quotas/accounts?as_of_position=x", "as_of_position", "type"},
				{"/v1/quotas/totals?as_of=yesterday", "as_of", ""},
			} {
				r := e.get(t, qAuditor, tc.path)
				require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.path, r.body)
				p := r.problem(t)
				require.NotEmpty(t, p.Errors, tc.path)
				require.Equal(t, tc.field, p.Errors[0].Field, tc.path)
				if tc.code != "" {
					require.Equal(t, tc.code, p.Errors[0].Code, tc.path)
				}
			}
		})

		t.Run("limits: too far is 422, too slow is 503 and the retry finds it", func(t *testing.T) {
			tt := e.srv.travel
			small := replay.NewCache(replay.CacheConfig{Log: e.env.Store, Projectors: []projections.Projector{facilities.New()}, MaxEvents: then})
			defer small.Close()
			saved := tt.jobCounts
			tt.jobCounts = small
			defer func() { tt.jobCounts = saved }()
			r := e.get(t, qAuditor, "/v1/job-counts?as_of_position="+strconv.FormatUint(then+1, 10))
			require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
			require.Equal(t, "too_far", r.problem(t).Errors[0].Code)

			tt.wait = time.Nanosecond
			r = e.get(t, qAuditor, "/v1/job-counts?as_of_position="+strconv.FormatUint(then-1, 10))
			require.Equal(t, http.StatusServiceUnavailable, r.status, string(r.body))
			require.Equal(t, "5", r.header.Get("Retry-After"))
			tt.wait = time.Minute
			var page qPage[jobCountView]
			e.ok(t, qAuditor, "/v1/job-counts?as_of_position="+strconv.FormatUint(then-1, 10), &page)
			require.Equal(t, then-1, page.Position)
		})

		t.Run("scoped roles read their scope as of a moment too", func(t *testing.T) {
			p := qPrincipal("province_office", "IR-23")
			var live, past qPage[jobCountView]
			e.ok(t, p, "/v1/job-counts?group_by=province&as_of_position="+strconv.FormatUint(then, 10), &past)
			require.Len(t, past.Items, 1)
			require.Equal(t, "IR-23", *past.Items[0].Province)
			e.ok(t, qAuditor, "/v1/job-counts?province=IR-23&as_of_position="+strconv.FormatUint(then, 10), &live)
			require.Equal(t, live.Items[0].Registered, past.Items[0].Registered)
		})
	})
}

func sumRegistered(items []jobCountView) int64 {
	var n int64
	for _, it := range items {
		n += it.Registered
	}
	return n
}
