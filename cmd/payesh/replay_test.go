package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api"
	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/internal/pgtest"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// storeURLs make a fresh store URL of each backend.
var storeURLs = map[string]func(t *testing.T) string{
	"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "payesh.db") },
	"postgres": func(t *testing.T) string {
		pgURL, schema := pgtest.Schema(t)
		u, err := neturl.Parse(pgURL)
		require.NoError(t, err)
		q := u.Query()
		q.Set("schema", schema)
		u.RawQuery = q.Encode()
		return u.String()
	},
}

// envAt opens a test environment on the store at url, as the CLI opens it.
func envAt(t *testing.T, url string) *projectionstest.Env {
	t.Helper()
	return projectionstest.NewEnv(t, func(ctx context.Context) (eventstore.Store, applicant.Vault, error) {
		st, err := backend.Open(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		switch s := st.(type) {
		case *sqlite.Store:
			return s, s.Vault(), nil
		case *postgres.Store:
			return s, s.Vault(), nil
		}
		return nil, nil, fmt.Errorf("unexpected store %T", st)
	})
}

// liveReports renders every report over the live read models, as the API
// serves them: CSV (JSON for the totals) by report name.
func liveReports(t *testing.T, env *projectionstest.Env, query map[string]string) map[string]string {
	t.Helper()
	engine, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: readModels()})
	require.NoError(t, err)
	require.NoError(t, engine.RebuildAll(context.Background(), nil, nil))
	rd := api.NewRenderer(env.DB, nil)
	out := map[string]string{}
	for name, rep := range replayReports {
		accept := "text/csv"
		if !rep.csv {
			accept = "application/json"
		}
		r := httptest.NewRequest(http.MethodGet, rep.path+"?"+query[name], nil)
		r.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		require.NoError(t, rd.Serve(rec, r))
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", name, rec.Body)
		out[name] = rec.Body.String()
	}
	return out
}

// replayed runs payesh replay for every report and returns the outputs
// like liveReports does.
func replayed(t *testing.T, query map[string]string, source ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, rep := range replayReports {
		args := append([]string{"replay", "--report", name}, source...)
		if query[name] != "" {
			args = append(args, "--query", query[name])
		}
		if !rep.csv {
			args = append(args, "--format", "json")
		}
		code, stdout, stderr := payesh(t, args...)
		require.Equal(t, 0, code, "%s: %s", name, stderr)
		require.Contains(t, stderr, "replayed ")
		require.Contains(t, stderr, "events/s")
		if !rep.csv {
			stdout = apiShape(t, stdout)
		}
		out[name] = stdout
	}
	return out
}

// apiShape turns payesh replay's JSON into the API's answer: its items and
// position.
func apiShape(t *testing.T, s string) string {
	t.Helper()
	var v struct {
		Items    []json.RawMessage `json:"items"`
		Position uint64            `json:"position"`
	}
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b) + "\n"
}

// TestReplayCommandEqualsLive checks on both backends that payesh replay
// writes every report exactly as the API serves it from the live read
// models: at the head, at an earlier position (against what the live
// read models served then), and from an export file alone.
func TestReplayCommandEqualsLive(t *testing.T) {
	query := map[string]string{
		"job-counts":       "group_by=province,agency,bank",
		"inspections":      "group_by=firm",
		"bank-performance": "group_by=province&as_of=2025-01-01",
		"quota-balances":   "sort=free",
	}
	for name, mk := range storeURLs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := mk(t)
			env := envAt(t, url)
			h := projectionstest.Build(t, env.Service(t), 30, 7)
			mid := env.Head(t)
			then := liveReports(t, env, query)
			for range 3 {
				h.Register(3)
				h.Step()
				h.QuotaStep()
			}
			head := env.Head(t)
			now := liveReports(t, env, query)
			require.NotEqual(t, then["job-counts"], now["job-counts"])

			for name := range replayReports {
				if name != "quota-totals" {
					require.Greater(t, strings.Count(now[name], "\n"), 1, "%s has rows", name)
				}
			}
			require.Equal(t, now, replayed(t, query, "--store", url))
			require.Equal(t, now, replayed(t, query, "--store", url, "--position", strconv.FormatUint(head, 10)))
			require.Equal(t, then, replayed(t, query, "--store", url, "--position", strconv.FormatUint(mid, 10)))

			file := filepath.Join(t.TempDir(), "log.ndjson")
			code, _, stderr := payesh(t, "export", "--store", url, "--out", file)
			require.Equal(t, 0, code, stderr)
			require.Equal(t, now, replayed(t, query, "--in", file))
			require.Equal(t, then, replayed(t, query, "--in", file, "--position", strconv.FormatUint(mid, 10)))

			t.Run("json", func(t *testing.T) {
				code, stdout, stderr := payesh(t, "replay", "--store", url, "--report", "facilities", "--format", "json",
					"--position", strconv.FormatUint(mid, 10), "--as-of", "2099-01-01")
				require.Equal(t, 0, code, stderr)
				var v struct {
					Report   string            `json:"report"`
					Cut      map[string]any    `json:"cut"`
					Head     uint64            `json:"head"`
					Position uint64            `json:"position"`
					Items    []json.RawMessage `json:"items"`
				}
				require.NoError(t, json.Unmarshal([]byte(stdout), &v))
				require.Equal(t, "facilities", v.Report)
				require.Equal(t, head, v.Head)
				require.Equal(t, mid, v.Position)
				require.EqualValues(t, mid, v.Cut["position"])
				require.Equal(t, "2098-12-31T20:30:00Z", v.Cut["as_of"], "a date without a zone is Tehran's")
				require.Len(t, v.Items, strings.Count(then["facilities"], "\n")-1, "one item per CSV row")
			})

			t.Run("business time before everything", func(t *testing.T) {
				code, stdout, stderr := payesh(t, "replay", "--store", url, "--report", "job-counts", "--as-of", "1390/01/01")
				require.Equal(t, 0, code, stderr)
				require.Equal(t, "registered,reviewed,referred,approved,disbursed,inspected,confirmed,approved_rials,disbursed_rials,"+
					"jobs_promised,jobs_reported,jobs_verified\n0,0,0,0,0,0,0,0,0,0,0,0\n", stdout)
			})
		})
	}
}

func TestReplayCommandRefusals(t *testing.T) {
	url := storeURLs["sqlite"](t)
	env := envAt(t, url)
	projectionstest.Build(t, env.Service(t), 3, 1)
	head := env.Head(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no report", []string{}, 2, "--report is required"},
		{"unknown report", []string{"--report", "gossip"}, 2, `"gossip": not a report`},
		{"bad format", []string{"--report", "facilities", "--format", "xml"}, 2, "csv or json"},
		{"csv of totals", []string{"--report", "quota-totals"}, 2, "JSON only"},
		{"two system times", []string{"--report", "facilities", "--position", "3", "--until", "2025-01-01"}, 2, "not both"},
		{"bad time", []string{"--report", "facilities", "--as-of", "soon"}, 2, `--as-of "soon"`},
		{"cursor in the query", []string{"--report", "facilities", "--query", "cursor=x"}, 2, "cursor is not taken"},
		{"as_of in the query", []string{"--report", "job-counts", "--query", "as_of=2025-01-01"}, 2, "as_of is --as-of"},
		{"bad query parameter", []string{"--report", "job-counts", "--query", "group_by=planet"}, 2, "group_by"},
		{"beyond the head", []string{"--report", "facilities", "--position", strconv.FormatUint(head+1, 10)}, 2, "beyond the log's head"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := payesh(t, append([]string{"replay", "--store", url}, tc.args...)...)
			require.Equal(t, tc.code, code, stderr)
			require.Contains(t, stderr, tc.want)
			require.Empty(t, stdout)
		})
	}

	t.Run("store and file", func(t *testing.T) {
		code, _, stderr := payesh(t, "replay", "--store", url, "--in", "x.ndjson", "--report", "facilities")
		require.Equal(t, 2, code)
		require.Contains(t, stderr, "not both")
	})

	t.Run("a tampered export is refused at its line", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "log.ndjson")
		code, _, stderr := payesh(t, "export", "--store", url, "--out", file)
		require.Equal(t, 0, code, stderr)
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		lines := strings.SplitAfter(string(raw), "\n")
		lines[5] = strings.Replace(lines[5], `"version":`, `"version":1`, 1) // line 6: event 5
		require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "")), 0o600))
		code, stdout, stderr := payesh(t, "replay", "--in", file, "--report", "facilities")
		require.Equal(t, 1, code, stderr)
		require.Contains(t, stderr, "line 6")
		require.Empty(t, stdout)
	})

	t.Run("a filtered export is not the whole log", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "log.ndjson")
		code, _, stderr := payesh(t, "export", "--store", url, "--out", file, "--stream-prefix", "facility-")
		require.Equal(t, 0, code, stderr)
		code, _, stderr = payesh(t, "replay", "--in", file, "--report", "facilities")
		require.Equal(t, 1, code, stderr)
		require.Contains(t, stderr, "a replay needs the whole log from position 1")
	})
}
