package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/payesh/payesh/eventstore"
)

// Store is an eventstore.Store on KurrentDB. It is safe for concurrent use
// by many goroutines, and by many processes sharing one log stream.
type Store struct {
	client     *esdb.Client
	log        string // the log stream's name
	scanWindow int
	idx        *index

	// appendMu serialises this process's appends: they would only
	// conflict on the log stream's revision and retry.
	appendMu sync.Mutex

	closeOnce sync.Once
	closed    chan struct{}
}

var (
	_ eventstore.Store        = (*Store)(nil)
	_ eventstore.ManyAppender = (*Store)(nil)
)

// Open connects to KurrentDB and builds the index from the log stream,
// which it reads from the start: that takes a while for a long log (see
// the package doc). ctx bounds the reading, not the store's life.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conf, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: %w", err)
	}
	if cfg.Logger != nil {
		conf.Logger = cfg.Logger
	}
	client, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: %w", err)
	}
	s := &Store{client: client, log: cfg.Stream, scanWindow: cfg.ScanWindow, idx: newIndex(), closed: make(chan struct{})}
	if err := s.catchUp(ctx); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kurrentdb: open: read the log stream %q: %w", cfg.Stream, err)
	}
	return s, nil
}

// Close implements eventstore.Store. It ends live subscriptions and is
// idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.client.Close()
	})
	return err
}

func (s *Store) check(ctx context.Context) error {
	select {
	case <-s.closed:
		return eventstore.ErrClosed
	default:
		return ctx.Err()
	}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	res, errs := s.AppendMany(ctx, []eventstore.StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	return res[0], errs[0]
}

// maxAppendBytes bounds, roughly, what AppendMany sends to KurrentDB in one
// append: KurrentDB refuses appends larger than its MaxAppendSize (1 MiB
// by default). One stream's append is never split, whatever its size.
const maxAppendBytes = 512 << 10

// envelopeBytes estimates an event's metadata and framing.
const envelopeBytes = 512

// AppendMany implements eventstore.ManyAppender. The appends that pass
// their checks go to KurrentDB together, as one append to the log stream
// (one round trip) for every maxAppendBytes or so of events.
func (s *Store) AppendMany(ctx context.Context, appends []eventstore.StreamAppend) ([]eventstore.AppendResult, []error) {
	results := make([]eventstore.AppendResult, len(appends))
	errs := make([]error, len(appends))
	if err := s.check(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return results, errs
	}
	now := time.Now()
	var todo []int
	for i, a := range appends {
		if errs[i] = eventstore.Validate(a.Stream, a.Events, now); errs[i] == nil {
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		n, size := 0, 0
		for ; n < len(todo); n++ {
			a := appends[todo[n]]
			for _, p := range a.Events {
				size += len(p.Data) + envelopeBytes
			}
			if n > 0 && size > maxAppendBytes {
				break
			}
		}
		chunk := make([]eventstore.StreamAppend, n)
		for k, i := range todo[:n] {
			chunk[k] = appends[i]
		}
		res, chunkErrs := s.appendChunk(ctx, chunk)
		for k, i := range todo[:n] {
			results[i], errs[i] = res[k], chunkErrs[k]
		}
		todo = todo[n:]
	}
	return results, errs
}

// appendChunk appends valid appends in one append to the log stream,
// deciding again whenever another process appended to it first.
func (s *Store) appendChunk(ctx context.Context, chunk []eventstore.StreamAppend) ([]eventstore.AppendResult, []error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	for {
		err := s.check(ctx)
		if err == nil {
			var (
				res  []eventstore.AppendResult
				errs []error
			)
			res, errs, err = s.tryAppend(ctx, chunk)
			if err == nil {
				return res, errs
			}
			if errors.Is(err, errLogMoved) {
				continue
			}
		}
		errs := make([]error, len(chunk))
		for k := range errs {
			errs[k] = err
		}
		return make([]eventstore.AppendResult, len(chunk)), errs
	}
}

// tryAppend decides every append of chunk against the index, caught up
// first, and appends the accepted ones' events to the log stream at the
// revision after the index's head. It fails as a whole, with errLogMoved,
// if the log stream has grown since: then the decisions may be wrong.
//
// The index is not told of the events written here: the next catch-up
// reads them back. If another process wrote the same event IDs at the
// same place a moment earlier, KurrentDB answers this append as a
// duplicate and stores that process's envelopes, not these.
func (s *Store) tryAppend(ctx context.Context, chunk []eventstore.StreamAppend) ([]eventstore.AppendResult, []error, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, nil, err
	}
	x := s.idx
	x.mu.RLock()
	next, head := x.next, x.head
	versions := map[string]uint64{}
	stored := make([][]uint64, len(chunk)) // positions of the IDs already in the log
	for k, a := range chunk {
		versions[a.Stream] = x.version(a.Stream)
		for _, p := range a.Events {
			if pos, ok := x.lookup(p.ID); ok {
				stored[k] = append(stored[k], pos)
			}
		}
	}
	x.mu.RUnlock()

	res := make([]eventstore.AppendResult, len(chunk))
	errs := make([]error, len(chunk))
	now := time.Now()
	planned := map[string]bool{}
	var out []esdb.EventData
	pos := next
	for k, a := range chunk {
		if len(stored[k]) > 0 {
			res[k], errs[k] = s.duplicate(ctx, a, stored[k])
			continue
		}
		if slices.ContainsFunc(a.Events, func(p eventstore.Proposed) bool { return planned[p.ID] }) {
			errs[k] = fmt.Errorf("%w: an event ID of this append is in another append of the same call", eventstore.ErrDuplicateEventID)
			continue
		}
		v := versions[a.Stream]
		if !a.Expected.Matches(v) {
			errs[k] = &eventstore.VersionError{Stream: a.Stream, Expected: a.Expected, Actual: v}
			continue
		}
		events, h := eventstore.Build(a.Stream, v, pos, head, now, a.Events)
		data := make([]esdb.EventData, len(events))
		for j := range events {
			if data[j], errs[k] = encode(&events[j]); errs[k] != nil {
				break
			}
		}
		if errs[k] != nil {
			continue
		}
		n := uint64(len(events))
		res[k] = eventstore.AppendResult{FirstVersion: v + 1, LastVersion: v + n, FirstPosition: pos + 1, LastPosition: pos + n}
		out = append(out, data...)
		versions[a.Stream], pos, head = v+n, pos+n, h
		for _, p := range a.Events {
			planned[p.ID] = true
		}
	}
	if len(out) == 0 {
		return res, errs, nil
	}
	var expected esdb.ExpectedRevision = esdb.NoStream{}
	if next > 0 {
		expected = esdb.Revision(next - 1)
	}
	if _, err := s.client.AppendToStream(ctx, s.log, esdb.AppendToStreamOptions{ExpectedRevision: expected}, out...); err != nil {
		return nil, nil, translate(err)
	}
	return res, errs, nil
}

// duplicate answers an append some of whose event IDs are stored, at
// positions, with the original result or ErrDuplicateEventID.
func (s *Store) duplicate(ctx context.Context, a eventstore.StreamAppend, positions []uint64) (eventstore.AppendResult, error) {
	events, err := s.readPositions(ctx, positions)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	byID := make(map[string]eventstore.Event, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	return eventstore.CheckDuplicate(a.Stream, a.Events, byID)
}

// catchUpBatch is how many events one read of a catch-up asks for.
const catchUpBatch = 4096

// catchUp brings the index up to the end of the log stream, so that it
// holds at least every event appended before the call. Concurrent calls
// share reads: a call that a catch-up started after it covers returns
// when that one is done.
func (s *Store) catchUp(ctx context.Context) error {
	x := s.idx
	ticket := x.requests.Add(1)
	x.catchMu.Lock()
	defer x.catchMu.Unlock()
	if x.served >= ticket {
		return nil
	}
	serving := x.requests.Load()
	for {
		from := x.next // only catch-ups, holding catchMu, change it
		var batch []entry
		err := s.readLog(ctx, esdb.ReadStreamOptions{From: esdb.Revision(from)}, catchUpBatch, func(r *esdb.RecordedEvent) (bool, error) {
			if want := from + uint64(len(batch)); r.EventNumber != want {
				return false, fmt.Errorf("kurrentdb: the log stream %q has revision %d where %d should be: it must never be truncated, scavenged or have events deleted", s.log, r.EventNumber, want)
			}
			var env struct {
				Stream string `json:"stream"`
				ID     string `json:"id"`
				Hash   string `json:"hash"`
			}
			if err := json.Unmarshal(r.UserMetadata, &env); err != nil {
				return false, fmt.Errorf("kurrentdb: event at revision %d of %s: metadata: %w", r.EventNumber, s.log, err)
			}
			h, err := eventstore.ParseHash(env.Hash)
			if err != nil {
				return false, fmt.Errorf("kurrentdb: event at revision %d of %s: hash: %w", r.EventNumber, s.log, err)
			}
			batch = append(batch, entry{position: r.EventNumber + 1, stream: env.Stream, id: env.ID, hash: h})
			return true, nil
		})
		if err != nil {
			return err
		}
		x.add(batch)
		if len(batch) < catchUpBatch {
			break
		}
	}
	x.served = serving
	return nil
}

// readLog reads up to count events of the log stream as opts says and
// hands each to fn, until fn returns false or an error. An absent log
// stream reads as empty: the log has no event yet.
func (s *Store) readLog(ctx context.Context, opts esdb.ReadStreamOptions, count uint64, fn func(*esdb.RecordedEvent) (bool, error)) error {
	rs, err := s.client.ReadStream(ctx, s.log, opts, count)
	if err != nil {
		return translate(err)
	}
	defer rs.Close()
	for {
		r, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if err = translate(err); errors.Is(err, errNotFound) {
				return nil
			}
			return err
		}
		if more, err := fn(r.Event); err != nil || !more {
			return err
		}
	}
}

// readPositions reads the events at positions, with one read per run of
// consecutive positions, and returns them in position order.
func (s *Store) readPositions(ctx context.Context, positions []uint64) ([]eventstore.Event, error) {
	positions = slices.Clone(positions)
	slices.Sort(positions)
	out := make([]eventstore.Event, 0, len(positions))
	for i := 0; i < len(positions); {
		j := i + 1
		for j < len(positions) && positions[j] == positions[j-1]+1 {
			j++
		}
		first := len(out)
		err := s.readLog(ctx, esdb.ReadStreamOptions{From: esdb.Revision(positions[i] - 1)}, uint64(j-i), func(r *esdb.RecordedEvent) (bool, error) {
			e, err := decode(r)
			if err != nil {
				return false, err
			}
			out = append(out, e)
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		for k, e := range out[first:] {
			if e.Position != positions[i+k] {
				return nil, fmt.Errorf("kurrentdb: the log stream %q holds position %d where %d should be", s.log, e.Position, positions[i+k])
			}
		}
		if len(out)-first != j-i {
			return nil, fmt.Errorf("kurrentdb: the log stream %q ends before position %d", s.log, positions[j-1])
		}
		i = j
	}
	return out, nil
}

// ReadStream implements eventstore.Store. It catches the index up, so it
// sees every append that completed before the call, in any process.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []eventstore.Event{}, nil
	}
	x := s.idx
	x.mu.RLock()
	all := x.streams[stream]
	var start, end int // the versions start+1 to end are read
	if dir == eventstore.Forwards {
		start = int(min(max(from, 1)-1, uint64(len(all))))
		end = min(len(all), start+limit)
	} else {
		end = int(min(from, uint64(len(all))))
		start = max(0, end-limit)
	}
	positions := slices.Clone(all[start:end])
	x.mu.RUnlock()

	events, err := s.readPositions(ctx, positions)
	if err != nil {
		return nil, err
	}
	for k, e := range events {
		if e.Stream != stream || e.Version != uint64(start+k+1) {
			return nil, fmt.Errorf("kurrentdb: position %d holds %s@%d, the index says %s@%d", e.Position, e.Stream, e.Version, stream, start+k+1)
		}
	}
	if dir == eventstore.Backwards {
		slices.Reverse(events)
	}
	return events, nil
}

// StreamVersion implements eventstore.Store. It catches the index up, so it
// sees every append that completed before the call, in any process.
func (s *Store) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := s.catchUp(ctx); err != nil {
		return 0, err
	}
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	return s.idx.version(stream), nil
}

// ReadAll implements eventstore.Store, as pages.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int, filter eventstore.Filter) ([]eventstore.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return eventstore.ReadAllPaged(ctx, s, after, limit, filter)
}

// ReadPage implements eventstore.Store: one read of the log stream from
// revision after, of max(limit, ScanWindow) events, filtered here. It does
// not use the index, so it shows the log stream as KurrentDB holds it.
func (s *Store) ReadPage(ctx context.Context, after uint64, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.Page{}, err
	}
	page := eventstore.Page{Through: after}
	window := uint64(max(limit, s.scanWindow))
	var seen uint64
	if limit > 0 {
		err := s.readLog(ctx, esdb.ReadStreamOptions{From: esdb.Revision(after)}, window, func(r *esdb.RecordedEvent) (bool, error) {
			e, err := decode(r)
			if err != nil {
				return false, err
			}
			seen++
			page.Through = e.Position
			if filter.Matches(&e) {
				page.Events = append(page.Events, e)
			}
			return len(page.Events) < limit, nil
		})
		if err != nil {
			return eventstore.Page{}, err
		}
	}
	// A read that ended early without filling the page reached the end of
	// the log stream: what it saw last is the head.
	if seen > 0 && seen < window && len(page.Events) < limit {
		page.Head = page.Through
		return page, nil
	}
	head, err := s.Head(ctx)
	if err != nil {
		return eventstore.Page{}, err
	}
	page.Head = head.Position
	return page, nil
}

// Head implements eventstore.Store: the log stream's last event.
func (s *Store) Head(ctx context.Context) (eventstore.Head, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.Head{}, err
	}
	var head eventstore.Head
	err := s.readLog(ctx, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1, func(r *esdb.RecordedEvent) (bool, error) {
		e, err := decode(r)
		head = eventstore.Head{Position: e.Position, Hash: e.Hash}
		return false, err
	})
	if err != nil {
		return eventstore.Head{}, err
	}
	return head, nil
}

// subscribeBatch is the most events received from KurrentDB that go into
// one handler call.
const subscribeBatch = 1000

// Subscribe implements eventstore.Store with a catch-up subscription to
// $all, filtered by KurrentDB to the log stream's events (or, when filter
// has types, to events of those types, which this process then keeps to
// the log stream), starting after the event at position after. The rest
// of filter is applied here. Events already received are handed to the
// handler together, up to subscribeBatch at a time.
//
// Without types every event of the log stream arrives, so positions must
// follow each other: a gap ends the subscription with an error rather than
// skip an event.
func (s *Store) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handler eventstore.Handler) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	from, err := s.allPosition(ctx, after)
	if err != nil {
		return err
	}
	opts := esdb.SubscribeToAllOptions{From: from, Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s.log}}}
	if len(filter.Types) > 0 {
		opts.Filter = &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: typesRegex(filter.Types)}
	}
	subCtx, cancel := context.WithCancel(ctx)
	sub, err := s.client.SubscribeToAll(subCtx, opts)
	if err != nil {
		cancel()
		return translate(err)
	}
	// The receiver goroutine turns Recv into a channel, so that what has
	// arrived can be gathered into one batch without waiting for more.
	received := make(chan *esdb.SubscriptionEvent, subscribeBatch)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ev := sub.Recv()
			select {
			case received <- ev:
			case <-subCtx.Done():
				return
			}
			if ev.SubscriptionDropped != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		_ = sub.Close()
		wg.Wait()
	}()

	contiguous := len(filter.Types) == 0
	last := after // the last position looked at
	batch := make([]eventstore.Event, 0, subscribeBatch)
	accept := func(ev *esdb.SubscriptionEvent) error {
		if d := ev.SubscriptionDropped; d != nil {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("kurrentdb: subscription dropped: %w", translate(d.Error))
		}
		r := ev.EventAppeared
		if r == nil || r.Event == nil || r.Event.StreamID != s.log {
			return nil // caught up, a checkpoint, or another stream's event of a wanted type
		}
		pos := r.Event.EventNumber + 1
		if pos <= last {
			return nil // at or before after, or delivered already
		}
		if contiguous && pos != last+1 {
			return fmt.Errorf("kurrentdb: the subscription went from position %d to %d", last, pos)
		}
		e, err := decode(r.Event)
		if err != nil {
			return err
		}
		last = pos
		if filter.Matches(&e) {
			batch = append(batch, e)
		}
		return nil
	}
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			return eventstore.ErrClosed
		case ev := <-received:
			if err := accept(ev); err != nil {
				return err
			}
		}
	gather:
		for n := 1; n < subscribeBatch; n++ {
			select {
			case ev := <-received:
				if err := accept(ev); err != nil {
					return err
				}
			default:
				break gather
			}
		}
		if len(batch) > 0 {
			if err := handler(ctx, batch); err != nil {
				return err
			}
		}
	}
}

// allPosition is the $all position to subscribe from to get the events
// after position after: that of the event at after, or of the last event
// when after is beyond it (the subscription then skips up to after).
func (s *Store) allPosition(ctx context.Context, after uint64) (esdb.AllPosition, error) {
	if after == 0 {
		return esdb.Start{}, nil
	}
	var (
		at  *esdb.Position
		rev uint64
	)
	found := func(r *esdb.RecordedEvent) (bool, error) {
		at, rev = &r.Position, r.EventNumber
		return false, nil
	}
	for {
		at = nil
		if err := s.readLog(ctx, esdb.ReadStreamOptions{From: esdb.Revision(after - 1)}, 1, found); err != nil {
			return nil, err
		}
		if at != nil {
			break
		}
		if err := s.readLog(ctx, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1, found); err != nil {
			return nil, err
		}
		// The last event is only a safe start while it is not past
		// after: an append between the two reads may have taken the log
		// beyond after, and starting after the new last event would skip
		// the events between. Then the first read finds after's event.
		if at == nil || rev+1 <= after {
			break
		}
	}
	if at == nil || at.Commit == 0 {
		return esdb.Start{}, nil // correct anyway: what is at or before after is skipped
	}
	return *at, nil
}

// typesRegex matches exactly the given event types.
func typesRegex(types []string) string {
	quoted := make([]string, len(types))
	for i, t := range types {
		quoted[i] = regexp.QuoteMeta(t)
	}
	return "^(" + strings.Join(quoted, "|") + ")$"
}
