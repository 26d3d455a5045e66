package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/projections"
)

// Renderer answers read-model queries over a database no server serves,
// such as a replay's snapshot, exactly as the API answers them: the same
// parameters, the same JSON pages and CSV exports, rendered by the same
// handlers. It is for tools (payesh replay). It answers as a national
// auditor, and serves the read-model routes whose answers come from the
// database alone: /v1/facilities, /v1/job-counts, /v1/quotas/accounts,
// /v1/quotas/totals, /v1/banks/performance, /v1/inspections/stats and
// /v1/deviations (and those without as_of, which needs the log). It is
// safe for concurrent use.
type Renderer struct {
	mux *http.ServeMux
}

// RenderedRoutes are the paths a Renderer serves.
var RenderedRoutes = []string{
	"/v1/facilities", "/v1/job-counts", "/v1/quotas/accounts", "/v1/quotas/totals",
	"/v1/banks/performance", "/v1/inspections/stats", "/v1/deviations",
}

// renderPrincipal is who a Renderer answers as.
var renderPrincipal = auth.Principal{Subject: "payesh-replay", Role: auth.RoleAuditor, Scope: auth.National}

// NewRenderer returns a Renderer over db.
func NewRenderer(db *projections.DB, logger *slog.Logger) *Renderer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: Config{ReadModels: db, Logger: logger}, policy: auth.DefaultPolicy(), mux: http.NewServeMux()}
	s.cfg.setDefaults()
	rd := &Renderer{mux: http.NewServeMux()}
	for _, rt := range s.queryRoutes() {
		for _, path := range RenderedRoutes {
			if rt.Method == http.MethodGet && rt.Pattern == path {
				h := s.wrap(rt)
				rd.mux.Handle("GET "+path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					h.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), renderPrincipal)))
				}))
			}
		}
	}
	return rd
}

// ErrRenderAborted says an answer failed after it had begun (a CSV export
// whose later page could not be read); what was written is incomplete.
var ErrRenderAborted = errors.New("api: the answer failed midway; what was written is incomplete")

// Serve answers r (a GET of one of RenderedRoutes, with its query) into w:
// status, headers and body, as the API would. A path it does not serve is
// 404. It returns ErrRenderAborted when the answer failed after it began.
func (rd *Renderer) Serve(w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				err = ErrRenderAborted
				return
			}
			panic(v)
		}
	}()
	rd.mux.ServeHTTP(w, r)
	return nil
}
