package api

import (
	"bytes"
	"container/list"
	"context"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/projections"
)

// The answer cache: a read model's content is a function of its
// checkpoint (the position of the log it reflects, and which build of it
// holds that), so an answer read at a checkpoint is the answer to the
// same question for as long as the read model stays there. The cache
// keeps the JSON answers of read-model queries, each with the checkpoint
// it was read at, and serves one again while the read model has not moved
// past it; the first request after a commit to the read model reads the
// database again. Every answer still carries the position it reflects, so
// a cached answer is never stale without saying so, and min_position is
// honoured: an answer older than the position asked for is not served.
//
// How current "the read model has not moved" is comes from
// projections.Reader.Current: at once for commits of the Engine in this
// process, within its poll interval (50 ms) for those of other processes.
// A client that wants its own write reflected asks with min_position, as
// it must anyway (the read models follow the log asynchronously).
//
// Only what is a pure function of the checkpoint and the request is kept:
// 200 JSON answers of the routes that declare a cacheSpec, keyed by the
// route, path and query (min_position and max_wait aside), the principal's
// role and scope (which decide the mandatory filters and what is hidden),
// and the Accept and Accept-Language headers. CSV exports, answers
// rebuilt from the log (as_of on facilities, job counts and quota
// accounts), problems and answers larger than a sixteenth of the cache are
// never kept. Answers computed as of the present moment (bank backlogs
// without as_of) are kept for at most a second.

// cacheSpec is a route's part in the answer cache.
type cacheSpec struct {
	// model is the read model (projector name) the answers reflect.
	model string
	// replays are query parameters with which the route rebuilds its
	// answer from the log instead of reading the read model: not cached.
	replays []string
	// clock, when set, is a parameter without which the answer is
	// computed as of the present moment: such answers are kept at most
	// clockTTL.
	clock string
}

const clockTTL = time.Second

// asOfParams are the parameters with which a route answers from the log
// as it stood (asof.go), not from the read model.
var asOfParams = []string{"as_of", "as_of_position"}

// DefaultAnswerCacheBytes is Config.AnswerCacheBytes's default.
const DefaultAnswerCacheBytes = 64 << 20

// checkpoints tells a read model's current checkpoint, cheaply enough to
// be asked on every request (projections.Reader.Current).
type checkpoints interface {
	Current(ctx context.Context, name string) (projections.Checkpoint, error)
}

// answerCache is an LRU of answers bounded in bytes, with one database
// read per key at a time (concurrent misses of one key wait for the
// first). It is safe for concurrent use.
type answerCache struct {
	positions checkpoints
	max       int64

	mu     sync.Mutex
	size   int64
	lru    *list.List               // of *cachedAnswer, most recently used first
	items  map[string]*list.Element // by key
	flight map[string]*answerFlight // misses being read, by key

	lookups *prometheus.CounterVec
	bytes   prometheus.GaugeFunc
}

// cachedAnswer is one kept answer.
type cachedAnswer struct {
	key     string
	cp      projections.Checkpoint // Position: the answer's own position
	expires time.Time              // zero: valid for as long as the checkpoint
	header  http.Header
	body    []byte
}

func (a *cachedAnswer) cost() int64 { return int64(len(a.body) + len(a.key) + 256) }

// answerFlight is a miss being read; done is closed when answer is set
// (nil when the read did not give a cacheable answer).
type answerFlight struct {
	done   chan struct{}
	answer *cachedAnswer
}

func newAnswerCache(positions checkpoints, maxBytes int64) *answerCache {
	c := &answerCache{
		positions: positions, max: maxBytes,
		lru: list.New(), items: map[string]*list.Element{}, flight: map[string]*answerFlight{},
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payesh_answer_cache_lookups_total",
			Help: "Read-model queries by what the answer cache did: hit (served a kept answer), miss (read the database), bypass (not cacheable: CSV, as_of replays, a read model of unknown checkpoint).",
		}, []string{"result"}),
	}
	c.bytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "payesh_answer_cache_bytes",
		Help: "Bytes of answers the answer cache holds.",
	}, func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(c.size)
	})
	return c
}

// serve answers r from the cache when it holds a valid answer, else runs
// handle (recording its answer, to keep it when it is cacheable). An error
// of handle is returned as it is, for the caller to write.
func (c *answerCache) serve(w http.ResponseWriter, r *http.Request, p auth.Principal, spec *cacheSpec,
	handle func(http.ResponseWriter) error) error {
	k, ok := c.key(r, p, spec)
	key, minPos := k.key, k.minPos
	if !ok {
		c.lookups.WithLabelValues("bypass").Inc()
		return handle(w)
	}
	cur, err := c.positions.Current(r.Context(), spec.model)
	if err != nil {
		// The handler meets the same fault and answers it properly.
		c.lookups.WithLabelValues("bypass").Inc()
		return handle(w)
	}
	valid := func(a *cachedAnswer) bool {
		return a != nil && a.cp.Version == cur.Version && a.cp.Generation == cur.Generation &&
			a.cp.Position >= cur.Position && a.cp.Position >= minPos &&
			(a.expires.IsZero() || time.Now().Before(a.expires))
	}
	var f *answerFlight
	for {
		c.mu.Lock()
		if el, found := c.items[key]; found && valid(el.Value.(*cachedAnswer)) {
			c.lru.MoveToFront(el)
			a := el.Value.(*cachedAnswer)
			c.mu.Unlock()
			c.lookups.WithLabelValues("hit").Inc()
			a.write(w)
			return nil
		}
		var reading bool
		if f, reading = c.flight[key]; !reading {
			f = &answerFlight{done: make(chan struct{})}
			c.flight[key] = f
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-r.Context().Done():
			return r.Context().Err()
		}
		if valid(f.answer) {
			c.lookups.WithLabelValues("hit").Inc()
			f.answer.write(w)
			return nil
		}
		if f.answer == nil {
			// The first read failed or was not cacheable: read on our own
			// rather than queue behind another attempt.
			c.lookups.WithLabelValues("miss").Inc()
			return handle(w)
		}
		// Read at a checkpoint older than ours: try again.
	}

	c.lookups.WithLabelValues("miss").Inc()
	rec := &recorder{header: http.Header{}}
	err = handle(rec)
	var kept *cachedAnswer
	defer func() {
		c.mu.Lock()
		delete(c.flight, key)
		if kept != nil {
			c.put(kept)
		}
		c.mu.Unlock()
		f.answer = kept
		close(f.done)
	}()
	if err != nil {
		// Headers the handler set for its problem (Retry-After…).
		maps.Copy(w.Header(), rec.header)
		return err
	}
	a := rec.answer(key, cur)
	if a != nil && k.clocked {
		a.expires = time.Now().Add(clockTTL)
	}
	if a != nil && a.cost() <= c.max/16 {
		kept = a
	}
	rec.writeTo(w)
	return nil
}

// answerKey is what a request's answer is kept under.
type answerKey struct {
	key     string
	minPos  uint64 // the request's min_position, 0 without
	clocked bool   // the answer is computed as of the present moment (cacheSpec.clock)
}

// key returns the cache key of r, or false when r's answer is not
// cacheable.
func (c *answerCache) key(r *http.Request, p auth.Principal, spec *cacheSpec) (answerKey, bool) {
	if r.Method != http.MethodGet {
		return answerKey{}, false
	}
	if f, err := negotiate(r, true); err != nil || f != asJSON {
		return answerKey{}, false
	}
	q := r.URL.Query()
	for _, name := range spec.replays {
		if q.Has(name) {
			return answerKey{}, false
		}
	}
	var minPos uint64
	if vs := q["min_position"]; len(vs) > 0 {
		n, err := strconv.ParseUint(strings.TrimSpace(vs[0]), 10, 64)
		if len(vs) > 1 || err != nil {
			return answerKey{}, false // the handler says what is wrong
		}
		minPos = n
	}
	q.Del("min_position")
	q.Del("max_wait")
	var b strings.Builder
	b.WriteString(r.URL.Path)
	b.WriteByte('?')
	b.WriteString(q.Encode()) // sorted by name
	for _, part := range []string{string(p.Role), string(p.Scope.Kind), p.Scope.ID,
		r.Header.Get("Accept"), r.Header.Get("Accept-Language")} {
		b.WriteByte(0)
		b.WriteString(url.QueryEscape(part))
	}
	return answerKey{key: b.String(), minPos: minPos, clocked: spec.clock != "" && !q.Has(spec.clock)}, true
}

// put keeps a, evicting the least recently used answers beyond the
// budget. The caller holds c.mu.
func (c *answerCache) put(a *cachedAnswer) {
	if el, found := c.items[a.key]; found {
		old := el.Value.(*cachedAnswer)
		if old.cp.Position > a.cp.Position && old.cp.Generation == a.cp.Generation {
			return // a slower reader's older answer
		}
		c.size -= old.cost()
		c.lru.Remove(el)
		delete(c.items, a.key)
	}
	c.items[a.key] = c.lru.PushFront(a)
	c.size += a.cost()
	for c.size > c.max {
		el := c.lru.Back()
		old := el.Value.(*cachedAnswer)
		c.lru.Remove(el)
		delete(c.items, old.key)
		c.size -= old.cost()
	}
}

func (a *cachedAnswer) write(w http.ResponseWriter) {
	maps.Copy(w.Header(), a.header)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.body)
}

// recorder is the ResponseWriter a miss's handler writes to.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// answer returns the recorded answer as one to keep, or nil when it is
// not a 200 JSON answer carrying its position. Its checkpoint is the
// build cur names at the answer's own position (at or after cur's: the
// database may have moved on since cur was read).
func (r *recorder) answer(key string, cur projections.Checkpoint) *cachedAnswer {
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		return nil
	}
	pos, err := strconv.ParseUint(r.header.Get(positionHeader), 10, 64)
	if err != nil || pos < cur.Position {
		return nil
	}
	cp := cur
	cp.Position = pos
	return &cachedAnswer{key: key, cp: cp, header: r.header.Clone(), body: bytes.Clone(r.body.Bytes())}
}

// writeTo sends the recorded answer on.
func (r *recorder) writeTo(w http.ResponseWriter) {
	maps.Copy(w.Header(), r.header)
	if r.status == 0 {
		r.status = http.StatusOK
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}
