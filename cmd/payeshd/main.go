// Command payeshd is the Payesh server: the REST API over the event store.
//
//	payeshd --store sqlite://./data/payesh.db --addr :8080
//
// Every setting can also come from the environment (PAYESH_STORE,
// PAYESH_ADDR); flags win. It stops gracefully on SIGINT or SIGTERM, letting
// requests in flight finish.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/payesh/payesh/api"
	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/eventstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "payeshd:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("payeshd failed", "err", err)
		_ = m.Close()
		os.Exit(1)
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	if err := m.Close(); err != nil {
		m.Logger.Error("shutdown", "err", err)
		os.Exit(1)
	}
}

// Main is the server's composition root, kept as a value so end-to-end tests
// can start and stop a real server in-process.
type Main struct {
	StoreURL        string
	Addr            string
	ShutdownTimeout time.Duration
	Logger          *slog.Logger

	store    eventstore.Store
	server   *http.Server
	listener net.Listener
	served   chan error
}

// NewMain returns a Main with defaults.
func NewMain() *Main {
	return &Main{
		StoreURL:        backend.DefaultURL,
		Addr:            ":8080",
		ShutdownTimeout: 15 * time.Second,
		Logger:          slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	}
}

// ParseFlags reads settings from the environment, then from args.
func (m *Main) ParseFlags(args []string) error {
	if v := os.Getenv("PAYESH_STORE"); v != "" {
		m.StoreURL = v
	}
	if v := os.Getenv("PAYESH_ADDR"); v != "" {
		m.Addr = v
	}
	fs := flag.NewFlagSet("payeshd", flag.ContinueOnError)
	fs.StringVar(&m.StoreURL, "store", m.StoreURL, "event store URL: sqlite://PATH or postgres://USER@HOST:PORT/DB[?schema=NAME]")
	fs.StringVar(&m.Addr, "addr", m.Addr, "address to serve HTTP on")
	fs.DurationVar(&m.ShutdownTimeout, "shutdown-timeout", m.ShutdownTimeout, "how long to let requests finish on shutdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return nil
}

// Run opens the store and starts serving. It returns once the listener is
// up; serving continues in the background until Close.
func (m *Main) Run(ctx context.Context) error {
	store, err := backend.Open(ctx, m.StoreURL)
	if err != nil {
		return fmt.Errorf("open store %s: %w", backend.Redact(m.StoreURL), err)
	}
	m.store = store

	handler := api.New(api.Config{Store: store, Logger: m.Logger})
	m.server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.listener, err = net.Listen("tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Addr, err)
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.server.Serve(m.listener) }()
	m.Logger.Info("payeshd serving", "addr", m.listener.Addr().String(), "store", backend.Redact(m.StoreURL))
	return nil
}

// URL is the base URL the server listens on (useful with Addr ":0").
func (m *Main) URL() string { return "http://" + m.listener.Addr().String() }

// Close stops accepting requests, waits for those in flight, then closes
// the store.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownTimeout)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		m.server = nil
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		m.store = nil
	}
	return errors.Join(errs...)
}
