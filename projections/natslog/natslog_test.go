package natslog_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/internal/natstest"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/natslog"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/projections/quotas"
)

func projectors() []projections.Projector {
	return []projections.Projector{facilities.New(), quotas.New(), inspections.New(), deviations.New(), banks.New()}
}

func names() []string {
	var out []string
	for _, p := range projectors() {
		out = append(out, p.Name())
	}
	return out
}

func TestSubject(t *testing.T) {
	for stream, want := range map[string]string{
		"facility-01J9Z":           "p.log.facility.01J9Z",
		"quota-1404-home-business": "p.log.quota.1404-home-business",
		"reference":                "p.log.reference._",
		"odd-a.b c*>":              "p.log.odd.a_b_c__",
		"-x":                       "p.log._.x",
	} {
		require.Equal(t, want, natslog.Subject("p.log", stream), stream)
	}
}

func TestConfigRefusesBadNames(t *testing.T) {
	for _, cfg := range []natslog.Config{
		{Stream: "A.B"}, {Stream: "A B"}, {Subjects: "a..b"}, {Subjects: "a.*"}, {Subjects: "a.>"}, {AckWait: -time.Second},
	} {
		_, err := natslog.NewForwarder(memory.New(), nil, cfg)
		require.Error(t, err, "%+v", cfg)
		_, err = natslog.NewWorker(memory.New(), nil, nil, []string{"x"}, cfg)
		require.Error(t, err, "%+v", cfg)
	}
}

// A history written while two forwarders and three workers (each with its own
// store connections and Engine, as three processes would have) keep the
// read models; one worker is stopped mid-stream. Afterwards every read
// model is at the head and equals a rebuild from the log, every position
// went through JetStream exactly once at its own sequence, and the work
// was shared.
func TestWorkersShareTheLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		nt := natstest.New(t)
		env := b.Open(t)
		svc := env.Service(t)
		cfg := natslog.Config{
			URL: nt.URL, Stream: nt.Stream, Subjects: nt.Subjects,
			AckWait: 2 * time.Second, MaxAckPending: 16, Logger: slog.New(slog.DiscardHandler),
			// Small batches and little reading ahead, so that the workers
			// interleave and compete for every stretch of the log.
			ReadAhead: 3, BatchSize: 4,
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		t.Cleanup(func() { cancel(); wg.Wait() })

		// Two forwarders without a lease: they race for every message,
		// and the stream must still be the log, once.
		for range 2 {
			fwd, err := natslog.NewForwarder(env.Store, nil, cfg)
			require.NoError(t, err)
			wg.Go(func() { _ = fwd.Run(ctx) })
		}

		type worker struct {
			w      *natslog.Worker
			cancel context.CancelFunc
			done   chan struct{}
		}
		var workers []*worker
		var engine *projections.Engine
		for range 3 {
			other := env.Another(t)
			e, err := projections.New(projections.Config{Store: other.Store, DB: other.DB, Projectors: projectors()})
			require.NoError(t, err)
			engine = e
			w, err := natslog.NewWorker(other.Store, e, e.Reader(), names(), cfg)
			require.NoError(t, err)
			wctx, wcancel := context.WithCancel(ctx)
			wk := &worker{w: w, cancel: wcancel, done: make(chan struct{})}
			go func() { defer close(wk.done); _ = w.Run(wctx) }()
			workers = append(workers, wk)
		}

		h := projectionstest.NewHistory(t, svc, 5)
		h.Register(20)
		for range 3 {
			h.Step()
			h.QuotaStep()
		}
		// Stop one worker once it has applied something, while the history
		// goes on: whatever it held is redelivered to, or filled in by,
		// the others.
		require.Eventually(t, func() bool { return workers[0].w.Stats().Batches > 0 }, time.Minute, 10*time.Millisecond)
		workers[0].cancel()
		<-workers[0].done
		for range 3 {
			h.Step()
			h.QuotaStep()
		}
		h.Register(5)
		h.Step()

		head := env.Head(t)
		reader := projections.NewReader(env.DB, projectors()...)
		for _, n := range names() {
			_, err := reader.WaitFor(context.Background(), n, head, 2*time.Minute)
			require.NoError(t, err, n)
		}
		var events uint64
		for i, wk := range workers {
			s := wk.w.Stats()
			t.Logf("worker %d: %+v", i, s)
			events += s.Events
		}
		require.GreaterOrEqual(t, events, head*uint64(len(names())), "every read model saw every event")
		require.Positive(t, workers[1].w.Stats().Batches)
		require.Positive(t, workers[2].w.Stats().Batches)

		// JetStream holds the log, one message per position.
		nc, err := nats.Connect(nt.URL)
		require.NoError(t, err)
		defer nc.Close()
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		st, err := js.Stream(context.Background(), nt.Stream)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			info, err := st.Info(context.Background())
			return err == nil && info.State.LastSeq == head && info.State.Msgs == head
		}, time.Minute, 20*time.Millisecond)
		log, err := env.Store.ReadAll(context.Background(), 0, int(head), eventstore.Filter{})
		require.NoError(t, err)
		for _, e := range log {
			msg, err := st.GetMsg(context.Background(), e.Position)
			require.NoError(t, err)
			require.Equal(t, e.ID, msg.Header.Get(nats.MsgIdHdr), "sequence %d", e.Position)
			require.Equal(t, natslog.Subject(nt.Subjects, e.Stream), msg.Subject)
		}

		cancel()
		wg.Wait()
		for _, wk := range workers {
			<-wk.done
		}
		live := projectionstest.DumpAll(t, env.DB, projectors()...)
		for _, n := range names() {
			require.NoError(t, engine.Rebuild(context.Background(), n, nil), n)
		}
		require.Equal(t, live, projectionstest.DumpAll(t, env.DB, projectors()...))
	})
}

// A forwarder refuses, at once and for good, a JetStream stream that holds
// another log's events, or more of them than its log has: publishing on
// would mix two logs.
func TestForwarderRefusesAnotherLogsStream(t *testing.T) {
	nt := natstest.New(t)
	cfg := natslog.Config{URL: nt.URL, Stream: nt.Stream, Subjects: nt.Subjects, Logger: slog.New(slog.DiscardHandler)}
	fill := func(n int) *memory.Store {
		st := memory.New()
		t.Cleanup(func() { _ = st.Close() })
		for i := range n {
			_, err := st.Append(context.Background(), fmt.Sprintf("facility-%d", i), eventstore.NoStream, eventstoretest.Events(1, "facility.reported.v1"))
			require.NoError(t, err)
		}
		return st
	}
	run := func(st eventstore.Store, timeout time.Duration) error {
		fwd, err := natslog.NewForwarder(st, nil, cfg)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return fwd.Run(ctx)
	}
	first := fill(3)
	// The first log's three events go out; the forwarder then waits for more.
	require.ErrorIs(t, run(first, 2*time.Second), context.DeadlineExceeded)

	err := run(fill(3), time.Minute) // as long, other events
	require.ErrorContains(t, err, "carries another log")
	err = run(fill(2), time.Minute) // shorter
	require.ErrorContains(t, err, "holds 3 messages but the log only 2 events")
	require.ErrorIs(t, run(first, time.Second), context.DeadlineExceeded, "its own log goes on")
}
