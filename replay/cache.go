package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/projections"
)

// CacheConfig configures a Cache.
type CacheConfig struct {
	// Log is the log replayed (the live store). Required.
	Log Log
	// Projectors are the read models each snapshot holds. Required.
	Projectors []projections.Projector
	Registry   *domain.Registry
	// Size is how many snapshots are kept (default 4): the least recently
	// used one beyond it is removed once no request reads it.
	Size int
	// MaxEvents bounds a replay: a cut beyond this position is refused
	// with a *TooLargeError (default 2,000,000).
	MaxEvents uint64
	// Concurrency is how many replays run at once (default 1); others
	// queue.
	Concurrency int
	// Timeout bounds one replay, including its time in the queue (default
	// 10 minutes). A replay goes on when the request that started it gives
	// up, so that a retry finds it built.
	Timeout time.Duration
	// TempDir is where snapshots are made (default os.TempDir()).
	TempDir string
	Logger  *slog.Logger
}

func (c *CacheConfig) setDefaults() {
	if c.Size <= 0 {
		c.Size = 4
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = 2_000_000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrTooLarge is matched by every *TooLargeError.
var ErrTooLarge = errors.New("replay: cut beyond the cache's limit")

// TooLargeError says a replay would fold more events than a Cache allows.
type TooLargeError struct {
	Position, Max uint64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("replay: replaying the log up to position %d folds more than the %d events allowed here", e.Position, e.Max)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// ErrClosed: the Cache was closed.
var ErrClosed = errors.New("replay: cache closed")

// Cache keeps recent snapshots of a set of read models and builds each
// snapshot once, however many callers ask for it at the same time. It is
// safe for concurrent use. A snapshot's cost is a replay of the log up to
// its cut (see the package documentation); the cache bounds how many are
// kept (Size), how long the log may be (MaxEvents) and how many are built
// at once (Concurrency).
type Cache struct {
	cfg    CacheConfig
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}

	mu      sync.Mutex
	entries map[cutKey]*entry
	tick    uint64 // the LRU clock
	closed  bool
	builds  sync.WaitGroup
}

// cutKey is a Cut as a map key (times as Unix microseconds, as stored).
type cutKey struct {
	position           uint64
	recorded, occurred int64
	byRecorded, byTime bool
}

func keyOf(c Cut) cutKey {
	k := cutKey{position: c.Position, byRecorded: !c.RecordedAt.IsZero(), byTime: !c.OccurredAt.IsZero()}
	if k.byRecorded {
		k.recorded = c.RecordedAt.UnixMicro()
	}
	if k.byTime {
		k.occurred = c.OccurredAt.UnixMicro()
	}
	return k
}

type entry struct {
	done chan struct{} // closed when built or failed
	snap *Snapshot
	err  error

	refs    int    // callers holding snap
	used    uint64 // the LRU clock when last acquired
	evicted bool   // out of the cache: close snap at the last release
}

// NewCache returns an empty Cache. Nothing is replayed until At.
func NewCache(cfg CacheConfig) *Cache {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Cache{cfg: cfg, ctx: ctx, cancel: cancel, sem: make(chan struct{}, cfg.Concurrency), entries: map[cutKey]*entry{}}
}

// At returns the snapshot of the read models at cut, building it if no
// recent one is kept, and a function the caller must call once done with
// it. cut.Position must be set (Resolve turns a head or a recorded-at
// time into one): the cache keys snapshots by exact cuts.
//
// When ctx ends before the snapshot is built, At returns ctx's error and
// the replay goes on (up to CacheConfig.Timeout) for the next caller. A
// cut beyond MaxEvents is a *TooLargeError; a failed replay's error is
// returned to every caller that waited for it and is not kept.
func (c *Cache) At(ctx context.Context, cut Cut) (*Snapshot, func(), error) {
	if cut.Position == 0 {
		return nil, nil, errors.New("replay: Cache.At needs a cut with a position")
	}
	if cut.Position > c.cfg.MaxEvents {
		return nil, nil, &TooLargeError{Position: cut.Position, Max: c.cfg.MaxEvents}
	}
	key := keyOf(cut)
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, nil, ErrClosed
		}
		e, ok := c.entries[key]
		if !ok {
			e = &entry{done: make(chan struct{})}
			c.entries[key] = e
			c.builds.Add(1)
			go c.build(key, e, cut)
		}
		c.mu.Unlock()

		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if e.err != nil {
			return nil, nil, e.err
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, nil, ErrClosed
		}
		if e.snap == nil { // evicted and removed meanwhile: build it again
			c.mu.Unlock()
			continue
		}
		e.refs++
		c.tick++
		e.used = c.tick
		c.mu.Unlock()
		var once sync.Once
		return e.snap, func() { once.Do(func() { c.release(e) }) }, nil
	}
}

// build replays one cut and then trims the cache.
func (c *Cache) build(key cutKey, e *entry, cut Cut) {
	defer c.builds.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	defer cancel()
	select {
	case c.sem <- struct{}{}:
		e.snap, e.err = Run(ctx, Config{
			Log: c.cfg.Log, Projectors: c.cfg.Projectors, Registry: c.cfg.Registry, Cut: cut,
			TempDir: c.cfg.TempDir, Logger: c.cfg.Logger,
		})
		<-c.sem
	case <-ctx.Done():
		e.err = fmt.Errorf("replay: waited for other replays until %w", ctx.Err())
	}
	if e.err == nil {
		c.cfg.Logger.Info("replayed", "cut", cut.String(), "position", e.snap.Position, "elapsed", e.snap.Elapsed)
	} else {
		c.cfg.Logger.Warn("replay failed", "cut", cut.String(), "err", e.err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	close(e.done)
	if e.err != nil || c.closed {
		delete(c.entries, key)
		if e.snap != nil && c.closed {
			e.evicted = true
			c.closeIfUnused(e)
		}
		return
	}
	c.tick++
	e.used = c.tick
	c.trim()
}

// trim evicts the least recently used built snapshots beyond Size.
func (c *Cache) trim() {
	for {
		var (
			built  int
			oldest cutKey
			victim *entry
		)
		for k, e := range c.entries {
			if e.snap == nil {
				continue // still building
			}
			built++
			if victim == nil || e.used < victim.used {
				oldest, victim = k, e
			}
		}
		if built <= c.cfg.Size {
			return
		}
		delete(c.entries, oldest)
		victim.evicted = true
		c.closeIfUnused(victim)
	}
}

func (c *Cache) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	c.closeIfUnused(e)
}

// closeIfUnused closes an evicted snapshot nobody reads. c.mu is held.
func (c *Cache) closeIfUnused(e *entry) {
	if e.evicted && e.refs == 0 && e.snap != nil {
		if err := e.snap.Close(); err != nil {
			c.cfg.Logger.Warn("cannot remove a replay's snapshot", "err", err)
		}
		e.snap = nil
	}
}

// Len returns how many snapshots are kept or being built.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Close stops the replays in progress and removes every snapshot once
// its readers release it. At fails with ErrClosed afterwards.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.cancel()
	c.mu.Unlock()
	c.builds.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		delete(c.entries, k)
		e.evicted = true
		c.closeIfUnused(e)
	}
	return nil
}
