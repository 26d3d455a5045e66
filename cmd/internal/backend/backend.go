// Package backend opens an event store from the URL given on a command line.
// It is part of the composition root: only cmd/ imports it.
package backend

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
)

// DefaultURL is the embedded store used when no --store is given.
const DefaultURL = "sqlite://./data/payesh.db"

// Open opens the store a URL names:
//
//	sqlite://./data/payesh.db        a file relative to the working directory
//	sqlite:///var/lib/payesh/db      an absolute path
//	postgres://user@host:5432/db     PostgreSQL; ?schema=name selects a schema
//	postgresql://...                 the same
func Open(ctx context.Context, raw string) (eventstore.Store, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("store URL %q has no scheme: use sqlite://PATH or postgres://HOST/DB", raw)
	}
	switch scheme {
	case "sqlite", "file":
		path, _, _ := strings.Cut(rest, "?")
		if path == "" {
			return nil, fmt.Errorf("store URL %q names no file", raw)
		}
		return sqlite.Open(ctx, sqlite.Config{Path: path})
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("store URL: %w", err)
		}
		q := u.Query()
		schema := q.Get("schema")
		q.Del("schema")
		u.RawQuery = q.Encode()
		return postgres.Open(ctx, postgres.Config{URL: u.String(), Schema: schema})
	default:
		return nil, fmt.Errorf("store URL scheme %q is not supported: use sqlite:// or postgres://", scheme)
	}
}

// Redact hides a password in a store URL so it can be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
