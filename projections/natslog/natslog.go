// Package natslog carries the event log over NATS JetStream, so that
// projection workers on several machines share the work of keeping the read
// models: a Forwarder publishes the log, in order, to one JetStream stream;
// Workers in any number of processes consume it as competing consumers and
// apply it to the read models through a projections.Engine.
//
// # The JetStream stream
//
// Every event is one message, published through Watermill
// (watermill-nats/v2) on a subject of its own stream,
// <prefix>.<category>.<rest> ("payesh.log.facility.01J…" for stream
// "facility-01J…"), so a consumer of one stream or one category gets its
// events in their order, and with the envelope pubsub.Message gives it
// (payload the event's data, metadata its type, stream, version, position,
// times, actor).
//
// The Forwarder publishes each event with Nats-Expected-Last-Sequence set
// to its position minus one, so the stream's sequence number IS the log's
// position: JetStream refuses a message that would leave a gap or repeat
// one, and two forwarders running at once (a lease lost, a partition) can
// only race to publish the same message, never interleave. Nats-Msg-Id is
// the event ID as well, for JetStream's own duplicate window. It publishes
// a batch without waiting for each message's acknowledgement, then waits
// for the stream to reach the batch's end (the expected-sequence check
// means it can only ever hold a prefix of the batch; if it stops short,
// the forwarder publishes again from where it ends). Only forwarders may
// publish on the log's subjects (give the others no NATS permission to):
// a forwarder that finds in the stream a message that is not its log's
// event at that sequence, or more messages than its log has events, stops
// for good rather than mix two logs.
//
// # Competing workers
//
// The Workers of a set of read models share one durable JetStream consumer
// over the whole stream: JetStream hands each message to one of them, keeps
// up to MaxAckPending in flight among all of them, and gives a message that
// is not acknowledged within AckWait (its worker died) to another. The
// projections' order and exactly-once do not rest on the broker but on the
// checkpoint the Engine keeps per read model in the read-model database, in
// the transaction that applies a batch (projections.Engine.Handle): a worker
// handed the event at position p brings every read model to p, applying in
// batches, each in one transaction under the checkpoint's lock, the events
// after the checkpoint, read from the event store, and goes on past p for
// as much as ReadAhead while the store already holds more; events at or
// before a checkpoint are skipped. So however JetStream spreads and
// redelivers the messages, each read model sees the log in global order
// (hence every stream's events in their order) and every event exactly
// once, and when the workers stop the tables are those a single process
// would have built. A message is the unit of work and its notice; the log
// it points into is read from the store, which holds it anyway, so that a
// backlog goes at the rate of the Engine's batches rather than one
// transaction per message (measured: 173 events/s per read model with one
// transaction per message, against 15,000 for a single process reading the
// store, on this project's 2-core machine).
//
// Reading in global order matters: the read models join streams (the quota
// balances fold facility events against quota accounts), so they could not
// be split by stream across workers without giving up equality with a
// rebuild. Workers share the log's stretches, not its streams; a worker that
// dies loses none of the work.
package natslog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where the log goes on NATS.
type Config struct {
	// URL of the NATS server(s), comma-separated (default nats.DefaultURL).
	URL string
	// Stream is the JetStream stream's name (default "PAYESH_LOG").
	Stream string
	// Subjects is the subject prefix (default "payesh.log"); the stream
	// takes <Subjects>.>.
	Subjects string
	// Replicas of the stream in a NATS cluster (default 1).
	Replicas int
	// AckWait is how long a worker may hold a message before JetStream
	// gives it to another (default 30s).
	AckWait time.Duration
	// MaxAckPending bounds the messages of one read model in flight among
	// all workers (default 256).
	MaxAckPending int
	// ReadAhead is how far past a message's position a worker goes on
	// applying the log while the store already holds it (default 5000).
	ReadAhead int
	// BatchSize is the most events applied in one transaction (default 1000).
	BatchSize int
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	c.URL = cmp.Or(c.URL, nats.DefaultURL)
	c.Stream = cmp.Or(c.Stream, "PAYESH_LOG")
	c.Subjects = cmp.Or(c.Subjects, "payesh.log")
	c.Replicas = max(c.Replicas, 1)
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, 256)
	c.ReadAhead = cmp.Or(c.ReadAhead, 5000)
	c.BatchSize = cmp.Or(c.BatchSize, 1000)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Stream, ". *>\t\r\n") {
		errs = append(errs, fmt.Errorf("natslog: stream name %q may not contain dots, spaces or wildcards", c.Stream))
	}
	for _, tok := range strings.Split(c.Subjects, ".") {
		if tok == "" || strings.ContainsAny(tok, " *>\t\r\n") {
			errs = append(errs, fmt.Errorf("natslog: subject prefix %q must be dot-separated tokens without spaces or wildcards", c.Subjects))
			break
		}
	}
	if c.AckWait < 0 || c.MaxAckPending < 0 || c.Replicas < 0 || c.ReadAhead < 0 || c.BatchSize < 0 {
		errs = append(errs, errors.New("natslog: AckWait, MaxAckPending, Replicas, ReadAhead and BatchSize may not be negative"))
	}
	return errors.Join(errs...)
}

// Subject is the subject an event of stream is published on:
// prefix.<category>.<rest>, the category being what comes before the
// stream name's first "-". Characters NATS gives a meaning to in subjects
// (dots, wildcards, white space) become "_".
func Subject(prefix, stream string) string {
	category, rest, ok := strings.Cut(stream, "-")
	if !ok {
		rest = "_"
	}
	return prefix + "." + token(category) + "." + token(rest)
}

func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// Header keys the Forwarder sets beside pubsub's envelope metadata.
const (
	headerMsgID           = nats.MsgIdHdr
	headerExpectedLastSeq = nats.ExpectedLastSeqHdr
)

// backoff is the pause after the attempt-th failure in a row (from 0):
// 100 ms, doubling, at most 5 s.
func backoff(attempt int) time.Duration {
	return min(time.Duration(1<<min(attempt, 6))*100*time.Millisecond, 5*time.Second)
}

// pause waits backoff(attempt), or until ctx ends (returning its error).
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(backoff(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// connect opens a NATS connection and its JetStream context.
func connect(cfg Config, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(cfg.URL, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("natslog: connect to %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("natslog: jetstream: %w", err)
	}
	return nc, js, nil
}

// ensureStream creates the JetStream stream, or checks the one there
// takes the configured subjects. The stream keeps every message (limits
// retention without limits): it is the log's copy for the workers, and a
// new read model's consumer starts from wherever its checkpoint is.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	want := jetstream.StreamConfig{
		Name:       cfg.Stream,
		Subjects:   []string{cfg.Subjects + ".>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Replicas:   cfg.Replicas,
		Duplicates: 2 * time.Minute,
	}
	st, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another process created it first
			st, err = js.Stream(ctx, cfg.Stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natslog: stream %s: %w", cfg.Stream, err)
	}
	got := st.CachedInfo().Config.Subjects
	if len(got) != 1 || got[0] != want.Subjects[0] {
		return nil, fmt.Errorf("natslog: stream %s takes subjects %v, not %s: another log's stream?", cfg.Stream, got, want.Subjects[0])
	}
	return st, nil
}
