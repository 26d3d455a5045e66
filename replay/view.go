package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// The placeholder of an event a business-time cut leaves out: its position
// and times are kept, so the view stays gap-free and in order, and its
// stream and type are ones no projector selects (Config.Validate checks).
const (
	hiddenStream = "$replay-hidden"
	hiddenType   = "$replay.hidden"
)

func placeholder(e eventstore.Event) eventstore.Event {
	return eventstore.Event{
		Position: e.Position, Stream: hiddenStream, Version: e.Position, ID: e.ID, Type: hiddenType,
		OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt,
	}
}

// view is a read-only eventstore.Store over the log up to position end,
// with the events that occurred after until (when set) replaced by
// placeholders. It is what the replay's Engine reads. Its log never
// grows: Subscribe delivers it and then waits for ctx to end.
type view struct {
	log   Log
	head  eventstore.Head
	until time.Time // business time; zero keeps every event
}

var _ eventstore.Store = (*view)(nil)

func newView(ctx context.Context, log Log, end uint64, until time.Time) (*view, error) {
	v := &view{log: log, head: eventstore.Head{Position: end}}
	if !until.IsZero() {
		v.until = eventstore.Normalize(until)
	}
	if end > 0 {
		last, err := log.ReadAll(ctx, end-1, 1, eventstore.Filter{})
		if err != nil {
			return nil, fmt.Errorf("replay: read position %d: %w", end, err)
		}
		if len(last) != 1 || last[0].Position != end {
			return nil, fmt.Errorf("replay: the log has no event at position %d", end)
		}
		v.head.Hash = last[0].Hash
	}
	return v, nil
}

// mask returns e as the view shows it.
func (v *view) mask(e eventstore.Event) eventstore.Event {
	if !v.until.IsZero() && e.OccurredAt.After(v.until) {
		return placeholder(e)
	}
	return e
}

// Append implements eventstore.Store: the view is read-only.
func (v *view) Append(context.Context, string, eventstore.ExpectedVersion, []eventstore.Proposed) (eventstore.AppendResult, error) {
	return eventstore.AppendResult{}, ErrReadOnly
}

// ReadAll implements eventstore.Store.
func (v *view) ReadAll(ctx context.Context, after uint64, limit int, filter eventstore.Filter) ([]eventstore.Event, error) {
	out := []eventstore.Event{}
	chunk := limit
	if len(filter.StreamPrefixes) > 0 || len(filter.Types) > 0 {
		chunk = max(limit, 1000) // the filter may drop most of a read
	}
	for len(out) < limit && after < v.head.Position {
		n := min(uint64(chunk), v.head.Position-after)
		if len(filter.StreamPrefixes) == 0 && len(filter.Types) == 0 {
			n = min(n, uint64(limit-len(out)))
		}
		batch, err := v.log.ReadAll(ctx, after, int(n), eventstore.Filter{})
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			return nil, fmt.Errorf("replay: the log ends at position %d, before %d", after, v.head.Position)
		}
		for i := range batch {
			e := v.mask(batch[i])
			if e.Position > v.head.Position {
				break
			}
			if e.Position != after+1 {
				return nil, fmt.Errorf("replay: the log jumps from position %d to %d: a replay needs the whole log", after, e.Position)
			}
			after = e.Position
			if filter.Matches(&e) {
				out = append(out, e)
				if len(out) == limit {
					break
				}
			}
		}
	}
	return out, nil
}

// ReadPage implements eventstore.Store: a window of DefaultScanWindow
// positions (or limit, when larger).
func (v *view) ReadPage(ctx context.Context, after uint64, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	p := eventstore.Page{Events: []eventstore.Event{}, Through: after, Head: v.head.Position}
	if after >= v.head.Position || limit <= 0 {
		return p, nil
	}
	end := min(after+uint64(max(limit, eventstore.DefaultScanWindow)), v.head.Position)
	sub := &view{log: v.log, head: eventstore.Head{Position: end}, until: v.until}
	events, err := sub.ReadAll(ctx, after, limit, filter)
	if err != nil {
		return eventstore.Page{}, err
	}
	p.Events, p.Through = events, end
	if len(events) == limit {
		p.Through = events[len(events)-1].Position
	}
	return p, nil
}

// scan calls f with every event of stream in the view, in order.
func (v *view) scan(ctx context.Context, stream string, f func(e eventstore.Event)) error {
	filter := eventstore.Filter{StreamPrefixes: []string{stream}}
	for after := uint64(0); after < v.head.Position; {
		p, err := v.ReadPage(ctx, after, 10_000, filter)
		if err != nil {
			return err
		}
		for _, e := range p.Events {
			if e.Stream == stream {
				f(e)
			}
		}
		after = p.Through
	}
	return nil
}

// ReadStream implements eventstore.Store by scanning the view: projectors
// never read streams, so this serves tools, not replays.
func (v *view) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, limit int) ([]eventstore.Event, error) {
	var all []eventstore.Event
	if err := v.scan(ctx, stream, func(e eventstore.Event) { all = append(all, e) }); err != nil {
		return nil, err
	}
	out := []eventstore.Event{}
	if dir == eventstore.Forwards {
		for _, e := range all {
			if e.Version >= from && len(out) < limit {
				out = append(out, e)
			}
		}
		return out, nil
	}
	for i := len(all) - 1; i >= 0 && len(out) < limit; i-- {
		if all[i].Version <= from {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// StreamVersion implements eventstore.Store by scanning the view.
func (v *view) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	var n uint64
	err := v.scan(ctx, stream, func(eventstore.Event) { n++ })
	return n, err
}

// Subscribe implements eventstore.Store: it delivers the view after
// position after, then waits for ctx to end, since the view never grows.
func (v *view) Subscribe(ctx context.Context, after uint64, filter eventstore.Filter, handler eventstore.Handler) error {
	for after < v.head.Position {
		p, err := v.ReadPage(ctx, after, 1000, filter)
		if err != nil {
			return err
		}
		if len(p.Events) > 0 {
			if err := handler(ctx, p.Events); err != nil {
				return err
			}
		}
		after = p.Through
	}
	<-ctx.Done()
	return ctx.Err()
}

// Head implements eventstore.Store: the cut.
func (v *view) Head(context.Context) (eventstore.Head, error) { return v.head, nil }

// Close implements eventstore.Store; the underlying log stays open.
func (v *view) Close() error { return nil }
