// Package pgtest gives each test its own PostgreSQL schema, so tests that
// touch the database can run with t.Parallel and never see each other's rows.
//
// The server is taken from TEST_DATABASE_URL (default DefaultURL). When it
// cannot be reached the test is skipped with a message saying so, unless the
// environment says a database is required (CI=true or
// PAYESH_REQUIRE_POSTGRES=1): then the test fails, so CI can never pass by
// silently skipping every database test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is used when TEST_DATABASE_URL is unset: a local server with
// trust authentication and a database named test.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the test server's URL: TEST_DATABASE_URL, or DefaultURL.
func URL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Required reports whether the environment forbids skipping database tests:
// CI=true or PAYESH_REQUIRE_POSTGRES=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PAYESH_REQUIRE_POSTGRES") == "1"
}

// unreachable remembers, per URL, that the server could not be reached, so a
// package with many database tests skips them all quickly instead of waiting
// for a connection timeout in each one.
var unreachable sync.Map // url -> error

// Connect opens a plain connection to the test server, or skips (or fails,
// see Required) the test when the server is unreachable. The connection is
// closed when the test ends.
func Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	conn := mustConnect(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	})
	return conn
}

func mustConnect(t testing.TB) *pgx.Conn {
	t.Helper()
	url := URL()
	conn, err := connect(url)
	if err != nil {
		msg := fmt.Sprintf("pgtest: PostgreSQL at %s is unreachable (set TEST_DATABASE_URL to point at a server): %v", redact(url), err)
		if Required() {
			t.Fatal(msg + "; CI=true or PAYESH_REQUIRE_POSTGRES=1, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	return conn
}

func connect(url string) (*pgx.Conn, error) {
	if err, ok := unreachable.Load(url); ok {
		return nil, err.(error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		unreachable.Store(url, err)
		return nil, err
	}
	return conn, nil
}

// Schema creates a new, empty schema named t_<random hex> on the test server
// and returns the server URL and the schema's name. The schema and
// everything in it are dropped when the test ends (cleanups registered later,
// such as closing a store that uses it, run first).
func Schema(t testing.TB) (url string, schema string) {
	t.Helper()
	conn := mustConnect(t)
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema = "t_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{schema}.Sanitize()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "CREATE SCHEMA "+ident)
	_ = conn.Close(ctx) // not held for the test's duration: connections are scarce
	if err != nil {
		t.Fatalf("pgtest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := connect(URL())
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return URL(), schema
}

// redact hides a password in a URL for log messages.
func redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		return url
	}
	return fmt.Sprintf("postgres://%s:***@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
