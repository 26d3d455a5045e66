package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/payesh/payesh/api/auth"
)

type requestIDKey struct{}

// requestID returns the request's ID (see observe).
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// clientRequestID is what a client's X-Request-ID may look like to be
// kept: short and printable, so it is safe in logs and headers.
var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers what a handler wrote, for the log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe wraps every endpoint: it gives the request an ID (the client's
// X-Request-ID when it is sane, else a new one; echoed in the answer),
// turns a panic into a 500 problem, records the latency under the route's
// pattern (not the path, whose IDs would explode the label set), and
// writes the access log line with the request ID and the actor.
func (s *Server) observe(pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !clientRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-ID", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		sw := &statusWriter{ResponseWriter: w}
		var actor string
		// The principal is only known inside the auth middleware: it is
		// read back through this hook.
		r = r.WithContext(context.WithValue(r.Context(), actorHookKey{}, func(p auth.Principal) { actor = p.String() }))
		defer func() {
			if v := recover(); v == http.ErrAbortHandler {
				// A streamed answer that failed midway (a CSV export)
				// aborts on purpose, having logged why: net/http must
				// still drop the connection, so the client sees the
				// transfer truncated.
				defer panic(v)
			} else if v != nil {
				s.cfg.Logger.Error("handler panicked", "request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeProblem(sw, newProblem(r, probInternal, ""))
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			s.requestLatency.WithLabelValues(r.Method, pattern, strconv.Itoa(status)).Observe(d.Seconds())
			s.cfg.Logger.Info("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "route", pattern,
				"status", status, "bytes", sw.bytes, "duration_ms", float64(d.Microseconds())/1000, "actor", actor,
				"remote", r.RemoteAddr)
		}()
		next.ServeHTTP(sw, r)
	})
}

type actorHookKey struct{}

// noteActor tells observe who the request's principal is.
func noteActor(ctx context.Context, p auth.Principal) {
	if f, ok := ctx.Value(actorHookKey{}).(func(auth.Principal)); ok {
		f(p)
	}
}
