package projections

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/payesh/payesh/eventstore"
)

// The pump is the one path by which batches of the log reach projectors
// outside the live path: a live projection catching up, and rebuilds, of
// one projector or of several at once. It reads the log once, in batches
// of unfiltered position ranges (ReadAhead of them in flight), decodes
// each event once if any of its projectors selects it, and hands every
// batch to each projector's own goroutine, which applies it in its own
// transaction with its own checkpoint (Engine.apply). Each projector's
// queue holds ReadAhead batches: when one is full the reader waits, so the
// slowest projector paces the read and memory stays a few batches,
// whatever the log's length.

// sink is one projector's share of a pump: where its batches go and how
// far its tables have got.
type sink struct {
	r *runner
	t target
	// pos is the checkpoint: the tables reflect the log up to here. The
	// pump starts each sink there, skipping what it already has.
	pos uint64
	// err says why the sink stopped before the head (nil if it got there).
	err error

	group int // its Filter's index in the pump's filters
	in    chan *chunk
	quit  chan struct{} // closed when the sink's goroutine ends
}

func newSink(r *runner, t target, from uint64) *sink {
	return &sink{r: r, t: t, pos: from}
}

// filters are the distinct Filters of a pump's sinks, in the order of the
// sinks that first have them: projectors with equal filters (facilities
// and bank_performance read every facility- event) share one selection of
// each batch.
type filters []eventstore.Filter

// groupFilters returns the sinks' distinct filters and sets each sink's
// group to its filter's index.
func groupFilters(sinks []*sink) filters {
	var fs filters
	for _, s := range sinks {
		f := s.r.p.Filter()
		s.group = slices.IndexFunc(fs, func(g eventstore.Filter) bool {
			return slices.Equal(g.StreamPrefixes, f.StreamPrefixes) && slices.Equal(g.Types, f.Types)
		})
		if s.group < 0 {
			s.group = len(fs)
			fs = append(fs, f)
		}
	}
	return fs
}

// words is how many 64-bit words a mask of the filters takes.
func (fs filters) words() int { return (len(fs) + 63) / 64 }

// match sets, in mask, the bit of each filter that selects e, and reports
// whether any does.
func (fs filters) match(e *eventstore.Event, mask []uint64) bool {
	found := false
	for g, f := range fs {
		if f.Matches(e) {
			mask[g/64] |= 1 << (g % 64)
			found = true
		}
	}
	return found
}

// chunk is a batch of the log read and decoded ahead of its transactions.
// A pump's sinks share it and must not change it.
type chunk struct {
	envs []Envelope // the decoded events some filter selects, in order
	// masks holds, for each of envs, words words of bits: the filters
	// that select it.
	masks  []uint64
	words  int
	failed []decodeFailed // the events some filter selects that did not decode
	end    uint64         // the checkpoint after the chunk
	head   uint64         // the log's head when it was read
	last   bool           // the read reached the head
	err    error          // the read failed: no sink can go on

	subsets []subset // per filter, its events, made once for all its sinks
}

// subset is the events of a chunk that one filter selects.
type subset struct {
	once sync.Once
	envs []Envelope
}

// decodeFailed is an event that does not decode, kept so that only the
// projectors that select it fail at it.
type decodeFailed struct {
	err  *DecodeError
	mask []uint64 // the filters that select it
}

func selected(mask []uint64, group int) bool { return mask[group/64]&(1<<(group%64)) != 0 }

// envsFor returns the events of c after position after that filter group
// selects, or the DecodeError of the first of them that did not decode.
// When the filter selects every decoded event, the chunk's own slice is
// returned, not a copy.
func (c *chunk) envsFor(group int, after uint64) ([]Envelope, error) {
	for _, d := range c.failed {
		if d.err.Position > after && selected(d.mask, group) {
			return nil, d.err
		}
	}
	sub := &c.subsets[group]
	sub.once.Do(func() {
		n := 0
		for k := range c.envs {
			if selected(c.masks[k*c.words:], group) {
				n++
			}
		}
		if n == len(c.envs) {
			sub.envs = c.envs
			return
		}
		sub.envs = make([]Envelope, 0, n)
		for k := range c.envs {
			if selected(c.masks[k*c.words:], group) {
				sub.envs = append(sub.envs, c.envs[k])
			}
		}
	})
	envs := sub.envs
	i := sort.Search(len(envs), func(i int) bool { return envs[i].Position > after })
	return envs[i:], nil
}

// catchUp applies the log after position from to r's live tables in
// batches until it reaches the head, and returns the position reached.
func (e *Engine) catchUp(ctx context.Context, r *runner, from uint64) (uint64, error) {
	s := newSink(r, target{}, from)
	e.pump(ctx, []*sink{s}, nil)
	return s.pos, s.err
}

// pump applies the log after each sink's position to its tables until
// every sink has reached the head, or stopped: each sink's pos and err say
// how it ended. A sink that fails drops out and the others go on; the read
// stops when none is left, or when ctx ends. m, if not nil, hears of each
// sink's progress.
func (e *Engine) pump(ctx context.Context, sinks []*sink, m *meter) {
	if len(sinks) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from := sinks[0].pos
	for _, s := range sinks {
		from = min(from, s.pos)
	}
	fs := groupFilters(sinks)
	chunks := make(chan *chunk, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		e.read(ctx, fs, from, chunks)
	}()

	var (
		wg      sync.WaitGroup
		running atomic.Int32
	)
	running.Store(int32(len(sinks)))
	for i, s := range sinks {
		s.in, s.quit = make(chan *chunk, e.cfg.ReadAhead), make(chan struct{})
		wg.Go(func() {
			defer close(s.quit)
			s.err = e.drain(ctx, s, func(pos, head uint64) { m.set(i, pos, head) })
			if s.err != nil {
				m.drop(i)
				if running.Add(-1) == 0 {
					cancel() // nobody left to read for
				}
			}
		})
	}

dispatch:
	for c := range chunks {
		for _, s := range sinks {
			select {
			case s.in <- c:
			case <-s.quit: // it stopped: the others go on
			case <-ctx.Done():
				break dispatch
			}
		}
		if c.err != nil || c.last {
			break
		}
	}
	for _, s := range sinks {
		close(s.in)
	}
	wg.Wait()
	cancel()
	<-readDone
}

// drain applies the chunks s receives, each in one transaction with s's
// checkpoint (skipping a chunk s already has), until the last one.
func (e *Engine) drain(ctx context.Context, s *sink, report func(pos, head uint64)) error {
	for c := range s.in {
		if c.err != nil {
			return c.err
		}
		if c.end > s.pos {
			envs, err := c.envsFor(s.group, s.pos)
			if err != nil {
				var de *DecodeError
				if errors.As(err, &de) && !s.t.tables.Next() {
					// Decoding is deterministic: retrying cannot help.
					return e.fail(ctx, s.r, s.pos, err)
				}
				return err
			}
			pos, err := e.apply(ctx, s.r, s.t, envs, c.end)
			if err != nil {
				return err
			}
			s.pos = pos
		}
		head := max(c.head, s.pos)
		if s.t.tables.Next() {
			s.r.update(func(st *Status) { st.Rebuild = &RebuildProgress{Position: s.pos, Head: head} })
		}
		report(s.pos, head)
		if c.last {
			return nil
		}
	}
	// The pump stopped sending before the last chunk: ctx ended.
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("projections: the read of the log ended early")
}

// meter turns the progress of a pump's sinks into one report: the least
// position the sinks still running have reached (the slowest paces the
// rest) and the log's head. It calls its function from one goroutine at a
// time, only when that position moves on past where the sinks started. A
// nil meter reports nothing.
type meter struct {
	f func(pos, head uint64)

	mu       sync.Mutex
	pos      []uint64
	dropped  []bool
	head     uint64
	reported uint64 // the last position reported, or where the sinks started
}

func newMeter(sinks []*sink, f func(pos, head uint64)) *meter {
	if f == nil || len(sinks) == 0 {
		return nil
	}
	m := &meter{f: f, pos: make([]uint64, len(sinks)), dropped: make([]bool, len(sinks))}
	for i, s := range sinks {
		m.pos[i] = s.pos
	}
	m.reported = slices.Min(m.pos)
	return m
}

// set records that sink i reached pos, with the log's head at head.
func (m *meter) set(i int, pos, head uint64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos[i] = max(m.pos[i], pos)
	m.head = max(m.head, head)
	m.report()
}

// drop leaves sink i (which stopped) out of the figure.
func (m *meter) drop(i int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropped[i] = true
	m.report()
}

func (m *meter) report() {
	var (
		least uint64
		found bool
	)
	for i, p := range m.pos {
		if !m.dropped[i] && (!found || p < least) {
			least, found = p, true
		}
	}
	if !found || least <= m.reported {
		return
	}
	m.reported = least
	m.f(least, max(m.head, least))
}

// read sends the log after position from in decoded batches until a read
// comes back short (the head is reached), then closes out. Positions are
// gap-free, so the k-th batch ahead is the positions from+k*BatchSize+1
// onwards: ReadAhead batches are read (and decoded) at once, each on its
// own connection, and sent in order.
func (e *Engine) read(ctx context.Context, fs filters, from uint64, out chan<- *chunk) {
	defer close(out)
	type result struct {
		c   *chunk
		err error
	}
	var pending []chan result
	next := from
	launch := func() {
		ch := make(chan result, 1) // a read nobody waits for any more still ends
		after := next
		go func() {
			c, err := e.readChunk(ctx, fs, after)
			ch <- result{c, err}
		}()
		pending = append(pending, ch)
		next += uint64(e.cfg.BatchSize)
	}
	for range e.cfg.ReadAhead {
		launch()
	}
	for {
		res := <-pending[0]
		pending = pending[1:]
		c := res.c
		if res.err != nil {
			c = &chunk{err: res.err}
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
		if c.err != nil || c.last {
			return
		}
		launch()
	}
}

// readChunk reads and decodes one batch: the next BatchSize events of the
// log, of which it decodes those that some of fs selects.
//
// It reads the log unfiltered on purpose. A stream-prefix filter that
// matches most of the log (facility-) is answered by the stores from their
// stream index when the planner misjudges it (PostgreSQL did, on fresh
// statistics: every call scanned every facility event, so a rebuild grew
// with the square of the log); a range of positions is always an index
// range scan, whose cost is the batch's.
func (e *Engine) readChunk(ctx context.Context, fs filters, after uint64) (*chunk, error) {
	head, err := e.cfg.Store.Head(ctx)
	if err != nil {
		return nil, err
	}
	events, err := e.cfg.Store.ReadAll(ctx, after, e.cfg.BatchSize, eventstore.Filter{})
	if err != nil {
		return nil, err
	}
	c := &chunk{end: after, last: len(events) < e.cfg.BatchSize}
	if len(events) > 0 {
		c.end = events[len(events)-1].Position
	}
	c.head = max(head.Position, c.end)
	e.decodeAll(c, events, fs)
	return c, nil
}

// decodeAll decodes into c the events that some of fs selects, spreading
// a large batch over a few goroutines (JSON decoding is most of a
// rebuild's CPU time). Those that do not decode are left out of c.envs and
// listed, in order, in c.failed.
func (e *Engine) decodeAll(c *chunk, events []eventstore.Event, fs filters) {
	w := fs.words()
	c.words, c.subsets = w, make([]subset, len(fs))
	idx := make([]int, 0, len(events))
	masks := make([]uint64, len(events)*w)
	for i := range events {
		if fs.match(&events[i], masks[len(idx)*w:len(idx)*w+w]) {
			idx = append(idx, i)
		}
	}
	masks = masks[:len(idx)*w]
	envs := make([]Envelope, len(idx))
	const parts = 4
	bad := make([][]int, parts) // per part, the indexes into idx that failed
	errs := make([][]*DecodeError, parts)
	var wg sync.WaitGroup
	per := (len(idx) + parts - 1) / parts
	for p := 0; p < parts && p*per < len(idx); p++ {
		lo, hi := p*per, min((p+1)*per, len(idx))
		wg.Go(func() {
			for k := lo; k < hi; k++ {
				env, err := Decode(e.cfg.Registry, &events[idx[k]])
				var de *DecodeError
				if errors.As(err, &de) { // Decode fails with nothing else
					bad[p], errs[p] = append(bad[p], k), append(errs[p], de)
					continue
				}
				envs[k] = env
			}
		})
	}
	wg.Wait()
	c.envs, c.masks = envs, masks
	var failed []int // indexes into envs, in order
	for p := range parts {
		for j, k := range bad[p] {
			c.failed = append(c.failed, decodeFailed{err: errs[p][j], mask: slices.Clone(masks[k*w : k*w+w])})
			failed = append(failed, k)
		}
	}
	if len(failed) == 0 {
		return
	}
	// Close the gaps the failures left, keeping the order.
	keptEnvs, keptMasks := envs[:0], masks[:0]
	next := 0
	for _, k := range failed {
		keptEnvs = append(keptEnvs, envs[next:k]...)
		keptMasks = append(keptMasks, masks[next*w:k*w]...)
		next = k + 1
	}
	c.envs = append(keptEnvs, envs[next:]...)
	c.masks = append(keptMasks, masks[next*w:]...)
}
