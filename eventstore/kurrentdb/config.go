package kurrentdb

import (
	"errors"
	"fmt"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/payesh/payesh/eventstore"
)

// Config configures Open.
type Config struct {
	// URL is a KurrentDB connection string: kurrentdb://host:port?tls=false
	// for one node, kurrentdb+discover://host:port for a cluster found
	// through gossip, or the same with the client's own esdb:// and
	// esdb+discover:// schemes. Settings (tls, credentials, node
	// preference, keep-alive) are the client's.
	URL string
	// Stream is the KurrentDB stream holding the whole Payesh log
	// (default DefaultStream). It must not be a system stream ($...).
	Stream string
	// ScanWindow is how many positions one ReadPage looks through at
	// most, unless its limit is larger (default
	// eventstore.DefaultScanWindow): here one read of the log stream.
	ScanWindow int
	// Logger receives the client's log lines; nil leaves the client's
	// default, every level to standard output. The client logs an error
	// for each subscription it ends, Subscribe's cancelled ones included.
	Logger esdb.LoggingFunc
}

// DefaultStream is the log stream's name unless Config.Stream says
// otherwise.
const DefaultStream = "payesh-log"

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.ScanWindow == 0 {
		c.ScanWindow = eventstore.DefaultScanWindow
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL is required"))
	} else if _, err := parseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("URL: %w", err))
	}
	if strings.HasPrefix(c.Stream, "$") {
		errs = append(errs, fmt.Errorf("Stream %q: names starting with $ are KurrentDB's system streams", c.Stream))
	}
	if c.ScanWindow < 0 {
		errs = append(errs, fmt.Errorf("ScanWindow is %d, must not be negative", c.ScanWindow))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kurrentdb: invalid config: %w", err)
	}
	return nil
}

// parseURL parses a connection string. Client v4.2.0 knows only the
// esdb:// schemes, so the kurrentdb:// ones, which KurrentDB's
// documentation now uses, are rewritten to them; everything after the
// scheme means the same to both.
func parseURL(url string) (*esdb.Configuration, error) {
	for _, scheme := range [...]string{"kurrentdb+discover://", "kurrentdb://"} {
		if rest, ok := strings.CutPrefix(url, scheme); ok {
			url = "esdb" + strings.TrimPrefix(scheme, "kurrentdb") + rest
			break
		}
	}
	return esdb.ParseConnectionString(url)
}
