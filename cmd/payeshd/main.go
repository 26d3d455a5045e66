// Command payeshd is the Payesh server: the REST API over the event store,
// and the projections that keep its read models.
//
//	payeshd --store sqlite://./data/payesh.db --addr :8080
//
// --role chooses what a process runs: "all" (the default: API and
// projections), "api" (the API only; the read models are kept by other
// processes), or "projector" (the projections only; it still serves
// /healthz, /readyz and /metrics). Every setting can also come from the
// environment (PAYESH_STORE, PAYESH_ADDR, PAYESH_ROLE); flags win. It stops
// gracefully on SIGINT or SIGTERM, letting requests in flight finish and
// the projections commit or roll back their batch.
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
	"github.com/payesh/payesh/cmd/internal/readmodels"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// The roles of --role.
const (
	RoleAll       = "all"
	RoleAPI       = "api"
	RoleProjector = "projector"
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
	Role            string
	ShutdownTimeout time.Duration
	Logger          *slog.Logger

	store    eventstore.Store
	db       *projections.DB
	engine   *projections.Engine
	stopProj context.CancelFunc
	projDone chan error
	server   *http.Server
	listener net.Listener
	served   chan error
}

// NewMain returns a Main with defaults.
func NewMain() *Main {
	return &Main{
		StoreURL:        backend.DefaultURL,
		Addr:            ":8080",
		Role:            RoleAll,
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
	if v := os.Getenv("PAYESH_ROLE"); v != "" {
		m.Role = v
	}
	fs := flag.NewFlagSet("payeshd", flag.ContinueOnError)
	fs.StringVar(&m.StoreURL, "store", m.StoreURL, "event store URL: sqlite://PATH or postgres://USER@HOST:PORT/DB[?schema=NAME]")
	fs.StringVar(&m.Addr, "addr", m.Addr, "address to serve HTTP on")
	fs.StringVar(&m.Role, "role", m.Role, "what this process runs: all (API and projections), api, or projector")
	fs.DurationVar(&m.ShutdownTimeout, "shutdown-timeout", m.ShutdownTimeout, "how long to let requests finish on shutdown")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch m.Role {
	case RoleAll, RoleAPI, RoleProjector:
	default:
		return fmt.Errorf("--role %q: want %s, %s or %s", m.Role, RoleAll, RoleAPI, RoleProjector)
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

	cfg := api.Config{Store: store, Logger: m.Logger}
	if m.Role != RoleAPI {
		if err := m.startProjections(); err != nil {
			return err
		}
		cfg.Projections = m.engine
	}
	handler := api.New(cfg)
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
	m.Logger.Info("payeshd serving", "addr", m.listener.Addr().String(), "store", backend.Redact(m.StoreURL), "role", m.Role)
	return nil
}

// startProjections runs the read models' projections in the background
// until Close: each catches up from its checkpoint (or builds its tables
// the first time, or rebuilds them blue/green when its version changed),
// then follows the log. Their progress is in /readyz and /metrics.
func (m *Main) startProjections() error {
	db, err := projections.OpenDB(m.store)
	if err != nil {
		return err
	}
	m.db = db
	m.engine, err = projections.New(projections.Config{
		Store: m.store, DB: db, Projectors: readmodels.Projectors(),
		Logger: m.Logger.With("component", "projections"),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stopProj, m.projDone = cancel, make(chan error, 1)
	go func() { m.projDone <- m.engine.Run(ctx) }()
	return nil
}

// URL is the base URL the server listens on (useful with Addr ":0").
func (m *Main) URL() string { return "http://" + m.listener.Addr().String() }

// Close stops accepting requests, waits for those in flight, stops the
// projections, then closes the store.
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
	if m.stopProj != nil {
		m.stopProj()
		<-m.projDone
		m.stopProj = nil
	}
	if m.db != nil {
		if err := m.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close read models: %w", err))
		}
		m.db = nil
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		m.store = nil
	}
	return errors.Join(errs...)
}
