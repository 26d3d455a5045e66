package memory

import (
	"context"
	"errors"
	"testing"

	"github.com/payesh/payesh/eventstore/eventstoretest"
)

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Backend {
		s := New()
		s.scanWindow = contractScanWindow
		t.Cleanup(func() { _ = s.Close() })
		return eventstoretest.Backend{Store: s, Tamper: tamperer{s}}
	}, eventstoretest.Features{NoGuards: true, ScanWindow: contractScanWindow})
}

// contractScanWindow makes ReadPage stop after a few positions in the
// contract suite, so that filtered reads and subscriptions go through many
// pages, empty ones among them.
const contractScanWindow = 3

// tamperer edits the in-memory log directly, as an attacker with access to
// the process would.
type tamperer struct{ s *Store }

func (t tamperer) at(pos uint64) (int, error) {
	if pos == 0 || int(pos) > len(t.s.events) {
		return 0, errors.New("no such position")
	}
	return int(pos) - 1, nil
}

func (t tamperer) SetData(_ context.Context, pos uint64, data []byte) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	i, err := t.at(pos)
	if err != nil {
		return err
	}
	t.s.events[i].Data = data
	return nil
}

func (t tamperer) Delete(_ context.Context, pos uint64) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	i, err := t.at(pos)
	if err != nil {
		return err
	}
	// Keep the slice index == position-1 invariant for the remaining
	// events by leaving the hole visible to ReadAll: rebuild without it.
	t.s.events = append(t.s.events[:i:i], t.s.events[i+1:]...)
	return nil
}

func (t tamperer) Swap(_ context.Context, a, b uint64) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	i, err := t.at(a)
	if err != nil {
		return err
	}
	j, err := t.at(b)
	if err != nil {
		return err
	}
	ei, ej := t.s.events[i], t.s.events[j]
	ei.Position, ej.Position = ej.Position, ei.Position
	t.s.events[i], t.s.events[j] = ej, ei
	return nil
}

func (t tamperer) DisableGuards(context.Context) error { return nil }
