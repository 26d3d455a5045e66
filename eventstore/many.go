package eventstore

import (
	"context"
	"sync"
)

// StreamAppend is one stream's part of a bulk append.
type StreamAppend struct {
	Stream   string
	Expected ExpectedVersion
	Events   []Proposed
}

// ManyAppender is implemented by stores that can take many streams' appends
// in one call, sharing transactions between them. Each append is atomic and
// checked on its own (expected version, idempotency); the call as a whole is
// not atomic: some appends may succeed while others fail. results[i] and
// errs[i] answer appends[i].
type ManyAppender interface {
	AppendMany(ctx context.Context, appends []StreamAppend) (results []AppendResult, errs []error)
}

// AppendMany appends to many streams through st, using its ManyAppender when
// it has one and concurrent Append calls otherwise.
func AppendMany(ctx context.Context, st Store, appends []StreamAppend) ([]AppendResult, []error) {
	if m, ok := st.(ManyAppender); ok {
		return m.AppendMany(ctx, appends)
	}
	results := make([]AppendResult, len(appends))
	errs := make([]error, len(appends))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, a := range appends {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i], errs[i] = st.Append(ctx, a.Stream, a.Expected, a.Events)
		}()
	}
	wg.Wait()
	return results, errs
}

// AppendMany queues every append before waiting for any, so they fill the
// same transactions. It implements ManyAppender's contract.
func (g *GroupCommitter) AppendMany(ctx context.Context, appends []StreamAppend) ([]AppendResult, []error) {
	results := make([]AppendResult, len(appends))
	errs := make([]error, len(appends))
	reqs := make([]*appendRequest, len(appends))
	now := g.now()
	for i, a := range appends {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if err := Validate(a.Stream, a.Events, now); err != nil {
			errs[i] = err
			continue
		}
		req := &appendRequest{ctx: ctx, stream: a.Stream, expected: a.Expected, events: a.Events, reply: make(chan appendReply, 1)}
		if err := g.enqueue(ctx, req); err != nil {
			errs[i] = err
			continue
		}
		reqs[i] = req
	}
	for i, req := range reqs {
		if req == nil {
			continue
		}
		r := <-req.reply
		results[i], errs[i] = r.res, r.err
	}
	return results, errs
}
