package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
)

// rebuildSeed selects the history the rebuild scenarios seed: another one
// than the bulk import's, so their IDs never meet.
const rebuildSeed = 0x30_4eb1d

// rebuildMaxRSS is the memory target of a rebuild, whatever the log's
// length: 512 MiB.
const rebuildMaxRSS = 512 * 1024

// lagGap is the pause before each timed append, so that the engine is idle
// when the event arrives: the figure is the lag of one event, not of a
// queue.
const lagGap = 20 * time.Millisecond

func rebuildKey(facilities int) string { return fmt.Sprintf("facilities=%d", facilities) }

const lagKey = "lag"

// rebuildScenario: rebuilding every read model (one Engine.RebuildAll of
// Env.Projectors, in one process, reading the log once) over a seeded
// history, at each of Sizes.RebuildFacilities, against a raw paged read of
// the same events, the floor a rebuild cannot beat; then, with the engine
// running every projector live over the largest log, the lag from an
// append's return to every read model reflecting it, against the store's
// own Subscribe delivering it. See notes/rebuild.md.
func rebuildScenario(b backend) Scenario {
	return Scenario{
		Name:    "rebuild-" + b.short,
		Section: sectionRebuild,
		Backend: b.name,
		Payesh: Side{Label: "Payesh rebuild", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return rebuildPayesh(ctx, env, b)
		}},
		Baseline: Side{Label: "raw read", Run: func(ctx context.Context, env *Env) ([]Point, error) {
			return rebuildBaseline(ctx, env, b)
		}},
		Rows: func(s Sizes) []Row {
			var rows []Row
			for _, f := range s.RebuildFacilities {
				r := Row{
					Key:    rebuildKey(f),
					Label:  fmt.Sprintf("seeded history of %s facilities: every read model", Count(f)),
					Target: Target{MaxRSS: rebuildMaxRSS},
				}
				if b == backendPostgres {
					r.Target.Rate = 100_000
				}
				rows = append(rows, r)
			}
			if n := len(s.RebuildFacilities); n > 0 {
				rows = append(rows, Row{Key: lagKey, Label: fmt.Sprintf("live lag at idle, %s facilities: one event to every read model (%d appends)",
					Count(s.RebuildFacilities[n-1]), s.LagAppends)})
			}
			return rows
		},
	}
}

func rebuildPayesh(ctx context.Context, env *Env, b backend) ([]Point, error) {
	if len(env.Projectors) == 0 {
		return nil, errors.New("bench: no projectors to rebuild (Env.Projectors is empty; payesh bench passes the read models payeshd runs)")
	}
	// Always from scratch: each size must be rebuilt before the log
	// grows past it.
	lg, err := env.newRebuildLog(ctx, b)
	if err != nil {
		return nil, err
	}
	defer lg.close()
	var points []Point
	for _, f := range env.Sizes.RebuildFacilities {
		note, err := lg.grow(ctx, f)
		if err != nil {
			return nil, err
		}
		p, err := measureRebuild(ctx, env, lg.st, rebuildKey(f))
		if err != nil {
			return nil, err
		}
		p.Note = joinNotes(p.Note, note)
		points = append(points, p)
	}
	p, err := measureLag(ctx, env, lg.st)
	if err != nil {
		return nil, err
	}
	return append(points, p), nil
}

// measureRebuild rebuilds every projector over the whole log with one
// Engine.RebuildAll (one read of the log, the projectors applied side by
// side) and reports the log's events per second of the whole, with the
// time each projector spent in Apply (and Finish) and the Go heap's peak
// in the note.
func measureRebuild(ctx context.Context, env *Env, st eventstore.Store, key string) (Point, error) {
	db, err := projections.OpenDB(st)
	if err != nil {
		return Point{}, err
	}
	defer db.Close()
	timed := make([]*timedProjector, len(env.Projectors))
	ps := make([]projections.Projector, len(env.Projectors))
	for i, p := range env.Projectors {
		timed[i] = &timedProjector{Projector: p}
		ps[i] = timed[i].wrap()
	}
	engine, err := projections.New(projections.Config{Store: st, DB: db, Projectors: ps})
	if err != nil {
		return Point{}, err
	}
	head, err := st.Head(ctx)
	if err != nil {
		return Point{}, err
	}
	m := startPoint() // collects garbage and resets the RSS high-water mark
	heap := watchHeap()
	start := time.Now()
	last := start
	err = engine.RebuildAll(ctx, nil, func(pos, head uint64) {
		if time.Since(last) >= 15*time.Second {
			last = time.Now()
			env.logf("  rebuild: %d of %d events, %s", pos, head, Rate(float64(pos)/time.Since(start).Seconds()))
		}
	})
	if err != nil {
		heap.stop()
		return Point{}, fmt.Errorf("bench: rebuild: %w", err)
	}
	point := m.point(key, int64(head.Position))
	peak := heap.stop()
	parts := make([]string, len(timed))
	for i, t := range timed {
		parts[i] = fmt.Sprintf("%s %s", t.Name(), roundDuration(t.spent()))
	}
	point.Note = fmt.Sprintf("%d projectors, one read of the log; time inside each one's Apply and Finish, side by side: %s; Go heap peak %s",
		len(timed), strings.Join(parts, ", "), MiB(int64(peak/1024)))
	env.logf("Payesh rebuild of %d projectors over %d events: %s, peak RSS %s, Go heap peak %s",
		len(env.Projectors), head.Position, Rate(point.Rate()), MiB(point.PeakRSS), MiB(int64(peak/1024)))
	return point, nil
}

// timedProjector adds up the time a projector spends in Apply and Finish:
// the projector's own work, inside the engine's transactions (without the
// commit and the checkpoint's update).
type timedProjector struct {
	projections.Projector
	nanos atomic.Int64
}

func (p *timedProjector) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	defer p.time(time.Now())
	return p.Projector.Apply(ctx, tx, t, batch)
}

func (p *timedProjector) time(start time.Time) { p.nanos.Add(int64(time.Since(start))) }

func (p *timedProjector) spent() time.Duration { return time.Duration(p.nanos.Load()) }

// wrap returns p as the engine should see it: a Finisher if the projector
// it times is one.
func (p *timedProjector) wrap() projections.Projector {
	if f, ok := p.Projector.(projections.Finisher); ok {
		return timedFinisher{p, f}
	}
	return p
}

type timedFinisher struct {
	*timedProjector
	f projections.Finisher
}

func (p timedFinisher) Finish(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	defer p.time(time.Now())
	return p.f.Finish(ctx, tx, t)
}

// measureLag runs the engine with every projector live and times, for
// LagAppends single-event commands appended one at a time at idle, the
// wait from the append's return to every read model reflecting its
// position (Reader.WaitFor, as a read-your-writes request waits).
func measureLag(ctx context.Context, env *Env, st eventstore.Store) (Point, error) {
	db, err := projections.OpenDB(st)
	if err != nil {
		return Point{}, err
	}
	defer db.Close()
	engine, err := projections.New(projections.Config{Store: st, DB: db, Projectors: env.Projectors})
	if err != nil {
		return Point{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- engine.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	if err := waitReady(ctx, engine); err != nil {
		return Point{}, err
	}

	reader := engine.Reader()
	l := ledger.New(st, schema.Registry())
	reg := lagRegistration(env.RunID)
	m := startPoint()
	var lags, appends []time.Duration
	for i := range env.Sizes.LagAppends {
		if err := sleepCtx(ctx, lagGap); err != nil {
			return Point{}, err
		}
		cmd := reg
		cmd.FacilityID = fmt.Sprintf("%s-%d", reg.FacilityID, i)
		cmd.At = time.Now()
		start := time.Now()
		res, err := ledger.Execute(ctx, l, facility.Stream(cmd.FacilityID), facility.Decider(), facility.Command(cmd),
			ledger.Meta{Actor: benchActor, IdempotencyKey: "bench-lag-" + cmd.FacilityID})
		if err != nil {
			return Point{}, fmt.Errorf("bench: lag append %d: %w", i, err)
		}
		committed := time.Now()
		for _, p := range env.Projectors {
			if _, err := reader.WaitFor(ctx, p.Name(), res.Position, time.Minute); err != nil {
				return Point{}, fmt.Errorf("bench: lag of %s: %w", p.Name(), err)
			}
		}
		lags = append(lags, time.Since(committed))
		appends = append(appends, committed.Sub(start))
	}
	p := latencyPoint(m.point(lagKey, int64(len(lags))), lags)
	p.Note = fmt.Sprintf("%d projectors live; the command (a facility registration, one event) took %s median to append",
		len(env.Projectors), millis(percentile(appends, 0.5)))
	env.logf("Payesh live lag: %s", p.Latency)
	return p, nil
}

// waitReady waits until every projection follows the log live.
func waitReady(ctx context.Context, engine *projections.Engine) error {
	deadline := time.Now().Add(10 * time.Minute)
	for !engine.Ready() {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: projections not live after 10 minutes: %+v", engine.Status())
		}
		for _, s := range engine.Status() {
			if s.State == projections.StateFailed || s.State == projections.StateStopped {
				return fmt.Errorf("bench: projection %s %s: %s", s.Name, s.State, s.LastError)
			}
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// lagRegistration is the command the lag is measured with: registering a
// new facility (one event), with reference data from the default catalog.
// FacilityID is a prefix to number.
func lagRegistration(runID string) facility.Register {
	cat := reference.DefaultCatalog()
	county := cat.Counties()[0]
	return facility.Register{
		FacilityID: "bench-lag-" + strings.ToLower(runID),
		FiscalYear: 1404,
		Program:    cat.Programs()[0].ID,
		Agency:     cat.Agencies()[0].ID,
		Province:   county.Province,
		County:     county.ID,
		Applicant: facility.Applicant{
			Ref: "bench-applicant", KeyID: "bench-key",
			Ciphertext: []byte("sealed elsewhere: the bench never opens it"),
		},
		Title:          "Bench: live lag",
		RequestedRials: 500_000_000,
		JobsPromised:   2,
	}
}

func rebuildBaseline(ctx context.Context, env *Env, b backend) ([]Point, error) {
	lg, err := env.openRebuildLog(ctx, b)
	if err != nil {
		return nil, err
	}
	// The baseline runs last: the log goes with it.
	defer lg.dropUnlessKept()
	raw, err := openRawReader(ctx, env, b, lg.schema, lg.path)
	if err != nil {
		return nil, err
	}
	defer raw.close()
	var points []Point
	for _, f := range env.Sizes.RebuildFacilities {
		p, err := raw.measure(ctx, env, rebuildKey(f), lg.rec.Heads[f])
		if err != nil {
			return nil, err
		}
		p.Note = fmt.Sprintf("pages of %s by position", Count(readPage))
		points = append(points, p)
	}
	p, err := subscribeLag(ctx, env, lg.st)
	if err != nil {
		return nil, err
	}
	return append(points, p), nil
}

// subscribeLag times, for LagAppends appends at idle like measureLag's,
// the wait from the append's return to a live, unfiltered store.Subscribe
// delivering the event: the floor under a live projection's lag, which
// rides on that subscription.
func subscribeLag(ctx context.Context, env *Env, st eventstore.Store) (Point, error) {
	head, err := st.Head(ctx)
	if err != nil {
		return Point{}, err
	}
	var (
		mu        sync.Mutex
		delivered uint64
		arrived   = eventstore.NewSignal()
	)
	subCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- st.Subscribe(subCtx, head.Position, eventstore.Filter{}, func(_ context.Context, batch []eventstore.Event) error {
			mu.Lock()
			delivered = batch[len(batch)-1].Position
			mu.Unlock()
			arrived.Broadcast()
			return nil
		})
	}()
	defer func() {
		stop()
		<-done
	}()
	reached := func(pos uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		return delivered >= pos
	}

	l := ledger.New(st, schema.Registry())
	reg := lagRegistration(env.RunID + "-raw")
	m := startPoint()
	var lags []time.Duration
	for i := range env.Sizes.LagAppends {
		if err := sleepCtx(ctx, lagGap); err != nil {
			return Point{}, err
		}
		cmd := reg
		cmd.FacilityID = fmt.Sprintf("%s-%d", reg.FacilityID, i)
		cmd.At = time.Now()
		res, err := ledger.Execute(ctx, l, facility.Stream(cmd.FacilityID), facility.Decider(), facility.Command(cmd),
			ledger.Meta{Actor: benchActor, IdempotencyKey: "bench-lag-" + cmd.FacilityID})
		if err != nil {
			return Point{}, fmt.Errorf("bench: lag append %d: %w", i, err)
		}
		committed := time.Now()
		timeout := time.NewTimer(time.Minute)
		for {
			wake := arrived.C()
			if reached(res.Position) {
				break
			}
			select {
			case <-wake:
			case err := <-done:
				timeout.Stop()
				return Point{}, fmt.Errorf("bench: subscription ended: %w", err)
			case <-timeout.C:
				return Point{}, fmt.Errorf("bench: event %d not delivered within a minute", res.Position)
			}
		}
		timeout.Stop()
		lags = append(lags, time.Since(committed))
	}
	p := latencyPoint(m.point(lagKey, int64(len(lags))), lags)
	p.Note = "store.Subscribe (unfiltered, from the head) delivering the same command's event"
	env.logf("raw Subscribe lag: %s", p.Latency)
	return p, nil
}

// latencyPoint makes p a latency measurement of lags.
func latencyPoint(p Point, lags []time.Duration) Point {
	var total time.Duration
	for _, l := range lags {
		total += l
	}
	p.Seconds = total.Seconds()
	p.Latency = &Latency{Median: percentile(lags, 0.5), P99: percentile(lags, 0.99), Max: percentile(lags, 1)}
	return p
}

// percentile returns the q-quantile of ds in milliseconds (nearest rank).
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i].Microseconds()) / 1000
}

// roundDuration keeps two or three significant figures: 48ms, 1.2s, 1m52s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// heapWatch samples the Go heap (live and not yet swept objects,
// runtime/metrics) every 10 ms and keeps the largest figure.
type heapWatch struct {
	quit chan struct{}
	done chan uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func watchHeap() *heapWatch {
	h := &heapWatch{quit: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		sample := []metrics.Sample{{Name: heapMetric}}
		var peak uint64
		read := func() {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				peak = max(peak, sample[0].Value.Uint64())
			}
		}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-h.quit:
				read()
				h.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the peak, in bytes.
func (h *heapWatch) stop() uint64 {
	close(h.quit)
	return <-h.done
}

// rebuildLog is the seeded log a rebuild scenario measures: the run's
// schema "rebuild" on PostgreSQL, the file rebuild.db in the work directory
// on SQLite. The Payesh side seeds it in stages (one history of the
// largest size, a piece at a time), rebuilding at each size, and records
// in rebuild-<backend>.json where the log's head was at each; the baseline
// reads the same positions and drops the log when done.
type rebuildLog struct {
	env *Env
	b   backend
	// label names the log's schema, file and record ("rebuild", or
	// "replay" for the replay scenario's); sizes are the sizes it is
	// seeded to, in facilities, one history of the largest.
	label  string
	sizes  []int
	st     eventstore.Store
	schema string // PostgreSQL
	path   string // SQLite
	rec    rebuildRecord
}

// rebuildRecord is what the rebuild-<backend>.json file holds.
type rebuildRecord struct {
	// Facilities is how many facilities of the history the log holds.
	Facilities int `json:"facilities"`
	// Heads is the log's head position when it held each size, by size.
	Heads map[int]uint64 `json:"heads"`
}

func (env *Env) rebuildRecordPath(b backend) string { return env.seededRecordPath(rebuildLabel, b) }

func (env *Env) seededRecordPath(label string, b backend) string {
	return filepath.Join(env.Work, label+"-"+b.short+".json")
}

// The seeded logs: the rebuild (and query) scenarios', and the replay
// scenario's.
const (
	rebuildLabel = "rebuild"
	replayLabel  = "replay"
)

// newRebuildLog creates an empty rebuild log, dropping any left over, and
// writes the reference data into it (ledger.Service.EnsureReference, as
// payesh seed does).
func (env *Env) newRebuildLog(ctx context.Context, b backend) (*rebuildLog, error) {
	return env.newSeededLog(ctx, b, rebuildLabel, env.Sizes.RebuildFacilities)
}

// newSeededLog creates an empty seeded log named label, to be grown to
// sizes.
func (env *Env) newSeededLog(ctx context.Context, b backend, label string, sizes []int) (*rebuildLog, error) {
	lg := &rebuildLog{env: env, b: b, label: label, sizes: sizes, rec: rebuildRecord{Heads: map[int]uint64{}}}
	_ = os.Remove(env.seededRecordPath(label, b))
	if b == backendPostgres {
		schema, _, err := env.freshSchema(ctx, label)
		if err != nil {
			return nil, err
		}
		lg.schema = schema
	} else {
		path, _, err := env.sqlitePath(label)
		if err != nil {
			return nil, err
		}
		lg.path = path
	}
	if err := lg.open(ctx); err != nil {
		return nil, err
	}
	svc, err := ledger.NewService(ledger.New(lg.st, schema.Registry()), applicant.NewMemoryVault(), bulkPseudonymKey)
	if err == nil {
		err = svc.EnsureReference(ctx, ledger.Meta{Actor: benchActor})
	}
	if err != nil {
		lg.close()
		return nil, fmt.Errorf("bench: reference data: %w", err)
	}
	return lg, nil
}

// openRebuildLog opens the rebuild log the Payesh side seeded, or, when it
// is not there at every size (the baseline run alone, or after a failure),
// seeds a new one.
func (env *Env) openRebuildLog(ctx context.Context, b backend) (*rebuildLog, error) {
	return env.openSeededLog(ctx, b, rebuildLabel, env.Sizes.RebuildFacilities)
}

// openSeededLog opens the seeded log named label if it is there at every
// one of sizes, else seeds a new one.
func (env *Env) openSeededLog(ctx context.Context, b backend, label string, sizes []int) (*rebuildLog, error) {
	var rec rebuildRecord
	data, err := os.ReadFile(env.seededRecordPath(label, b))
	complete := err == nil && json.Unmarshal(data, &rec) == nil
	for _, f := range sizes {
		_, ok := rec.Heads[f]
		complete = complete && ok
	}
	if complete {
		lg := &rebuildLog{env: env, b: b, label: label, sizes: sizes, rec: rec,
			schema: env.SchemaName(label), path: filepath.Join(env.Work, label+".db")}
		if err := lg.open(ctx); err != nil {
			return nil, err
		}
		return lg, nil
	}
	env.logf("no complete %s log: seeding one", label)
	lg, err := env.newSeededLog(ctx, b, label, sizes)
	if err != nil {
		return nil, err
	}
	for _, f := range sizes {
		if _, err := lg.grow(ctx, f); err != nil {
			lg.drop()
			return nil, err
		}
	}
	return lg, nil
}

// open opens the log's store, with large transactions for seeding.
func (lg *rebuildLog) open(ctx context.Context) error {
	var err error
	if lg.b == backendPostgres {
		lg.st, err = postgres.Open(ctx, postgres.Config{URL: lg.env.PG, Schema: lg.schema, MaxBatch: fillBatch})
	} else {
		lg.st, err = sqlite.Open(ctx, sqlite.Config{Path: lg.path, MaxBatch: fillBatch})
	}
	return err
}

func (lg *rebuildLog) close() {
	if lg.st != nil {
		_ = lg.st.Close()
		lg.st = nil
	}
}

// dropUnlessKept drops the log, or only closes it when the run keeps its
// fixtures (Env.Keep).
func (lg *rebuildLog) dropUnlessKept() {
	if lg.env.Keep {
		lg.close()
		return
	}
	lg.drop()
}

// drop closes the log and deletes it and its record.
func (lg *rebuildLog) drop() {
	lg.close()
	_ = os.Remove(lg.env.seededRecordPath(lg.label, lg.b))
	if lg.b == backendPostgres {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := DropSchemas(ctx, lg.env.PG, []string{lg.schema}); err != nil {
			lg.env.logf("warning: %v", err)
		}
		return
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(lg.path + suffix)
	}
}

// grow seeds the log up to facilities facilities of the history (of
// Sizes.RebuildFacilities' largest size), a piece at a time through
// AppendMany, the next piece generated while the last is written, then
// records the head and leaves the log as a long-lived one is: vacuumed and
// analysed on PostgreSQL, checkpointed on SQLite. The pieces already in
// the log are generated again (later ones depend on them) but not written.
func (lg *rebuildLog) grow(ctx context.Context, facilities int) (string, error) {
	sizes := lg.env.Sizes
	piece := sizes.BulkPiece
	if facilities%piece != 0 || lg.rec.Facilities%piece != 0 {
		return "", fmt.Errorf("bench: %d facilities is not a whole number of pieces of %d", facilities, piece)
	}
	src, err := newSeededSource(slices.Max(lg.sizes), piece, rebuildSeed)
	if err != nil {
		return "", err
	}
	start := time.Now()
	lg.env.logf("seeding the %s log from %s to %s facilities", lg.label, Count(lg.rec.Facilities), Count(facilities))
	type next struct {
		appends []eventstore.StreamAppend
		err     error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pieces := make(chan next, 2)
	go func() {
		defer close(pieces)
		for i := 0; i < facilities/piece; i++ {
			var n next
			if i < lg.rec.Facilities/piece {
				if n.err = src.skip(); n.err == nil {
					continue
				}
			} else {
				n.appends, n.err = src.next(ctx)
			}
			select {
			case pieces <- n:
			case <-ctx.Done():
				return
			}
			if n.err != nil {
				return
			}
		}
	}()
	events, lastLog := 0, start
	for n := range pieces {
		if n.err != nil {
			return "", fmt.Errorf("bench: seeding the rebuild log: %w", n.err)
		}
		if _, errs := eventstore.AppendMany(ctx, lg.st, n.appends); errors.Join(errs...) != nil {
			return "", fmt.Errorf("bench: seeding the rebuild log: %w", errors.Join(errs...))
		}
		events += countEvents(n.appends)
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			lg.env.logf("  %d events written, %s", events, Rate(float64(events)/time.Since(start).Seconds()))
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	seeded := time.Since(start)
	head, err := lg.st.Head(ctx)
	if err != nil {
		return "", err
	}
	lg.rec.Facilities = facilities
	lg.rec.Heads[facilities] = head.Position
	data, err := json.Marshal(lg.rec)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(lg.env.seededRecordPath(lg.label, lg.b), data, 0o644); err != nil {
		return "", err
	}
	switch st := lg.st.(type) {
	case *postgres.Store:
		_, err = st.Pool().Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{st.Schema(), "events"}.Sanitize())
	case *sqlite.Store:
		_, err = st.WriteDB().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	if err != nil {
		return "", fmt.Errorf("bench: settling the rebuild log: %w", err)
	}
	note := fmt.Sprintf("log seeded to %s events (%s written in %s, %s)", thousands(int64(head.Position)), thousands(int64(events)),
		roundDuration(seeded), Rate(float64(events)/seeded.Seconds()))
	lg.env.logf("%s", note)
	return note, nil
}
