package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

// fakeBackend is a one-stream-version-table backend whose inserts can be
// made to fail, to see what the committer answers then.
type fakeBackend struct {
	mu        sync.Mutex
	versions  map[string]uint64
	head      eventstore.Head
	insertErr error
	rollbacks int
}

func (b *fakeBackend) Begin(context.Context) (eventstore.BatchTx, error) { return &fakeTx{b: b}, nil }

type fakeTx struct {
	b       *fakeBackend
	pending []eventstore.Event
	head    eventstore.Head
}

func (t *fakeTx) Prepare(_ context.Context, _, streams []string) (eventstore.Head, map[string]eventstore.Event, map[string]uint64, error) {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	out := map[string]uint64{}
	for _, s := range streams {
		out[s] = t.b.versions[s]
	}
	return t.b.head, map[string]eventstore.Event{}, out, nil
}
func (t *fakeTx) Insert(_ context.Context, events []eventstore.Event, head eventstore.Head) error {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	if t.b.insertErr != nil {
		return t.b.insertErr
	}
	t.pending, t.head = events, head
	return nil
}
func (t *fakeTx) Commit(context.Context) error {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	for _, e := range t.pending {
		t.b.versions[e.Stream] = e.Version
	}
	t.b.head = t.head
	return nil
}
func (t *fakeTx) Rollback(context.Context) error {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	t.b.rollbacks++
	return errors.New("rollback of a read-only transaction reports an error")
}

func TestGroupCommitterAppendAfterCloseNeverHangs(t *testing.T) {
	for range 20 {
		g := eventstore.NewGroupCommitter(&fakeBackend{versions: map[string]uint64{}}, eventstore.GroupCommitConfig{})
		go g.Run()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := g.Append(context.Background(), "s", eventstore.Any, eventstoretest.Events(1, "t.v1"))
				if err != nil {
					require.ErrorIs(t, err, eventstore.ErrClosed)
				}
			}()
		}
		g.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("an append racing Close never returned")
		}
		_, err := g.Append(context.Background(), "s", eventstore.Any, eventstoretest.Events(1, "t.v1"))
		require.ErrorIs(t, err, eventstore.ErrClosed)
	}
}

func TestGroupCommitterCloseWithoutRun(t *testing.T) {
	g := eventstore.NewGroupCommitter(&fakeBackend{versions: map[string]uint64{}}, eventstore.GroupCommitConfig{})
	done := make(chan struct{})
	go func() { g.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close blocked with Run never started")
	}
	g.Run() // a late Run does nothing and returns
}

func TestGroupCommitterKeepsDecidedAnswersWhenTheWriteFails(t *testing.T) {
	boom := errors.New("disk full")
	b := &fakeBackend{versions: map[string]uint64{"busy": 3}, insertErr: boom}
	// MaxBatch large and Run started only after both requests are queued,
	// so they share one transaction.
	g := eventstore.NewGroupCommitter(b, eventstore.GroupCommitConfig{MaxBatch: 100})
	defer g.Close()
	type answer struct {
		res eventstore.AppendResult
		err error
	}
	wrong, accepted := make(chan answer, 1), make(chan answer, 1)
	go func() {
		res, err := g.Append(context.Background(), "busy", eventstore.Exact(1), eventstoretest.Events(1, "t.v1"))
		wrong <- answer{res, err}
	}()
	go func() {
		res, err := g.Append(context.Background(), "fresh", eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
		accepted <- answer{res, err}
	}()
	time.Sleep(50 * time.Millisecond)
	go g.Run()

	w := <-wrong
	require.ErrorIs(t, w.err, eventstore.ErrWrongExpectedVersion, "a version conflict stands whatever the batch's fate")
	a := <-accepted
	require.ErrorIs(t, a.err, boom, "an append whose batch failed gets the failure")
}

func TestGroupCommitterReadOnlyBatchIgnoresRollbackError(t *testing.T) {
	b := &fakeBackend{versions: map[string]uint64{"s": 2}}
	g := eventstore.NewGroupCommitter(b, eventstore.GroupCommitConfig{})
	go g.Run()
	defer g.Close()
	_, err := g.Append(context.Background(), "s", eventstore.NoStream, eventstoretest.Events(1, "t.v1"))
	var ve *eventstore.VersionError
	require.ErrorAs(t, err, &ve, "the answer, not the rollback's error")
	require.Equal(t, uint64(2), ve.Actual)
	b.mu.Lock()
	require.Equal(t, 1, b.rollbacks, "rolled back exactly once")
	b.mu.Unlock()
}

// pickyBackend refuses any batch containing an event of type "poison.v1",
// as a database would refuse a value it cannot store.
type pickyBackend struct{ fakeBackend }

func (b *pickyBackend) Begin(ctx context.Context) (eventstore.BatchTx, error) {
	tx, _ := b.fakeBackend.Begin(ctx)
	return pickyTx{tx.(*fakeTx)}, nil
}

type pickyTx struct{ *fakeTx }

func (t pickyTx) Prepare(ctx context.Context, ids, streams []string) (eventstore.Head, map[string]eventstore.Event, map[string]uint64, error) {
	head, _, versions, err := t.fakeTx.Prepare(ctx, ids, streams)
	return head, nil, versions, err // a backend may answer nil for "none": the committer copes
}

func (t pickyTx) Insert(ctx context.Context, events []eventstore.Event, head eventstore.Head) error {
	for _, e := range events {
		if e.Type == "poison.v1" {
			return errors.New("value refused by the database")
		}
	}
	return t.fakeTx.Insert(ctx, events, head)
}

func TestGroupCommitterIsolatesARefusedAppend(t *testing.T) {
	b := &pickyBackend{fakeBackend{versions: map[string]uint64{}}}
	g := eventstore.NewGroupCommitter(b, eventstore.GroupCommitConfig{MaxBatch: 100})
	defer g.Close()
	errs := make(chan error, 3)
	for i, typ := range []string{"good.v1", "poison.v1", "good.v1"} {
		go func() {
			_, err := g.Append(context.Background(), fmt.Sprintf("s%d", i), eventstore.NoStream, eventstoretest.Events(1, typ))
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let all three share the first batch
	go g.Run()
	var failed, ok int
	for range 3 {
		if err := <-errs; err != nil {
			failed++
		} else {
			ok++
		}
	}
	require.Equal(t, 1, failed, "only the refused append fails")
	require.Equal(t, 2, ok)
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Equal(t, uint64(2), b.head.Position)
}
