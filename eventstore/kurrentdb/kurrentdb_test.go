package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/eventstore/kurrentdb/kurrenttest"
)

// contractScanWindow makes ReadPage stop after a few positions in the
// contract suite, so that filtered reads and subscriptions go through many
// pages, empty ones among them.
const contractScanWindow = 3

// startServer starts a kurrenttest server for one test and returns its
// connection string, in the kurrentdb:// form the adapter rewrites.
func startServer(t *testing.T) (*kurrenttest.Server, string) {
	t.Helper()
	srv, err := kurrenttest.Start()
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	return srv, "kurrentdb://" + srv.Address() + "?tls=false"
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.Logger = func(esdb.LogLevel, string, ...any) {} // the client logs at debug level
	st, err := Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Backend {
		srv, url := startServer(t)
		st := open(t, Config{URL: url, ScanWindow: contractScanWindow})
		return eventstoretest.Backend{Store: st, Tamper: tamperer{srv: srv, stream: DefaultStream}}
	}, eventstoretest.Features{NoGuards: true, ScanWindow: contractScanWindow})
}

// TestContractRealServer runs the suite against the KurrentDB server that
// PAYESH_TEST_KURRENTDB_URL names, each test on a log stream of its own.
// Nothing can tamper with a real server's events, so those tests skip.
func TestContractRealServer(t *testing.T) {
	url := os.Getenv("PAYESH_TEST_KURRENTDB_URL")
	if url == "" {
		t.Skip("PAYESH_TEST_KURRENTDB_URL is not set")
	}
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Backend {
		st := open(t, Config{URL: url, Stream: "payesh-log-" + uuid.NewString(), ScanWindow: contractScanWindow})
		return eventstoretest.Backend{Store: st}
	}, eventstoretest.Features{NoGuards: true, ScanWindow: contractScanWindow})
}

// tamperer edits the log stream's records in the test server directly:
// position p is revision p-1.
type tamperer struct {
	srv    *kurrenttest.Server
	stream string
}

func (t tamperer) SetData(_ context.Context, pos uint64, data []byte) error {
	return t.srv.SetEventData(t.stream, pos-1, data)
}

func (t tamperer) Delete(_ context.Context, pos uint64) error {
	return t.srv.DeleteEvent(t.stream, pos-1)
}

func (t tamperer) Swap(_ context.Context, a, b uint64) error {
	return t.srv.SwapEvents(t.stream, a-1, b-1)
}

// DisableGuards does nothing: KurrentDB has no guards to disable.
func (tamperer) DisableGuards(context.Context) error { return nil }

// TestTwoProcesses runs two stores on one log stream, as two processes
// would: their appends interleave without a gap in positions or versions,
// the chain stays whole, and each sees the other's appends.
func TestTwoProcesses(t *testing.T) {
	_, url := startServer(t)
	a := open(t, Config{URL: url})
	b := open(t, Config{URL: url})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Each sees the other's appends at once.
	_, err := a.Append(ctx, "seen", eventstore.NoStream, eventstoretest.Events(2, "t.v1"))
	require.NoError(t, err)
	v, err := b.StreamVersion(ctx, "seen")
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
	res, err := b.Append(ctx, "seen", eventstore.Exact(2), eventstoretest.Events(1, "t.v1"))
	require.NoError(t, err)
	require.Equal(t, eventstore.AppendResult{FirstVersion: 3, LastVersion: 3, FirstPosition: 3, LastPosition: 3}, res)
	fromA, err := a.ReadStream(ctx, "seen", 1, eventstore.Forwards, 10)
	require.NoError(t, err)
	fromB, err := b.ReadStream(ctx, "seen", 1, eventstore.Forwards, 10)
	require.NoError(t, err)
	require.Len(t, fromA, 3)
	require.Equal(t, fromB, fromA)

	// A stale expected version is refused whichever process appended last.
	_, err = a.Append(ctx, "seen", eventstore.Exact(2), eventstoretest.Events(1, "t.v1"))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)

	// A retry through the other process is recognised as one.
	retry := eventstoretest.Events(2, "t.v1")
	first, err := a.Append(ctx, "retried", eventstore.NoStream, retry)
	require.NoError(t, err)
	again, err := b.Append(ctx, "retried", eventstore.NoStream, retry)
	require.NoError(t, err)
	first.Duplicate = true
	require.Equal(t, first, again)

	// Concurrent writers in both processes, on one hot stream (optimistic
	// retries) and on streams of their own.
	const writers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, 4*writers)
	for _, st := range []*Store{a, b} {
		for w := range writers {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for range each {
					if err := appendHot(ctx, st); err != nil {
						errs <- err
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				var v uint64
				for i := range each {
					stream := fmt.Sprintf("own-%p-%d", st, w)
					res, err := st.Append(ctx, stream, eventstore.Exact(v), eventstoretest.Events(1+i%2, "t.v1"))
					if err != nil {
						errs <- err
						return
					}
					v = res.LastVersion
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	for _, st := range []*Store{a, b} {
		hot, err := st.ReadStream(ctx, "hot", 1, eventstore.Forwards, 1000)
		require.NoError(t, err)
		require.Len(t, hot, 2*writers*each)
		for i, e := range hot {
			require.Equal(t, uint64(i+1), e.Version)
		}
		rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{BatchSize: 50})
		require.NoError(t, err)
		wantEvents := 3 + 2 + 2*writers*each + 2*writers*(each/2*3+each%2)
		require.Equal(t, uint64(wantEvents), rep.Events)
		require.Equal(t, 3+2*writers, rep.Streams)
		for _, other := range []*Store{a, b} {
			for w := range writers {
				v, err := st.StreamVersion(ctx, fmt.Sprintf("own-%p-%d", other, w))
				require.NoError(t, err)
				require.Equal(t, uint64(each/2*3+each%2), v)
			}
		}
	}
}

// appendHot appends one event to "hot" at the version it reads, retrying
// on conflicts, as a command handler does.
func appendHot(ctx context.Context, st *Store) error {
	ev := eventstoretest.Events(1, "t.v1")
	for {
		v, err := st.StreamVersion(ctx, "hot")
		if err != nil {
			return err
		}
		_, err = st.Append(ctx, "hot", eventstore.Exact(v), ev)
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return err
		}
	}
}

// TestNonUUIDIDs: IDs that are not canonical UUIDs (the index keeps them as
// strings, KurrentDB gets a derived UUID) round-trip, are recognised on
// retry and are told apart from the UUID they resemble.
func TestNonUUIDIDs(t *testing.T) {
	_, url := startServer(t)
	st := open(t, Config{URL: url})
	ctx := context.Background()
	u := uuid.New()
	events := eventstoretest.Events(3, "t.v1")
	events[0].ID = "order-17"
	events[1].ID = u.String()
	events[2].ID = "{" + u.String() + "}" // parses as the same UUID, but is another ID
	res, err := st.Append(ctx, "ids", eventstore.NoStream, events)
	require.NoError(t, err)
	got, err := st.ReadStream(ctx, "ids", 1, eventstore.Forwards, 10)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, e := range got {
		require.Equal(t, events[i].ID, e.ID)
	}
	again, err := st.Append(ctx, "ids", eventstore.NoStream, events)
	require.NoError(t, err)
	res.Duplicate = true
	require.Equal(t, res, again)
	_, err = st.Append(ctx, "other", eventstore.Any, events[2:])
	require.ErrorIs(t, err, eventstore.ErrDuplicateEventID)

	// A new store builds the same index from the log stream.
	fresh := open(t, Config{URL: url})
	again, err = fresh.Append(ctx, "ids", eventstore.NoStream, events)
	require.NoError(t, err)
	require.Equal(t, res, again)
}

func TestEventID(t *testing.T) {
	u := uuid.New()
	id, ok := eventID(u.String())
	require.True(t, ok)
	require.Equal(t, u, id)
	for _, s := range []string{"order-17", "urn:uuid:" + u.String(), "{" + u.String() + "}", fmt.Sprintf("%X", u[:])} {
		id, ok := eventID(s)
		require.False(t, ok, s)
		require.NotEqual(t, u, id, s)
		again, _ := eventID(s)
		require.Equal(t, id, again, "derived IDs are stable")
	}
}

func TestParseURL(t *testing.T) {
	for url, want := range map[string]struct {
		address  string
		discover bool
		tls      bool
	}{
		"kurrentdb://localhost:2113?tls=false":     {"localhost:2113", false, false},
		"esdb://localhost:2113?tls=false":          {"localhost:2113", false, false},
		"kurrentdb+discover://db.example:2113":     {"db.example:2113", true, true},
		"esdb+discover://db.example:2113?tls=true": {"db.example:2113", true, true},
		"kurrentdb://u:p@10.0.0.1:2113?tls=false":  {"10.0.0.1:2113", false, false},
	} {
		conf, err := parseURL(url)
		require.NoError(t, err, url)
		require.Equal(t, want.discover, conf.DnsDiscover, url)
		require.Equal(t, !want.tls, conf.DisableTLS, url)
		if !want.discover {
			require.Equal(t, want.address, conf.Address, url)
		}
	}
	_, err := parseURL("postgres://localhost")
	require.Error(t, err)
	require.Error(t, Config{URL: "kurrentdb://h:1", Stream: "$all"}.Validate())
	require.Error(t, Config{}.Validate())
}

func TestTranslate(t *testing.T) {
	_, url := startServer(t)
	st := open(t, Config{URL: url})
	ctx := context.Background()

	// Real client errors.
	_, err := st.client.AppendToStream(ctx, "x", esdb.AppendToStreamOptions{ExpectedRevision: esdb.StreamExists{}},
		esdb.EventData{EventID: uuid.New(), EventType: "t", Data: []byte("{}")})
	require.ErrorIs(t, translate(err), errLogMoved)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = st.client.AppendToStream(cancelled, "x", esdb.AppendToStreamOptions{}, esdb.EventData{EventID: uuid.New(), EventType: "t"})
	require.ErrorIs(t, translate(err), context.Canceled)
	_, err = st.Head(cancelled)
	require.ErrorIs(t, err, context.Canceled)

	require.NoError(t, st.Close())
	_, err = st.client.AppendToStream(ctx, "x", esdb.AppendToStreamOptions{}, esdb.EventData{EventID: uuid.New(), EventType: "t"})
	require.ErrorIs(t, translate(err), eventstore.ErrClosed)

	// The gRPC statuses the client passes on.
	deadline, _ := esdb.FromError(status.Error(codes.DeadlineExceeded, "slow"))
	require.ErrorIs(t, translate(deadline), context.DeadlineExceeded)
	unavailable, _ := esdb.FromError(status.Error(codes.Unavailable, "down"))
	require.ErrorIs(t, translate(unavailable), ErrUnavailable)
	other := errors.New("not the client's")
	require.Same(t, other, translate(other))
	require.NoError(t, translate(nil))
}

// TestSubscribeAfterHead: a subscription from beyond the head starts from
// the last event and skips what is not after its position.
func TestSubscribeAfterHead(t *testing.T) {
	_, url := startServer(t)
	st := open(t, Config{URL: url})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := st.Append(ctx, "s", eventstore.Any, eventstoretest.Events(3, "t.v1"))
	require.NoError(t, err)

	got := make(chan uint64, 10)
	subCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- st.Subscribe(subCtx, 5, eventstore.Filter{}, func(_ context.Context, batch []eventstore.Event) error {
			for _, e := range batch {
				got <- e.Position
			}
			return nil
		})
	}()
	_, err = st.Append(ctx, "s", eventstore.Any, eventstoretest.Events(4, "t.v1"))
	require.NoError(t, err)
	for _, want := range []uint64{6, 7} {
		select {
		case p := <-got:
			require.Equal(t, want, p)
		case err := <-done:
			t.Fatalf("the subscription ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("no event %d", want)
		}
	}
	stop()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Empty(t, got)
}
