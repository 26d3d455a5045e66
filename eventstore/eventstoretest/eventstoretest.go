// Package eventstoretest is the contract every eventstore.Store backend keeps.
// A backend's test calls Run with a factory; the suite checks appends and
// expected versions, idempotent retries, reads, the global order under
// concurrent writers, live subscriptions, cancellation and tamper evidence.
// Behaviour a backend cannot offer is switched off by a Features flag, never by
// skipping or copying tests.
package eventstoretest

import (
	"context"
	"testing"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// Tamperer lets the suite play an attacker with direct database access. Each
// method acts on the stored event at a global position, bypassing the Store.
type Tamperer interface {
	// SetData overwrites the payload of the event at position. While the
	// store's guards are in place this must fail.
	SetData(ctx context.Context, position uint64, data []byte) error
	// Delete removes the event at position. While guards are in place this
	// must fail.
	Delete(ctx context.Context, position uint64) error
	// Swap exchanges the positions of two events, keeping everything else.
	Swap(ctx context.Context, a, b uint64) error
	// DisableGuards removes the database's refusal of UPDATE and DELETE on
	// events (an attacker with owner rights can always do this).
	DisableGuards(ctx context.Context) error
}

// Backend is what a factory returns for one test.
type Backend struct {
	Store eventstore.Store
	// Tamper, when set, enables the tamper-evidence tests.
	Tamper Tamperer
}

// Features declares behaviour that differs between backends for reasons of
// the underlying engine, so the suite can skip exactly those checks.
type Features struct {
	// NoGuards: the engine cannot refuse UPDATE/DELETE on stored events
	// (the tamper tests then start from tampering directly).
	NoGuards bool
	// ScanWindow is the backend's ReadPage window: a page that is neither
	// full nor at the head spans exactly max(limit, ScanWindow) positions.
	// Factories set it low (a few events) so that pages end early and
	// filtered reads and subscriptions go through many of them, empty ones
	// among them; the suite then checks where pages stop. 0 leaves that
	// unchecked.
	ScanWindow int
}

// Factory opens a fresh, empty store for one test; it registers its own
// cleanup with t.Cleanup.
type Factory func(t *testing.T) Backend

// Run runs the whole contract suite.
func Run(t *testing.T, factory Factory, features Features) {
	t.Helper()
	s := &suite{factory: factory, features: features}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"AppendAndReadBack", s.appendAndReadBack},
		{"EnvelopeRoundTrip", s.envelopeRoundTrip},
		{"ExpectedVersions", s.expectedVersions},
		{"IdempotentRetries", s.idempotentRetries},
		{"DuplicateIDsElsewhere", s.duplicateIDsElsewhere},
		{"InvalidInputChangesNothing", s.invalidInput},
		{"Backdating", s.backdating},
		{"UnusualButValid", s.unusualButValid},
		{"ReadStream", s.readStream},
		{"ReadAllAndFilters", s.readAll},
		{"ReadPage", s.readPage},
		{"ConcurrentAppendsSameStream", s.concurrentSameStream},
		{"ConcurrentAppendsManyStreams", s.concurrentManyStreams},
		{"SubscribeCatchUpThenLive", s.subscribeCatchUpThenLive},
		{"SubscribeUnderConcurrentWriters", s.subscribeUnderConcurrentWriters},
		{"SubscribeFilter", s.subscribeFilter},
		{"SubscribeFilterUnderConcurrentWriters", s.subscribeFilterUnderConcurrentWriters},
		{"SubscribeHandlerError", s.subscribeHandlerError},
		{"Cancellation", s.cancellation},
		{"VerifyCleanLog", s.verifyClean},
		{"GuardsRefuseEdits", s.guardsRefuseEdits},
		{"TamperAlteredDetected", s.tamperAltered},
		{"TamperDeletedDetected", s.tamperDeleted},
		{"TamperReorderedDetected", s.tamperReordered},
		{"AppendMany", s.appendMany},
		{"ClosedStore", s.closed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

type suite struct {
	factory  Factory
	features Features
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
