package postgres

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payesh/payesh/eventstore"
)

// Config configures Open.
type Config struct {
	// URL is a libpq connection string or postgres:// URL.
	URL string
	// Schema holds the store's tables (default "public"). It is created if
	// missing, and set as the connections' search_path, so read models
	// written through Pool land next to the log.
	Schema string
	// MaxConns caps the pool (default 10). Appends use one connection at
	// a time whatever the number of writers; the rest serve reads. The
	// LISTEN connection is extra.
	MaxConns int32
	// Poll bounds how long a live subscription waits without a
	// notification before looking for new events anyway (default 1s). It
	// only matters if a notification is lost, e.g. while the LISTEN
	// connection is reconnecting.
	Poll time.Duration
	// MaxBatch caps the events written in one group-commit transaction
	// (default 512).
	MaxBatch int

	// copyThreshold is the batch size from which events are written with
	// COPY instead of one INSERT (default defaultCopyThreshold); tests
	// lower it to exercise the COPY path.
	copyThreshold int
	// scanWindow is how many positions one ReadPage looks through at most,
	// unless its limit is larger (default eventstore.DefaultScanWindow);
	// tests lower it to make pages end early.
	scanWindow int
}

func (c *Config) setDefaults() {
	if c.Schema == "" {
		c.Schema = "public"
	}
	if c.MaxConns == 0 {
		c.MaxConns = 10
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 512
	}
	if c.copyThreshold == 0 {
		c.copyThreshold = defaultCopyThreshold
	}
	if c.scanWindow == 0 {
		c.scanWindow = eventstore.DefaultScanWindow
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL is required"))
	} else if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("URL: %w", err))
	}
	switch {
	case len(c.Schema) > maxIdentifierLen:
		errs = append(errs, fmt.Errorf("Schema %q is longer than %d bytes", c.Schema, maxIdentifierLen))
	case strings.ContainsRune(c.Schema, 0):
		errs = append(errs, fmt.Errorf("Schema %q contains a NUL byte", c.Schema))
	case strings.HasPrefix(strings.ToLower(c.Schema), "pg_"):
		errs = append(errs, fmt.Errorf("Schema %q: names starting with pg_ are reserved", c.Schema))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("MaxConns is %d, must not be negative", c.MaxConns))
	}
	if c.Poll < 0 {
		errs = append(errs, fmt.Errorf("the Poll interval is %s, must not be negative", c.Poll))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("MaxBatch is %d, must not be negative", c.MaxBatch))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("postgres: invalid config: %w", err)
	}
	return nil
}

// maxIdentifierLen is PostgreSQL's NAMEDATALEN-1: longer names are truncated.
const maxIdentifierLen = 63
