package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/readmodels"
	"github.com/payesh/payesh/internal/pgtest"
)

// start runs a real payeshd on a free port against storeURL, with more
// flags if given.
func start(t *testing.T, storeURL string, flags ...string) *Main {
	t.Helper()
	m := NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, m.ParseFlags(append([]string{"--store", storeURL, "--addr", "127.0.0.1:0", "--dev"}, flags...)))
	require.NoError(t, m.Run(context.Background()))
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestServerAnswersHealthAndReadiness(t *testing.T) {
	url, schema := pgtest.Schema(t)
	for name, store := range map[string]string{
		"sqlite":   "sqlite://" + filepath.Join(t.TempDir(), "payesh.db"),
		"postgres": url + "&schema=" + schema,
	} {
		t.Run(name, func(t *testing.T) {
			m := start(t, store)
			code, body := getJSON(t, m.URL()+"/healthz")
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "ok", body["status"])

			// Ready once every projection has built its tables and
			// follows the log.
			require.Eventually(t, func() bool {
				code, body = getJSON(t, m.URL()+"/readyz")
				return code == http.StatusOK
			}, 60*time.Second, 20*time.Millisecond)
			require.Equal(t, "ready", body["status"])
			reports, _ := body["projections"].([]any)
			require.Len(t, reports, len(readmodels.Projectors()))
			for _, r := range reports {
				require.Equal(t, "live", r.(map[string]any)["state"])
			}

			resp, err := http.Get(m.URL() + "/metrics")
			require.NoError(t, err)
			metrics, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Contains(t, string(metrics), `payesh_projection_live{projection="facilities"} 1`)

			require.NoError(t, m.Close())
			_, err = http.Get(m.URL() + "/healthz")
			require.Error(t, err, "the listener is closed after shutdown")
		})
	}
}

func TestAPIRoleRunsNoProjections(t *testing.T) {
	m := NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, m.ParseFlags([]string{"--store", "sqlite://" + filepath.Join(t.TempDir(), "p.db"), "--addr", "127.0.0.1:0", "--role", "api", "--dev"}))
	require.NoError(t, m.Run(context.Background()))
	t.Cleanup(func() { _ = m.Close() })
	code, body := getJSON(t, m.URL()+"/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Nil(t, body["projections"])
}

func TestBadConfigurationFailsClearly(t *testing.T) {
	m := NewMain()
	require.ErrorContains(t, m.ParseFlags([]string{"--role", "worker"}), `--role "worker"`)
	m = NewMain()
	require.Error(t, m.ParseFlags([]string{"--nope"}))
	require.ErrorContains(t, m.ParseFlags([]string{"extra"}), "unexpected arguments")

	m = NewMain()
	require.NoError(t, m.ParseFlags([]string{"--store", "mysql://x", "--addr", "127.0.0.1:0"}))
	require.ErrorContains(t, m.Run(context.Background()), "not supported")

	// Outside --dev, the public development keys are refused: the server
	// needs a pseudonymisation key and credentials to accept.
	t.Setenv(backend.PseudonymKeyEnv, "")
	store := "sqlite://" + filepath.Join(t.TempDir(), "p.db")
	m = NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, m.ParseFlags([]string{"--store", store, "--addr", "127.0.0.1:0"}))
	require.ErrorContains(t, m.Run(context.Background()), "no pseudonymisation key")
	require.NoError(t, m.Close())

	t.Setenv(backend.PseudonymKeyEnv, strings.Repeat("ab", 32))
	m = NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, m.ParseFlags([]string{"--store", store, "--addr", "127.0.0.1:0"}))
	require.ErrorContains(t, m.Run(context.Background()), "no credentials are accepted")
	require.NoError(t, m.Close())
}
