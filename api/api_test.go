package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/projections"
)

func TestHealthAndReadiness(t *testing.T) {
	st := memory.New()
	srv := New(Config{Store: st})

	for _, path := range []string{"/healthz", "/readyz"} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	}

	// A closed store makes the node unready but still alive.
	require.NoError(t, st.Close())
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, "unavailable", body["status"])

	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code)
}

type fakeProjections []projections.Status

func (f fakeProjections) Status() []projections.Status { return f }

func get(t *testing.T, srv http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestReadinessFollowsTheProjections(t *testing.T) {
	st := memory.New()
	_, err := st.Append(context.Background(), "s-1", eventstore.NoStream, eventstoretest.Events(1, "t"))
	require.NoError(t, err)
	live := projections.Status{Name: "facilities", Version: 1, State: projections.StateLive, Position: 1}
	for _, tc := range []struct {
		other  projections.Status
		code   int
		status string
	}{
		{projections.Status{Name: "quotas", State: projections.StateLive, Position: 1}, http.StatusOK, "ready"},
		{projections.Status{Name: "quotas", State: projections.StateCatchingUp}, http.StatusServiceUnavailable, "catching_up"},
		{projections.Status{Name: "quotas", State: projections.StateFailed, LastError: "boom"}, http.StatusServiceUnavailable, "failed"},
		{projections.Status{Name: "quotas", State: projections.StateStopped}, http.StatusServiceUnavailable, "failed"},
	} {
		srv := New(Config{Store: st, Projections: fakeProjections{live, tc.other}})
		rec := get(t, srv, "/readyz")
		require.Equal(t, tc.code, rec.Code, tc.other.State)
		var body struct {
			Status      string             `json:"status"`
			Projections []projectionReport `json:"projections"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		require.Equal(t, tc.status, body.Status)
		require.Len(t, body.Projections, 2)
		require.Equal(t, tc.other.State, body.Projections[1].State)
		require.Equal(t, tc.other.LastError, body.Projections[1].LastError)
		require.EqualValues(t, 1-tc.other.Position, body.Projections[1].Lag)
	}
}

func TestMetricsShowAFailedProjection(t *testing.T) {
	st := memory.New()
	for i := range 3 {
		_, err := st.Append(context.Background(), fmt.Sprintf("s-%d", i), eventstore.NoStream, eventstoretest.Events(1, "t"))
		require.NoError(t, err)
	}
	srv := New(Config{Store: st, Projections: fakeProjections{
		{Name: "facilities", State: projections.StateLive, Position: 3, Applied: 3},
		{Name: "quotas", State: projections.StateFailed, Position: 1, Applied: 1, Retries: 4},
	}})
	rec := get(t, srv, "/metrics")
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, line := range []string{
		`payesh_log_head_position 3`,
		`payesh_projection_position{projection="quotas"} 1`,
		`payesh_projection_lag_events{projection="quotas"} 2`,
		`payesh_projection_lag_events{projection="facilities"} 0`,
		`payesh_projection_failed{projection="quotas"} 1`,
		`payesh_projection_failed{projection="facilities"} 0`,
		`payesh_projection_live{projection="facilities"} 1`,
		`payesh_projection_live{projection="quotas"} 0`,
		`payesh_projection_retries_total{projection="quotas"} 4`,
		`payesh_projection_events_applied_total{projection="facilities"} 3`,
	} {
		require.Contains(t, body, line+"\n")
	}
	require.Contains(t, body, "go_goroutines")
}
