package projections

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
)

// An event that does not decode fails the projectors that select it, at
// it, and no other: the others get every event they select, in order.
func TestChunkDecodeFailuresReachOnlyTheirProjectors(t *testing.T) {
	encode := func(e domain.Event) []byte {
		b, err := domain.Encode(e)
		require.NoError(t, err)
		return b
	}
	reg, insp, alloc := encode(facility.RegisteredV1{}), encode(facility.InspectedV1{}), encode(quota.AllocatedV1{})
	events := []eventstore.Event{
		{Position: 1, Stream: "facility-a", Type: facility.TypeRegistered, Data: reg},
		{Position: 2, Stream: "quota-1404-p", Type: quota.TypeAllocated, Data: alloc},
		{Position: 3, Stream: "facility-a", Type: facility.TypeInspected, Data: []byte(`{"no_such_field": 1}`)},
		{Position: 4, Stream: "facility-b", Type: facility.TypeRegistered, Data: reg},
		{Position: 5, Stream: "other-x", Type: "other.thing.v1", Data: []byte(`not even json`)}, // nobody reads it
		{Position: 6, Stream: "quota-1404-p", Type: quota.TypeAllocated, Data: []byte(`[]`)},
		{Position: 7, Stream: "facility-b", Type: facility.TypeInspected, Data: insp},
	}
	fs := filters{
		{StreamPrefixes: []string{"facility-"}},
		{Types: []string{facility.TypeRegistered}},
		{StreamPrefixes: []string{"quota-"}},
	}
	const facilities, registrations, quotas = 0, 1, 2
	e := &Engine{cfg: Config{Registry: schema.Registry()}}
	c := &chunk{end: 7}
	e.decodeAll(c, events, fs)
	positions := func(envs []Envelope) []uint64 {
		var out []uint64
		for _, env := range envs {
			out = append(out, env.Position)
		}
		return out
	}
	require.Equal(t, []uint64{1, 2, 4, 7}, positions(c.envs), "decoded, in order, the failures left out")
	require.Len(t, c.failed, 2)
	require.EqualValues(t, 3, c.failed[0].err.Position)
	require.EqualValues(t, 6, c.failed[1].err.Position)

	got, err := c.envsFor(registrations, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 4}, positions(got))

	_, err = c.envsFor(facilities, 0)
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	require.EqualValues(t, 3, de.Position, "the first it selects that failed")
	got, err = c.envsFor(facilities, 3)
	require.NoError(t, err, "a failure at or before the checkpoint is already behind it")
	require.Equal(t, []uint64{4, 7}, positions(got))
	got, err = c.envsFor(facilities, 4)
	require.NoError(t, err)
	require.Equal(t, []uint64{7}, positions(got))

	_, err = c.envsFor(quotas, 2)
	require.ErrorAs(t, err, &de)
	require.EqualValues(t, 6, de.Position)

	// A filter that selects every decoded event shares the chunk's slice.
	all := &chunk{}
	e.decodeAll(all, []eventstore.Event{events[0], events[1], events[3]}, filters{{StreamPrefixes: []string{"facility-"}}, {}})
	got, err = all.envsFor(1, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 4}, positions(got))
	require.Same(t, &all.envs[0], &got[0])
}

// Sinks with equal filters share a selection of each batch.
func TestEqualFiltersAreGrouped(t *testing.T) {
	mk := func(f eventstore.Filter) *sink {
		return newSink(&runner{p: filterOnly{f}}, target{}, 0)
	}
	sinks := []*sink{
		mk(eventstore.Filter{StreamPrefixes: []string{"facility-"}}),
		mk(eventstore.Filter{Types: []string{quota.TypeAllocated}}),
		mk(eventstore.Filter{StreamPrefixes: []string{"facility-"}}),
		mk(eventstore.Filter{}),
		mk(eventstore.Filter{StreamPrefixes: []string{"facility-"}, Types: []string{quota.TypeAllocated}}),
	}
	fs := groupFilters(sinks)
	require.Len(t, fs, 4)
	var groups []int
	for _, s := range sinks {
		groups = append(groups, s.group)
	}
	require.Equal(t, []int{0, 1, 0, 2, 3}, groups)
}

// filterOnly is a projector that only has a Filter.
type filterOnly struct{ f eventstore.Filter }

func (filterOnly) Name() string                                             { return "filter_only" }
func (filterOnly) Version() int                                             { return 1 }
func (filterOnly) Tables() []string                                         { return []string{"filter_only"} }
func (filterOnly) Schema(Dialect, TableNames) Schema                        { return Schema{} }
func (p filterOnly) Filter() eventstore.Filter                              { return p.f }
func (filterOnly) Apply(context.Context, *Tx, TableNames, []Envelope) error { return nil }

// The meter reports the least position of the sinks still running, only
// when it moves on, never going back.
func TestMeterReportsTheSlowestSink(t *testing.T) {
	type report struct{ pos, head uint64 }
	var got []report
	sinks := []*sink{{pos: 10}, {pos: 40}, {pos: 25}}
	m := newMeter(sinks, func(pos, head uint64) { got = append(got, report{pos, head}) })
	m.set(1, 60, 100) // the least is still 10
	m.set(0, 30, 100) // now 25
	m.set(2, 50, 120) // now 30
	m.set(2, 50, 120) // no move
	m.drop(0)         // the rest: 50
	m.set(1, 70, 120)
	m.set(2, 90, 130) // 70
	require.Equal(t, []report{{25, 100}, {30, 120}, {50, 120}, {70, 130}}, got)
	require.Nil(t, newMeter(sinks, nil))
	var nothing *meter
	nothing.set(0, 1, 1) // a nil meter is a no-op
	nothing.drop(0)
}
