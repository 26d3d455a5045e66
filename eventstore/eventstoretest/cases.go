package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
)

// Events builds n proposed events of type typ with fresh UUIDv7 IDs and small
// JSON payloads that name their index.
func Events(n int, typ string) []eventstore.Proposed {
	out := make([]eventstore.Proposed, n)
	for i := range out {
		out[i] = eventstore.Proposed{
			ID:    uuid.Must(uuid.NewV7()).String(),
			Type:  typ,
			Data:  fmt.Appendf(nil, `{"n":%d}`, i),
			Actor: eventstore.Actor{ID: "tester", Role: "admin", Org: "payesh"},
		}
	}
	return out
}

func (s *suite) open(t *testing.T) eventstore.Store {
	t.Helper()
	return s.factory(t).Store
}

func mustAppend(t *testing.T, st eventstore.Store, stream string, ev eventstore.ExpectedVersion, events []eventstore.Proposed) eventstore.AppendResult {
	t.Helper()
	res, err := st.Append(ctxFor(t), stream, ev, events)
	require.NoError(t, err)
	return res
}

func (s *suite) appendAndReadBack(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	res := mustAppend(t, st, "facility-a", eventstore.NoStream, Events(3, "test.happened.v1"))
	require.Equal(t, eventstore.AppendResult{FirstVersion: 1, LastVersion: 3, FirstPosition: 1, LastPosition: 3}, res)

	res = mustAppend(t, st, "facility-b", eventstore.NoStream, Events(2, "test.happened.v1"))
	require.Equal(t, eventstore.AppendResult{FirstVersion: 1, LastVersion: 2, FirstPosition: 4, LastPosition: 5}, res)

	res = mustAppend(t, st, "facility-a", eventstore.Exact(3), Events(1, "test.other.v1"))
	require.Equal(t, eventstore.AppendResult{FirstVersion: 4, LastVersion: 4, FirstPosition: 6, LastPosition: 6}, res)

	got, err := st.ReadStream(ctx, "facility-a", 1, eventstore.Forwards, 100)
	require.NoError(t, err)
	require.Len(t, got, 4)
	for i, e := range got {
		require.Equal(t, uint64(i+1), e.Version)
		require.Equal(t, "facility-a", e.Stream)
	}
	require.Equal(t, []uint64{1, 2, 3, 6}, positions(got))

	v, err := st.StreamVersion(ctx, "facility-a")
	require.NoError(t, err)
	require.Equal(t, uint64(4), v)
	v, err = st.StreamVersion(ctx, "facility-none")
	require.NoError(t, err)
	require.Zero(t, v)

	head, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(6), head.Position)
	all, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 6)
	require.Equal(t, all[5].Hash, head.Hash)
}

func positions(events []eventstore.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

func (s *suite) envelopeRoundTrip(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	occurred := time.Now().Add(-48 * time.Hour)
	p := eventstore.Proposed{
		ID:             uuid.Must(uuid.NewV7()).String(),
		Type:           "facility.registered.v1",
		Data:           []byte(`{"b":2,  "a":"مرکزی"}`), // not canonical JSON on purpose: stored byte for byte
		OccurredAt:     occurred,
		BackdateReason: "paper file entered late",
		Actor:          eventstore.Actor{ID: "u-17", Role: "agency", Org: "relief-committee"},
		IdempotencyKey: "key-1",
		CorrelationID:  "corr-1",
		CausationID:    "cause-1",
	}
	before := time.Now()
	mustAppend(t, st, "facility-x", eventstore.Any, []eventstore.Proposed{p})
	after := time.Now()

	got, err := st.ReadStream(ctx, "facility-x", 1, eventstore.Forwards, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	e := got[0]
	require.Equal(t, p.ID, e.ID)
	require.Equal(t, p.Type, e.Type)
	require.Equal(t, p.Data, e.Data)
	require.True(t, e.OccurredAt.Equal(eventstore.Normalize(occurred)), "occurred-at %s", e.OccurredAt)
	require.Equal(t, time.UTC, e.OccurredAt.Location())
	require.False(t, e.RecordedAt.Before(before.Truncate(time.Microsecond)))
	require.False(t, e.RecordedAt.After(after))
	require.Equal(t, p.BackdateReason, e.BackdateReason)
	require.Equal(t, p.Actor, e.Actor)
	require.Equal(t, p.IdempotencyKey, e.IdempotencyKey)
	require.Equal(t, p.CorrelationID, e.CorrelationID)
	require.Equal(t, p.CausationID, e.CausationID)
	require.True(t, e.PrevHash.IsZero())
	want, _ := eventstore.Chain(eventstore.Hash{}, &e, nil)
	require.Equal(t, want, e.Hash)

	// The same event read through ReadAll is identical.
	all, err := st.ReadAll(ctx, 0, 10, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, got, all)
}

func (s *suite) expectedVersions(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	var verr *eventstore.VersionError

	_, err := st.Append(ctx, "s", eventstore.StreamExists, Events(1, "t.v1"))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	require.ErrorAs(t, err, &verr)
	require.Equal(t, uint64(0), verr.Actual)
	require.Equal(t, "s", verr.Stream)

	_, err = st.Append(ctx, "s", eventstore.Exact(2), Events(1, "t.v1"))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)

	mustAppend(t, st, "s", eventstore.NoStream, Events(2, "t.v1"))
	_, err = st.Append(ctx, "s", eventstore.NoStream, Events(1, "t.v1"))
	require.ErrorAs(t, err, &verr)
	require.Equal(t, uint64(2), verr.Actual)

	_, err = st.Append(ctx, "s", eventstore.Exact(1), Events(1, "t.v1"))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)
	_, err = st.Append(ctx, "s", eventstore.Exact(3), Events(1, "t.v1"))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)

	mustAppend(t, st, "s", eventstore.Exact(2), Events(1, "t.v1"))
	mustAppend(t, st, "s", eventstore.StreamExists, Events(1, "t.v1"))
	res := mustAppend(t, st, "s", eventstore.Any, Events(1, "t.v1"))
	require.Equal(t, uint64(5), res.LastVersion)
	res = mustAppend(t, st, "other", eventstore.Any, Events(1, "t.v1"))
	require.Equal(t, uint64(1), res.LastVersion)

	// Failed appends wrote nothing.
	head, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(6), head.Position)
}

func (s *suite) idempotentRetries(t *testing.T) {
	modes := []struct {
		name  string
		first eventstore.ExpectedVersion
		retry eventstore.ExpectedVersion
	}{
		{"Any", eventstore.Any, eventstore.Any},
		{"NoStream", eventstore.NoStream, eventstore.NoStream},
		{"Exact", eventstore.Exact(1), eventstore.Exact(1)},
		{"StreamExists", eventstore.StreamExists, eventstore.StreamExists},
		{"RetryWithStaleExact", eventstore.Exact(1), eventstore.Exact(1)},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			st := s.open(t)
			ctx := ctxFor(t)
			stream := "idem"
			if m.first != eventstore.NoStream {
				mustAppend(t, st, stream, eventstore.NoStream, Events(1, "t.v1"))
			}
			events := Events(3, "t.v1")
			first := mustAppend(t, st, stream, m.first, events)
			require.False(t, first.Duplicate)
			// Another writer appends in between: the retry must still be
			// recognised, not refused for its stale expected version.
			if m.name == "RetryWithStaleExact" {
				mustAppend(t, st, stream, eventstore.Any, Events(1, "t.v1"))
			}
			headBefore, err := st.Head(ctx)
			require.NoError(t, err)

			retry, err := st.Append(ctx, stream, m.retry, events)
			require.NoError(t, err)
			require.True(t, retry.Duplicate)
			first.Duplicate = true
			require.Equal(t, first, retry)

			headAfter, err := st.Head(ctx)
			require.NoError(t, err)
			require.Equal(t, headBefore, headAfter, "a retry must append nothing")
		})
	}
	t.Run("PartialOverlapRefused", func(t *testing.T) {
		st := s.open(t)
		events := Events(2, "t.v1")
		mustAppend(t, st, "p", eventstore.Any, events[:1])
		_, err := st.Append(ctxFor(t), "p", eventstore.Any, events)
		require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
	})
	t.Run("ReorderedRetryRefused", func(t *testing.T) {
		st := s.open(t)
		events := Events(2, "t.v1")
		mustAppend(t, st, "p", eventstore.Any, events)
		_, err := st.Append(ctxFor(t), "p", eventstore.Any, []eventstore.Proposed{events[1], events[0]})
		require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
	})
}

func (s *suite) duplicateIDsElsewhere(t *testing.T) {
	st := s.open(t)
	events := Events(1, "t.v1")
	mustAppend(t, st, "first", eventstore.Any, events)
	_, err := st.Append(ctxFor(t), "second", eventstore.Any, events)
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
	v, err := st.StreamVersion(ctxFor(t), "second")
	require.NoError(t, err)
	require.Zero(t, v)
}

func (s *suite) invalidInput(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	mustAppend(t, st, "ok", eventstore.Any, Events(1, "t.v1"))
	headBefore, err := st.Head(ctx)
	require.NoError(t, err)

	good := func() []eventstore.Proposed { return Events(1, "t.v1") }
	cases := []struct {
		name   string
		stream string
		events []eventstore.Proposed
	}{
		{"NoEvents", "s", nil},
		{"EmptyStream", "", good()},
		{"LongStream", string(make([]byte, eventstore.MaxStreamLen+1)), good()},
		{"NoID", "s", func() []eventstore.Proposed { e := good(); e[0].ID = ""; return e }()},
		{"NoType", "s", func() []eventstore.Proposed { e := good(); e[0].Type = ""; return e }()},
		{"Future", "s", func() []eventstore.Proposed { e := good(); e[0].OccurredAt = time.Now().Add(time.Hour); return e }()},
		{"BackdatedWithoutReason", "s", func() []eventstore.Proposed {
			e := good()
			e[0].OccurredAt = time.Now().AddDate(0, -1, 0)
			return e
		}()},
		{"SameIDTwice", "s", func() []eventstore.Proposed { e := Events(2, "t.v1"); e[1].ID = e[0].ID; return e }()},
		{"Oversized", "s", func() []eventstore.Proposed {
			e := good()
			e[0].Data = make([]byte, eventstore.MaxEventSize+1)
			return e
		}()},
	}
	for _, c := range cases {
		_, err := st.Append(ctx, c.stream, eventstore.Any, c.events)
		require.ErrorIs(t, err, eventstore.ErrInvalidEvent, c.name)
	}
	headAfter, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, headBefore, headAfter)
}

func (s *suite) unusualButValid(t *testing.T) {
	st := s.open(t)
	ev := Events(1, "نوع.v1")
	ev[0].Data = nil
	ev[0].OccurredAt = eventstore.MinOccurredAt
	ev[0].BackdateReason = "the earliest accepted business time"
	mustAppend(t, st, "جریان", eventstore.NoStream, ev)
	got, err := st.ReadStream(ctxFor(t), "جریان", 1, eventstore.Forwards, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Empty(t, got[0].Data)
	require.True(t, got[0].OccurredAt.Equal(eventstore.MinOccurredAt))
	_, err = eventstore.Verify(ctxFor(t), st, eventstore.VerifyOptions{})
	require.NoError(t, err)
}

func (s *suite) backdating(t *testing.T) {
	st := s.open(t)
	e := Events(1, "t.v1")
	e[0].OccurredAt = time.Date(2024, 3, 20, 10, 0, 0, 123456789, time.FixedZone("IRST", 12600))
	e[0].BackdateReason = "migrated from the 1402 paper register"
	mustAppend(t, st, "b", eventstore.Any, e)
	got, err := st.ReadStream(ctxFor(t), "b", 1, eventstore.Forwards, 1)
	require.NoError(t, err)
	require.Equal(t, time.Date(2024, 3, 20, 6, 30, 0, 123456000, time.UTC), got[0].OccurredAt)
	require.True(t, got[0].RecordedAt.After(got[0].OccurredAt))
}

func (s *suite) readStream(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	mustAppend(t, st, "r", eventstore.NoStream, Events(10, "t.v1"))
	mustAppend(t, st, "rr", eventstore.NoStream, Events(2, "t.v1")) // shares the prefix

	versions := func(events []eventstore.Event) []uint64 {
		out := make([]uint64, len(events))
		for i, e := range events {
			out[i] = e.Version
		}
		return out
	}
	got, err := st.ReadStream(ctx, "r", 4, eventstore.Forwards, 3)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 5, 6}, versions(got))

	got, err = st.ReadStream(ctx, "r", 4, eventstore.Backwards, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 3, 2, 1}, versions(got))

	got, err = st.ReadStream(ctx, "r", math.MaxUint64, eventstore.Backwards, 2)
	require.NoError(t, err)
	require.Equal(t, []uint64{10, 9}, versions(got))

	got, err = st.ReadStream(ctx, "r", 11, eventstore.Forwards, 10)
	require.NoError(t, err)
	require.Empty(t, got)

	got, err = st.ReadStream(ctx, "missing", 1, eventstore.Forwards, 10)
	require.NoError(t, err)
	require.Empty(t, got)
}

func (s *suite) readAll(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	mustAppend(t, st, "facility-1", eventstore.Any, Events(2, "facility.registered.v1"))
	mustAppend(t, st, "quota-1403-home-business", eventstore.Any, Events(2, "quota.allocated.v1"))
	mustAppend(t, st, "facility-2", eventstore.Any, Events(1, "facility.reviewed.v1"))

	all, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, positions(all))

	page, err := st.ReadAll(ctx, 2, 2, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, []uint64{3, 4}, positions(page))

	fac, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 5}, positions(fac))

	// Limit counts matching events only.
	fac, err = st.ReadAll(ctx, 1, 2, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 5}, positions(fac))

	typed, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{Types: []string{"quota.allocated.v1", "facility.reviewed.v1"}})
	require.NoError(t, err)
	require.Equal(t, []uint64{3, 4, 5}, positions(typed))

	both, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{StreamPrefixes: []string{"facility-"}, Types: []string{"facility.reviewed.v1"}})
	require.NoError(t, err)
	require.Equal(t, []uint64{5}, positions(both))

	// A prefix containing LIKE/GLOB metacharacters is matched literally.
	none, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{StreamPrefixes: []string{"facility_%", "f*"}})
	require.NoError(t, err)
	require.Empty(t, none)

	none, err = st.ReadAll(ctx, 5, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Empty(t, none)
}

func (s *suite) readPage(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)

	page, err := st.ReadPage(ctx, 0, 10, eventstore.Filter{})
	require.NoError(t, err)
	require.Empty(t, page.Events)
	require.Zero(t, page.Through, "an empty log")
	require.Zero(t, page.Head)

	// 40 events, most of them noise; the facility events are at 7, 23, 24
	// and 38, and 24 alone has the type facility.x.v1.
	for i := 1; i <= 40; i++ {
		stream, typ := fmt.Sprintf("noise-%d", i%3), "noise.v1"
		switch i {
		case 7, 23, 38:
			stream = fmt.Sprintf("facility-%d", i)
		case 24:
			stream, typ = "facility-23", "facility.x.v1"
		}
		mustAppend(t, st, stream, eventstore.Any, Events(1, typ))
	}
	filters := []eventstore.Filter{
		{},
		{StreamPrefixes: []string{"facility-"}},
		{Types: []string{"facility.x.v1"}},
		{StreamPrefixes: []string{"facility-"}, Types: []string{"facility.x.v1", "noise.v1"}},
		{StreamPrefixes: []string{"nothing-"}},
		{StreamPrefixes: []string{"facility-2", "nothing-"}}, // rare: 23 and 24
	}
	for _, f := range filters {
		want, err := st.ReadAll(ctx, 0, 1000, f)
		require.NoError(t, err)
		for _, limit := range []int{1, 2, 100} {
			// Page through the log from 0 as a subscriber does: the pages
			// together are exactly what ReadAll returns, each bounded.
			var got []eventstore.Event
			var after uint64
			for pages := 0; ; pages++ {
				require.Less(t, pages, 100, "%+v limit %d: paging does not end", f, limit)
				page, err := st.ReadPage(ctx, after, limit, f)
				require.NoError(t, err)
				require.Equal(t, uint64(40), page.Head)
				require.Greater(t, page.Through, after, "a page before the head advances")
				require.LessOrEqual(t, page.Through, page.Head)
				require.LessOrEqual(t, len(page.Events), limit)
				prev := after
				for _, e := range page.Events {
					require.Greater(t, e.Position, prev, "in global order, within (after, through]")
					require.LessOrEqual(t, e.Position, page.Through)
					require.True(t, f.Matches(&e))
					prev = e.Position
				}
				if len(page.Events) == limit {
					require.Equal(t, page.Events[limit-1].Position, page.Through, "a full page ends at its last event")
				} else if w := s.features.ScanWindow; w > 0 && page.Through < page.Head {
					require.Equal(t, after+uint64(max(limit, w)), page.Through, "a short page before the head stops at the window")
				}
				got = append(got, page.Events...)
				after = page.Through
				if page.Through >= page.Head {
					break
				}
			}
			require.Equal(t, positions(want), positions(got), "%+v limit %d", f, limit)
			for i := range want {
				require.Equal(t, want[i], got[i])
			}
		}
	}

	// A filter that matches nothing in the window gives an empty page that
	// has advanced.
	if w := s.features.ScanWindow; w > 0 && w < 6 {
		page, err := st.ReadPage(ctx, 0, 1, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
		require.NoError(t, err)
		require.Empty(t, page.Events)
		require.Equal(t, uint64(w), page.Through)
	}

	page, err = st.ReadPage(ctx, 50, 10, eventstore.Filter{})
	require.NoError(t, err)
	require.Empty(t, page.Events)
	require.Equal(t, uint64(50), page.Through, "after beyond the head: nothing read, nothing skipped")
	require.Equal(t, uint64(40), page.Head)
}

// appendRetrying appends one event to stream with optimistic concurrency,
// re-reading the version after each conflict, as the command handler does.
func appendRetrying(ctx context.Context, st eventstore.Store, stream string) error {
	ev := Events(1, "t.v1")
	for {
		v, err := st.StreamVersion(ctx, stream)
		if err != nil {
			return err
		}
		_, err = st.Append(ctx, stream, eventstore.Exact(v), ev)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			continue
		}
		return err
	}
}

func (s *suite) concurrentSameStream(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := appendRetrying(ctx, st, "hot"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := st.ReadStream(ctx, "hot", 1, eventstore.Forwards, 1000)
	require.NoError(t, err)
	require.Len(t, got, writers*each)
	for i, e := range got {
		require.Equal(t, uint64(i+1), e.Version)
	}
	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
}

func (s *suite) concurrentManyStreams(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				stream := fmt.Sprintf("w%d-%d", w, i%3)
				if _, err := st.Append(ctx, stream, eventstore.Any, Events(1+i%2, "t.v1")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{BatchSize: 7})
	require.NoError(t, err)
	require.Equal(t, uint64(writers*each*3/2), rep.Events)
	require.Equal(t, writers*3, rep.Streams)
}

// collector is a subscription handler that records what it sees.
type collector struct {
	mu     sync.Mutex
	events []eventstore.Event
	count  atomic.Int64
}

func (c *collector) handle(_ context.Context, batch []eventstore.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range batch {
		e.Data = append([]byte(nil), e.Data...)
		c.events = append(c.events, e)
	}
	c.count.Add(int64(len(batch)))
	return nil
}

func (c *collector) snapshot() []eventstore.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.Event(nil), c.events...)
}

func (c *collector) waitFor(t *testing.T, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return c.count.Load() >= n }, 30*time.Second, 5*time.Millisecond,
		"subscriber saw %d of %d events", c.count.Load(), n)
}

func subscribe(t *testing.T, st eventstore.Store, after uint64, f eventstore.Filter, c *collector) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Subscribe(ctx, after, f, c.handle) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("subscription did not stop within 10s of cancellation")
		}
	}
}

func (s *suite) subscribeCatchUpThenLive(t *testing.T) {
	st := s.open(t)
	mustAppend(t, st, "a", eventstore.Any, Events(5, "t.v1"))
	var c collector
	stop := subscribe(t, st, 2, eventstore.Filter{}, &c)
	c.waitFor(t, 3)
	mustAppend(t, st, "b", eventstore.Any, Events(4, "t.v1"))
	c.waitFor(t, 7)
	require.ErrorIs(t, stop(), context.Canceled)
	require.Equal(t, []uint64{3, 4, 5, 6, 7, 8, 9}, positions(c.snapshot()))
}

func (s *suite) subscribeUnderConcurrentWriters(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	var c collector
	stop := subscribe(t, st, 0, eventstore.Filter{}, &c)

	const writers, each = 16, 40
	var wg sync.WaitGroup
	var total atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := 1 + (w+i)%3
				if _, err := st.Append(ctx, fmt.Sprintf("c-%d-%d", w, i%4), eventstore.Any, Events(n, "t.v1")); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				total.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	c.waitFor(t, total.Load())
	// Give a misbehaving subscriber the chance to deliver duplicates.
	time.Sleep(100 * time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)

	got := c.snapshot()
	require.Len(t, got, int(total.Load()), "every event exactly once")
	for i, e := range got {
		require.Equal(t, uint64(i+1), e.Position, "events in global order without gaps")
	}
	all, err := st.ReadAll(ctx, 0, len(got)+1, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, all, got, "live delivery equals the stored log")
}

// subscribeFilterUnderConcurrentWriters: filtered subscriptions, which move
// on by ReadPage's Through even when a page holds nothing, see every event
// they select exactly once while many writers append.
func (s *suite) subscribeFilterUnderConcurrentWriters(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	filters := []eventstore.Filter{
		{StreamPrefixes: []string{"c-1-", "c-5-"}},
		{Types: []string{"t.odd.v1"}},
		{StreamPrefixes: []string{"c-3-0"}, Types: []string{"t.odd.v1"}},
	}
	collectors := make([]*collector, len(filters))
	stops := make([]func() error, len(filters))
	for i, f := range filters {
		collectors[i] = &collector{}
		stops[i] = subscribe(t, st, 0, f, collectors[i])
	}

	const writers, each = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				typ := "t.v1"
				if (w+i)%7 == 0 {
					typ = "t.odd.v1"
				}
				if _, err := st.Append(ctx, fmt.Sprintf("c-%d-%d", w, i%4), eventstore.Any, Events(1+(w+i)%3, typ)); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, f := range filters {
		want, err := st.ReadAll(ctx, 0, 10_000, f)
		require.NoError(t, err)
		require.NotEmpty(t, want, "%+v selects something", f)
		collectors[i].waitFor(t, int64(len(want)))
		time.Sleep(50 * time.Millisecond) // a misbehaving subscriber may deliver more
		require.ErrorIs(t, stops[i](), context.Canceled)
		require.Equal(t, positions(want), positions(collectors[i].snapshot()), "%+v: every selected event exactly once, in order", f)
	}
}

func (s *suite) subscribeFilter(t *testing.T) {
	st := s.open(t)
	var c collector
	stop := subscribe(t, st, 0, eventstore.Filter{StreamPrefixes: []string{"facility-"}}, &c)
	mustAppend(t, st, "quota-1", eventstore.Any, Events(3, "t.v1"))
	mustAppend(t, st, "facility-1", eventstore.Any, Events(2, "t.v1"))
	mustAppend(t, st, "quota-1", eventstore.Any, Events(3, "t.v1"))
	mustAppend(t, st, "facility-2", eventstore.Any, Events(1, "t.v1"))
	c.waitFor(t, 3)
	time.Sleep(50 * time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)
	require.Equal(t, []uint64{4, 5, 9}, positions(c.snapshot()))
}

func (s *suite) subscribeHandlerError(t *testing.T) {
	st := s.open(t)
	mustAppend(t, st, "a", eventstore.Any, Events(3, "t.v1"))
	boom := errors.New("projector failed")
	err := st.Subscribe(ctxFor(t), 0, eventstore.Filter{}, func(context.Context, []eventstore.Event) error { return boom })
	require.ErrorIs(t, err, boom)
}

func (s *suite) cancellation(t *testing.T) {
	st := s.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.Append(ctx, "c", eventstore.Any, Events(1, "t.v1"))
	require.ErrorIs(t, err, context.Canceled)
	_, err = st.ReadAll(ctx, 0, 10, eventstore.Filter{})
	require.ErrorIs(t, err, context.Canceled)
	_, err = st.ReadPage(ctx, 0, 10, eventstore.Filter{StreamPrefixes: []string{"c"}})
	require.ErrorIs(t, err, context.Canceled)

	// A subscription waiting for live events ends promptly when cancelled.
	var c collector
	stop := subscribe(t, st, 0, eventstore.Filter{}, &c)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	require.ErrorIs(t, stop(), context.Canceled)
	require.Less(t, time.Since(start), 2*time.Second)

	head, err := st.Head(ctxFor(t))
	require.NoError(t, err)
	require.Zero(t, head.Position, "a cancelled append wrote nothing")
}

func (s *suite) verifyClean(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Zero(t, rep.Events)
	for i := range 5 {
		mustAppend(t, st, fmt.Sprintf("v-%d", i%2), eventstore.Any, Events(i+1, "t.v1"))
	}
	var progress []uint64
	rep, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{BatchSize: 4, Progress: func(p uint64) { progress = append(progress, p) }})
	require.NoError(t, err)
	require.Equal(t, uint64(15), rep.Events)
	require.Equal(t, 2, rep.Streams)
	require.Equal(t, []uint64{4, 8, 12, 15}, progress)
	head, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, head, rep.Head)
}

func (s *suite) tamperSetup(t *testing.T) (eventstore.Store, Tamperer) {
	t.Helper()
	b := s.factory(t)
	if b.Tamper == nil {
		t.Skip("backend offers no direct access for tampering")
	}
	for i := range 4 {
		mustAppend(t, b.Store, fmt.Sprintf("facility-%d", i%2), eventstore.Any, Events(2, "t.v1"))
	}
	return b.Store, b.Tamper
}

func (s *suite) guardsRefuseEdits(t *testing.T) {
	if s.features.NoGuards {
		t.Skip("Features.NoGuards: the engine cannot refuse edits")
	}
	st, tam := s.tamperSetup(t)
	ctx := ctxFor(t)
	require.Error(t, tam.SetData(ctx, 3, []byte(`{"n":99}`)))
	require.Error(t, tam.Delete(ctx, 3))
	_, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err, "refused edits changed nothing")
}

func requireTamperAt(t *testing.T, st eventstore.Store, pos uint64) {
	t.Helper()
	_, err := eventstore.Verify(ctxFor(t), st, eventstore.VerifyOptions{BatchSize: 3})
	require.ErrorIs(t, err, eventstore.ErrTampered)
	var te *eventstore.TamperError
	require.ErrorAs(t, err, &te)
	require.Equal(t, pos, te.Position, "Verify names the first bad event: %v", err)
}

func (s *suite) tamperAltered(t *testing.T) {
	st, tam := s.tamperSetup(t)
	ctx := ctxFor(t)
	require.NoError(t, tam.DisableGuards(ctx))
	require.NoError(t, tam.SetData(ctx, 5, []byte(`{"n":7}`)))
	requireTamperAt(t, st, 5)
}

func (s *suite) tamperDeleted(t *testing.T) {
	st, tam := s.tamperSetup(t)
	ctx := ctxFor(t)
	require.NoError(t, tam.DisableGuards(ctx))
	require.NoError(t, tam.Delete(ctx, 4))
	requireTamperAt(t, st, 4)
}

func (s *suite) tamperReordered(t *testing.T) {
	st, tam := s.tamperSetup(t)
	ctx := ctxFor(t)
	require.NoError(t, tam.DisableGuards(ctx))
	require.NoError(t, tam.Swap(ctx, 6, 7))
	requireTamperAt(t, st, 6)
}

func (s *suite) closed(t *testing.T) {
	st := s.open(t)
	require.NoError(t, st.Close())
	_, err := st.Append(context.Background(), "x", eventstore.Any, Events(1, "t.v1"))
	require.ErrorIs(t, err, eventstore.ErrClosed)
	_, err = st.ReadPage(context.Background(), 0, 10, eventstore.Filter{})
	require.ErrorIs(t, err, eventstore.ErrClosed)
}

func (s *suite) appendMany(t *testing.T) {
	st := s.open(t)
	ctx := ctxFor(t)
	mustAppend(t, st, "taken", eventstore.NoStream, Events(1, "t.v1"))
	retry := Events(2, "t.v1")
	mustAppend(t, st, "retried", eventstore.NoStream, retry)

	var appends []eventstore.StreamAppend
	for i := range 200 {
		appends = append(appends, eventstore.StreamAppend{Stream: fmt.Sprintf("bulk-%03d", i), Expected: eventstore.NoStream, Events: Events(1+i%3, "t.v1")})
	}
	appends = append(appends,
		eventstore.StreamAppend{Stream: "taken", Expected: eventstore.NoStream, Events: Events(1, "t.v1")}, // conflict
		eventstore.StreamAppend{Stream: "retried", Expected: eventstore.NoStream, Events: retry},           // duplicate
		eventstore.StreamAppend{Stream: "", Expected: eventstore.Any, Events: Events(1, "t.v1")},           // invalid
	)
	results, errs := eventstore.AppendMany(ctx, st, appends)
	require.Len(t, results, len(appends))
	require.Len(t, errs, len(appends))
	for i := range 200 {
		require.NoError(t, errs[i])
		require.Equal(t, uint64(1+i%3), results[i].LastVersion)
	}
	require.ErrorIs(t, errs[200], eventstore.ErrWrongExpectedVersion)
	require.NoError(t, errs[201])
	require.True(t, results[201].Duplicate)
	require.ErrorIs(t, errs[202], eventstore.ErrInvalidEvent)

	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	want := uint64(1 + len(retry)) // "taken" and "retried" before the bulk append
	for _, a := range appends[:200] {
		want += uint64(len(a.Events))
	}
	require.Equal(t, want, rep.Events, "every accepted event stored once")
}
