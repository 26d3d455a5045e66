package eventstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The global hash chain makes the log a single sequence: an event's hash needs
// its predecessor's, so positions are handed out one transaction at a time
// under a lock on the chain head. Holding that lock across a commit costs one
// disk flush per transaction, which would cap throughput at one append per
// flush whatever the number of writers. GroupCommitter instead gathers the
// appends that arrive while a transaction is in flight and writes them
// together in the next one: each append still gets its own optimistic
// concurrency check and idempotency check, but they share one lock
// acquisition and one flush. Under load the batch grows, so throughput rises
// with the number of concurrent writers instead of queueing behind the lock.

// BatchTx is one open transaction of a SQL backend, holding the chain-head
// lock from LockHead until Commit or Rollback. Its methods are called from a
// single goroutine.
type BatchTx interface {
	// Prepare takes the exclusive lock on the chain head (so no other
	// process can append until this transaction ends) and reads, under it,
	// the head, the stored events among ids (keyed by ID) and the current
	// version of each stream (absent streams may be omitted, meaning 0).
	// It is one method so a networked backend can send all of it in one
	// round trip: the lock is held until commit, so every round trip in
	// the transaction limits the whole log's append rate.
	Prepare(ctx context.Context, ids, streams []string) (Head, map[string]Event, map[string]uint64, error)
	// Insert writes events, in position order, and moves the head to the
	// last one.
	Insert(ctx context.Context, events []Event, head Head) error
	// Commit ends the transaction. After a failed Commit the committer
	// still calls Rollback, which must then release whatever is left.
	Commit(ctx context.Context) error
	// Rollback ends the transaction without writing; calling it after the
	// transaction ended is harmless.
	Rollback(ctx context.Context) error
}

// BatchBackend opens transactions for the GroupCommitter.
type BatchBackend interface {
	Begin(ctx context.Context) (BatchTx, error)
}

// GroupCommitter serialises appends through one goroutine that commits them
// in batches. Create it with NewGroupCommitter, run Run in a goroutine, and
// call Append from any number of goroutines.
type GroupCommitter struct {
	backend  BatchBackend
	maxBatch int
	now      func() time.Time
	requests chan *appendRequest
	// Committed, if set, is called after every successful commit with the
	// new head; backends use it to wake their subscribers.
	committed func(Head)

	// mu makes queueing and closing exclusive: Append queues only while
	// holding it shared and seeing closed false, and Close sets closed under
	// it exclusively, so no request can be queued after Run's final drain.
	mu        sync.RWMutex
	closed    bool
	runOnce   sync.Once
	closeOnce sync.Once
	closing   chan struct{}
	done      chan struct{}

	stats struct {
		transactions, requests, events atomic.Uint64
	}
}

// CommitStats counts what the committer has written since it was created.
// Requests per transaction is the batching achieved: how many appends shared
// each lock acquisition and flush.
type CommitStats struct {
	Transactions uint64 // committed transactions that wrote events
	Requests     uint64 // appends whose events they wrote
	Events       uint64 // events written
}

// Stats returns the counters. It is safe to call at any time.
func (g *GroupCommitter) Stats() CommitStats {
	return CommitStats{
		Transactions: g.stats.transactions.Load(),
		Requests:     g.stats.requests.Load(),
		Events:       g.stats.events.Load(),
	}
}

type appendRequest struct {
	ctx      context.Context
	stream   string
	expected ExpectedVersion
	events   []Proposed
	reply    chan appendReply
}

type appendReply struct {
	res AppendResult
	err error
	// pending is true when the answer holds only if the batch commits:
	// the request's events are in it, or it is a retry of events that are.
	pending bool
}

// GroupCommitConfig configures a GroupCommitter.
type GroupCommitConfig struct {
	// MaxBatch caps the events written in one transaction (default 512).
	MaxBatch int
	// Now is the clock for recorded-at (default time.Now).
	Now func() time.Time
	// Committed is called after each commit with the new head.
	Committed func(Head)
}

// NewGroupCommitter returns a committer writing through backend. Run must be
// started for appends to proceed.
func NewGroupCommitter(backend BatchBackend, cfg GroupCommitConfig) *GroupCommitter {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &GroupCommitter{
		backend:   backend,
		maxBatch:  cfg.MaxBatch,
		now:       cfg.Now,
		committed: cfg.Committed,
		requests:  make(chan *appendRequest, 1024),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
	}
}

// Append validates the request, queues it for the next batch and waits for
// its outcome. It implements Store.Append's contract.
func (g *GroupCommitter) Append(ctx context.Context, stream string, expected ExpectedVersion, events []Proposed) (AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	if err := Validate(stream, events, g.now()); err != nil {
		return AppendResult{}, err
	}
	req := &appendRequest{ctx: ctx, stream: stream, expected: expected, events: events, reply: make(chan appendReply, 1)}
	if err := g.enqueue(ctx, req); err != nil {
		return AppendResult{}, err
	}
	// Once queued, the request may already be in a transaction: wait for
	// its outcome rather than returning on cancellation, so the caller never
	// sees "cancelled" for an append that committed.
	r := <-req.reply
	return r.res, r.err
}

// enqueue hands a request to Run, unless the committer is closed or ctx
// ends first.
func (g *GroupCommitter) enqueue(ctx context.Context, req *appendRequest) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return ErrClosed
	}
	select {
	case g.requests <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run commits queued appends until Close is called. It returns when the
// queue is drained. Calling it more than once does nothing.
func (g *GroupCommitter) Run() {
	g.runOnce.Do(g.run)
}

func (g *GroupCommitter) run() {
	defer close(g.done)
	for {
		var first *appendRequest
		select {
		case first = <-g.requests:
		case <-g.closing:
			g.drain()
			return
		}
		batch := []*appendRequest{first}
		n := len(first.events)
	fill:
		for n < g.maxBatch {
			select {
			case r := <-g.requests:
				batch = append(batch, r)
				n += len(r.events)
			default:
				break fill
			}
		}
		g.commit(batch)
	}
}

// drain refuses what is still queued after Close.
func (g *GroupCommitter) drain() {
	for {
		select {
		case r := <-g.requests:
			r.reply <- appendReply{err: ErrClosed}
		default:
			return
		}
	}
}

// Close stops Run after the batch in flight and waits for it; appends
// queued but not yet in a batch are answered ErrClosed. If Run was never
// started, Close returns at once.
func (g *GroupCommitter) Close() {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		g.mu.Unlock()
		close(g.closing)
		// Claim Run's once: if Run never started, nothing will close done.
		g.runOnce.Do(func() { g.drain(); close(g.done) })
	})
	<-g.done
}

func (g *GroupCommitter) commit(batch []*appendRequest) {
	// Requests cancelled while queued are dropped before the transaction.
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.reply <- appendReply{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// The transaction is not tied to any one caller's context: a caller
	// giving up must not abort the others' appends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replies, head, err := g.write(ctx, live)
	if err != nil && len(live) > 1 && ctx.Err() == nil {
		// One request's events may be what the database refused. Retry
		// each alone so the others are not failed with it; nothing of the
		// failed transaction was written, so this cannot write twice.
		for _, r := range live {
			g.commit([]*appendRequest{r})
		}
		return
	}
	if err == nil && head != nil {
		g.stats.transactions.Add(1)
		for i, r := range live {
			if replies[i].pending && replies[i].err == nil && !replies[i].res.Duplicate {
				g.stats.requests.Add(1)
				g.stats.events.Add(uint64(len(r.events)))
			}
		}
		if g.committed != nil {
			g.committed(*head)
		}
	}
	for i, r := range live {
		switch {
		case replies == nil:
			r.reply <- appendReply{err: err}
		case err != nil && replies[i].pending:
			// The answer depended on this batch, which did not commit.
			r.reply <- appendReply{err: err}
		default:
			r.reply <- replies[i]
		}
	}
}

// write decides every request of the batch inside one transaction and
// commits the events of those accepted. It returns one reply per request
// (nil when nothing could be decided), the new head when events were
// committed, and the transaction's error, if any. Replies not marked pending
// stand even when the transaction fails.
func (g *GroupCommitter) write(ctx context.Context, batch []*appendRequest) ([]appendReply, *Head, error) {
	tx, err := g.backend.Begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("eventstore: begin: %w", err)
	}
	replies, head, err := g.decide(ctx, tx, batch)
	if err != nil || head == nil {
		// Nothing to keep: a failed transaction, or one that only read.
		// A rollback failure changes no answer, so it is not reported.
		_ = tx.Rollback(ctx)
		return replies, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		_ = tx.Rollback(ctx)
		return replies, nil, fmt.Errorf("eventstore: commit: %w", err)
	}
	return replies, head, nil
}

// decide checks each request against the stored state and inserts the
// accepted events; the caller commits or rolls back.
func (g *GroupCommitter) decide(ctx context.Context, tx BatchTx, batch []*appendRequest) ([]appendReply, *Head, error) {
	var ids, streams []string
	for _, r := range batch {
		for _, e := range r.events {
			ids = append(ids, e.ID)
		}
		streams = append(streams, r.stream)
	}
	head, stored, versions, err := tx.Prepare(ctx, ids, streams)
	if err != nil {
		return nil, nil, err
	}
	if stored == nil {
		stored = map[string]Event{}
	}
	if versions == nil {
		versions = map[string]uint64{}
	}
	inBatch := map[string]bool{}

	now := g.now()
	replies := make([]appendReply, len(batch))
	var pending []Event
	for i, r := range batch {
		if dup, res, derr := duplicateOf(r, stored); dup {
			replies[i] = appendReply{res: res, err: derr, pending: inBatch[r.events[0].ID]}
			continue
		}
		current := versions[r.stream]
		if !r.expected.Matches(current) {
			replies[i] = appendReply{err: &VersionError{Stream: r.stream, Expected: r.expected, Actual: current}}
			continue
		}
		built, h := Build(r.stream, current, head.Position, head.Hash, now, r.events)
		head = Head{Position: built[len(built)-1].Position, Hash: h}
		versions[r.stream] = built[len(built)-1].Version
		for _, e := range built {
			// Later requests in this batch retrying the same IDs see these.
			stored[e.ID] = e
			inBatch[e.ID] = true
		}
		pending = append(pending, built...)
		replies[i] = appendReply{pending: true, res: AppendResult{
			FirstVersion: built[0].Version, LastVersion: built[len(built)-1].Version,
			FirstPosition: built[0].Position, LastPosition: built[len(built)-1].Position,
		}}
	}
	if len(pending) == 0 {
		return replies, nil, nil
	}
	if err := tx.Insert(ctx, pending, head); err != nil {
		return replies, nil, err
	}
	return replies, &head, nil
}

// duplicateOf reports whether any of r's IDs is already stored and, if so,
// what the append must answer.
func duplicateOf(r *appendRequest, stored map[string]Event) (bool, AppendResult, error) {
	found := make(map[string]Event)
	for _, e := range r.events {
		if s, ok := stored[e.ID]; ok {
			found[e.ID] = s
		}
	}
	if len(found) == 0 {
		return false, AppendResult{}, nil
	}
	res, err := CheckDuplicate(r.stream, r.events, found)
	return true, res, err
}
