// Package api is Payesh's HTTP interface: REST commands and read-model
// queries under /v1, and the operational endpoints /healthz and /readyz.
// Handlers translate HTTP to ledger commands and queries; domain errors are
// mapped to HTTP statuses in one place.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// Config is what the server needs from its composition root.
type Config struct {
	Store  eventstore.Store
	Logger *slog.Logger
	// ReadyTimeout bounds the store check behind /readyz (default 2s).
	ReadyTimeout time.Duration
}

// Server serves the API. Create it with New; it is an http.Handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New builds the server's routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// healthz answers as long as the process serves HTTP: liveness only.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the event store answers, so a load balancer
// stops sending traffic to a node that lost its database.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	head, err := s.cfg.Store.Head(ctx)
	if err != nil {
		s.cfg.Logger.Warn("readiness check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "store": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "ready",
		"store":  map[string]any{"position": head.Position, "hash": head.Hash.String()},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
