// Package backend opens an event store from the URL given on a command line.
// It is part of the composition root: only cmd/ imports it.
package backend

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/kurrentdb"
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
//	kurrentdb://host:2113?tls=false  KurrentDB (EventStoreDB) on one node;
//	                                 ?stream=NAME names the log stream
//	kurrentdb+discover://host:2113   a KurrentDB cluster, found by gossip
//	esdb://..., esdb+discover://...  the same, in the client's own scheme
//
// A KurrentDB store keeps no read models or applicant vault: those need
// a SQL store beside it (payeshd --readmodels).
func Open(ctx context.Context, raw string) (eventstore.Store, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("store URL %q has no scheme: use sqlite://PATH, postgres://HOST/DB or kurrentdb://HOST:PORT", raw)
	}
	switch scheme {
	case "sqlite", "file":
		path, _, _ := strings.Cut(rest, "?")
		if path == "" {
			return nil, fmt.Errorf("store URL %q names no file", raw)
		}
		return sqlite.Open(ctx, sqlite.Config{Path: path})
	case "postgres", "postgresql":
		driverURL, schema, err := TakeParam(raw, "schema")
		if err != nil {
			return nil, err
		}
		return postgres.Open(ctx, postgres.Config{URL: driverURL, Schema: schema})
	case "kurrentdb", "kurrentdb+discover", "esdb", "esdb+discover":
		driverURL, stream, err := TakeParam(raw, "stream")
		if err != nil {
			return nil, err
		}
		return kurrentdb.Open(ctx, kurrentdb.Config{URL: driverURL, Stream: stream, Logger: kurrentLogger})
	default:
		return nil, fmt.Errorf("store URL scheme %q is not supported: use sqlite://, postgres:// or kurrentdb://", scheme)
	}
}

// TakeParam removes the query parameter key, which is Payesh's setting
// and not the driver's (?schema= for PostgreSQL, ?stream= for KurrentDB),
// from a store URL, and returns the URL left for the driver and the value.
func TakeParam(raw, key string) (driverURL, value string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("store URL: %w", err)
	}
	q := u.Query()
	value = q.Get(key)
	q.Del(key)
	u.RawQuery = q.Encode()
	return u.String(), value, nil
}

// Beside returns the SQL store that keeps st's read models and applicant
// vault: st itself when url is empty, else the store url names, which
// must be a SQL one (a KurrentDB log keeps them in PostgreSQL or SQLite
// beside it). release closes what Beside opened, and only that.
func Beside(ctx context.Context, st eventstore.Store, url string) (sql eventstore.Store, release func(), err error) {
	if url == "" {
		return st, func() {}, nil
	}
	rm, err := Open(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("read-model database %s: %w", Redact(url), err)
	}
	switch rm.(type) {
	case *sqlite.Store, *postgres.Store:
		return rm, func() { _ = rm.Close() }, nil
	}
	_ = rm.Close()
	return nil, nil, fmt.Errorf("read-model database %s: want sqlite:// or postgres://", Redact(url))
}

// kurrentLogger passes on the KurrentDB client's warnings and errors; its
// debug and info lines (every connection attempt, every subscription
// ended) would drown the server's own log.
func kurrentLogger(level string, format string, args ...any) {
	switch level {
	case "warn":
		slog.Warn("kurrentdb client: " + fmt.Sprintf(format, args...))
	case "error":
		slog.Error("kurrentdb client: " + fmt.Sprintf(format, args...))
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
