package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/projections"
)

// route is one endpoint of /v1: the table the server mounts, the metrics
// label their latency, and the OpenAPI document's test walks.
type route struct {
	Method  string
	Pattern string // net/http pattern, e.g. "/v1/facilities/{id}"
	// Action is the policy action the route needs; the handler checks it
	// against the resource when the resource decides (a facility's bank),
	// the wrapper checks it up front when it does not depend on one
	// (Global true).
	Action auth.Action
	Global bool
	Handle func(w http.ResponseWriter, r *http.Request, p auth.Principal) error
	// Cache, when set, lets the answer cache keep the route's answers
	// (answers.go).
	Cache *cacheSpec
	Doc   routeDoc
}

// routeDoc is a route's part of the OpenAPI document (openapi.go).
type routeDoc struct {
	Summary     string
	Description string
	Tags        []string
	Params      []paramDoc
	// Request names the schema of the JSON body (components/schemas), if
	// the route takes one.
	Request string
	// Responses maps each status the route answers with to the schema of
	// its body ("" for none). Problem answers use "Problem"; the common
	// ones (400, 401, 403, 413, 415, 422, 500, 503) are added to every
	// route by the assembler.
	Responses map[int]string
	// CSV says the route also answers text/csv (Accept: text/csv).
	CSV bool
	// Idempotent says the route honours Idempotency-Key; IfMatch that it
	// honours If-Match with a stream version.
	Idempotent, IfMatch bool
}

// paramDoc is a path or query parameter.
type paramDoc struct {
	Name        string
	In          string // "path" or "query"
	Description string
	Required    bool
	Schema      map[string]any // JSON Schema, e.g. {"type": "integer", "minimum": 1}
}

// routes lists every /v1 endpoint.
func (s *Server) routes() []route {
	var rs []route
	rs = append(rs, s.commandRoutes()...)
	rs = append(rs, s.queryRoutes()...)
	rs = append(rs, s.erasureRoutes()...)
	rs = append(rs, s.verificationRoutes()...)
	return rs
}

// mount registers the /v1 routes behind authentication. Each handler
// returns an error instead of writing one: the wrapper translates it once
// (problemFor), logs the internal ones, and never leaks their text.
func (s *Server) mount() {
	authn := auth.Middleware(s.cfg.Auth, s.unauthenticated)
	for _, rt := range s.routes() {
		h := s.wrap(rt)
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.observe(rt.Pattern, authn(h)))
	}
}

// wrap runs a route's handler with the request timeout, its up-front
// authorisation, and the error translation.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		noteActor(r.Context(), p)
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		var err error
		if rt.Global {
			err = s.policy.Authorize(p, rt.Action, auth.Resource{})
		}
		switch {
		case err != nil:
		case rt.Cache != nil && s.answers != nil:
			err = s.answers.serve(w, r, p, rt.Cache, func(w http.ResponseWriter) error { return rt.Handle(w, r, p) })
		default:
			err = rt.Handle(w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeError answers with the problem err stands for.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var denied *auth.DeniedError
	var p Problem
	switch {
	case errors.As(err, &denied):
		reason := denied.Reason
		if persian(r) && denied.ReasonFa != "" {
			reason = denied.ReasonFa
		}
		p = newProblem(r, probForbidden, reason)
		p.Extra = map[string]any{"denial": string(denied.Denial)}
	case errors.Is(err, auth.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", auth.Challenge(err))
		p = newProblem(r, probUnauth, err.Error())
	case errors.Is(err, projections.ErrNotBuilt):
		w.Header().Set("Retry-After", "5")
		p = newProblem(r, probUnavail, "the read model has not been built yet: its projection has not run on this database")
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() != nil:
		p = newProblem(r, probTimeout, "the request took longer than "+s.cfg.RequestTimeout.String())
	default:
		p = problemFor(r, err)
	}
	if p.Status >= 500 {
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", requestID(r.Context()), "err", err)
	}
	writeProblem(w, p)
}

// unauthenticated is auth.Middleware's failure answer: a 401 with the
// Bearer challenge for a missing or refused credential.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, err)
}
