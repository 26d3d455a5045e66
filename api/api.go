// Package api is Payesh's HTTP interface: REST commands and read-model
// queries under /v1, and the operational endpoints /healthz, /readyz and
// /metrics. Handlers translate HTTP to ledger commands and queries; domain
// errors are mapped to HTTP statuses in one place.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
)

// Projections is what the API needs of the projection engine running in
// this process: every read model's status (projections.Engine has it).
// Status must be cheap and safe to call from any goroutine.
type Projections interface {
	Status() []projections.Status
}

// Config is what the server needs from its composition root.
type Config struct {
	Store eventstore.Store
	// Service executes commands. Without it (and ReadModels and Auth) the
	// server has no /v1 routes: only the operational endpoints.
	Service *ledger.Service
	// ReadModels is the database the projections keep; queries read it.
	ReadModels *projections.DB
	// Auth authenticates /v1 requests; auth.DefaultPolicy authorises them.
	Auth auth.Authenticator
	// Projections, when set, are part of readiness and of the metrics: a
	// node whose read models are not following the log is not ready.
	Projections Projections
	Logger      *slog.Logger
	// ReadyTimeout bounds the store check behind /readyz (default 2s).
	ReadyTimeout time.Duration
	// MaxBody is the largest request body accepted (default 1 MiB).
	MaxBody int64
	// RequestTimeout bounds each /v1 request (default 30s).
	RequestTimeout time.Duration
	// MaxWait bounds how long a query with min_position waits for the read
	// model to reach it (default 5s; a client may ask for less with
	// max_wait).
	MaxWait time.Duration
	// Positions tells the read models' positions for min_position: the
	// Engine's Reader where the projections run in this process (woken by
	// its commits); when nil the server polls the checkpoints.
	Positions *projections.Reader
	// AnswerCacheBytes bounds the answer cache (answers.go), which serves
	// a read-model query's answer again while the read model has not
	// moved: default DefaultAnswerCacheBytes; negative turns it off.
	AnswerCacheBytes int64
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 2 * time.Second
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 1 << 20
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Second
	}
	if c.AnswerCacheBytes == 0 {
		c.AnswerCacheBytes = DefaultAnswerCacheBytes
	}
}

// Server serves the API. Create it with New; it is an http.Handler.
type Server struct {
	cfg     Config
	policy  auth.Policy
	mux     *http.ServeMux
	metrics *prometheus.Registry

	requestLatency *prometheus.HistogramVec
	appendLatency  prometheus.Histogram

	travel *timeTravel // reports as of a past moment (asof.go); nil without a store

	verifications *verifications // background verifications of the log (audit_verify.go)

	// positions tells the read models' checkpoints: Config.Positions, or
	// a Reader polling them.
	positions *projections.Reader
	answers   *answerCache // nil when turned off
}

// New builds the server's routes.
func New(cfg Config) *Server {
	cfg.setDefaults()
	s := &Server{cfg: cfg, policy: auth.DefaultPolicy(), mux: http.NewServeMux(), metrics: prometheus.NewRegistry()}
	s.positions = cfg.Positions
	if s.positions == nil && cfg.ReadModels != nil {
		s.positions = projections.NewReader(cfg.ReadModels, queryProjectors()...)
	}
	if s.positions != nil && cfg.AnswerCacheBytes > 0 {
		s.answers = newAnswerCache(s.positions, cfg.AnswerCacheBytes)
		s.metrics.MustRegister(s.answers.lookups, s.answers.bytes)
	}
	s.travel = newTimeTravel(s)
	s.verifications = newVerifications(cfg.Store, cfg.Logger)
	s.requestLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "payesh_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by method, route pattern and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "code"})
	s.appendLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "payesh_append_duration_seconds",
		Help:    "Time to execute a command against the ledger: load, decide and append.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	s.metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&logCollector{store: cfg.Store, projections: cfg.Projections, timeout: cfg.ReadyTimeout},
		s.requestLatency, s.appendLatency,
	)
	if cfg.Service != nil && cfg.ReadModels != nil && cfg.Auth != nil {
		s.mount()
		s.mux.HandleFunc("GET /openapi.json", s.serveOpenAPI())
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// healthz answers as long as the process serves HTTP: liveness only.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// projectionReport is one read model in /readyz.
type projectionReport struct {
	Name      string `json:"name"`
	Version   int    `json:"version"`
	State     string `json:"state"`
	Position  uint64 `json:"position"`
	Lag       uint64 `json:"lag"` // events of the log not yet reflected
	LastError string `json:"last_error,omitempty"`
}

// readyz answers 200 only when the event store answers and every read
// model follows the log live, so a load balancer sends no traffic to a
// node that lost its database, is still catching up, or has a projection
// stopped at an event it could not apply (status "failed", with the
// error: that needs an operator, see payesh projections).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	head, err := s.cfg.Store.Head(ctx)
	if err != nil {
		s.cfg.Logger.Warn("readiness check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": err.Error()})
		return
	}
	body := map[string]any{
		"status": "ready",
		"store":  map[string]any{"position": head.Position, "hash": head.Hash.String()},
	}
	code := http.StatusOK
	if s.cfg.Projections != nil {
		var reports []projectionReport
		for _, p := range s.cfg.Projections.Status() {
			reports = append(reports, projectionReport{
				Name: p.Name, Version: p.Version, State: p.State, Position: p.Position,
				Lag: head.Position - min(p.Position, head.Position), LastError: p.LastError,
			})
			switch {
			case p.State == projections.StateFailed || p.State == projections.StateStopped:
				body["status"], code = "failed", http.StatusServiceUnavailable
			case !p.Ready() && body["status"] == "ready":
				body["status"], code = "catching_up", http.StatusServiceUnavailable
			}
		}
		body["projections"] = reports
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
