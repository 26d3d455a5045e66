package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/seed"
)

// The query scenarios: payeshd, started as its own process on the seeded
// history of the rebuild scenarios with its read models up, answering the
// main read-model queries to queryClients concurrent keep-alive clients
// over loopback, driven from the side's process (the load generator);
// against the same load generator asking the same server for GET /healthz,
// the floor of an HTTP round trip. See notes/query.md.

// queryClients is the number of concurrent clients.
const queryClients = 32

// The targets: at least queryTargetRate answers per second, all queries
// together, with a p99 under queryTargetP99 milliseconds.
const (
	queryTargetRate = 5000
	queryTargetP99  = 10.0
)

// queryTiming is how long the clients run before measuring (warm-up) and
// while measuring.
func queryTiming(s Sizes) (warmUp, measure time.Duration) {
	if s.Quick {
		return time.Second, 3 * time.Second
	}
	return 5 * time.Second, 20 * time.Second
}

// Row keys.
const (
	queryAllKey     = "all"
	queryLatencyKey = "all-latency"
)

func queryKey(kind string) string { return "query=" + kind }

// queryFacilities is the size of the history queried: the largest the
// rebuild scenarios seed, whose log it is.
func queryFacilities(s Sizes) int { return slices.Max(s.RebuildFacilities) }

func queryScenario(b backend) Scenario {
	return Scenario{
		Name:    "query-" + b.short,
		Section: sectionQuery,
		Backend: b.name,
		Payesh: Side{Label: "Payesh queries", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return queryPayesh(ctx, env, b)
		}},
		Baseline: Side{Label: "GET /healthz", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return queryBaseline(ctx, env, b)
		}},
		Rows: func(s Sizes) []Row {
			_, measure := queryTiming(s)
			head := fmt.Sprintf("%s facilities, %d clients, %s", Count(queryFacilities(s)), queryClients, measure)
			rows := []Row{
				{Key: queryAllKey, Label: head + ": all queries, requests/s (2xx answers)", Target: Target{Rate: queryTargetRate}},
				{Key: queryLatencyKey, Label: fmt.Sprintf("%s: all queries, latency (target p99 < %.0f ms: see the note)", head, queryTargetP99)},
			}
			for _, k := range queryKinds {
				rows = append(rows, Row{Key: queryKey(k.name), Label: k.label})
			}
			return rows
		},
	}
}

func queryPayesh(ctx context.Context, env *Env, b backend) ([]Point, error) {
	_, srv, setup, err := env.serveQueryLog(ctx, b, SidePayesh)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	client := newLoadClient(srv.base, queryClients)
	defer client.close()

	ministry, err := mintDev(auth.RoleMinistry, "")
	if err != nil {
		return nil, err
	}
	sample, err := sampleFacilities(ctx, client, ministry)
	if err != nil {
		return nil, err
	}
	mix, err := newQueryMix(sample, time.Hour)
	if err != nil {
		return nil, err
	}
	env.logf("%d facilities sampled for the mix; %d variants", len(sample), len(mix.variants))

	// Every variant once, then the clients for the warm-up: what either
	// answers other than 2xx is reported with the measurement.
	r := rand.New(rand.NewPCG(1, 2))
	var each []queryRequest
	for _, v := range mix.variants {
		each = append(each, v.build(mix, r))
	}
	warm, err := client.probe(ctx, each)
	if err != nil {
		return nil, err
	}
	res, err := env.measureLoad(ctx, client, srv, warm, mix.next)
	if err != nil {
		return nil, err
	}
	logLoad(env, "Payesh queries", res)
	return queryPoints(res, srv, setup, len(sample)), nil
}

func queryBaseline(ctx context.Context, env *Env, b backend) ([]Point, error) {
	lg, srv, _, err := env.serveQueryLog(ctx, b, SideBaseline)
	if err != nil {
		return nil, err
	}
	// The baseline runs last: the log goes with it, once the server is
	// gone.
	defer lg.dropUnlessKept()
	defer srv.stop()
	client := newLoadClient(srv.base, queryClients)
	defer client.close()

	// The same headers as the queries', though /healthz reads none.
	ministry, err := mintDev(auth.RoleMinistry, "")
	if err != nil {
		return nil, err
	}
	healthz := queryRequest{kind: "healthz", path: "/healthz", role: string(auth.RoleMinistry), token: ministry}
	res, err := env.measureLoad(ctx, client, srv, newLoadResult(), func(*rand.Rand) queryRequest { return healthz })
	if err != nil {
		return nil, err
	}
	logLoad(env, "GET /healthz", res)
	rate, lat := overallPoints(res, srv)
	return []Point{rate, lat}, nil
}

// loadRun is a measured run of the clients with what was measured about
// the processes meanwhile.
type loadRun struct {
	*loadResult
	// warm holds the answers before the measurement: the probe of every
	// variant and the warm-up.
	warm *loadResult
	// serverPeak is payeshd's peak resident set during the run, in KiB
	// (0 when unknown); serverCPU and selfCPU the CPU time payeshd and the
	// load generator used.
	serverPeak         int64
	serverCPU, selfCPU time.Duration
	// connections is the number of connections the client opened in all
	// (the measurement's own are loadResult.dials).
	connections int64
	// cache counts payeshd's answer cache lookups while measuring, by
	// result (hit, miss, bypass); nil when payeshd has no cache.
	cache map[string]float64
}

// measureLoad warms the server up with the clients, then measures them.
func (env *Env) measureLoad(ctx context.Context, client *loadClient, srv *queryServer, warm *loadResult, next func(*rand.Rand) queryRequest) (*loadRun, error) {
	warmUp, measure := queryTiming(env.Sizes)
	env.logf("warming up for %s with %d clients", warmUp, queryClients)
	w, err := client.run(ctx, queryClients, warmUp, 3, next)
	if err != nil {
		return nil, err
	}
	warm.merge(w)
	env.logf("measuring for %s", measure)
	pid := srv.cmd.Process.Pid
	resetPeakOf(pid)
	serverCPU, selfCPU := cpuOf(pid), ownCPU()
	cacheBefore := answerCacheLookups(ctx, srv)
	res, err := client.run(ctx, queryClients, measure, 4, next)
	if err != nil {
		return nil, err
	}
	run := &loadRun{
		loadResult: res, warm: warm, serverPeak: peakRSSOf(pid),
		serverCPU: cpuOf(pid) - serverCPU, selfCPU: ownCPU() - selfCPU, connections: client.dials.Load(),
	}
	if after := answerCacheLookups(ctx, srv); after != nil && cacheBefore != nil {
		run.cache = map[string]float64{}
		for k, v := range after {
			run.cache[k] = v - cacheBefore[k]
		}
	}
	return run, nil
}

// answerCacheLookups reads payeshd's answer cache counters from /metrics
// (payesh_answer_cache_lookups_total by result), nil when it has none.
func answerCacheLookups(ctx context.Context, srv *queryServer) map[string]float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/metrics", nil)
	if err != nil {
		return nil
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return nil
	}
	const prefix = `payesh_answer_cache_lookups_total{result="`
	var out map[string]float64
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		result, value, ok := strings.Cut(rest, `"} `)
		n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if !ok || err != nil {
			continue
		}
		if out == nil {
			out = map[string]float64{}
		}
		out[result] = n
	}
	return out
}

// cacheNote says how the answer cache served a measured run.
func cacheNote(c map[string]float64) string {
	total := c["hit"] + c["miss"] + c["bypass"]
	if total == 0 {
		return ""
	}
	return fmt.Sprintf("answer cache while measuring: %.0f%% of queries answered from it (%.0f hits, %.0f read from the database)",
		100*c["hit"]/total, c["hit"], c["miss"]+c["bypass"])
}

// queryPoints turns a measured run of the mix into the table's points.
func queryPoints(res *loadRun, srv *queryServer, setup string, sampled int) []Point {
	rate, lat := overallPoints(res, srv)
	verdict := "**no**"
	if lat.Latency != nil && lat.Latency.P99 < queryTargetP99 && res.total.errorCount() == 0 {
		verdict = "yes"
	}
	lat.Note = joinNotes(joinNotes(fmt.Sprintf("p99 < %.0f ms: %s", queryTargetP99, verdict), lat.Note),
		fmt.Sprintf("%s; %d facilities sampled for the requests by id and the filters' values", setup, sampled))
	points := []Point{rate, lat}
	for _, k := range queryKinds {
		s := statsOf(res.byKind, k.name)
		p := Point{Key: queryKey(k.name), Events: int64(len(s.ok)), Seconds: res.elapsed.Seconds(), Latency: s.latency()}
		p.Note = fmt.Sprintf("%s; %.0f%% of answers; %s", Rate(res.rate(s)), 100*float64(len(s.ok))/float64(max(len(res.total.ok), 1)), s.errorsNote())
		if v, vs := slowestVariant(res.byVariant, k.name); vs != nil {
			p.Note += fmt.Sprintf("; slowest variant: %s, p99 %s (%d answers)", v, millis(vs.latency().P99), len(vs.ok))
		}
		points = append(points, p)
	}
	return points
}

// overallPoints are the two points every side has: all answers' rate and
// their latency.
func overallPoints(res *loadRun, srv *queryServer) (rate, lat Point) {
	total := res.total
	rate = Point{Key: queryAllKey, Events: int64(len(total.ok)), Seconds: res.elapsed.Seconds(), PeakRSS: res.serverPeak}
	opened := "none"
	if res.dials > 0 {
		opened = fmt.Sprint(res.dials)
	}
	rate.Note = fmt.Sprintf("%s; keep-alive: %d connections, %s opened while measuring; CPU used over the %s: payeshd %s, load generator %s (%d CPUs)",
		total.errorsNote(), res.connections, opened, roundDuration(res.elapsed), roundDuration(res.serverCPU), roundDuration(res.selfCPU), runtime.NumCPU())
	if n := res.warm.total.errorCount(); n > 0 {
		rate.Note += "; before the measurement (probe and warm-up), " + res.warm.total.errorsNote()
	}
	rate.Note = joinNotes(rate.Note, cacheNote(res.cache))
	lat = Point{Key: queryLatencyKey, Events: int64(len(total.ok)), Seconds: res.elapsed.Seconds(), PeakRSS: res.serverPeak,
		Latency: total.latency()}
	if len(res.slowest) > 0 {
		s := res.slowest[0]
		lat.Note = fmt.Sprintf("slowest answer %s: %s GET %s", millis(float64(s.latency.Microseconds())/1000), s.role, s.path)
	}
	lat.Note = joinNotes(lat.Note, "payeshd "+srv.binaryNote)
	return rate, lat
}

// slowestVariant returns the variant of kind with the highest p99.
func slowestVariant(byVariant map[string]*loadStats, kind string) (string, *loadStats) {
	var (
		name string
		best *loadStats
	)
	for _, v := range slices.Sorted(mapKeys(byVariant)) {
		s := byVariant[v]
		if variantKind(v) != kind || len(s.ok) == 0 {
			continue
		}
		if best == nil || s.latency().P99 > best.latency().P99 {
			name, best = v, s
		}
	}
	return name, best
}

// variantKind is the query kind of a variant label (see
// queryRequest.variant).
func variantKind(variant string) string {
	_, path, _ := strings.Cut(variant, " ")
	path, _, _ = strings.Cut(path, "?")
	switch path {
	case "/v1/facilities":
		return "facilities"
	case "/v1/facilities/{id}":
		return "facility"
	case "/v1/job-counts":
		return "job-counts"
	case "/v1/quotas/accounts":
		return "quota-accounts"
	case "/v1/quotas/totals":
		return "quota-totals"
	case "/v1/banks/performance":
		return "bank-performance"
	case "/v1/inspections/stats":
		return "inspection-stats"
	case "/v1/deviations":
		return "deviations"
	}
	return path
}

// logLoad writes a run's figures by query and by variant, slowest first,
// and its slowest answers whole, to the progress log: where slow queries
// and their parameters are found.
func logLoad(env *Env, what string, res *loadRun) {
	env.logf("%s: %s, %s; %s", what, Rate(res.rate(res.total)), latencyText(res.total.latency()), res.total.errorsNote())
	if res.warm.total.errorCount() > 0 {
		env.logf("  before the measurement: %s", res.warm.total.errorsNote())
	}
	type row struct {
		name string
		s    *loadStats
	}
	var rows []row
	for v, s := range res.byVariant {
		rows = append(rows, row{v, s})
	}
	p99 := func(s *loadStats) float64 {
		if l := s.latency(); l != nil {
			return l.P99
		}
		return 0
	}
	slices.SortFunc(rows, func(a, b row) int { return -cmpFloat(p99(a.s), p99(b.s)) })
	if len(rows) > 1 {
		for _, r := range rows {
			env.logf("  %-90s %8s %s; %s", r.name, Rate(res.rate(r.s)), latencyText(r.s.latency()), r.s.errorsNote())
		}
	}
	slowest := res.slowest
	if len(rows) <= 1 {
		slowest = slowest[:min(len(slowest), 3)]
	}
	for _, s := range slowest {
		env.logf("  slow: %s (HTTP %d) %s GET %s", millis(float64(s.latency.Microseconds())/1000), s.status, s.role, s.path)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func latencyText(l *Latency) string {
	if l == nil {
		return "no 2xx answers"
	}
	return fmt.Sprintf("%s, max %s", l, millis(l.Max))
}

// mintDev mints a token signed with the public development key, which
// payeshd --dev accepts.
func mintDev(role auth.Role, scope string) (string, error) {
	p := auth.Principal{Subject: "bench-" + string(role), Role: role, Scope: auth.Scope{Kind: role.ScopeKind(), ID: scope}}
	tok, _, err := auth.DevIssuer(time.Now).Issue(p, time.Hour)
	return tok, err
}

// sampleFacilities lists, through the API, a page of facilities of every
// fiscal year in every province, in turn by id, by latest change and by
// largest loan, so that the sample spreads over the history.
func sampleFacilities(ctx context.Context, c *loadClient, token string) ([]sampledFacility, error) {
	sorts := []string{"id", "recent", "approved"}
	var (
		out []sampledFacility
		buf bytes.Buffer
		i   int
	)
	for fy := seed.FirstFiscalYear; fy <= seed.LastFiscalYear; fy++ {
		for _, p := range reference.Provinces() {
			q := queryRequest{kind: "sample", token: token, role: string(auth.RoleMinistry),
				path: fmt.Sprintf("/v1/facilities?fiscal_year=%d&province=%s&limit=40&sort=%s", fy, p.Code, sorts[i%len(sorts)])}
			i++
			status, err := c.do(ctx, q, &buf)
			if err != nil || status != http.StatusOK {
				kind, detail := describeFailure(status, err, buf.Bytes())
				return nil, fmt.Errorf("bench: sampling facilities: GET %s: %s: %s", q.path, kind, detail)
			}
			var page struct {
				Items []sampledFacility `json:"items"`
			}
			if err := json.Unmarshal(buf.Bytes(), &page); err != nil {
				return nil, fmt.Errorf("bench: sampling facilities: GET %s: %w", q.path, err)
			}
			out = append(out, page.Items...)
		}
	}
	return out, nil
}

// serveQueryLog opens the rebuild scenarios' log (seeding it if it is not
// there), brings every read model up, and starts payeshd on it. The log's
// store is closed again: payeshd has it to itself.
func (env *Env) serveQueryLog(ctx context.Context, b backend, side string) (*rebuildLog, *queryServer, string, error) {
	reused := env.rebuildLogComplete(b)
	start := time.Now()
	lg, err := env.openRebuildLog(ctx, b)
	if err != nil {
		return nil, nil, "", err
	}
	var notes []string
	if !reused {
		notes = append(notes, fmt.Sprintf("log seeded here in %s", roundDuration(time.Since(start))))
	}
	head, err := lg.st.Head(ctx)
	if err == nil {
		notes = append(notes, fmt.Sprintf("log of %s events", thousands(int64(head.Position))))
		var note string
		note, err = env.readModelsUp(ctx, lg.st)
		notes = append(notes, note)
	}
	lg.close()
	if err != nil {
		return nil, nil, "", err
	}
	storeURL, err := env.storeURL(lg)
	if err != nil {
		return nil, nil, "", err
	}
	bin, err := env.serverBinary(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	srv, err := startServer(ctx, env, bin, storeURL, filepath.Join(env.Work, fmt.Sprintf("payeshd-query-%s-%s.log", b.short, side)))
	if err != nil {
		return nil, nil, "", err
	}
	ready, err := srv.waitReady(ctx, 30*time.Minute)
	if err != nil {
		srv.stop()
		return nil, nil, "", err
	}
	notes = append(notes, fmt.Sprintf("payeshd ready (/readyz) %s after its start", roundDuration(ready)))
	env.logf("payeshd at %s: %s", srv.base, strings.Join(notes, "; "))
	return lg, srv, strings.Join(notes, "; "), nil
}

// rebuildLogComplete reports whether the rebuild log is there at every
// size (as openRebuildLog judges it), so that opening it seeds nothing.
func (env *Env) rebuildLogComplete(b backend) bool {
	return env.seededLogComplete(b, rebuildLabel, env.Sizes.RebuildFacilities)
}

// seededLogComplete reports whether the seeded log named label is there
// at every one of sizes.
func (env *Env) seededLogComplete(b backend, label string, sizes []int) bool {
	var rec rebuildRecord
	data, err := os.ReadFile(env.seededRecordPath(label, b))
	if err != nil || json.Unmarshal(data, &rec) != nil {
		return false
	}
	for _, f := range sizes {
		if _, ok := rec.Heads[f]; !ok {
			return false
		}
	}
	return true
}

// readModelsUp rebuilds, in one RebuildAll, every read model of
// env.Projectors that is missing, of another version or failed; those that
// are there payeshd catches up (the rebuild scenario's, or another side's).
func (env *Env) readModelsUp(ctx context.Context, st eventstore.Store) (string, error) {
	if len(env.Projectors) == 0 {
		return "read models built by payeshd itself (no projectors given to rebuild)", nil
	}
	db, err := projections.OpenDB(st)
	if err != nil {
		return "", err
	}
	defer db.Close()
	states, err := projections.NewReader(db, env.Projectors...).States(ctx)
	if err != nil {
		return "", err
	}
	var stale []string
	for _, p := range env.Projectors {
		i := slices.IndexFunc(states, func(s projections.StoredState) bool { return s.Name == p.Name() })
		if i < 0 || states[i].Version != p.Version() || states[i].Status != projections.StatusRunning {
			stale = append(stale, p.Name())
		}
	}
	if len(stale) == 0 {
		return "read models already there, caught up by payeshd", nil
	}
	engine, err := projections.New(projections.Config{Store: st, DB: db, Projectors: env.Projectors})
	if err != nil {
		return "", err
	}
	start := time.Now()
	last := start
	err = engine.RebuildAll(ctx, stale, func(pos, head uint64) {
		if time.Since(last) >= 15*time.Second {
			last = time.Now()
			env.logf("  rebuilding %s: %d of %d events", strings.Join(stale, ", "), pos, head)
		}
	})
	if err != nil {
		return "", fmt.Errorf("bench: rebuilding the read models: %w", err)
	}
	note := fmt.Sprintf("read models rebuilt (RebuildAll of %s) in %s", strings.Join(stale, ", "), roundDuration(time.Since(start)))
	env.logf("%s", note)
	return note, nil
}

// storeURL is the --store of payeshd for the log.
func (env *Env) storeURL(lg *rebuildLog) (string, error) {
	if lg.b == backendPostgres {
		u, err := url.Parse(env.PG)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set("schema", lg.schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	abs, err := filepath.Abs(lg.path)
	if err != nil {
		return "", err
	}
	return "sqlite://" + abs, nil
}

// serverBinary returns the payeshd to start: the one beside the running
// executable (make build leaves bin/payeshd beside bin/payesh), else one
// built with go build into the work directory, once per run (go run, go
// test). Which one it was is in the table's note.
func (env *Env) serverBinary(ctx context.Context) (string, error) {
	name := "payeshd"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), name); isFile(p) {
			return p, nil
		}
	}
	built := filepath.Join(env.Work, name)
	if isFile(built) {
		return built, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("bench: no %s beside this executable (make build puts one in bin/) and no go command to build one: %w", name, err)
	}
	env.logf("building payeshd into %s", built)
	out, err := exec.CommandContext(ctx, goCmd, "build", "-o", built, "github.com/payesh/payesh/cmd/payeshd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("bench: go build payeshd (run from inside the module, or make build first): %w\n%s", err, out)
	}
	return built, nil
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// queryServer is a payeshd process started by a side.
type queryServer struct {
	cmd        *exec.Cmd
	base       string // http://127.0.0.1:PORT
	logPath    string
	binaryNote string
	log        *serverLog
	started    time.Time
	exited     chan struct{} // closed when the process has exited
	waitErr    error         // Wait's error, once exited is closed
	stopOnce   sync.Once
}

// startServer starts payeshd on storeURL, on a free loopback port, in
// development mode (it accepts tokens signed with the public development
// key), with its log (JSON, one line per request) going to logPath, and
// returns once it listens.
func startServer(ctx context.Context, env *Env, bin, storeURL, logPath string) (*queryServer, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	sl := &serverLog{f: f, addr: make(chan string, 1)}
	cmd := exec.CommandContext(ctx, bin, "--store", storeURL, "--addr", "127.0.0.1:0", "--dev", "--role", "all")
	cmd.Stdout, cmd.Stderr = f, sl
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	cmd.SysProcAttr = serverProcAttr()
	note := bin
	if exe, err := os.Executable(); err == nil && filepath.Dir(exe) == filepath.Dir(bin) {
		note = "beside the bench's executable"
	} else if filepath.Dir(bin) == env.Work {
		note = "built from this module's source"
	}
	srv := &queryServer{cmd: cmd, logPath: logPath, binaryNote: note, log: sl, started: time.Now(), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: start %s: %w", bin, err)
	}
	go func() {
		srv.waitErr = cmd.Wait()
		f.Close()
		close(srv.exited)
	}()
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	select {
	case addr := <-sl.addr:
		srv.base = "http://" + addr
		return srv, nil
	case <-srv.exited:
		return nil, fmt.Errorf("bench: payeshd exited before serving (%v): %s", srv.waitErr, srv.logTail())
	case <-timeout.C:
		srv.stop()
		return nil, fmt.Errorf("bench: payeshd not serving after 2 minutes: %s", srv.logTail())
	case <-ctx.Done():
		srv.stop()
		return nil, ctx.Err()
	}
}

// waitReady waits until /readyz answers 200: every read model follows the
// log live. It returns the time since the start.
func (s *queryServer) waitReady(ctx context.Context, limit time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		if err != nil {
			return 0, err
		}
		resp, err := c.Do(req)
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.started), nil
			}
			last = truncate(body.String(), 600)
			var r struct {
				Status string `json:"status"`
			}
			if json.Unmarshal(body.Bytes(), &r) == nil && r.Status == "failed" {
				return 0, fmt.Errorf("bench: payeshd's read models stopped: %s", last)
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.exited:
			return 0, fmt.Errorf("bench: payeshd exited before it was ready (%v): %s", s.waitErr, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: payeshd not ready after %s: /readyz says %s", limit, last)
		}
	}
}

// stop asks payeshd to shut down (SIGINT: requests in flight finish, the
// projections commit or roll back) and kills it if it has not within a
// minute.
func (s *queryServer) stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(time.Minute):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// logTail is the end of payeshd's log, for errors.
func (s *queryServer) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return fmt.Sprintf("the end of %s:\n%s", s.logPath, strings.TrimSpace(string(b)))
}

// serverLog writes payeshd's standard error to its log file and, until it
// has seen it, looks for the line saying where it listens.
type serverLog struct {
	f       *os.File
	addr    chan string
	partial []byte
	found   bool
}

// Write implements io.Writer; os/exec calls it from one goroutine.
func (l *serverLog) Write(p []byte) (int, error) {
	if !l.found {
		l.partial = append(l.partial, p...)
		for !l.found {
			i := bytes.IndexByte(l.partial, '\n')
			if i < 0 {
				break
			}
			line := l.partial[:i]
			l.partial = l.partial[i+1:]
			var m struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &m) == nil && m.Msg == "payeshd serving" && m.Addr != "" {
				l.found = true
				l.partial = nil
				l.addr <- m.Addr
			}
		}
	}
	if _, err := l.f.Write(p); err != nil && !errors.Is(err, os.ErrClosed) {
		return 0, err
	}
	return len(p), nil
}
