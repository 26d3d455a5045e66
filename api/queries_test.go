package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// queryMaxWait is the servers' bound on min_position waits in the tests.
const queryMaxWait = 400 * time.Millisecond

// TestQueries drives every query endpoint over HTTP, on SQLite and
// PostgreSQL, against one realistic history per backend (built once: the
// parts that write run last, in order). Every answer is also checked
// against the OpenAPI document.
func TestQueries(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newQueryEnv(t, b, 90, Config{MaxWait: queryMaxWait})
		for _, part := range []struct {
			name string
			test func(t *testing.T, e *queryEnv)
		}{
			{"facilities", testFacilityQueries},
			{"aggregates", testAggregateQueries},
			{"read models", testModelQueries},
			{"scoped reads", testScopedReads},
			{"parameter problems", testQueryParameterProblems},
			// These append.
			{"history and as_of", testFacilityHistory},
			{"min_position", testMinPosition},
			{"CSV across pages", testCSVExportAcrossPages},
		} {
			t.Run(part.name, func(t *testing.T) { part.test(t, e) })
		}
	})
}

// queryEnv is a server over a realistic history on one backend: a store,
// the ledger service, every read model kept live by a running Engine, the
// server checked against its OpenAPI document (contract), and tokens for
// any principal.
type queryEnv struct {
	env    *projectionstest.Env
	svc    *ledger.Service
	hist   *projectionstest.History
	engine *projections.Engine
	srv    *Server
	k      *contract
	ts     *httptest.Server
	tokens map[auth.Principal]string
}

// newQueryEnv builds a history of n facilities and serves it.
func newQueryEnv(t *testing.T, b projectionstest.Backend, n int, cfg Config) *queryEnv {
	t.Helper()
	e := &queryEnv{env: b.Open(t), tokens: map[auth.Principal]string{}}
	e.svc = e.env.Service(t)
	e.hist = projectionstest.Build(t, e.svc, n, 42)
	var err error
	e.engine, err = projections.New(projections.Config{
		Store: e.env.Store, DB: e.env.DB, Projectors: queryProjectors(), BatchSize: 500, RetryBackoff: 5 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.engine.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.catchUp(t)

	cat, err := e.svc.Catalog(context.Background())
	require.NoError(t, err)
	cfg.Store, cfg.Service, cfg.ReadModels = e.env.Store, e.svc, e.env.DB
	cfg.Auth = auth.DevVerifier(cat, time.Now)
	if cfg.Positions == nil {
		cfg.Positions = e.engine.Reader()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e.srv = New(cfg)
	e.k = newContract(t, e.srv)
	e.ts = httptest.NewServer(e.k)
	t.Cleanup(e.ts.Close)
	return e
}

// catchUp waits until every read model reflects the log's head.
func (e *queryEnv) catchUp(t *testing.T) uint64 {
	t.Helper()
	head := e.env.Head(t)
	r := e.engine.Reader()
	for _, p := range queryProjectors() {
		_, err := r.WaitFor(context.Background(), p.Name(), head, time.Minute)
		require.NoError(t, err, p.Name())
	}
	return head
}

// token returns a bearer token for p.
func (e *queryEnv) token(t *testing.T, p auth.Principal) string {
	t.Helper()
	if tok, ok := e.tokens[p]; ok {
		return tok
	}
	tok, _, err := auth.DevIssuer(time.Now).Issue(p, time.Hour)
	require.NoError(t, err)
	e.tokens[p] = tok
	return tok
}

// Principals of the tests; their scopes are in the history's data.
var (
	qMinistry = auth.Principal{Subject: "m-1", Role: auth.RoleMinistry, Scope: auth.National}
	qAuditor  = auth.Principal{Subject: "a-1", Role: auth.RoleAuditor, Scope: auth.National}
)

func qPrincipal(role auth.Role, scopeID string) auth.Principal {
	return auth.Principal{Subject: string(role) + "-" + scopeID, Role: role, Scope: auth.Scope{Kind: role.ScopeKind(), ID: scopeID}}
}

// qReply is an answer as the tests read it.
type qReply struct {
	status int
	header http.Header
	body   []byte
}

func (r qReply) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

func (r qReply) problem(t *testing.T) Problem {
	t.Helper()
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), string(r.body))
	var p Problem
	r.json(t, &p)
	return p
}

// get sends GET path as p, with extra headers as pairs.
func (e *queryEnv) get(t *testing.T, p auth.Principal, path string, headers ...string) qReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.token(t, p))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return qReply{status: res.StatusCode, header: res.Header, body: body}
}

// ok is get that requires 200.
func (e *queryEnv) ok(t *testing.T, p auth.Principal, path string, v any) qReply {
	t.Helper()
	r := e.get(t, p, path)
	require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
	r.json(t, v)
	return r
}

// qPage is a list page with its items left raw.
type qPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
	Next       string `json:"next"`
	Position   uint64 `json:"position"`
}

// all follows next links from path and returns every item, checking that
// each page is at most limit items and the position never goes back.
func allPages[T any](t *testing.T, e *queryEnv, p auth.Principal, path string, limit int) []T {
	t.Helper()
	var (
		out   []T
		pos   uint64
		pages int
	)
	for path != "" {
		var pg qPage[T]
		r := e.ok(t, p, path, &pg)
		require.LessOrEqual(t, len(pg.Items), limit, path)
		require.GreaterOrEqual(t, pg.Position, pos)
		require.Equal(t, r.header.Get(positionHeader), qNumber(pg.Position))
		pos = pg.Position
		out = append(out, pg.Items...)
		if pg.Next != "" {
			require.Len(t, pg.Items, limit, "only the last page may be short")
			require.NotEmpty(t, pg.NextCursor)
			require.Contains(t, pg.Next, "cursor="+url.QueryEscape(pg.NextCursor))
		}
		path = pg.Next
		pages++
		require.Less(t, pages, 10_000)
	}
	return out
}

func qNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// csvRows requests path as CSV and returns the header and the rows.
func (e *queryEnv) csvRows(t *testing.T, p auth.Principal, path string) (qReply, []string, [][]string) {
	t.Helper()
	r := e.get(t, p, path, "Accept", "text/csv")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/csv"))
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	return r, recs[0], recs[1:]
}

// column returns the values of one CSV column.
func csvColumn(t *testing.T, header []string, rows [][]string, name string) []string {
	t.Helper()
	i := -1
	for j, h := range header {
		if h == name {
			i = j
		}
	}
	require.GreaterOrEqual(t, i, 0, "no column %s in %v", name, header)
	out := make([]string, len(rows))
	for j, r := range rows {
		out[j] = r[i]
	}
	return out
}

// A CSV export that fails after it began drops the connection: the client
// sees a truncated transfer, not a complete-looking file.
func TestCSVExportAbortsMidway(t *testing.T) {
	srv := New(Config{Store: memory.New(), Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv.observe("/export", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := srv.startCSV(w, r, "export", 7, []string{"n"})
		streamPages(c, []int{1, 2}, "more", func(string) ([]int, string, error) {
			return nil, "", errors.New("the database went away")
		}, func(n int) []string { return []string{strconv.Itoa(n)} })
	})))
	defer ts.Close()
	res, err := ts.Client().Get(ts.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "7", res.Header.Get(positionHeader))
	body, err := io.ReadAll(res.Body)
	require.Error(t, err, "the transfer must end in an error, not look complete")
	require.Equal(t, "n\n1\n2\n", string(body), "the rows before the failure arrived")
}
