package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator: clients, each one goroutine with its own keep-alive
// connection, sending one request after another (closed loop: the next as
// soon as the answer is read) for a fixed time, and recording each answer's
// latency from before the request is written until its body is read.

// loadClient sends the requests to one server.
type loadClient struct {
	http *http.Client
	base string // http://127.0.0.1:PORT
	// dials counts the TCP connections opened: with keep-alive working, one
	// per client.
	dials atomic.Int64
}

// requestTimeout bounds one request: one that takes longer is an error.
const requestTimeout = 30 * time.Second

func newLoadClient(base string, clients int) *loadClient {
	c := &loadClient{base: base}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // loopback, never through a proxy from the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        clients,
		MaxIdleConnsPerHost: clients,
		MaxConnsPerHost:     clients,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
	}
	c.http = &http.Client{Transport: tr, Timeout: requestTimeout}
	return c
}

func (c *loadClient) close() { c.http.CloseIdleConnections() }

// do sends q and reads the whole answer into buf. It returns the status,
// or the error that kept it from reading one.
func (c *loadClient) do(ctx context.Context, q queryRequest, buf *bytes.Buffer) (int, error) {
	buf.Reset()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+q.path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+q.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(buf, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, nil
}

// loadStats are the answers to some requests.
type loadStats struct {
	ok []time.Duration // latencies of the 2xx answers
	// errors counts every other outcome by kind ("HTTP 422", "transport:
	// …"); samples keeps one answer's detail per kind.
	errors  map[string]int
	samples map[string]string
}

func newLoadStats() *loadStats {
	return &loadStats{errors: map[string]int{}, samples: map[string]string{}}
}

func (s *loadStats) record(status int, err error, latency time.Duration, body []byte) {
	if err == nil && status >= 200 && status < 300 {
		s.ok = append(s.ok, latency)
		return
	}
	kind, detail := describeFailure(status, err, body)
	s.errors[kind]++
	if _, ok := s.samples[kind]; !ok {
		s.samples[kind] = detail
	}
}

func (s *loadStats) merge(o *loadStats) {
	s.ok = append(s.ok, o.ok...)
	for k, n := range o.errors {
		s.errors[k] += n
		if _, ok := s.samples[k]; !ok {
			s.samples[k] = o.samples[k]
		}
	}
}

// errorCount is the number of requests not answered 2xx.
func (s *loadStats) errorCount() int {
	n := 0
	for _, c := range s.errors {
		n += c
	}
	return n
}

// latency summarises the 2xx answers' latencies; nil when there are none.
func (s *loadStats) latency() *Latency {
	if len(s.ok) == 0 {
		return nil
	}
	sorted := slices.Clone(s.ok)
	slices.Sort(sorted)
	at := func(q float64) float64 { return percentileSorted(sorted, q) }
	return &Latency{Median: at(0.5), P99: at(0.99), Max: at(1)}
}

// percentileSorted is percentile over an already sorted slice.
func percentileSorted(sorted []time.Duration, q float64) float64 {
	i := min(max(int(math.Ceil(q*float64(len(sorted))))-1, 0), len(sorted)-1)
	return float64(sorted[i].Microseconds()) / 1000
}

// errorsNote renders the errors for a table's note: "errors: none", or
// their count and kinds with one sample each. Every non-2xx answer and
// every request that got no answer is counted.
func (s *loadStats) errorsNote() string {
	n := s.errorCount()
	if n == 0 {
		return "errors: none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.errors)) {
		part := fmt.Sprintf("%s ×%d", k, s.errors[k])
		if d := s.samples[k]; d != "" {
			part += fmt.Sprintf(" (%q)", d)
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("**errors: %d**: %s", n, strings.Join(parts, ", "))
}

// describeFailure names what went wrong with a request and gives a short
// detail: the problem's title and detail for an HTTP answer, the cause for
// a transport error.
func describeFailure(status int, err error, body []byte) (kind, detail string) {
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
			return "timeout", fmt.Sprintf("no answer within %s", requestTimeout)
		}
		return "transport", truncate(err.Error(), 160)
	}
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	detail = truncate(string(body), 160)
	if json.Unmarshal(body, &p) == nil && (p.Title != "" || p.Detail != "") {
		detail = truncate(strings.TrimSuffix(p.Title+": "+p.Detail, ": "), 160)
	}
	return fmt.Sprintf("HTTP %d", status), detail
}

// slowRequest is one of the slowest answers of a run, kept whole so that
// slow queries can be reproduced.
type slowRequest struct {
	latency time.Duration
	role    string
	path    string
	status  int
}

// keepSlowest is how many of the slowest answers a run keeps.
const keepSlowest = 10

func addSlow(s []slowRequest, r slowRequest) []slowRequest {
	if len(s) == keepSlowest && r.latency <= s[len(s)-1].latency {
		return s
	}
	// Slowest first.
	i, _ := slices.BinarySearchFunc(s, r, func(a, b slowRequest) int { return cmp.Compare(b.latency, a.latency) })
	s = slices.Insert(s, i, r)
	return s[:min(len(s), keepSlowest)]
}

// loadResult is what one timed run of the clients measured.
type loadResult struct {
	// elapsed runs from the start until the last client's last answer.
	elapsed   time.Duration
	total     *loadStats
	byKind    map[string]*loadStats
	byVariant map[string]*loadStats
	slowest   []slowRequest
	// dials is the number of connections opened during the run.
	dials int64
}

func newLoadResult() *loadResult {
	return &loadResult{total: newLoadStats(), byKind: map[string]*loadStats{}, byVariant: map[string]*loadStats{}}
}

func (l *loadResult) record(q queryRequest, status int, err error, latency time.Duration, body []byte) {
	l.total.record(status, err, latency, body)
	statsOf(l.byKind, q.kind).record(status, err, latency, body)
	statsOf(l.byVariant, q.variant()).record(status, err, latency, body)
	l.slowest = addSlow(l.slowest, slowRequest{latency: latency, role: q.role, path: q.path, status: status})
}

func (l *loadResult) merge(o *loadResult) {
	l.total.merge(o.total)
	for k, s := range o.byKind {
		statsOf(l.byKind, k).merge(s)
	}
	for k, s := range o.byVariant {
		statsOf(l.byVariant, k).merge(s)
	}
	for _, r := range o.slowest {
		l.slowest = addSlow(l.slowest, r)
	}
}

func statsOf(m map[string]*loadStats, key string) *loadStats {
	s, ok := m[key]
	if !ok {
		s = newLoadStats()
		m[key] = s
	}
	return s
}

// rate is the 2xx answers per second of s over the run.
func (l *loadResult) rate(s *loadStats) float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(len(s.ok)) / l.elapsed.Seconds()
}

// run drives the server with clients concurrent clients for d: each draws
// its requests from next (given its own random source) and, for a list
// whose request says so, follows the answer's next link for further pages.
// Requests in flight when d ends are awaited and counted. Only ctx ending
// stops it early, with ctx's error.
func (c *loadClient) run(ctx context.Context, clients int, d time.Duration, seed uint64, next func(r *rand.Rand) queryRequest) (*loadResult, error) {
	dials := c.dials.Load()
	start := time.Now()
	deadline := start.Add(d)
	results := make([]*loadResult, clients)
	var wg sync.WaitGroup
	for w := range clients {
		res := newLoadResult()
		results[w] = res
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			var (
				buf     bytes.Buffer
				pending *queryRequest
			)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				var q queryRequest
				if pending != nil {
					q, pending = *pending, nil
				} else {
					q = next(r)
				}
				t := time.Now()
				status, err := c.do(ctx, q, &buf)
				latency := time.Since(t)
				if ctx.Err() != nil {
					return
				}
				res.record(q, status, err, latency, buf.Bytes())
				if err == nil && status == http.StatusOK && q.pagesLeft > 0 {
					if link := nextPage(buf.Bytes()); link != "" {
						p := q
						p.path, p.pagesLeft = link, q.pagesLeft-1
						pending = &p
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all := newLoadResult()
	all.elapsed = time.Since(start)
	for _, r := range results {
		all.merge(r)
	}
	all.dials = c.dials.Load() - dials
	return all, nil
}

// probe sends each request once, one after the other: every variant of
// the mix is then known to have been tried, whatever the draws.
func (c *loadClient) probe(ctx context.Context, reqs []queryRequest) (*loadResult, error) {
	res := newLoadResult()
	start := time.Now()
	var buf bytes.Buffer
	for _, q := range reqs {
		t := time.Now()
		status, err := c.do(ctx, q, &buf)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.record(q, status, err, time.Since(t), buf.Bytes())
	}
	res.elapsed = time.Since(start)
	return res, nil
}

// nextPage returns a list answer's link to its next page ("" on the last).
//
// It finds the top-level "next" member without decoding the page: a page
// of 100 facilities is about 90 KiB of JSON, and decoding every one of
// them took more than half the load generator's CPU time, which on a small
// machine is taken from the server measured. The member is the last
// "next" key of the answer (it follows the items, whose objects have no
// member of that name); only its string is decoded.
func nextPage(body []byte) string {
	const key = `"next":`
	i := bytes.LastIndex(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return "" // null, or not a page
	}
	end := 1
	for end < len(rest) && rest[end] != '"' {
		if rest[end] == '\\' {
			end++
		}
		end++
	}
	var next string
	if end >= len(rest) || json.Unmarshal(rest[:end+1], &next) != nil {
		return ""
	}
	return next
}
