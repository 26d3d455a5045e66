package sqlite

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// Config configures Open.
type Config struct {
	// Path is the database file. Its directory and the file itself are
	// created when missing.
	Path string
	// Poll bounds how long a subscriber waits before looking for new events
	// without being woken (default 250ms). Appends made through this Store
	// wake its subscribers at once; appends made by another process sharing
	// the file are only seen when the subscriber polls.
	Poll time.Duration
	// MaxBatch caps the events written in one transaction by the group
	// committer (default 512).
	MaxBatch int
	// Synchronous is SQLite's synchronous setting: "FULL" (the default)
	// flushes the write-ahead log on every commit, so a committed event
	// survives power loss; "NORMAL" flushes only at checkpoints and may lose
	// the most recent commits on power loss (never on a process crash).
	Synchronous string

	// scanWindow is how many positions one ReadPage looks through at most,
	// unless its limit is larger (default eventstore.DefaultScanWindow);
	// tests lower it to make pages end early.
	scanWindow int
}

const (
	defaultPoll     = 250 * time.Millisecond
	defaultMaxBatch = 512
)

func (c *Config) setDefaults() {
	if c.Poll == 0 {
		c.Poll = defaultPoll
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = defaultMaxBatch
	}
	if c.Synchronous == "" {
		c.Synchronous = "FULL"
	}
	c.Synchronous = strings.ToUpper(c.Synchronous)
	if c.scanWindow == 0 {
		c.scanWindow = eventstore.DefaultScanWindow
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("sqlite: Path is required"))
	}
	if c.Poll < 0 {
		errs = append(errs, fmt.Errorf("sqlite: Poll must not be negative, got %s", c.Poll))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("sqlite: MaxBatch must not be negative, got %d", c.MaxBatch))
	}
	switch strings.ToUpper(c.Synchronous) {
	case "", "FULL", "NORMAL":
	default:
		errs = append(errs, fmt.Errorf("sqlite: Synchronous must be FULL or NORMAL, got %q", c.Synchronous))
	}
	return errors.Join(errs...)
}
