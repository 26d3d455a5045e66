package pubsub_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/internal/pgtest"
	"github.com/payesh/payesh/projections/pubsub"
	"github.com/payesh/payesh/projections/pubsub/pubsubtest"
)

var testActor = eventstore.Actor{ID: "svc-projections", Role: "service", Org: "payesh"}

// backend opens a store and its checkpoint store for one test; reopen, when
// set, opens a second, independent handle on the same data (another
// process, as far as the log is concerned).
type backend struct {
	name string
	open func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore, func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore))
}

var backends = []backend{
	{"memory", func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore, func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore)) {
		st := memory.New()
		t.Cleanup(func() { _ = st.Close() })
		cps := pubsub.NewMemoryCheckpoints()
		return st, cps, func(testing.TB) (eventstore.Store, pubsub.CheckpointStore) { return st, cps }
	}},
	{"sqlite", func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore, func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore)) {
		path := filepath.Join(t.TempDir(), "payesh.db")
		open := func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore) {
			st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Poll: 50 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, st.Close()) })
			return st, sqlite.NewCheckpoints(st)
		}
		st, cps := open(t)
		return st, cps, open
	}},
	{"postgres", func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore, func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore)) {
		url, schema := pgtest.Schema(t)
		open := func(t testing.TB) (eventstore.Store, pubsub.CheckpointStore) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := postgres.Open(ctx, postgres.Config{URL: url, Schema: schema, MaxConns: 8, Poll: 200 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, st.Close()) })
			cps := postgres.NewCheckpoints(st)
			cps.LeaseRetry = 50 * time.Millisecond
			return st, cps
		}
		st, cps := open(t)
		return st, cps, open
	}},
}

// features are what this Pub/Sub really offers; see the package doc.
var features = tests.Features{
	ConsumerGroups:                      true,
	ExactlyOnceDelivery:                 false,
	GuaranteedOrder:                     true,
	GuaranteedOrderWithSingleSubscriber: false,
	Persistent:                          true,
	RestartServiceCommand:               nil,
	RequireSingleInstance:               false,
	NewSubscriberReceivesOldMessages:    false,
	ForceShort:                          false,
	ContextPreserved:                    false,
}

func constructors(store eventstore.Store, cps pubsub.CheckpointStore) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := pubsub.NewPublisher(store, pubsub.PublisherConfig{Actor: testActor})
		require.NoError(t, err)
		sub, err := pubsub.NewSubscriber(store, cps, pubsub.SubscriberConfig{
			ConsumerGroup: group,
			NackBackoff:   5 * time.Millisecond,
			RetryBackoff:  50 * time.Millisecond,
			Logger:        watermill.NewStdLogger(false, false),
		})
		require.NoError(t, err)
		return pub, sub
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, "") }, withGroup
}

// TestPubSub runs Watermill's universal suite against each backend. The
// backends take turns (the suite's own tests run in parallel within each):
// under -race, modernc.org/sqlite is CPU-bound, and sharing two CPUs with
// the other backends' suites starved it past the suite's 15 s read timeouts.
func TestPubSub(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, cps, _ := b.open(t)
			noGroup, withGroup := constructors(store, cps)
			tests.TestPubSub(t, features, noGroup, withGroup)
		})
	}
}

// TestPubSubStress runs the suite STRESS_TEST_COUNT times (default 10) in
// parallel, one backend after the other. It takes minutes, so it runs only when
// PAYESH_PUBSUB_STRESS=1.
func TestPubSubStress(t *testing.T) {
	if os.Getenv("PAYESH_PUBSUB_STRESS") != "1" {
		t.Skip("set PAYESH_PUBSUB_STRESS=1 to run Watermill's stress suite")
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			store, cps, _ := b.open(t)
			noGroup, withGroup := constructors(store, cps)
			tests.TestPubSubStressTest(t, features, noGroup, withGroup)
		})
	}
}

func TestCheckpointContract(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			pubsubtest.RunCheckpoints(t, func(t *testing.T) pubsub.CheckpointStore {
				_, cps, _ := b.open(t)
				return cps
			})
		})
	}
}
