// Package pubsub puts Watermill on the event store: a message.Subscriber
// that delivers the store's global log, in order, from a checkpoint kept per
// consumer group (a projection is a consumer group), catch-up then live; and
// a message.Publisher that appends. It works on every eventstore.Store; the
// checkpoints live in the store's own database (sqlite.Checkpoints,
// postgres.Checkpoints) or in memory (MemoryCheckpoints).
//
// # Topics
//
// A subscription topic selects events from the global log:
//
//   - "$all" (AllTopic): every event;
//   - a topic ending in "*": every stream whose name starts with what comes
//     before the "*" ("facility-*": all facilities; "*" alone is "$all");
//   - anything else: exactly the stream of that name ("facility-7", and not
//     "facility-70": the store is asked for the prefix, the rest is dropped
//     here).
//
// Publish takes a stream name: "$all" and names ending in "*" are refused,
// so a stream whose name ends in "*" cannot be published or subscribed to.
//
// # Messages
//
// A domain event (any type but MessageType) is delivered with its event ID
// as message UUID, its data as payload, and its envelope as metadata:
// payesh_type, payesh_stream, payesh_version, payesh_position,
// payesh_occurred_at and payesh_recorded_at (RFC 3339, nanosecond layout,
// UTC), payesh_actor_id, payesh_actor_role, and when not empty
// payesh_actor_org, payesh_backdate_reason, correlation_id (Watermill's
// correlation middleware key), payesh_causation_id, payesh_idempotency_key.
//
// Publish appends all the messages of one call to the topic's stream in one
// atomic Append (expected version any), as MessageType events whose data is
// {"uuid", "payload" (base64), "metadata"}; a Subscriber gives them back
// exactly as published (UUID, payload byte for byte, nil and empty apart,
// metadata) and without payesh_* keys. The event's correlation ID is the
// message's "correlation_id"; its actor is PublisherConfig.Actor. The event
// ID is not the message UUID, as first designed, but a name-based UUID of
// topic and message UUID: the store's event IDs are unique across the whole
// log, while Watermill's are only unique per topic (Message.Copy keeps the
// UUID, and Watermill's own suite publishes copies to 20 topics). A retried
// Publish of the same messages to the same topic is still a no-op, by the
// store's idempotency rule. The payload limit is the store's 1 MiB event
// size after base64 (about 750 KiB).
//
// # Consumer groups, checkpoints, leases
//
// A group's progress is a checkpoint per (group, topic): the position of
// the last event it acked. A group never seen before starts at the
// beginning of the log, so a new projection replays all history. The empty
// group "" is an ordinary group, shared by every Subscriber configured
// without one (Watermill's suite relies on that: TestContinueAfterSubscribeClose
// expects successive subscribers to continue each other's progress).
// Checkpoint writes are coalesced: the first ack is written at once, later
// ones at most every CheckpointInterval (50 ms), the last when the
// subscription ends, before its lease is released. Save is monotonic, so a
// late write can never move a group backwards.
//
// Of all the subscribers of one group and topic, only the holder of the
// (group, topic) lease delivers; the others wait, silent, and one of them
// takes over, from the checkpoint, when the holder's subscription ends. The
// lease comes from the checkpoint store (Leaser): PostgreSQL session
// advisory locks, exclusive across every process using the schema, with the
// lease reported lost (and the subscription restarted from its checkpoint)
// if the lock's session dies; SQLite and memory: in-process only (SQLite per
// database file, whatever the number of Stores opened on it), so run a
// group's SQLite subscribers in one process.
//
// # Delivery
//
// Each subscription delivers one message at a time, in global order, and
// the next only after Ack. Nack makes it deliver the same event again, as a
// new message with the same UUID, after NackBackoff. A message's context is
// cancelled after Ack or Nack and when the subscription ends. The channel is
// closed when the Subscribe context ends, on Close (which returns after the
// channels are closed, the last checkpoints written and the leases
// released), or when the store is closed; other errors restart the
// subscription from its checkpoint after RetryBackoff. There is no ack
// timeout: a message stays out until it is acked or nacked (bound handlers
// with the router's Timeout and Retry middleware). Subscriber does not
// implement message.SubscribeInitializer: there is nothing to create per
// topic, and the checkpoint table is created on first use.
//
// Delivery is at least once: an event acked less than CheckpointInterval
// before a crash, or before a PostgreSQL lease is lost, is delivered again;
// so is one that was out, unacked, when its subscription ended. Exactly
// once is the consumer's business: the projection engine writes its own
// checkpoint (the payesh_position of the last event applied) in the same
// transaction as the read model, and skips any event at or below it.
// Acks and this package's checkpoints are not atomic with a consumer's side
// effects, hence ExactlyOnceDelivery false below.
//
// Live events are found through one follower per store and process (the
// hub): a single unfiltered store.Subscribe from the head, which wakes only
// the subscriptions whose topic a new event belongs to. Each subscription
// reads its events itself with ReadAll and moves on only by what ReadAll
// returned; it never uses store.Subscribe's filtered path. Two reasons,
// both found by running Watermill's suites: with a store.Subscribe per
// subscription, every commit made every live subscription query the store
// (under the stress suite SQLite subscriptions starved for over a minute);
// and PollSubscribe's filtered path, which skips ahead to a Head read
// before its ReadAll, loses events when the ReadAll comes from an older
// snapshot than the Head, which SQLite's read pool does after a cancelled
// read (TestStaleReads shows the loss and that this package does not
// suffer it). A subscription whose checkpoint lies before the hub started
// also re-reads every PollInterval (1 s), in case its read was such an old
// snapshot; once it has read past that point it costs nothing while idle.
// In-process commits wake the hub at once; other processes' commits arrive
// by the store's own means (PostgreSQL NOTIFY, SQLite Config.Poll).
//
// # Watermill's universal suite
//
// TestPubSub runs pubsub/tests.TestPubSub against the memory, SQLite and
// PostgreSQL stores with the Features this package really has:
//
//   - ConsumerGroups: true (above).
//   - GuaranteedOrder: true: global order per subscription, next message
//     only after ack.
//   - GuaranteedOrderWithSingleSubscriber: false: the order holds with any
//     number of subscribers of a group, since only the lease holder
//     delivers, so the suite checks the order with 10 subscribers instead of
//     1.
//   - Persistent: true: every Publisher and Subscriber of a test shares one
//     store; subscribers come and go and continue from the checkpoints.
//   - ExactlyOnceDelivery: false (above). This also runs
//     TestContinueAfterSubscribeClose and TestConcurrentClose, which the
//     suite skips for exactly-once Pub/Subs.
//   - NewSubscriberReceivesOldMessages: false. A new group does receive old
//     messages (TestResume checks it), but the suite's test builds its
//     subscribers without a group, so they share the group "" and the
//     second, while the first still holds the lease, receives nothing
//     (watermill-sql declares the same, for the same reason).
//   - RestartServiceCommand: none. TestReconnect would restart the database
//     server; PostgreSQL is shared by every test of the repository, run in
//     parallel, and SQLite has no server. The suite skips TestReconnect
//     without it; lease loss and restarts are covered by TestLeaseLost,
//     postgres.TestCheckpointsLeaseLost and TestNoGapsUnderChurn.
//   - RequireSingleInstance, ContextPreserved, ForceShort: false.
//
// No other test of the suite is skipped. The backends take turns, each
// running the suite's tests in parallel. Measured with -race on a 2-vCPU
// machine shared with other test runs (load average 4-10): memory 5 s,
// PostgreSQL 13-18 s, SQLite 90-170 s, most of it in the suite's
// TestPublisherClose (10,000 single-message appends, which modernc.org/sqlite
// under -race, with checkptr, does at about 340/s against 6,500/s without)
// and TestContinueAfterSubscribeClose. That is within the two minutes per
// backend we allow on a quiet machine, so the suite runs in full
// (ForceShort false). Without -race the three take 2, 10 and 11 s. TestPubSubStress (PAYESH_PUBSUB_STRESS=1) runs
// TestPubSubStressTest, ten suites at once per backend on one store: it
// passed without -race in 223 s for the three backends.
//
// # Throughput
//
// BenchmarkDeliver, one subscription receiving and acking 10,000 messages
// of 100 bytes (go test -run '^$' -bench BenchmarkDeliver -benchtime 3x
// -count 3, same shared 2-vCPU machine, load average 7-10), messages/s:
//
//	            catch-up           live (published 100 per call meanwhile)
//	memory      100,000-130,000    17,000-30,000
//	SQLite       19,000-24,000      3,600-5,800
//	PostgreSQL   19,000-24,000      3,500-4,700
//
// Live delivery is bound by the appends (one transaction per 100 messages,
// then the hub's read and the subscription's read); catch-up by reading
// 1,000 events per query and handing them over one at a time, each waiting
// for its ack. The figures move by a factor of two with the machine's load.
package pubsub
