package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/internal/pgtest"
)

// start runs a real payeshd on a free port against storeURL.
func start(t *testing.T, storeURL string) *Main {
	t.Helper()
	m := NewMain()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, m.ParseFlags([]string{"--store", storeURL, "--addr", "127.0.0.1:0"}))
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

			code, body = getJSON(t, m.URL()+"/readyz")
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, "ready", body["status"])

			require.NoError(t, m.Close())
			_, err := http.Get(m.URL() + "/healthz")
			require.Error(t, err, "the listener is closed after shutdown")
		})
	}
}

func TestBadConfigurationFailsClearly(t *testing.T) {
	m := NewMain()
	require.Error(t, m.ParseFlags([]string{"--nope"}))
	require.ErrorContains(t, m.ParseFlags([]string{"extra"}), "unexpected arguments")

	m = NewMain()
	require.NoError(t, m.ParseFlags([]string{"--store", "mysql://x", "--addr", "127.0.0.1:0"}))
	require.ErrorContains(t, m.Run(context.Background()), "not supported")
}
