package memory

import (
	"context"
	"testing"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

func TestImportContract(t *testing.T) {
	eventstoretest.RunImport(t, factory)
}

func TestAnchors(t *testing.T) {
	eventstoretest.RunAnchors(t, factory)
}

func factory(t *testing.T) eventstoretest.Backend {
	s := New()
	t.Cleanup(func() { _ = s.Close() })
	return eventstoretest.Backend{Store: s, Tamper: tamperer{s}}
}

// Rewrite implements eventstoretest.Rewriter.
func (t tamperer) Rewrite(_ context.Context, events []eventstore.Event) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, e := range events {
		i, err := t.at(e.Position)
		if err != nil {
			return err
		}
		t.s.events[i] = e
		if t.s.head.Position == e.Position {
			t.s.head.Hash = e.Hash
		}
	}
	return nil
}
