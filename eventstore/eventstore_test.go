package eventstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
)

func sample() eventstore.Event {
	return eventstore.Event{
		Position: 7, Stream: "facility-f1", Version: 2, ID: "0190d7a4-0000-7000-8000-000000000001",
		Type: "facility.reviewed.v1", Data: []byte(`{"decision":"approved"}`),
		OccurredAt: time.Date(2024, 12, 5, 8, 0, 0, 0, time.UTC), RecordedAt: time.Date(2024, 12, 5, 8, 0, 1, 0, time.UTC),
		BackdateReason: "", Actor: eventstore.Actor{ID: "u1", Role: "agency", Org: "welfare"},
		IdempotencyKey: "k", CorrelationID: "c", CausationID: "z",
	}
}

func TestChainCoversEveryEnvelopeField(t *testing.T) {
	base := sample()
	h0, _ := eventstore.Chain(eventstore.Hash{}, &base, nil)
	mutations := map[string]func(e *eventstore.Event){
		"position":        func(e *eventstore.Event) { e.Position++ },
		"stream":          func(e *eventstore.Event) { e.Stream = "facility-f2" },
		"version":         func(e *eventstore.Event) { e.Version++ },
		"id":              func(e *eventstore.Event) { e.ID += "x" },
		"type":            func(e *eventstore.Event) { e.Type = "facility.closed.v1" },
		"data":            func(e *eventstore.Event) { e.Data = []byte(`{"decision":"rejected"}`) },
		"occurred_at":     func(e *eventstore.Event) { e.OccurredAt = e.OccurredAt.Add(time.Microsecond) },
		"recorded_at":     func(e *eventstore.Event) { e.RecordedAt = e.RecordedAt.Add(time.Microsecond) },
		"backdate_reason": func(e *eventstore.Event) { e.BackdateReason = "late" },
		"actor_id":        func(e *eventstore.Event) { e.Actor.ID = "u2" },
		"actor_role":      func(e *eventstore.Event) { e.Actor.Role = "bank" },
		"actor_org":       func(e *eventstore.Event) { e.Actor.Org = "relief-committee" },
		"idempotency_key": func(e *eventstore.Event) { e.IdempotencyKey = "k2" },
		"correlation_id":  func(e *eventstore.Event) { e.CorrelationID = "c2" },
		"causation_id":    func(e *eventstore.Event) { e.CausationID = "z2" },
		// Moving bytes between adjacent fields must change the hash too:
		// that is what the length prefixes are for.
		"field boundary": func(e *eventstore.Event) { e.IdempotencyKey, e.CorrelationID = "kc", "" },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			e := sample()
			mutate(&e)
			h, _ := eventstore.Chain(eventstore.Hash{}, &e, nil)
			require.NotEqual(t, h0, h)
		})
	}
	t.Run("predecessor", func(t *testing.T) {
		e := sample()
		h, _ := eventstore.Chain(eventstore.Hash{1}, &e, nil)
		require.NotEqual(t, h0, h)
	})
	t.Run("stored hashes are not hashed", func(t *testing.T) {
		e := sample()
		e.Hash, e.PrevHash = eventstore.Hash{9}, eventstore.Hash{8}
		h, _ := eventstore.Chain(eventstore.Hash{}, &e, nil)
		require.Equal(t, h0, h)
	})
}

func TestCanonicalIsStable(t *testing.T) {
	// A golden hash, computed independently from the documented layout (a
	// short Python script over the same fields): if this changes, every stored
	// chain stops verifying.
	e := sample()
	h, _ := eventstore.Chain(eventstore.Hash{}, &e, nil)
	require.Equal(t, "46ea0ee06bd448f16c9a1c0b9bcf50d8e81ceca7a81483f07e51c2a53d8a7477", h.String())
}

func TestParseHash(t *testing.T) {
	e := sample()
	h, _ := eventstore.Chain(eventstore.Hash{}, &e, nil)
	back, err := eventstore.ParseHash(h.String())
	require.NoError(t, err)
	require.Equal(t, h, back)
	_, err = eventstore.ParseHash("abc")
	require.Error(t, err)
	_, err = eventstore.HashFromBytes([]byte{1, 2})
	require.Error(t, err)
}

func TestExpectedVersion(t *testing.T) {
	cases := []struct {
		ev      eventstore.ExpectedVersion
		current uint64
		ok      bool
	}{
		{eventstore.Any, 0, true}, {eventstore.Any, 5, true},
		{eventstore.NoStream, 0, true}, {eventstore.NoStream, 1, false},
		{eventstore.StreamExists, 0, false}, {eventstore.StreamExists, 3, true},
		{eventstore.Exact(3), 3, true}, {eventstore.Exact(3), 2, false}, {eventstore.Exact(3), 4, false},
		{eventstore.Exact(0), 0, true}, {eventstore.Exact(0), 1, false},
	}
	for _, c := range cases {
		require.Equal(t, c.ok, c.ev.Matches(c.current), "%s at %d", c.ev, c.current)
	}
	require.Equal(t, eventstore.NoStream, eventstore.Exact(0))
	v, exact := eventstore.Exact(4).Version()
	require.True(t, exact)
	require.Equal(t, uint64(4), v)
	_, exact = eventstore.Any.Version()
	require.False(t, exact)
}

func TestFilter(t *testing.T) {
	e := &eventstore.Event{Stream: "facility-1", Type: "facility.registered.v1"}
	require.True(t, eventstore.Filter{}.Matches(e))
	require.True(t, eventstore.Filter{StreamPrefixes: []string{"quota-", "facility-"}}.Matches(e))
	require.False(t, eventstore.Filter{StreamPrefixes: []string{"quota-"}}.Matches(e))
	require.True(t, eventstore.Filter{Types: []string{"facility.registered.v1"}}.Matches(e))
	require.False(t, eventstore.Filter{StreamPrefixes: []string{"facility-"}, Types: []string{"x"}}.Matches(e))
	require.False(t, eventstore.Filter{StreamPrefixes: []string{"facility-10"}}.Matches(e))
}

func TestBuildNormalisesAndChains(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 999, time.FixedZone("IRST", 12600))
	events, head := eventstore.Build("s", 3, 10, eventstore.Hash{7}, now, []eventstore.Proposed{
		{ID: "a", Type: "t.v1", Data: []byte("{}")},
		{ID: "b", Type: "t.v1", Data: []byte("{}"), OccurredAt: now.Add(-time.Hour), BackdateReason: "r"},
	})
	require.Len(t, events, 2)
	require.Equal(t, uint64(11), events[0].Position)
	require.Equal(t, uint64(4), events[0].Version)
	require.Equal(t, uint64(12), events[1].Position)
	require.Equal(t, time.UTC, events[0].RecordedAt.Location())
	require.Zero(t, events[0].RecordedAt.Nanosecond()%1000)
	require.Equal(t, events[0].RecordedAt, events[0].OccurredAt, "zero occurred-at means now")
	require.Equal(t, eventstore.Hash{7}, events[0].PrevHash)
	require.Equal(t, events[0].Hash, events[1].PrevHash)
	require.Equal(t, events[1].Hash, head)
}

func TestCheckDuplicate(t *testing.T) {
	props := []eventstore.Proposed{{ID: "a"}, {ID: "b"}}
	stored := map[string]eventstore.Event{
		"a": {ID: "a", Stream: "s", Version: 4, Position: 20},
		"b": {ID: "b", Stream: "s", Version: 5, Position: 21},
	}
	res, err := eventstore.CheckDuplicate("s", props, stored)
	require.NoError(t, err)
	require.Equal(t, eventstore.AppendResult{FirstVersion: 4, LastVersion: 5, FirstPosition: 20, LastPosition: 21, Duplicate: true}, res)

	_, err = eventstore.CheckDuplicate("other", props, stored)
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
	delete(stored, "b")
	_, err = eventstore.CheckDuplicate("s", props, stored)
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)
}
