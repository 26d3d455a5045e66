package pubsub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections/pubsub"
)

const benchMessages = 10_000

// BenchmarkDeliver measures messages delivered and acked per second, one
// subscription reading benchMessages 100-byte messages:
//
//   - catch-up: the messages are in the log before subscribing (each
//     iteration is a new consumer group, reading from the start);
//   - live: the subscription is running while one goroutine publishes them,
//     100 per Publish call.
//
// Checkpoints are written as in production (coalesced, every 50 ms and at
// Close, which is inside the timing).
func BenchmarkDeliver(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name+"/catch-up", func(b *testing.B) {
			store, cps, _ := be.open(b)
			pub, err := pubsub.NewPublisher(store, pubsub.PublisherConfig{Actor: testActor})
			if err != nil {
				b.Fatal(err)
			}
			publishBatches(b, pub, "bench")
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				consume(b, store, cps, fmt.Sprintf("g-%d", i), "bench", nil)
			}
			b.ReportMetric(float64(b.N*benchMessages)/time.Since(start).Seconds(), "msgs/s")
		})
		b.Run(be.name+"/live", func(b *testing.B) {
			store, cps, _ := be.open(b)
			pub, err := pubsub.NewPublisher(store, pubsub.PublisherConfig{Actor: testActor})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				topic := fmt.Sprintf("live-%d", i)
				consume(b, store, cps, "g", topic, func() { publishBatches(b, pub, topic) })
			}
			b.ReportMetric(float64(b.N*benchMessages)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

func publishBatches(b *testing.B, pub *pubsub.Publisher, topic string) {
	payload := make([]byte, 100)
	for i := 0; i < benchMessages; i += 100 {
		batch := make([]*message.Message, 100)
		for j := range batch {
			batch[j] = message.NewMessage(watermill.NewUUID(), payload)
		}
		if err := pub.Publish(topic, batch...); err != nil {
			b.Error(err)
			return
		}
	}
}

// consume subscribes, starts publish (if any) and reads benchMessages.
func consume(b *testing.B, store eventstore.Store, cps pubsub.CheckpointStore, group, topic string, publish func()) {
	b.Helper()
	sub, err := pubsub.NewSubscriber(store, cps, pubsub.SubscriberConfig{ConsumerGroup: group})
	if err != nil {
		b.Fatal(err)
	}
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		b.Fatal(err)
	}
	if publish != nil {
		go publish()
	}
	timeout := time.After(5 * time.Minute)
	for n := 0; n < benchMessages; n++ {
		select {
		case m := <-ch:
			m.Ack()
		case <-timeout:
			b.Fatalf("received %d of %d", n, benchMessages)
		}
	}
	if err := sub.Close(); err != nil {
		b.Fatal(err)
	}
}
