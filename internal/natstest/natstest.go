// Package natstest gives each test its own JetStream stream and subjects on
// the test NATS server, so tests can run in parallel on one server.
//
// The server is taken from PAYESH_TEST_NATS_URL (default DefaultURL). When
// it cannot be reached the test is skipped with a message saying so, unless
// the environment requires the services (CI=true or PAYESH_REQUIRE_NATS=1):
// then the test fails, so CI can never pass by skipping the broker's tests.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultURL is a local nats-server with JetStream (nats-server -js).
const DefaultURL = "nats://127.0.0.1:4222"

// URL returns PAYESH_TEST_NATS_URL, or DefaultURL.
func URL() string {
	if u := os.Getenv("PAYESH_TEST_NATS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Required reports whether the environment forbids skipping: CI=true or
// PAYESH_REQUIRE_NATS=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PAYESH_REQUIRE_NATS") == "1"
}

// Names is one test's part of the server.
type Names struct {
	URL      string
	Stream   string // a JetStream stream name of its own
	Subjects string // a subject prefix of its own
}

// New checks that the server answers with JetStream enabled (skipping or
// failing the test otherwise, see Required) and returns names no other
// test uses; the stream, once a test has created it, is deleted when the
// test ends.
func New(t testing.TB) Names {
	t.Helper()
	url := URL()
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err == nil {
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
		}
		nc.Close()
	}
	if err != nil {
		msg := fmt.Sprintf("natstest: NATS with JetStream at %s is unreachable (run make services, or set PAYESH_TEST_NATS_URL): %v", url, err)
		if Required() {
			t.Fatal(msg + "; CI=true or PAYESH_REQUIRE_NATS=1, so this is a failure, not a skip")
		}
		t.Skip(msg)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	n := Names{URL: url, Stream: "TEST_" + id, Subjects: "test." + id}
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		if js, err := jetstream.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = js.DeleteStream(ctx, n.Stream)
		}
	})
	return n
}
