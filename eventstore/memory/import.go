package memory

import (
	"context"

	"github.com/payesh/payesh/eventstore"
)

var _ eventstore.Importer = (*Store)(nil)

// Import implements eventstore.Importer. The events are staged apart from
// the log and published together at the end, under the write lock and only
// if the log is still empty, so a refused import leaves nothing and readers
// never see half of one. An auditor loads an export this way to recompute
// from it without a database.
func (s *Store) Import(ctx context.Context, next eventstore.NextEvent, opts eventstore.ImportOptions) (eventstore.Head, error) {
	if err := s.check(ctx); err != nil {
		return eventstore.Head{}, err
	}
	head, err := eventstore.RunImport(ctx, &importTx{s: s}, next, opts)
	if err != nil {
		return eventstore.Head{}, err
	}
	s.wake.Broadcast()
	return head, nil
}

// importTx stages an import. The memory store has no lock to hold across
// calls without blocking its readers, so Lock only looks and Commit checks
// again before publishing.
type importTx struct {
	s      *Store
	staged []eventstore.Event
	ids    map[string]bool
	head   eventstore.Head
}

func (t *importTx) Lock(context.Context) (bool, error) {
	t.s.mu.RLock()
	defer t.s.mu.RUnlock()
	t.ids = map[string]bool{}
	return len(t.s.events) == 0, nil
}

func (t *importTx) StoredIDs(_ context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		if t.ids[id] {
			out[id] = true
		}
	}
	return out, nil
}

func (t *importTx) Insert(_ context.Context, events []eventstore.Event, head eventstore.Head) error {
	for _, e := range events {
		t.ids[e.ID] = true
		t.staged = append(t.staged, e)
	}
	t.head = head
	return nil
}

func (t *importTx) Commit(context.Context) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if len(t.s.events) > 0 {
		return eventstore.ErrNotEmpty
	}
	for _, e := range t.staged {
		t.s.events = append(t.s.events, e)
		i := len(t.s.events) - 1
		t.s.byID[e.ID] = i
		t.s.byStream[e.Stream] = append(t.s.byStream[e.Stream], i)
	}
	if len(t.staged) > 0 {
		t.s.head = t.head
	}
	return nil
}

func (t *importTx) Rollback(context.Context) error {
	t.staged = nil
	return nil
}
