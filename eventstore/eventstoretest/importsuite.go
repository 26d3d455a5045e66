package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
)

// Rewriter lets the suite play the strongest attacker of a database: one who
// rewrites stored events wholesale, hashes included, so that the chain
// verifies again. Only a head kept outside the database catches that (see
// eventstore.VerifyOptions.Anchors).
type Rewriter interface {
	// Rewrite overwrites every column of the stored events at the
	// positions of events, and the chain head's hash when the head is at
	// one of them. The store's guards must have been disabled first.
	Rewrite(ctx context.Context, events []eventstore.Event) error
}

// Rechain recomputes PrevHash and Hash of events[from:] so that the slice
// is a consistent chain again after events[from] (or a later one) was
// changed: what a re-hashing attacker does, and how the tests build logs
// that are consistent but wrong in some other way.
func Rechain(events []eventstore.Event, from int) {
	var prev eventstore.Hash
	if from > 0 {
		prev = events[from-1].Hash
	}
	var buf []byte
	for i := from; i < len(events); i++ {
		events[i].PrevHash = prev
		events[i].Hash, buf = eventstore.Chain(prev, &events[i], buf)
		prev = events[i].Hash
	}
}

// Source yields events as an eventstore.NextEvent, copying each so a test
// can reuse its slice.
func Source(events []eventstore.Event) eventstore.NextEvent {
	i := 0
	return func() (*eventstore.Event, error) {
		if i == len(events) {
			return nil, io.EOF
		}
		e := events[i]
		i++
		return &e, nil
	}
}

// RunImport runs the contract of eventstore.Importer against a backend:
// every call to factory must give a fresh, empty store that implements it.
func RunImport(t *testing.T, factory Factory) {
	t.Helper()
	s := &importSuite{factory: factory}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"RoundTrip", s.roundTrip},
		{"SubscribersSeeTheImport", s.subscribers},
		{"RefusesNonEmptyStore", s.nonEmpty},
		{"RefusesBadEventsLeavingNothing", s.badEvents},
		{"FailingSourceLeavesNothing", s.failingSource},
		{"CancelledLeavesNothing", s.cancelled},
		{"EmptySource", s.emptySource},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

// RunAnchors checks, against a backend whose Tamper also implements
// Rewriter, that Verify with an anchor (a signed checkpoint's head) catches
// the attacks a chain cannot catch on its own: cutting events off the end
// and rewriting history with every later hash recomputed, as well as a
// plain edit.
func RunAnchors(t *testing.T, factory Factory) {
	t.Helper()
	s := &importSuite{factory: factory}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"CleanLogExtendsAnchor", s.anchorClean},
		{"Truncated", s.anchorTruncated},
		{"Altered", s.anchorAltered},
		{"Rehashed", s.anchorRehashed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

type importSuite struct{ factory Factory }

func (s *importSuite) importer(t *testing.T) (eventstore.Store, eventstore.Importer) {
	t.Helper()
	st := s.factory(t).Store
	im, ok := st.(eventstore.Importer)
	require.True(t, ok, "%T does not implement eventstore.Importer", st)
	return st, im
}

// history fills a fresh store with events that use every envelope field
// and returns them as stored.
func (s *importSuite) history(t *testing.T) []eventstore.Event {
	t.Helper()
	st := s.factory(t).Store
	ctx := ctxFor(t)
	for i := range 6 {
		ev := Events(1+i%3, "test.happened.v1")
		ev[0].IdempotencyKey = fmt.Sprintf("key-%d", i)
		ev[0].CorrelationID = fmt.Sprintf("corr-%d", i)
		ev[0].CausationID = fmt.Sprintf("cause-%d", i)
		if i == 2 {
			ev[0].OccurredAt = time.Date(2024, 3, 20, 10, 0, 0, 123456789, time.UTC)
			ev[0].BackdateReason = "entered from the paper register"
		}
		if i == 4 {
			ev[0].Data = nil
			ev[0].Actor = eventstore.Actor{ID: "کاربر-۱", Role: "agency", Org: "کمیته امداد"}
		}
		mustAppend(t, st, fmt.Sprintf("facility-%d", i%3), eventstore.Any, ev)
	}
	mustAppend(t, st, "quota-1403-x", eventstore.NoStream, []eventstore.Proposed{{
		ID: uuid.Must(uuid.NewV7()).String(), Type: "test.odd.v1", Data: []byte("{\"b\":2,  \"a\":\"<&>\"}\n"),
	}})
	all, err := st.ReadAll(ctx, 0, 1000, eventstore.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 13)
	return all
}

func requireEmpty(t *testing.T, st eventstore.Store) {
	t.Helper()
	ctx := ctxFor(t)
	head, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, eventstore.Head{}, head, "nothing of a refused import remains")
	all, err := st.ReadAll(ctx, 0, 10, eventstore.Filter{})
	require.NoError(t, err)
	require.Empty(t, all)
	v, err := st.StreamVersion(ctx, "facility-0")
	require.NoError(t, err)
	require.Zero(t, v)
}

func (s *importSuite) roundTrip(t *testing.T) {
	src := s.history(t)
	st, im := s.importer(t)
	ctx := ctxFor(t)
	var progress []uint64
	head, err := im.Import(ctx, Source(src), eventstore.ImportOptions{BatchSize: 4, Progress: func(p uint64) { progress = append(progress, p) }})
	require.NoError(t, err)
	require.Equal(t, eventstore.Head{Position: 13, Hash: src[12].Hash}, head)
	require.Equal(t, []uint64{4, 8, 12, 13}, progress)

	got, err := st.ReadAll(ctx, 0, 1000, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, src, got, "every envelope field and both hashes kept as they were")
	stored, err := st.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, head, stored)
	rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, uint64(13), rep.Events)
	v, err := st.StreamVersion(ctx, "facility-1")
	require.NoError(t, err)
	require.Equal(t, uint64(4), v)

	// The imported log is a log like any other: appends continue its
	// chain and streams, and a retry of an imported append is known.
	res := mustAppend(t, st, "facility-1", eventstore.Exact(4), Events(2, "test.after.v1"))
	require.Equal(t, eventstore.AppendResult{FirstVersion: 5, LastVersion: 6, FirstPosition: 14, LastPosition: 15}, res)
	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	first := src[0]
	retry, err := st.Append(ctx, first.Stream, eventstore.NoStream, []eventstore.Proposed{{ID: first.ID, Type: first.Type, Data: first.Data}})
	require.NoError(t, err)
	require.True(t, retry.Duplicate)
	require.Equal(t, uint64(1), retry.FirstPosition)
}

func (s *importSuite) subscribers(t *testing.T) {
	src := s.history(t)
	st, im := s.importer(t)
	var c collector
	stop := subscribe(t, st, 0, eventstore.Filter{}, &c)
	_, err := im.Import(ctxFor(t), Source(src), eventstore.ImportOptions{BatchSize: 5})
	require.NoError(t, err)
	c.waitFor(t, int64(len(src)))
	require.NoError(t, ignoreCancel(stop()))
	// The collector's copy of an empty payload is nil; a store may read
	// it back as empty: the same payload.
	got, want := c.snapshot(), append([]eventstore.Event(nil), src...)
	for _, events := range [][]eventstore.Event{got, want} {
		for i := range events {
			if len(events[i].Data) == 0 {
				events[i].Data = nil
			}
		}
	}
	require.Equal(t, want, got)
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (s *importSuite) nonEmpty(t *testing.T) {
	src := s.history(t)
	st, im := s.importer(t)
	mustAppend(t, st, "x", eventstore.NoStream, Events(1, "t.v1"))
	before, err := st.Head(ctxFor(t))
	require.NoError(t, err)
	_, err = im.Import(ctxFor(t), Source(src), eventstore.ImportOptions{})
	require.ErrorIs(t, err, eventstore.ErrNotEmpty)
	after, err := st.Head(ctxFor(t))
	require.NoError(t, err)
	require.Equal(t, before, after)
	all, err := st.ReadAll(ctxFor(t), 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 1)
}

func (s *importSuite) badEvents(t *testing.T) {
	src := s.history(t)
	// Each case breaks the log at the event of the given index; the
	// batch size of 3 makes the import write earlier batches first, so
	// the refusal has something to roll back.
	cases := []struct {
		name    string
		at      int
		breakIt func(e []eventstore.Event) []eventstore.Event
		want    error
	}{
		{"altered payload", 7, func(e []eventstore.Event) []eventstore.Event {
			e[7].Data = []byte(`{"n":99}`)
			return e
		}, eventstore.ErrTampered},
		{"broken link", 8, func(e []eventstore.Event) []eventstore.Event {
			e[8].PrevHash = eventstore.Hash{1}
			e[8].Hash, _ = eventstore.Chain(e[8].PrevHash, &e[8], nil)
			return e
		}, eventstore.ErrTampered},
		{"missing event", 6, func(e []eventstore.Event) []eventstore.Event {
			return append(e[:6:6], e[7:]...)
		}, eventstore.ErrTampered},
		{"not from position 1", 0, func(e []eventstore.Event) []eventstore.Event { return e[1:] }, eventstore.ErrTampered},
		{"reordered", 9, func(e []eventstore.Event) []eventstore.Event {
			e[9], e[10] = e[10], e[9]
			return e
		}, eventstore.ErrTampered},
		{"stream version skipped, chain consistent", 9, func(e []eventstore.Event) []eventstore.Event {
			e[9].Version++
			Rechain(e, 9)
			return e
		}, eventstore.ErrTampered},
		{"duplicate ID in another batch, chain consistent", 10, func(e []eventstore.Event) []eventstore.Event {
			e[10].ID = e[1].ID
			Rechain(e, 10)
			return e
		}, eventstore.ErrDuplicateEventID},
		{"duplicate ID in the same batch, chain consistent", 7, func(e []eventstore.Event) []eventstore.Event {
			e[7].ID = e[6].ID
			Rechain(e, 7)
			return e
		}, eventstore.ErrDuplicateEventID},
		{"NUL byte in the actor, chain consistent", 5, func(e []eventstore.Event) []eventstore.Event {
			e[5].Actor.ID = "a\x00b"
			Rechain(e, 5)
			return e
		}, eventstore.ErrInvalidEvent},
		{"no type, chain consistent", 11, func(e []eventstore.Event) []eventstore.Event {
			e[11].Type = ""
			Rechain(e, 11)
			return e
		}, eventstore.ErrInvalidEvent},
		{"time finer than microseconds", 4, func(e []eventstore.Event) []eventstore.Event {
			e[4].RecordedAt = e[4].RecordedAt.Add(time.Nanosecond) // the hash covers microseconds only
			return e
		}, eventstore.ErrInvalidEvent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, im := s.importer(t)
			bad := tc.breakIt(append([]eventstore.Event(nil), src...))
			_, err := im.Import(ctxFor(t), Source(bad), eventstore.ImportOptions{BatchSize: 3})
			require.ErrorIs(t, err, tc.want)
			var ie *eventstore.ImportError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, uint64(tc.at+1), ie.Ordinal, "the refused event is named: %v", err)
			requireEmpty(t, st)

			// Nothing is left behind that would stand in the way of a good
			// import.
			head, err := im.Import(ctxFor(t), Source(src), eventstore.ImportOptions{BatchSize: 3})
			require.NoError(t, err)
			require.Equal(t, src[len(src)-1].Hash, head.Hash)
		})
	}
}

func (s *importSuite) failingSource(t *testing.T) {
	src := s.history(t)
	st, im := s.importer(t)
	broken := errors.New("line 9: not JSON")
	next := Source(src)
	n := 0
	_, err := im.Import(ctxFor(t), func() (*eventstore.Event, error) {
		if n++; n == 9 {
			return nil, broken
		}
		return next()
	}, eventstore.ImportOptions{BatchSize: 2})
	require.ErrorIs(t, err, broken, "the source's error comes back unchanged")
	requireEmpty(t, st)
}

func (s *importSuite) cancelled(t *testing.T) {
	src := s.history(t)
	st, im := s.importer(t)
	ctx, cancel := context.WithCancel(ctxFor(t))
	next := Source(src)
	n := 0
	_, err := im.Import(ctx, func() (*eventstore.Event, error) {
		if n++; n == 8 {
			cancel()
		}
		return next()
	}, eventstore.ImportOptions{BatchSize: 2})
	require.ErrorIs(t, err, context.Canceled)
	requireEmpty(t, st)
}

func (s *importSuite) emptySource(t *testing.T) {
	st, im := s.importer(t)
	head, err := im.Import(ctxFor(t), Source(nil), eventstore.ImportOptions{})
	require.NoError(t, err)
	require.Zero(t, head.Position)
	requireEmpty(t, st)
	mustAppend(t, st, "a", eventstore.NoStream, Events(1, "t.v1"))
}

// anchored fills a store and returns it, its tamperer as a Rewriter, its
// events and an anchor at position 8 of 12.
func (s *importSuite) anchored(t *testing.T) (eventstore.Store, Tamperer, Rewriter, []eventstore.Event, eventstore.Head) {
	t.Helper()
	b := s.factory(t)
	require.NotNil(t, b.Tamper, "the anchor tests need direct access to the database")
	rw, ok := b.Tamper.(Rewriter)
	require.True(t, ok, "%T does not implement eventstoretest.Rewriter", b.Tamper)
	for i := range 4 {
		mustAppend(t, b.Store, fmt.Sprintf("facility-%d", i%2), eventstore.Any, Events(3, "t.v1"))
	}
	all, err := b.Store.ReadAll(ctxFor(t), 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 12)
	return b.Store, b.Tamper, rw, all, eventstore.Head{Position: 8, Hash: all[7].Hash}
}

func requireAnchorTamper(t *testing.T, st eventstore.Store, anchor eventstore.Head, pos uint64, problem string) {
	t.Helper()
	_, err := eventstore.Verify(ctxFor(t), st, eventstore.VerifyOptions{BatchSize: 5, Anchors: []eventstore.Head{anchor}})
	var te *eventstore.TamperError
	require.ErrorAs(t, err, &te)
	require.Equal(t, pos, te.Position, "%v", err)
	require.Contains(t, te.Problem, problem)
}

func (s *importSuite) anchorClean(t *testing.T) {
	st, _, _, all, anchor := s.anchored(t)
	rep, err := eventstore.Verify(ctxFor(t), st, eventstore.VerifyOptions{BatchSize: 5, Anchors: []eventstore.Head{anchor, {Position: 12, Hash: all[11].Hash}}})
	require.NoError(t, err)
	require.Equal(t, uint64(12), rep.Events)
	// A wrong anchor is caught even on an untouched log: the check is real.
	requireAnchorTamper(t, st, eventstore.Head{Position: 8, Hash: all[6].Hash}, 8, "differs from the checkpoint")
	requireAnchorTamper(t, st, eventstore.Head{Position: 13, Hash: all[6].Hash}, 13, "ends at position 12")
}

func (s *importSuite) anchorTruncated(t *testing.T) {
	st, tam, _, _, anchor := s.anchored(t)
	ctx := ctxFor(t)
	require.NoError(t, tam.DisableGuards(ctx))
	for pos := uint64(12); pos >= 7; pos-- {
		require.NoError(t, tam.Delete(ctx, pos))
	}
	_, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err, "what is left is a consistent chain: only the anchor knows more was there")
	requireAnchorTamper(t, st, anchor, 8, "ends at position 6")
}

func (s *importSuite) anchorAltered(t *testing.T) {
	st, tam, _, _, anchor := s.anchored(t)
	ctx := ctxFor(t)
	require.NoError(t, tam.DisableGuards(ctx))
	require.NoError(t, tam.SetData(ctx, 3, []byte(`{"n":42}`)))
	requireAnchorTamper(t, st, anchor, 3, "content does not match")
}

func (s *importSuite) anchorRehashed(t *testing.T) {
	st, tam, rw, all, anchor := s.anchored(t)
	ctx := ctxFor(t)
	require.NoError(t, tam.DisableGuards(ctx))
	forged := append([]eventstore.Event(nil), all...)
	forged[2].Data = []byte(`{"n":42}`)
	Rechain(forged, 2)
	require.NoError(t, rw.Rewrite(ctx, forged[2:]))
	got, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	require.Equal(t, forged, got, "the forgery is in place")
	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err, "a re-hashed chain verifies on its own")
	requireAnchorTamper(t, st, anchor, 8, "rewritten")
	// An anchor before the forgery cannot see it; one at or after it can.
	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{Anchors: []eventstore.Head{{Position: 2, Hash: all[1].Hash}}})
	require.NoError(t, err)
	requireAnchorTamper(t, st, eventstore.Head{Position: 3, Hash: all[2].Hash}, 3, "rewritten")
}
