package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

// sliceReader serves a log from a slice, as a store would, whatever is in it.
type sliceReader []eventstore.Event

func (r sliceReader) ReadAll(_ context.Context, after uint64, limit int, _ eventstore.Filter) ([]eventstore.Event, error) {
	var out []eventstore.Event
	for _, e := range r {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// chainOf builds a consistent log of n events over three streams, as the
// committer would have written it.
func chainOf(n int) []eventstore.Event {
	var (
		out      []eventstore.Event
		head     eventstore.Head
		versions = map[string]uint64{}
	)
	now := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i := range n {
		stream := fmt.Sprintf("facility-%d", i%3)
		built, h := eventstore.Build(stream, versions[stream], head.Position, head.Hash, now,
			[]eventstore.Proposed{{ID: fmt.Sprintf("id-%d", i), Type: "t.v1", Data: fmt.Appendf(nil, `{"i":%d}`, i)}})
		out = append(out, built...)
		versions[stream]++
		head = eventstore.Head{Position: built[0].Position, Hash: h}
	}
	return out
}

// Every way the version sequence can go wrong is caught even when the
// chain itself is consistent (the event was written, or re-hashed, that
// way): Verify checks versions, not only hashes.
func TestVerifyChecksEveryStreamsVersionSequence(t *testing.T) {
	cases := map[string]func(e []eventstore.Event){
		"version skipped":            func(e []eventstore.Event) { e[6].Version = 4 },
		"version repeated":           func(e []eventstore.Event) { e[6].Version = 2 },
		"stream starts at version 2": func(e []eventstore.Event) { e[2].Version = 2 },
		"version goes back":          func(e []eventstore.Event) { e[9].Version = 1 },
		"event moved to a stream":    func(e []eventstore.Event) { e[7].Stream = "facility-0" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			log := chainOf(12)
			_, err := eventstore.Verify(context.Background(), sliceReader(log), eventstore.VerifyOptions{})
			require.NoError(t, err)
			mutate(log)
			first := 0
			for first < len(log) {
				h, _ := eventstore.Chain(log[first].PrevHash, &log[first], nil)
				if h != log[first].Hash {
					break
				}
				first++
			}
			eventstoretest.Rechain(log, first)
			_, err = eventstore.Verify(context.Background(), sliceReader(log), eventstore.VerifyOptions{BatchSize: 4})
			var te *eventstore.TamperError
			require.ErrorAs(t, err, &te)
			require.Equal(t, log[first].Position, te.Position)
			require.Equal(t, log[first].ID, te.EventID)
			require.Contains(t, te.Problem, "stream version")
		})
	}
}

func TestCheckerNamesTheFirstBadEvent(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(e []eventstore.Event) []eventstore.Event
		pos     uint64
		id      string
		problem string
	}{
		{"clean", func(e []eventstore.Event) []eventstore.Event { return e }, 0, "", ""},
		{"gap", func(e []eventstore.Event) []eventstore.Event { return append(e[:4:4], e[5:]...) }, 5, "", "event missing"},
		{"repeated", func(e []eventstore.Event) []eventstore.Event { return append(e[:5:5], e[4:]...) }, 5, "id-4", "out of order or repeated"},
		{"link", func(e []eventstore.Event) []eventstore.Event { e[3].PrevHash[0] ^= 1; return e }, 4, "id-3", "link broken"},
		{"content", func(e []eventstore.Event) []eventstore.Event { e[3].Actor.Org = "x"; return e }, 4, "id-3", "content does not match"},
		{"first not at 1", func(e []eventstore.Event) []eventstore.Event { return e[1:] }, 1, "", "event missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := eventstore.NewChecker()
			var err error
			for _, e := range tc.mutate(chainOf(8)) {
				if err = c.Check(&e); err != nil {
					break
				}
			}
			if tc.problem == "" {
				require.NoError(t, err)
				log := chainOf(8)
				require.Equal(t, eventstore.Head{Position: 8, Hash: log[7].Hash}, c.Head())
				require.Equal(t, uint64(3), c.Version("facility-0"))
				return
			}
			var te *eventstore.TamperError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tc.pos, te.Position)
			require.Equal(t, tc.id, te.EventID)
			require.Contains(t, te.Problem, tc.problem)
		})
	}
}

func TestValidateStored(t *testing.T) {
	good := chainOf(1)[0]
	require.NoError(t, eventstore.ValidateStored(&good))
	cases := map[string]func(e *eventstore.Event){
		"position 0":   func(e *eventstore.Event) { e.Position = 0 },
		"version 0":    func(e *eventstore.Event) { e.Version = 0 },
		"no stream":    func(e *eventstore.Event) { e.Stream = "" },
		"long stream":  func(e *eventstore.Event) { e.Stream = string(make([]byte, eventstore.MaxStreamLen+1)) },
		"no id":        func(e *eventstore.Event) { e.ID = "" },
		"no type":      func(e *eventstore.Event) { e.Type = "" },
		"huge payload": func(e *eventstore.Event) { e.Data = make([]byte, eventstore.MaxEventSize+1) },
		"bad utf-8":    func(e *eventstore.Event) { e.CausationID = "\xff" },
		"nul":          func(e *eventstore.Event) { e.Actor.Role = "a\x00" },
		"nanoseconds":  func(e *eventstore.Event) { e.OccurredAt = e.OccurredAt.Add(1) },
		"before 1900":  func(e *eventstore.Event) { e.RecordedAt = time.Date(1899, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := good
			mutate(&e)
			require.ErrorIs(t, eventstore.ValidateStored(&e), eventstore.ErrInvalidEvent)
		})
	}
}
