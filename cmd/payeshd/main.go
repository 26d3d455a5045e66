// Command payeshd is the Payesh server: the REST API over the event store,
// and the projections that keep its read models.
//
//	payeshd --store sqlite://./data/payesh.db --addr :8080
//
// /v1 requests carry a bearer credential: an Ed25519-signed token
// (--token-pubkey, the public keys whose tokens are accepted; payesh token
// mints them) or an API key listed in --api-keys. --dev (for make run and
// local work only) also accepts tokens signed with the public development
// key and uses the public development pseudonymisation key when none is
// given; without --dev both are refused.
//
// --role chooses what a process runs: "all" (the default: API and
// projections), "api" (the API only; the read models are kept by other
// processes), or "projector" (the projections only; it still serves
// /healthz, /readyz and /metrics). Every setting can also come from the
// environment (PAYESH_STORE, PAYESH_ADDR, PAYESH_ROLE, PAYESH_NATS); flags
// win.
//
// With --nats the projections are shared among processes through NATS
// JetStream (package natslog): every process that runs them forwards the log
// to JetStream (one at a time, under a lease in PostgreSQL) and applies it to
// the read models as one of the competing consumers, so several
// "--role projector" processes on several machines keep the same read
// models, each event applied once, and any of them may die. It stops
// gracefully on SIGINT or SIGTERM, letting requests in flight finish and
// the projections commit or roll back their batch.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/payesh/payesh/api"
	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/readmodels"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/natslog"
	"github.com/payesh/payesh/projections/pubsub"
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
	Dev             bool
	PseudonymKey    string // file; else $PAYESH_PSEUDONYM_KEY
	TokenPubKeys    string // PEM file of accepted token public keys
	APIKeys         string // JSON Lines file of hashed API keys
	ShutdownTimeout time.Duration
	// AnswerCacheMB is the memory for read-model answers served again
	// while their read model has not moved (api.Config.AnswerCacheBytes);
	// 0 turns the cache off.
	AnswerCacheMB int
	// NATS, when set, shares the projections among processes through
	// JetStream (natslog) instead of each process following the log alone.
	NATS NATSConfig
	// ReadModelsURL is the SQL database (sqlite:// or postgres://) of the
	// read models and the applicant key vault when it is not the store's
	// own; a KurrentDB store needs one.
	ReadModelsURL string
	Logger        *slog.Logger

	store    eventstore.Store
	rmStore  eventstore.Store // the SQL store holding read models and vault: store, or ReadModelsURL's
	db       *projections.DB
	engine   *projections.Engine
	stopProj context.CancelFunc
	projDone chan error
	server   *http.Server
	api      *api.Server
	listener net.Listener
	served   chan error
}

// NATSConfig is where the log is carried on NATS (natslog.Config).
type NATSConfig struct {
	URL      string // empty: projections follow the store directly
	Stream   string
	Subjects string
	AckWait  time.Duration
}

// NewMain returns a Main with defaults.
func NewMain() *Main {
	return &Main{
		StoreURL:        backend.DefaultURL,
		Addr:            ":8080",
		Role:            RoleAll,
		ShutdownTimeout: 15 * time.Second,
		AnswerCacheMB:   api.DefaultAnswerCacheBytes >> 20,
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
	if v := os.Getenv("PAYESH_READMODELS"); v != "" {
		m.ReadModelsURL = v
	}
	if v := os.Getenv("PAYESH_NATS"); v != "" {
		m.NATS.URL = v
	}
	if v := os.Getenv("PAYESH_DEV"); v == "1" || v == "true" {
		m.Dev = true
	}
	if v := os.Getenv("PAYESH_ANSWER_CACHE_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("PAYESH_ANSWER_CACHE_MB=%q: want a number of MiB", v)
		}
		m.AnswerCacheMB = n
	}
	fs := flag.NewFlagSet("payeshd", flag.ContinueOnError)
	fs.StringVar(&m.StoreURL, "store", m.StoreURL, "event store URL: sqlite://PATH, postgres://USER@HOST:PORT/DB[?schema=NAME] or kurrentdb://HOST:PORT[?tls=false&stream=NAME]")
	fs.StringVar(&m.Addr, "addr", m.Addr, "address to serve HTTP on")
	fs.StringVar(&m.Role, "role", m.Role, "what this process runs: all (API and projections), api, or projector")
	fs.BoolVar(&m.Dev, "dev", m.Dev, "development mode: accept tokens signed with the public dev key, allow the dev pseudonymisation key")
	fs.StringVar(&m.PseudonymKey, "pseudonym-key", m.PseudonymKey, "file holding the applicant pseudonymisation key (hex or 32+ raw bytes); default $"+backend.PseudonymKeyEnv)
	fs.StringVar(&m.TokenPubKeys, "token-pubkey", m.TokenPubKeys, "PEM file with the Ed25519 public keys whose tokens are accepted (payesh token keygen)")
	fs.StringVar(&m.APIKeys, "api-keys", m.APIKeys, "file of hashed API keys and the principals they grant (payesh token apikey)")
	fs.DurationVar(&m.ShutdownTimeout, "shutdown-timeout", m.ShutdownTimeout, "how long to let requests finish on shutdown")
	fs.IntVar(&m.AnswerCacheMB, "answer-cache-mb", m.AnswerCacheMB, "MiB of read-model query answers kept and served again while their read model has not moved (env PAYESH_ANSWER_CACHE_MB); 0 turns the cache off")
	fs.StringVar(&m.ReadModelsURL, "readmodels", m.ReadModelsURL, "SQL database of the read models and the applicant vault, when not the store's own (required with a KurrentDB store): sqlite://PATH or postgres://...")
	fs.StringVar(&m.NATS.URL, "nats", m.NATS.URL, "NATS server URL(s): share the projections with other processes through JetStream (natslog)")
	fs.StringVar(&m.NATS.Stream, "nats-stream", m.NATS.Stream, "JetStream stream carrying the log (default PAYESH_LOG)")
	fs.StringVar(&m.NATS.Subjects, "nats-subjects", m.NATS.Subjects, "subject prefix of the log's messages (default payesh.log)")
	fs.DurationVar(&m.NATS.AckWait, "nats-ack-wait", m.NATS.AckWait, "how long a worker may hold a message before JetStream gives it to another (default 30s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if m.AnswerCacheMB < 0 {
		return fmt.Errorf("--answer-cache-mb %d: want 0 (off) or more", m.AnswerCacheMB)
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
	m.store, m.rmStore = store, store
	if m.ReadModelsURL != "" {
		if m.rmStore, err = backend.Open(ctx, m.ReadModelsURL); err != nil {
			return fmt.Errorf("open read-model database %s: %w", backend.Redact(m.ReadModelsURL), err)
		}
	}

	cfg := api.Config{Store: store, Logger: m.Logger, AnswerCacheBytes: int64(m.AnswerCacheMB) << 20}
	if m.AnswerCacheMB == 0 {
		cfg.AnswerCacheBytes = -1
	}
	if m.db, err = projections.OpenDB(m.rmStore); err != nil {
		if m.ReadModelsURL == "" {
			return fmt.Errorf("%w (give --readmodels postgres://...)", err)
		}
		return err
	}
	if m.Role != RoleProjector {
		if err := m.configureAPI(ctx, &cfg); err != nil {
			return err
		}
	}
	if m.Role != RoleAPI {
		if err := m.startProjections(); err != nil {
			return err
		}
		cfg.Projections = m.engine
		cfg.Positions = m.engine.Reader() // read-your-writes waits wake on each commit
	}
	m.api = api.New(cfg)
	m.server = &http.Server{
		Handler:           m.api,
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
	var err error
	m.engine, err = projections.New(projections.Config{
		Store: m.store, DB: m.db, Projectors: readmodels.Projectors(),
		Logger: m.Logger.With("component", "projections"),
	})
	if err != nil {
		return err
	}
	run := m.engine.Run
	if m.NATS.URL != "" {
		if run, err = m.natsProjections(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stopProj, m.projDone = cancel, make(chan error, 1)
	go func() { m.projDone <- run(ctx) }()
	return nil
}

// natsProjections returns what runs the projections through JetStream: a
// forwarder of the log (active in one process at a time where the store's
// database can lease) and a worker of every read model.
func (m *Main) natsProjections() (func(context.Context) error, error) {
	cfg := natslog.Config{
		URL: m.NATS.URL, Stream: m.NATS.Stream, Subjects: m.NATS.Subjects, AckWait: m.NATS.AckWait,
		Logger: m.Logger,
	}
	var leaser pubsub.Leaser
	if pg, ok := m.rmStore.(*postgres.Store); ok {
		leaser = postgres.NewCheckpoints(pg)
	}
	fwd, err := natslog.NewForwarder(m.store, leaser, cfg)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range readmodels.Projectors() {
		names = append(names, p.Name())
	}
	w, err := natslog.NewWorker(m.store, m.engine, m.engine.Reader(), names, cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		fwdDone := make(chan error, 1)
		go func() { fwdDone <- fwd.Run(ctx) }()
		werr := w.Run(ctx)
		cancel()
		if err := <-fwdDone; err != nil && !errors.Is(err, context.Canceled) {
			m.Logger.Error("forwarder stopped", "err", err)
		}
		return werr
	}, nil
}

// configureAPI sets up what /v1 needs: the command service (with the
// applicant vault and pseudonymisation key), the read models, and the
// credentials accepted.
func (m *Main) configureAPI(ctx context.Context, cfg *api.Config) error {
	key, devKey, err := backend.PseudonymKey(m.PseudonymKey)
	if err != nil {
		return err
	}
	if devKey && !m.Dev {
		return fmt.Errorf("no pseudonymisation key: give --pseudonym-key FILE or $%s (or --dev for local work)", backend.PseudonymKeyEnv)
	}
	vault, err := backend.Vault(m.rmStore)
	if err != nil {
		return err
	}
	svc, err := ledger.NewService(ledger.New(m.store, schema.Registry(), ledger.HotStreams()), vault, key)
	if err != nil {
		return err
	}
	system := ledger.Meta{Actor: eventstore.Actor{ID: "payeshd", Role: "admin", Org: "payesh"}}
	if err := svc.EnsureReference(ctx, system); err != nil {
		return fmt.Errorf("reference data: %w", err)
	}
	cat := &liveCatalog{svc: svc}
	var chain auth.Chain
	var keys []ed25519.PublicKey
	if m.TokenPubKeys != "" {
		if keys, err = auth.ReadPublicKeysFile(m.TokenPubKeys); err != nil {
			return err
		}
	}
	if m.Dev {
		pub, _ := auth.DevKeys()
		keys = append(keys, pub)
		m.Logger.Warn("development mode: tokens signed with the public development key are accepted")
	}
	if len(keys) > 0 {
		v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Catalog: cat, DevMode: m.Dev})
		if err != nil {
			return err
		}
		chain = append(chain, v)
	}
	if m.APIKeys != "" {
		kf, err := auth.ReadKeyFile(m.APIKeys, cat, time.Now)
		if err != nil {
			return err
		}
		chain = append(chain, kf)
	}
	if len(chain) == 0 {
		return errors.New("no credentials are accepted: give --token-pubkey FILE and/or --api-keys FILE (or --dev for local work)")
	}
	cfg.Service, cfg.ReadModels, cfg.Auth = svc, m.db, chain
	return nil
}

// liveCatalog is the reference catalogue for checking credentials' scopes,
// re-read at most every few seconds (each read costs a query).
type liveCatalog struct {
	svc *ledger.Service
	mu  sync.Mutex
	cat reference.Catalog
	at  time.Time
}

// Has implements auth.Catalog.
func (c *liveCatalog) Has(kind reference.Kind, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 5*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if cat, err := c.svc.Catalog(ctx); err == nil {
			c.cat, c.at = cat, time.Now()
		}
	}
	return c.cat.Has(kind, id)
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
	if m.api != nil {
		// The replays kept for as-of queries live in temporary files.
		if err := m.api.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the API: %w", err))
		}
		m.api = nil
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
	if m.rmStore != nil && m.rmStore != m.store {
		if err := m.rmStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close read-model database: %w", err))
		}
	}
	m.rmStore = nil
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		m.store = nil
	}
	return errors.Join(errs...)
}
