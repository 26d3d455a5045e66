package seed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
)

// fyShare is how the facilities are spread over the fiscal years 1400–1404:
// the schemes grew.
var fyShare = [5]float64{0.16, 0.18, 0.20, 0.23, 0.23}

// Business calendar of each fiscal year, in days from 1 Farvardin.
const (
	allocationDay = 10  // the budget's quotas are communicated
	firstRegDay   = 15  // registrations open
	registerDays  = 315 // and run for this many days
	transferDay   = 250 // the ministry reviews absorption (early Azar)
	firstHalfDays = 186 // the first six months (31 days each)
	maxTransfers  = 6   // transfers per ledger per year, at most
)

// Actors of the steps that are not tied to one facility's parties.
var (
	ministryActor = eventstore.Actor{ID: "employment-deputy", Role: "ministry", Org: "labour-ministry"}
	systemActor   = eventstore.Actor{ID: "seed", Role: "admin", Org: "payesh"}
)

// Generator produces a history piece by piece. It is not safe for
// concurrent use.
type Generator struct {
	cfg      Config
	ids      idSource
	cutoff   time.Time
	backdate string
	// keyPrefix starts every idempotency key: "seed/<seed>/".
	keyPrefix string
	programs  []programSpec
	expect    []expectations // per programme
	joint     []jointCell    // cumulative (programme, province) weights
	fyFirst   [6]int         // first facility index of each year; fyFirst[5] = Facilities
	books     map[string]*quotaBook
	// allocated and transferred record which years' quota steps are done.
	allocated, transferred [5]bool
	counties               map[string][]string // per province
	firms                  map[string][]string // seated per province
	allFirms               []string
	next, piece            int
	stats                  *Stats
	residual               map[string]float64 // see diffuse
	weyl                   map[string]float64 // see quasi
}

// jointCell is one (programme, province) pair of the draw.
type jointCell struct {
	program, province int
	cum               float64
	p                 float64
}

// quotaBook is one quota ledger's state while generating.
type quotaBook struct {
	stream  string
	fy      int
	spec    *programSpec
	l       quota.Ledger
	demand  []accountDemand
	loan    float64 // expected approved amount of one loan
	nextTID int
}

// accountDemand is the expected approved rials of one account over the
// year, from the draw's probabilities.
type accountDemand struct {
	key   quota.AccountKey
	rials float64
}

// NewGenerator returns a generator for cfg.
func NewGenerator(cfg Config) (*Generator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:       cfg,
		ids:       idSource{key: cfg.historyKey()},
		cutoff:    cfg.cutoff(),
		backdate:  cfg.BackdateReason(),
		keyPrefix: "seed/" + strconv.FormatUint(cfg.Seed, 10) + "/",
		programs:  programTable(),
		books:     map[string]*quotaBook{},
		counties:  map[string][]string{},
		firms:     map[string][]string{},
		residual:  map[string]float64{},
		weyl:      map[string]float64{},
	}
	g.stats = newStats(g.cutoff)
	cum := 0.0
	for k := range fyShare {
		g.fyFirst[k] = int(math.Round(cum * float64(cfg.Facilities)))
		cum += fyShare[k]
	}
	g.fyFirst[5] = cfg.Facilities

	cat := reference.DefaultCatalog()
	for _, c := range cat.Counties() {
		g.counties[c.Province] = append(g.counties[c.Province], c.ID)
	}
	for _, f := range cat.Firms() {
		g.firms[f.SeatProvince] = append(g.firms[f.SeatProvince], f.ID)
		g.allFirms = append(g.allFirms, f.ID)
	}
	for i := range g.programs {
		g.expect = append(g.expect, expect(&g.programs[i]))
	}
	g.buildJoint()
	return g, nil
}

// buildJoint weights each (programme, province) pair: the programme's share
// times the province's population (times its rural weight for rural
// programmes), normalised within the programme.
func (g *Generator) buildJoint() {
	total := 0.0
	for pi := range g.programs {
		spec := &g.programs[pi]
		sum := 0.0
		w := make([]float64, len(provinceTable))
		for vi, prov := range provinceTable {
			w[vi] = float64(prov.population)
			if spec.rural {
				w[vi] *= prov.rural
			}
			sum += w[vi]
		}
		for vi := range provinceTable {
			p := spec.weight * w[vi] / sum
			total += p
			g.joint = append(g.joint, jointCell{program: pi, province: vi, cum: total, p: p})
		}
	}
	for i := range g.joint {
		g.joint[i].cum /= total
		g.joint[i].p /= total
	}
}

// Stats returns the statistics of everything generated so far.
func (g *Generator) Stats() Stats { return g.stats.clone() }

// Done reports whether every piece has been generated.
func (g *Generator) Done() bool { return g.next >= g.cfg.Facilities && g.piece > 0 }

// Next generates the next piece of Config.Chunk facilities (the last one may
// be shorter) with the quota steps due before them. It returns nil when the
// history is complete. An error means a decider refused a generated
// command: a bug in the generator, never an expected outcome.
func (g *Generator) Next() (*Piece, error) {
	if g.Done() {
		return nil, nil
	}
	p := &Piece{Index: g.piece, First: g.next}
	end := min(g.next+g.cfg.Chunk, g.cfg.Facilities)
	p.appends = make([]appendPlan, 0, (end-g.next)*4)
	for i := g.next; i < end; i++ {
		if err := g.facility(p, i); err != nil {
			return nil, err
		}
	}
	p.Count = end - g.next
	g.next = end
	g.piece++
	if g.next >= g.cfg.Facilities {
		// Quota steps of years that had no (later) facilities.
		for k := range fyShare {
			if err := g.allocate(p, k); err != nil {
				return nil, err
			}
			if err := g.transfer(p, k, g.cfg.Facilities); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range p.appends {
		p.events += len(a.events)
	}
	g.stats.Events += p.events
	return p, nil
}

// fyIndex returns the year (0 for 1400) of facility i.
func (g *Generator) fyIndex(i int) int {
	for k := 4; k > 0; k-- {
		if i >= g.fyFirst[k] {
			return k
		}
	}
	return 0
}

// dayOf returns the instant day days (fractional) after 1 Farvardin of the
// year, to the second.
func dayOf(fy int, days float64) time.Time {
	start := calendar.FiscalYear(fy).Start()
	return start.Add(time.Duration(days * float64(24*time.Hour))).UTC().Truncate(time.Second)
}

// registrationTime spreads the year's registrations evenly over the
// registration period, in index order, with a few hours of jitter.
func (g *Generator) registrationTime(i, k int, r *rand.Rand) time.Time {
	n := g.fyFirst[k+1] - g.fyFirst[k]
	pos := (float64(i-g.fyFirst[k]) + 0.5) / float64(n)
	return dayOf(FirstFiscalYear+k, firstRegDay+pos*registerDays+between(r, -0.25, 0.25))
}

// before runs the quota steps due before facility i, registered at reg:
// allocations of its year (and earlier ones) and transfers of earlier
// years, and of its own once reg passes the transfer day.
func (g *Generator) before(p *Piece, i, k int, reg time.Time) error {
	for y := 0; y <= k; y++ {
		if err := g.allocate(p, y); err != nil {
			return err
		}
	}
	for y := 0; y < k; y++ {
		if err := g.transfer(p, y, i); err != nil {
			return err
		}
	}
	if !reg.Before(dayOf(FirstFiscalYear+k, transferDay)) {
		return g.transfer(p, k, i)
	}
	return nil
}

// meta builds a step's envelope, as the command path would receive it.
func (g *Generator) meta(actor eventstore.Actor, at time.Time, key, correlation string) ledger.Meta {
	return ledger.Meta{
		Actor: actor, IdempotencyKey: g.keyPrefix + key, CorrelationID: correlation,
		OccurredAt: at, BackdateReason: g.backdate,
	}
}

// book returns (creating) the quota ledger of a year and programme.
func (g *Generator) book(fy int, spec *programSpec) *quotaBook {
	s := quota.Stream(fy, spec.id)
	b, ok := g.books[s]
	if !ok {
		b = &quotaBook{stream: s, fy: fy, spec: spec}
		g.books[s] = b
	}
	return b
}

// quotaAppend decides quota commands in order on the book and returns them
// as one append, or the first decider error.
func (g *Generator) quotaAppend(b *quotaBook, cmds []quota.Command, metas []ledger.Meta) (appendPlan, error) {
	a := appendPlan{stream: b.stream, expected: eventstore.Exact(b.l.Version())}
	for j, cmd := range cmds {
		evs, err := quota.Decide(b.l, cmd)
		if err != nil {
			return appendPlan{}, err
		}
		for _, e := range evs {
			a.events = append(a.events, g.evolveQuota(b, e, metas[j]))
		}
	}
	return a, nil
}

// evolveQuota records one decided quota event in the book.
func (g *Generator) evolveQuota(b *quotaBook, e domain.Event, m ledger.Meta) pending {
	v := b.l.Version() + 1
	id := g.ids.eventID(m.OccurredAt, b.stream, v)
	b.l = quota.Evolve(b.l, domain.Recorded{ID: id, Stream: b.stream, Version: v, OccurredAt: m.OccurredAt, Event: e})
	return pending{id: id, event: e, meta: m}
}

// expectations are a programme's per-plan averages, estimated once by
// drawing many plans with a fixed generator.
type expectations struct {
	referral float64 // P(referred)
	approved float64 // approved rials of a referred (hence approvable) plan
	jobs     float64 // jobs promised by a referred plan
}

func expect(spec *programSpec) expectations {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20_000
	var ref, amount, jobs float64
	for range n {
		j := spec.jobs(r.Float64())
		req := spec.request(r)
		share := spec.approveShare(r)
		p := spec.referral(j)
		ref += p
		amount += p * float64(req) * share
		jobs += p * float64(j)
	}
	return expectations{referral: ref / n, approved: amount / ref, jobs: jobs / ref}
}

// protected reports whether an account must not run out: the programmes and
// the province whose published figures the history reproduces.
func protected(spec *programSpec, prov *provinceSpec) bool {
	return spec.id == progInclusive || spec.id == progQuick || prov.code == provMarkazi
}

// allocate records year k's allocations, one append per programme ledger:
// every agency of the programme in every province gets quota sized from
// the expected demand times the province's absorption factor, so some
// accounts have quota to spare and others run out.
func (g *Generator) allocate(p *Piece, k int) error {
	if g.allocated[k] {
		return nil
	}
	g.allocated[k] = true
	fy := FirstFiscalYear + k
	at := dayOf(fy, allocationDay)
	if !at.Before(g.cutoff) {
		return nil
	}
	n := float64(g.fyFirst[k+1] - g.fyFirst[k])
	for pi := range g.programs {
		spec := &g.programs[pi]
		ex := g.expect[pi]
		b := g.book(fy, spec)
		b.loan = ex.approved
		var cmds []quota.Command
		var metas []ledger.Meta
		for _, cell := range g.joint {
			if cell.program != pi {
				continue
			}
			prov := &provinceTable[cell.province]
			approve := min(1, spec.bankApprove*prov.bank)
			agencyTotal := 0.0
			for _, a := range spec.agencies {
				agencyTotal += a.w
			}
			for _, a := range spec.agencies {
				key := quota.AccountKey{Agency: a.v, Province: prov.code}
				demand := n * cell.p * a.w / agencyTotal * ex.referral * approve * ex.approved
				loans := demand / ex.approved
				absorb, margin, floor := prov.absorb*accountNoise(g.cfg.Seed, fy, spec.id, key), 1.0, 1.0
				if protected(spec, prov) {
					absorb, margin, floor = max(prov.absorb, 1.25), 3, 3
				}
				amount := max(absorb*demand+margin*math.Sqrt(loans)*ex.approved, floor*ex.approved)
				amount = math.Ceil(amount/1e7) * 1e7
				b.demand = append(b.demand, accountDemand{key: key, rials: demand})
				cmds = append(cmds, quota.Allocate{
					FiscalYear: fy, Program: spec.id, Account: key,
					AmountRials: int64(amount), JobsTarget: int(math.Round(absorb * loans * ex.jobs)),
					LegalBasis:  fmt.Sprintf(spec.legalBasis, fy),
					DecisionRef: fmt.Sprintf("PBO-%d-%s", fy, spec.id),
					At:          at,
				})
				metas = append(metas, g.meta(ministryActor, at,
					fmt.Sprintf("quota/%d/%s/allocate/%s", fy, spec.id, key), b.stream))
			}
		}
		a, err := g.quotaAppend(b, cmds, metas)
		if err != nil {
			return fmt.Errorf("seed: allocate %s: %w", b.stream, err)
		}
		p.add(a)
	}
	return nil
}

// accountNoise is a deterministic factor from 0.85 to 1.15 per account, so
// that agencies within a province differ too.
func accountNoise(seed uint64, fy int, program string, key quota.AccountKey) float64 {
	h := uint64(14695981039346656037)
	for _, s := range []string{fmt.Sprint(seed, fy), program, key.String()} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
	}
	return 0.85 + 0.3*float64(mix(h)%1000)/1000
}

// transfer records the ministry's mid-year reallocation in year k's
// ledgers, once facility i is the next to be registered: quota that an
// account will not absorb by the year's end moves to accounts about to run
// out, preferably within the same province.
func (g *Generator) transfer(p *Piece, k, i int) error {
	if g.transferred[k] {
		return nil
	}
	g.transferred[k] = true
	fy := FirstFiscalYear + k
	at := dayOf(fy, transferDay)
	if !at.Before(g.cutoff) {
		return nil
	}
	n := g.fyFirst[k+1] - g.fyFirst[k]
	remaining := 0.0
	if n > 0 {
		remaining = 1 - float64(min(max(i-g.fyFirst[k], 0), n))/float64(n)
	}
	for pi := range g.programs {
		b, ok := g.books[quota.Stream(fy, g.programs[pi].id)]
		if !ok || !b.l.Exists() {
			continue
		}
		if err := g.transferBook(p, b, at, remaining); err != nil {
			return fmt.Errorf("seed: transfer in %s: %w", b.stream, err)
		}
	}
	return nil
}

func (g *Generator) transferBook(p *Piece, b *quotaBook, at time.Time, remaining float64) error {
	need := map[quota.AccountKey]float64{}
	for _, d := range b.demand {
		need[d.key] = d.rials * remaining * 1.1
	}
	surplus := func(k quota.AccountKey) float64 {
		bal, _ := b.l.Account(k)
		return float64(bal.FreeRials()) - need[k]
	}
	type short struct {
		key     quota.AccountKey
		deficit float64
	}
	var shorts []short
	for _, d := range b.demand {
		if s := surplus(d.key); -s > b.loan {
			shorts = append(shorts, short{d.key, -s})
		}
	}
	sort.SliceStable(shorts, func(x, y int) bool { return shorts[x].deficit > shorts[y].deficit })
	for _, s := range shorts {
		if b.nextTID >= maxTransfers {
			return nil
		}
		// The donor with most to spare, in the same province if one can
		// fund at least a loan, else anywhere.
		var donor quota.AccountKey
		best := 2 * b.loan
		for pass := 0; pass < 2 && donor.Agency == ""; pass++ {
			for _, d := range b.demand {
				if d.key == s.key || (pass == 0 && d.key.Province != s.key.Province) {
					continue
				}
				if sp := surplus(d.key); sp > best {
					donor, best = d.key, sp
				}
			}
		}
		if donor.Agency == "" {
			continue
		}
		amount := math.Floor(min(s.deficit, 0.9*best)/1e7) * 1e7
		if amount < b.loan {
			continue
		}
		bal, _ := b.l.Account(donor)
		jobs := 0
		if avail := bal.AvailableRials(); avail > 0 {
			jobs = min(bal.JobsTarget, int(float64(bal.JobsTarget)*amount/float64(avail)))
		}
		b.nextTID++
		tid := fmt.Sprintf("%d-%s-%02d", b.fy, b.spec.id, b.nextTID)
		cmd := quota.Transfer{
			FiscalYear: b.fy, Program: b.spec.id, TransferID: tid, From: donor, To: s.key,
			AmountRials: int64(amount), JobsTarget: jobs,
			LegalBasis:  fmt.Sprintf("note 1, clause A of article 6 and note 15 of the %d budget law", b.fy),
			DecisionRef: fmt.Sprintf("MCLS/%d/%d-%02d", b.fy, 7200+int(b.fy%100)*10, b.nextTID),
			At:          at,
		}
		a, err := g.quotaAppend(b, []quota.Command{cmd},
			[]ledger.Meta{g.meta(ministryActor, at, fmt.Sprintf("quota/%d/%s/transfer/%s", b.fy, b.spec.id, tid), b.stream)})
		if err != nil {
			return err
		}
		p.add(a)
		g.stats.Transfers++
	}
	return nil
}

// Step sizes of the quasi-random sequences, one per kind of decision:
// fractional parts of square roots of primes, so that sequences advancing
// together do not move in step.
const (
	alphaJobs     = 0.41421356237309515 // √2
	alphaReferral = 0.7320508075688772  // √3
	alphaBank     = 0.2360679774997898  // √5
	alphaUnpaid   = 0.6457513110645907  // √7
	alphaVisit    = 0.3166247903554     // √11
	alphaStatus   = 0.605551275463989   // √13
	alphaConfirm  = 0.12310562561766059 // √17
)

// quasi returns the next number of a low-discrepancy (Weyl) sequence in
// [0, 1), one sequence per kind, starting at a point chosen by the seed.
// The decisions that the calibration measures use these instead of
// independent draws: a proportion p of the plans of one programme (and
// province) then takes a branch with an error of a few plans, not of a few
// square roots of plans, so the published ratios hold at any size while
// each plan still looks random.
func (g *Generator) quasi(kind string, alpha float64) float64 {
	x, ok := g.weyl[kind]
	if !ok {
		h := uint64(14695981039346656037) ^ g.cfg.Seed
		for i := 0; i < len(kind); i++ {
			h ^= uint64(kind[i])
			h *= 1099511628211
		}
		x = float64(mix(h)>>11) / (1 << 53)
	}
	x += alpha
	if x >= 1 {
		x--
	}
	g.weyl[kind] = x
	return x
}

// mix is the splitmix64 finaliser: it spreads every input bit over the
// whole output, so that similar keys get unrelated starting points.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
