package kurrenttest_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore/kurrentdb/kurrenttest"
)

// client starts a server and connects the real client to it.
func client(t *testing.T) *esdb.Client {
	t.Helper()
	srv, err := kurrenttest.Start()
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	conf, err := esdb.ParseConnectionString("esdb://" + srv.Address() + "?tls=false")
	require.NoError(t, err)
	c, err := esdb.NewClient(conf)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func event(id uuid.UUID, typ, data string) esdb.EventData {
	return esdb.EventData{EventID: id, EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(data), Metadata: []byte(`{"k":1}`)}
}

func code(err error) esdb.ErrorCode {
	if e, ok := esdb.FromError(err); !ok {
		return e.Code()
	}
	return -1
}

func readStream(t *testing.T, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, n uint64) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	rs, err := c.ReadStream(context.Background(), stream, opts, n)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func TestAppendsWithExpectedRevisionsAndIdempotency(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	a, b, x := uuid.New(), uuid.New(), uuid.New()

	res, err := c.AppendToStream(ctx, "facility-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}},
		event(a, "facility.registered.v1", `{"n":1}`), event(b, "facility.reviewed.v1", `{"n":2}`))
	require.NoError(t, err)
	require.EqualValues(t, 1, res.NextExpectedVersion)

	// The same events at the same expected revision: nothing written, the
	// same revision answered.
	res, err = c.AppendToStream(ctx, "facility-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}},
		event(a, "facility.registered.v1", `{"n":1}`), event(b, "facility.reviewed.v1", `{"n":2}`))
	require.NoError(t, err)
	require.EqualValues(t, 1, res.NextExpectedVersion)
	// …and with any.
	_, err = c.AppendToStream(ctx, "facility-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, event(b, "facility.reviewed.v1", `{"n":2}`))
	require.NoError(t, err)

	// A stale expected revision, or no stream where there is one.
	for _, exp := range []esdb.ExpectedRevision{esdb.Revision(0), esdb.NoStream{}} {
		_, err = c.AppendToStream(ctx, "facility-1", esdb.AppendToStreamOptions{ExpectedRevision: exp}, event(x, "t", `{}`))
		require.Error(t, err)
		e, ok := esdb.FromError(err)
		require.False(t, ok)
		require.Equal(t, esdb.ErrorCodeWrongExpectedVersion, e.Code(), "%v", err)
	}
	_, err = c.AppendToStream(ctx, "facility-2", esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}}, event(x, "t", `{}`))
	require.Equal(t, esdb.ErrorCodeWrongExpectedVersion, code(err))

	res, err = c.AppendToStream(ctx, "facility-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(1)}, event(x, "facility.inspected.v1", `{"n":3}`))
	require.NoError(t, err)
	require.EqualValues(t, 2, res.NextExpectedVersion)

	evs, err := readStream(t, c, "facility-1", esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	require.NoError(t, err)
	require.Len(t, evs, 3, "no event written twice")
	for i, want := range []uuid.UUID{a, b, x} {
		require.Equal(t, want, evs[i].Event.EventID)
		require.EqualValues(t, i, evs[i].Event.EventNumber)
		require.Equal(t, "facility-1", evs[i].Event.StreamID)
		require.WithinDuration(t, time.Now(), evs[i].Event.CreatedDate, time.Minute)
		require.Equal(t, []byte(`{"k":1}`), evs[i].Event.UserMetadata)
	}
	require.Equal(t, "facility.registered.v1", evs[0].Event.EventType)
	require.Equal(t, []byte(`{"n":1}`), evs[0].Event.Data)
	require.Less(t, evs[0].Event.Position.Commit, evs[1].Event.Position.Commit)

	back, err := readStream(t, c, "facility-1", esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 2)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{x, b}, []uuid.UUID{back[0].Event.EventID, back[1].Event.EventID})
	from1, err := readStream(t, c, "facility-1", esdb.ReadStreamOptions{From: esdb.Revision(1)}, 10)
	require.NoError(t, err)
	require.Len(t, from1, 2)

	_, err = readStream(t, c, "facility-9", esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
	require.Equal(t, esdb.ErrorCodeResourceNotFound, code(err))
}

func TestAllReadsAndFilteredSubscriptions(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	for _, s := range []string{"facility-1", "quota-1403-x", "facility-2"} {
		_, err := c.AppendToStream(ctx, s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
			event(uuid.New(), "e."+s, `{"s":"`+s+`"}`))
		require.NoError(t, err)
	}
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Start{}}, 100)
	require.NoError(t, err)
	var all []*esdb.ResolvedEvent
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		all = append(all, e)
	}
	rs.Close()
	require.Len(t, all, 3)
	require.Less(t, all[0].Event.Position.Commit, all[1].Event.Position.Commit)
	require.Greater(t, all[1].Event.Position.Commit-all[0].Event.Position.Commit, uint64(1), "positions are log offsets, not counts")

	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"facility-"}}})
	require.NoError(t, err)
	defer sub.Close()
	next := func() *esdb.ResolvedEvent {
		for {
			ev := sub.Recv()
			require.Nil(t, ev.SubscriptionDropped)
			if ev.EventAppeared != nil {
				return ev.EventAppeared
			}
		}
	}
	require.Equal(t, "facility-1", next().Event.StreamID)
	require.Equal(t, "facility-2", next().Event.StreamID)
	// Live: appended after the subscription caught up.
	_, err = c.AppendToStream(ctx, "quota-1404-x", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, event(uuid.New(), "q", `{}`))
	require.NoError(t, err)
	_, err = c.AppendToStream(ctx, "facility-3", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, event(uuid.New(), "f", `{}`))
	require.NoError(t, err)
	require.Equal(t, "facility-3", next().Event.StreamID, "filtered server-side: the quota event never reaches the client")

	// From a position: the events after it only.
	sub2, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: all[1].Event.Position})
	require.NoError(t, err)
	defer sub2.Close()
	for {
		ev := sub2.Recv()
		if ev.EventAppeared != nil {
			require.Equal(t, "facility-2", ev.EventAppeared.Event.StreamID)
			break
		}
	}
}
