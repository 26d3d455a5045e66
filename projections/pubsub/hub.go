package pubsub

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/payesh/payesh/eventstore"
)

// hub follows one store's log for every subscription of this process: a
// single unfiltered store.Subscribe from the head, which notes, per
// subscription, the newest new event it selects and wakes that subscription.
// Subscriptions read their events themselves with ReadAll (at their own,
// ack-paced speed) and, thanks to the hub, only when there is something to
// read: an idle subscription costs no query, whatever the rate of commits
// elsewhere in the log. (With each subscription running its own
// store.Subscribe, every commit made every live subscription query the
// store, which swamped SQLite under Watermill's suite.)
type hub struct {
	store eventstore.Store
	log   watermill.LoggerAdapter
	key   any

	mu      sync.Mutex
	refs    int
	watches map[*watch]struct{}
	started bool   // base and pos are known
	base    uint64 // the hub knows every event after base...
	pos     uint64 // ...up to pos
	err     error  // set when the hub stopped for good (the store closed)
	stop    context.CancelFunc
	done    chan struct{}
}

// watch is one subscription's registration with the hub.
type watch struct {
	h   *hub
	sel selector
	sig *eventstore.Signal
	// Under h.mu: the newest position the hub saw that sel selects, and
	// where the hub's knowledge for this watch begins (the hub's position
	// when the watch was made, or its base if it had not started then).
	match   uint64
	base    uint64
	baseSet bool
}

var hubs = struct {
	mu sync.Mutex
	m  map[any]*hub
}{m: map[any]*hub{}}

// hubFor returns the running hub of store, starting it if needed; release
// it with (*hub).release. Stores are pointers in practice; a store that is
// not comparable gets a hub per caller (keyed by owner).
func hubFor(store eventstore.Store, owner any, log watermill.LoggerAdapter) *hub {
	var key any = store
	if t := reflect.TypeOf(store); !t.Comparable() {
		key = owner
	}
	hubs.mu.Lock()
	defer hubs.mu.Unlock()
	h := hubs.m[key]
	if h == nil {
		ctx, stop := context.WithCancel(context.Background())
		h = &hub{store: store, log: log, key: key, watches: map[*watch]struct{}{}, stop: stop, done: make(chan struct{})}
		hubs.m[key] = h
		go h.run(ctx)
	}
	h.refs++
	return h
}

func (h *hub) release() {
	hubs.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last {
		delete(hubs.m, h.key)
	}
	hubs.mu.Unlock()
	if last {
		h.stop()
		<-h.done
	}
}

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	for ctx.Err() == nil {
		err := h.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, eventstore.ErrClosed) {
			h.mu.Lock()
			h.err = err
			h.mu.Unlock()
			h.wakeAll()
			return
		}
		h.log.Error("Following the log failed, retrying", err, nil)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (h *hub) follow(ctx context.Context) error {
	h.mu.Lock()
	started, from := h.started, h.pos
	h.mu.Unlock()
	if !started {
		head, err := h.store.Head(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.started, h.base, h.pos = true, head.Position, head.Position
		h.mu.Unlock()
		from = head.Position
		h.wakeAll() // subscriptions waiting for the hub to start look again
	}
	var woken []*watch
	return h.store.Subscribe(ctx, from, eventstore.Filter{}, func(_ context.Context, batch []eventstore.Event) error {
		woken = woken[:0]
		h.mu.Lock()
		for w := range h.watches {
			hit := false
			for i := range batch {
				if w.sel.selects(&batch[i]) {
					w.match, hit = batch[i].Position, true
				}
			}
			if hit {
				woken = append(woken, w)
			}
		}
		h.pos = batch[len(batch)-1].Position
		h.mu.Unlock()
		for _, w := range woken {
			w.sig.Broadcast()
		}
		return nil
	})
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	ws := make([]*watch, 0, len(h.watches))
	for w := range h.watches {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		w.sig.Broadcast()
	}
}

func (h *hub) watch(sel selector) *watch {
	w := &watch{h: h, sel: sel, sig: eventstore.NewSignal()}
	h.mu.Lock()
	h.watches[w] = struct{}{}
	if h.started {
		w.base, w.baseSet = h.pos, true
	}
	h.mu.Unlock()
	return w
}

func (w *watch) close() {
	w.h.mu.Lock()
	delete(w.h.watches, w)
	w.h.mu.Unlock()
}

// view is what the hub knows for a watch, with the channel that the next
// relevant change closes (taken first, so no wake-up is lost).
type view struct {
	wake    <-chan struct{}
	started bool
	base    uint64
	pos     uint64
	match   uint64
	err     error
}

func (w *watch) view() view {
	c := w.sig.C()
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	base := w.h.base
	if w.baseSet {
		base = w.base
	}
	return view{wake: c, started: w.h.started, base: base, pos: w.h.pos, match: w.match, err: w.h.err}
}

// caughtUp reports whether the hub has seen every event after `after` up to
// its position and none of them is selected: nothing to read until a wake.
func (v view) caughtUp(after uint64) bool {
	return v.started && after >= v.base && v.match <= after
}

// stream delivers the events sel selects after `after` to handle, in
// global order and in batches of at most batchSize, until ctx ends or
// something fails. It only moves on by what ReadAll returned, so it never
// skips an event even if a read comes from an older snapshot of the log.
func (w *watch) stream(ctx context.Context, after uint64, batchSize int, poll time.Duration, handle func(batch []eventstore.Event) error) error {
	retry := 10 * time.Millisecond
	for {
		v := w.view()
		if v.err != nil {
			return v.err
		}
		if v.caughtUp(after) {
			after = max(after, v.pos) // later reads start past what nobody wants
			if err := waitFor(ctx, v.wake, 0); err != nil {
				return err
			}
			continue
		}
		batch, err := w.h.store.ReadAll(ctx, after, batchSize, w.sel.filter)
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := handle(batch); err != nil {
				return err
			}
			after = batch[len(batch)-1].Position
			retry = 10 * time.Millisecond
			continue
		}
		// Nothing read, though the hub may know better: it saw a selected
		// event we did not (the read came from an older snapshot: try again
		// soon), or `after` lies before what the hub knows (look again now
		// and then, in case the read was old).
		delay := poll
		if v.started && v.match > after {
			delay, retry = retry, min(2*retry, poll)
		}
		if err := waitFor(ctx, v.wake, delay); err != nil {
			return err
		}
	}
}

// waitFor waits for wake, ctx or, if d > 0, d.
func waitFor(ctx context.Context, wake <-chan struct{}, d time.Duration) error {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-timeout:
	}
	return nil
}
