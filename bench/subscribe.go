package bench

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/payesh/payesh/eventstore"
)

// subscribeScenario: how fast a fresh subscription delivers events that are
// already in the log, as the log grows. Delivery is measured over a fixed
// window, the newest Window events (Subscribe from head − Window until the
// last one arrives), at each log size, so the figure says whether what
// precedes the window slows delivery down; a full catch-up from position 0
// is measured too at some sizes. The peer is watermill-sql's PostgreSQL
// Pub/Sub (DefaultPostgreSQLSchema, DefaultPostgreSQLOffsetsAdapter), with the
// same payloads published to one topic: a consumer group positioned after all
// but the newest Window messages, and a consumer group reading everything,
// each acknowledging every message.
func subscribeScenario() Scenario {
	return Scenario{
		Name:    "subscribe-pg",
		Section: sectionSubscribe,
		Backend: backendPostgres.name,
		Payesh:  Side{Label: "Payesh Subscribe", Run: subscribePayesh},
		Baseline: Side{Label: "watermill-sql v3.1.0", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return subscribeWatermill(ctx, env)
		}},
		Rows: subscribeRows,
	}
}

func newestKey(size int) string { return fmt.Sprintf("log=%d/newest", size) }
func allKey(size int) string    { return fmt.Sprintf("log=%d/all", size) }

func subscribeRows(s Sizes) []Row {
	var rows []Row
	if len(s.LogSizes) == 0 {
		return nil
	}
	base := newestKey(s.LogSizes[0])
	last := s.LogSizes[len(s.LogSizes)-1]
	for i, size := range s.LogSizes {
		r := Row{Key: newestKey(size), Label: fmt.Sprintf("%s in the log: newest %s", Count(size), Count(s.Window))}
		if size <= s.Window {
			r.Label = fmt.Sprintf("%s in the log: all %s", Count(size), Count(size))
		}
		switch {
		case i == 0:
			r.Target = Target{Ratio: 20}
		case size == last:
			r.Target = Target{FlatWith: base, Within: 0.2}
		}
		rows = append(rows, r)
	}
	for _, size := range s.LogSizes {
		if size <= s.Window || !(slices.Contains(s.CatchUp, size) || slices.Contains(s.PeerSizes, size)) {
			continue
		}
		r := Row{Key: allKey(size), Label: fmt.Sprintf("%s in the log: all %s from position 0", Count(size), Count(size))}
		if size == last {
			r.Target = Target{FlatWith: base, Within: 0.2}
		}
		rows = append(rows, r)
	}
	return rows
}

// errDelivered ends a measured subscription once it has delivered enough.
var errDelivered = errors.New("bench: delivered")

// deliver measures a fresh subscription after position after until it has
// delivered n events.
func deliver(ctx context.Context, st eventstore.Store, after uint64, n int, key string) (Point, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got, bytes int64
	m := startPoint()
	err := st.Subscribe(ctx, after, eventstore.Filter{}, func(_ context.Context, batch []eventstore.Event) error {
		for i := range batch {
			bytes += int64(len(batch[i].Data))
		}
		got += int64(len(batch))
		if got >= int64(n) {
			return errDelivered
		}
		return nil
	})
	p := m.point(key, got)
	if !errors.Is(err, errDelivered) {
		return p, fmt.Errorf("bench: subscription ended after %d of %d events: %w", got, n, err)
	}
	return p, nil
}

func subscribePayesh(ctx context.Context, env *Env) ([]Point, error) {
	st, err := env.pgLog(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var points []Point
	w := env.Sizes.Window
	for _, size := range env.Sizes.LogSizes {
		note, err := env.growPG(ctx, st, size)
		if err != nil {
			return nil, err
		}
		// A window takes a second or so: the median of three runs keeps
		// a neighbour's burst on this shared machine out of the figure.
		var runs []Point
		for range 3 {
			p, err := deliver(ctx, st, uint64(size-min(w, size)), min(w, size), newestKey(size))
			if err != nil {
				return nil, err
			}
			runs = append(runs, p)
		}
		slices.SortFunc(runs, func(a, b Point) int { return cmp.Compare(a.Rate(), b.Rate()) })
		p := runs[1]
		p.Note = joinNotes(fmt.Sprintf("median of 3 runs (%s, %s, %s)", Rate(runs[0].Rate()), Rate(runs[1].Rate()), Rate(runs[2].Rate())), note)
		env.logf("Payesh Subscribe, %s in the log, newest %s: %s", Count(size), Count(min(w, size)), Rate(p.Rate()))
		points = append(points, p)
		if size > w && slices.Contains(env.Sizes.CatchUp, size) {
			p, err := deliver(ctx, st, 0, size, allKey(size))
			if err != nil {
				return nil, err
			}
			env.logf("Payesh Subscribe, %s in the log, all from 0: %s", Count(size), Rate(p.Rate()))
			points = append(points, p)
		}
	}
	return points, nil
}

const (
	watermillTopic = "payesh_events"
	publishBatch   = 1000 // messages per Publish call (one INSERT)
)

func subscribeWatermill(ctx context.Context, env *Env) ([]Point, error) {
	schema, drop, err := env.freshSchema(ctx, "subscribe-watermill")
	if err != nil {
		return nil, err
	}
	defer drop()
	cfg, err := pgx.ParseConfig(env.PG)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	cfg.RuntimeParams["application_name"] = "payesh-bench-watermill"
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(8)

	pub, err := wsql.NewPublisher(db, wsql.PublisherConfig{SchemaAdapter: wsql.DefaultPostgreSQLSchema{}, AutoInitializeSchema: true}, nil)
	if err != nil {
		return nil, err
	}
	defer pub.Close()

	// The same payloads as the Payesh log: the same generated history.
	h := newHistory(logSeed, env.Sizes.Chunk)
	published := 0
	var points []Point
	w := env.Sizes.Window
	for _, size := range env.Sizes.PeerSizes {
		start := time.Now()
		from := published
		for ; published < size; published += env.Sizes.Chunk {
			if err := publishChunk(pub, h.chunk(published/env.Sizes.Chunk)); err != nil {
				return nil, fmt.Errorf("bench: watermill publish: %w", err)
			}
		}
		elapsed := time.Since(start)
		// Vacuumed like the Payesh log, for the same reasons.
		if _, err := db.ExecContext(ctx, "VACUUM (ANALYZE) "+wsql.DefaultPostgreSQLSchema{}.MessagesTable(watermillTopic)); err != nil {
			return nil, fmt.Errorf("bench: vacuum watermill's table: %w", err)
		}
		note := fmt.Sprintf("published %s messages in %s (%s), %d per Publish", Count(size-from), elapsed.Round(time.Second),
			Rate(float64(size-from)/elapsed.Seconds()), publishBatch)
		env.logf("watermill-sql: %s", note)
		n := min(w, size)
		p, err := consume(ctx, env, db, fmt.Sprintf("newest_%d", size), size-n, n, newestKey(size), 4*env.Sizes.PeerCap)
		if err != nil {
			return nil, err
		}
		p.Note = joinNotes(note, p.Note)
		points = append(points, p)
		if size > w {
			p, err := consume(ctx, env, db, fmt.Sprintf("all_%d", size), 0, size, allKey(size), env.Sizes.PeerCap)
			if err != nil {
				return nil, err
			}
			points = append(points, p)
		}
	}
	return points, nil
}

func publishChunk(pub *wsql.Publisher, appends []eventstore.StreamAppend) error {
	batch := make([]*message.Message, 0, publishBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := pub.Publish(watermillTopic, batch...)
		batch = batch[:0]
		return err
	}
	for _, a := range appends {
		for _, e := range a.Events {
			msg := message.NewMessage(e.ID, e.Data)
			msg.Metadata.Set("stream", a.Stream)
			msg.Metadata.Set("type", e.Type)
			batch = append(batch, msg)
			if len(batch) == publishBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// consume measures a watermill-sql subscriber of group until it has
// received and acknowledged n messages, or the time cap. With skip > 0 the
// group starts after the first skip messages of the topic, by writing the
// offsets row its own acknowledgement would have left.
func consume(ctx context.Context, env *Env, db *sql.DB, group string, skip, n int, key string, limit time.Duration) (Point, error) {
	schemaAdapter := wsql.DefaultPostgreSQLSchema{}
	offsets := wsql.DefaultPostgreSQLOffsetsAdapter{}
	sub, err := wsql.NewSubscriber(db, wsql.SubscriberConfig{
		ConsumerGroup:  group,
		SchemaAdapter:  schemaAdapter,
		OffsetsAdapter: offsets,
	}, nil)
	if err != nil {
		return Point{}, err
	}
	defer sub.Close()
	if err := sub.SubscribeInitialize(watermillTopic); err != nil {
		return Point{}, err
	}
	if skip > 0 {
		q := `INSERT INTO ` + offsets.MessagesOffsetsTable(watermillTopic) + ` (consumer_group, offset_acked, last_processed_transaction_id)
SELECT $1, "offset", transaction_id FROM ` + schemaAdapter.MessagesTable(watermillTopic) + `
ORDER BY transaction_id, "offset" OFFSET $2 LIMIT 1`
		if _, err := db.ExecContext(ctx, q, group, skip-1); err != nil {
			return Point{}, fmt.Errorf("bench: position watermill consumer group: %w", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
	m := startPoint()
	msgs, err := sub.Subscribe(ctx, watermillTopic)
	if err != nil {
		return Point{}, err
	}
	got, capped := 0, false
loop:
	for got < n {
		select {
		case msg, ok := <-msgs:
			if !ok {
				return Point{}, fmt.Errorf("bench: watermill subscription closed after %d of %d messages", got, n)
			}
			msg.Ack()
			got++
		case <-deadline.C:
			capped = true
			break loop
		case <-progress.C:
			env.logf("  watermill-sql %s: %d of %d messages, %s", group, got, n, Rate(float64(got)/time.Since(m.start).Seconds()))
		case <-ctx.Done():
			return Point{}, ctx.Err()
		}
	}
	p := m.point(key, int64(got))
	p.Capped = capped
	if capped {
		p.Note = fmt.Sprintf("stopped at the %s cap after %d of %d messages", limit, got, n)
	}
	cancel()
	env.logf("watermill-sql %s: %d of %d messages, %s", group, got, n, Rate(p.Rate()))
	return p, nil
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
