package projectionstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
)

// Ministry is the actor of the histories' commands.
var Ministry = eventstore.Actor{ID: "m1", Role: "ministry", Org: "ministry"}

// Start is the business time of a history's first step.
var Start = time.Date(2024, 4, 1, 8, 0, 0, 0, time.UTC)

// History drives facilities through their lifecycle with ledger.Service,
// one step per facility per round, so that the facility streams interleave
// in the log as they do in production. It remembers what it needs to issue
// valid follow-up commands (event IDs to correct, amounts, stages).
type History struct {
	t     testing.TB
	svc   *ledger.Service
	rnd   *rand.Rand
	qrnd  *rand.Rand // the quota steps' choices, apart so that they leave the facilities' unchanged
	clock time.Time
	firms []string
	seq   uint64
	moves int // transfers issued, for unique transfer IDs

	Facilities []*Plan
	// Allocations are every quota allocation issued, in order, with their
	// figures as corrected.
	Allocations []*Allocation
}

// Allocation is a recorded quota allocation and its current figures.
type Allocation struct {
	EventID    string
	FiscalYear int
	Program    string
	Account    quota.AccountKey
	Amount     int64
	Jobs       int
	Original   int64 // the amount first allocated, to revive a cancelled allocation
}

// Plan is what History knows of one facility.
type Plan struct {
	ID          string
	FiscalYear  int
	Program     string
	Agency      string
	Province    string
	County      string
	Bank        string
	Stage       facility.Stage
	Promised    int
	Requested   int64
	Approved    int64
	Tranches    []Tranche
	Reports     []Report
	Inspections []Inspected
	OpenCases   []string
	Recovered   int64
	RegEventID  string
}

// Tranche is a paid tranche and its current amount.
type Tranche struct {
	EventID string
	Amount  int64
}

// Report is a jobs report and its current figure.
type Report struct {
	EventID string
	Jobs    int
}

// Inspected is a recorded inspection and its current figures.
type Inspected struct {
	EventID   string
	ID        string
	Status    facility.InspectionStatus
	Confirmed bool
	Verified  int
}

func (p *Plan) paid() int64 {
	var s int64
	for _, t := range p.Tranches {
		s += t.Amount
	}
	return s
}

var (
	areas = []struct{ province, county string }{
		{"IR-00", "IR-00-arak"}, {"IR-23", "IR-23-tehran"}, {"IR-07", "IR-07-shiraz"}, {"IR-10", ""},
	}
	agencies = []string{"relief-committee", "welfare", "agriculture-jihad"}
	programs = []string{"home-business", "rural-nomadic"}
	banks    = []string{"keshavarzi", "post-bank", "mehr-iran", "refah"}
	years    = []int{1402, 1403}
)

// NewHistory returns a History writing through svc, with choices drawn from
// seed.
func NewHistory(t testing.TB, svc *ledger.Service, seed uint64) *History {
	h := &History{t: t, svc: svc, rnd: rand.New(rand.NewPCG(seed, 99)), qrnd: rand.New(rand.NewPCG(seed, 7)), clock: Start}
	for _, e := range reference.DefaultEvents() {
		if f, ok := e.(reference.FirmAdded); ok && len(h.firms) < 3 {
			h.firms = append(h.firms, f.ID)
		}
	}
	ctx := context.Background()
	for _, fy := range years {
		for _, p := range programs {
			for _, a := range agencies {
				for _, ar := range areas {
					k := quota.AccountKey{Agency: a, Province: ar.province}
					res, err := svc.Quota(ctx, quota.Allocate{
						FiscalYear: fy, Program: p, Account: k,
						AmountRials: 1_000_000_000_000, JobsTarget: 1000, LegalBasis: "budget law note 18",
						DecisionRef: "D-" + a, At: h.clock,
					}, h.meta())
					require.NoError(t, err)
					h.Allocations = append(h.Allocations, &Allocation{
						EventID: res.EventIDs[0], FiscalYear: fy, Program: p, Account: k,
						Amount: 1_000_000_000_000, Jobs: 1000, Original: 1_000_000_000_000,
					})
				}
			}
		}
	}
	return h
}

// Use makes h write through svc from now on (after the store was reopened).
func (h *History) Use(svc *ledger.Service) { h.svc = svc }

func (h *History) meta() ledger.Meta {
	h.clock = h.clock.Add(time.Hour)
	return ledger.Meta{Actor: Ministry, OccurredAt: h.clock, BackdateReason: "test history"}
}

func (h *History) chance(p float64) bool { return h.rnd.Float64() < p }

func pick[T any](rnd *rand.Rand, xs []T) T { return xs[rnd.IntN(len(xs))] }

func (h *History) fac(cmd facility.Command) ledger.Result {
	h.t.Helper()
	res, err := h.svc.Facility(context.Background(), cmd, h.lastMeta())
	require.NoError(h.t, err, "%T", cmd)
	return res
}

// lastMeta is the meta of the step whose time h.at() just gave.
func (h *History) lastMeta() ledger.Meta {
	return ledger.Meta{Actor: Ministry, OccurredAt: h.clock, BackdateReason: "test history"}
}

// at advances the clock and returns the step's business time.
func (h *History) at() time.Time {
	h.clock = h.clock.Add(time.Hour)
	return h.clock
}

// Register registers n new facilities.
func (h *History) Register(n int) {
	h.t.Helper()
	for range n {
		h.seq++
		ar := pick(h.rnd, areas)
		p := &Plan{
			ID: fmt.Sprintf("f-%04d", h.seq), FiscalYear: pick(h.rnd, years), Program: pick(h.rnd, programs),
			Agency: pick(h.rnd, agencies), Province: ar.province, County: ar.county, Stage: facility.StageRegistered,
			Promised: 1 + h.rnd.IntN(5), Requested: int64(200+h.rnd.IntN(1800)) * 1_000_000,
		}
		at := h.at()
		res, err := h.svc.Register(context.Background(), ledger.RegisterFacility{
			Register: facility.Register{
				FacilityID: p.ID, FiscalYear: p.FiscalYear, Program: p.Program, Agency: p.Agency,
				Province: p.Province, County: p.County, Title: "plan " + p.ID,
				RequestedRials: p.Requested, JobsPromised: p.Promised, At: at,
			},
			Applicant: applicant.Personal{NationalID: nationalid.Generate(h.seq), Name: "Applicant " + p.ID, Phone: "09120000000"},
		}, h.lastMeta())
		require.NoError(h.t, err)
		p.RegEventID = res.EventIDs[0]
		h.Facilities = append(h.Facilities, p)
	}
}

// Step moves every facility one step on, with the given probabilities, in
// the order rounds of real work would: reviews, bank decisions, payments,
// reports, inspections, audit cases, corrections and closings.
func (h *History) Step() {
	h.t.Helper()
	ctx := context.Background()
	for _, p := range h.Facilities {
		switch p.Stage {
		case facility.StageRegistered:
			if !h.chance(0.8) {
				continue
			}
			if h.chance(0.8) {
				p.Bank = pick(h.rnd, banks)
				h.fac(facility.Review{FacilityID: p.ID, Decision: facility.ReviewApproved, Bank: p.Bank, Expert: "e1", At: h.at()})
				p.Stage = facility.StageReferred
			} else {
				h.fac(facility.Review{FacilityID: p.ID, Decision: facility.ReviewRejected, Expert: "e2", Reason: "incomplete plan", At: h.at()})
				p.Stage = facility.StageReviewRejected
			}
		case facility.StageReferred:
			switch r := h.rnd.Float64(); {
			case r < 0.75:
				amount := p.Requested * int64(60+h.rnd.IntN(41)) / 100 / 1_000_000 * 1_000_000
				at := h.at()
				_, err := h.svc.ApproveLoan(ctx, facility.ApproveLoan{FacilityID: p.ID, Bank: p.Bank, AmountRials: amount, At: at}, h.lastMeta())
				require.NoError(h.t, err)
				p.Approved, p.Stage = amount, facility.StageLoanApproved
			case r < 0.85:
				h.fac(facility.RejectLoan{FacilityID: p.ID, Bank: p.Bank, Reason: "collateral", At: h.at()})
				p.Stage = facility.StageLoanRejected
			}
		case facility.StageLoanApproved, facility.StageDisbursing:
			h.paidStep(p)
		case facility.StageDisbursed:
			h.followUp(p)
		}
	}
}

// paidStep pays a tranche, or (once something is paid) follows up.
func (h *History) paidStep(p *Plan) {
	left := p.Approved - p.paid()
	if len(p.Tranches) == 0 || h.chance(0.5) {
		if !h.chance(0.85) {
			return
		}
		amount := left
		if h.chance(0.6) {
			amount = left * int64(30+h.rnd.IntN(50)) / 100
		}
		if amount <= 0 {
			amount = left
		}
		res := h.fac(facility.DisburseTranche{FacilityID: p.ID, Bank: p.Bank, AmountRials: amount, At: h.at()})
		p.Tranches = append(p.Tranches, Tranche{EventID: res.EventIDs[0], Amount: amount})
		p.Stage = facility.StageDisbursing
		if p.paid() >= p.Approved {
			p.Stage = facility.StageDisbursed
		}
		return
	}
	h.followUp(p)
}

// followUp reports jobs, inspects, opens and resolves audit cases,
// corrects figures or closes the file.
func (h *History) followUp(p *Plan) {
	ctx := context.Background()
	switch r := h.rnd.Float64(); {
	case r < 0.25:
		by := facility.ReportedByAgency
		if h.chance(0.4) {
			by = facility.ReportedByBank
		}
		jobs := h.rnd.IntN(2*p.Promised + 1)
		res := h.fac(facility.ReportJobs{FacilityID: p.ID, Jobs: jobs, ReportedBy: by, Period: "1403-Q2", At: h.at()})
		p.Reports = append(p.Reports, Report{EventID: res.EventIDs[0], Jobs: jobs})
	case r < 0.45:
		in := Inspected{ID: fmt.Sprintf("in-%s-%d", p.ID, len(p.Inspections)+1)}
		switch s := h.rnd.Float64(); {
		case s < 0.65:
			in.Status, in.Confirmed, in.Verified = facility.InspectionActive, true, h.rnd.IntN(2*p.Promised+1)
		case s < 0.8:
			in.Status = facility.InspectionActive
		default:
			in.Status = facility.InspectionInactive
		}
		res := h.fac(facility.RecordInspection{
			FacilityID: p.ID, InspectionID: in.ID, Firm: pick(h.rnd, h.firms), GuidelineVersion: "1403-v2",
			Status: in.Status, Confirmed: in.Confirmed, VerifiedJobs: in.Verified, At: h.at(),
		})
		in.EventID = res.EventIDs[0]
		p.Inspections = append(p.Inspections, in)
		if in.Status == facility.InspectionInactive {
			id := fmt.Sprintf("dv-%s-%d", p.ID, len(p.Inspections))
			h.fac(facility.OpenDeviation{FacilityID: p.ID, DeviationID: id, Kind: facility.KindDeviation, InspectionID: in.ID, Description: "business not operating", At: h.at()})
			p.OpenCases = append(p.OpenCases, id)
		}
	case r < 0.55 && len(p.OpenCases) > 0:
		id := p.OpenCases[0]
		if h.chance(0.5) {
			h.fac(facility.AddDeviationEvidence{FacilityID: p.ID, DeviationID: id, Evidence: "site photos", At: h.at()})
			return
		}
		res := facility.ResolveDeviation{FacilityID: p.ID, DeviationID: id, Resolution: facility.ResolutionCorrected, At: h.at()}
		if recoverable := p.paid() - p.Recovered; recoverable > 0 && h.chance(0.5) {
			res.Resolution, res.RecoveredRials = facility.ResolutionFundsRecovered, max(recoverable/4, 1)
			p.Recovered += res.RecoveredRials
		}
		h.fac(res)
		p.OpenCases = p.OpenCases[1:]
	case r < 0.8:
		h.correct(p)
	case r < 0.86 && len(p.OpenCases) == 0:
		_, err := h.svc.CloseFacility(ctx, facility.Close{FacilityID: p.ID, Reason: "plan completed", At: h.at()}, h.lastMeta())
		require.NoError(h.t, err)
		p.Stage = facility.StageClosed
	}
}

// correct issues one correction of a figure the facility has.
func (h *History) correct(p *Plan) {
	c := facility.Correct{FacilityID: p.ID, Reason: "data entry error"}
	switch h.rnd.IntN(8) {
	case 0:
		c.CorrectsEventID, c.Field = p.RegEventID, facility.FieldJobsPromised
		maxVerified := 0
		for _, in := range p.Inspections {
			maxVerified = max(maxVerified, in.Verified)
		}
		n := max(p.Promised+1+h.rnd.IntN(3), (maxVerified+1)/2)
		c.NewValue = facility.IntValue(int64(n))
		p.Promised = n
	case 1:
		c.CorrectsEventID, c.Field = p.RegEventID, facility.FieldRequestedRials
		p.Requested += 10_000_000
		c.NewValue = facility.IntValue(p.Requested)
	case 2:
		if p.Province != "IR-23" {
			return
		}
		c.CorrectsEventID, c.Field = p.RegEventID, facility.FieldCounty
		next := "IR-23-pardis"
		if p.County == next {
			next = "IR-23-tehran"
		}
		c.NewValue, p.County = facility.StringValue(next), next
	case 3:
		if len(p.Reports) == 0 {
			return
		}
		rep := &p.Reports[h.rnd.IntN(len(p.Reports))]
		n := (rep.Jobs + 1 + h.rnd.IntN(3)) % (2*p.Promised + 2)
		if n == rep.Jobs {
			return
		}
		c.CorrectsEventID, c.Field, c.NewValue = rep.EventID, facility.FieldJobs, facility.IntValue(int64(n))
		rep.Jobs = n
	case 4, 5:
		if len(p.Inspections) == 0 {
			return
		}
		i := h.rnd.IntN(len(p.Inspections))
		in := &p.Inspections[i]
		if in.Status != facility.InspectionActive {
			return
		}
		c.CorrectsEventID = in.EventID
		if h.chance(0.5) {
			c.Field = facility.FieldConfirmed
			in.Confirmed = !in.Confirmed
			c.NewValue = facility.BoolValue(in.Confirmed)
		} else {
			c.Field = facility.FieldVerifiedJobs
			n := (in.Verified + 1 + h.rnd.IntN(2*p.Promised)) % (2*p.Promised + 1)
			if n == in.Verified {
				return
			}
			in.Verified = n
			c.NewValue = facility.IntValue(int64(n))
		}
	default:
		if len(p.Tranches) == 0 {
			return
		}
		i := h.rnd.IntN(len(p.Tranches))
		tr := &p.Tranches[i]
		others := p.paid() - tr.Amount
		room := p.Approved - others
		n := room * int64(20+h.rnd.IntN(81)) / 100
		if n <= 0 || n == tr.Amount || others+n < p.Recovered {
			return
		}
		c.CorrectsEventID, c.Field, c.NewValue = tr.EventID, facility.FieldAmountRials, facility.IntValue(n)
		tr.Amount = n
		if p.Stage != facility.StageClosed {
			p.Stage = facility.StageDisbursing
			if p.paid() >= p.Approved {
				p.Stage = facility.StageDisbursed
			}
		}
	}
	c.At = h.at()
	h.fac(c)
}

// QuotaFloor is the least free balance a quota step leaves in an account it
// takes quota from, so that the loans the facility steps approve (about two
// billion rials at most, a few dozen per account) always find quota: a
// history's commands must not be refused.
const QuotaFloor = 100_000_000_000

// countyOf are the county accounts quota steps open beside the provinces'
// (the counties facilities are registered in, see areas).
var countyOf = map[string]string{"IR-00": "IR-00-arak", "IR-23": "IR-23-tehran", "IR-07": "IR-07-shiraz"}

// QuotaStep is one round of the ministry's work on the quota ledgers: a
// transfer between accounts (often into a county account, which opens it,
// so later approvals in that county charge it), sometimes a supplementary
// allocation, and sometimes a correction of an earlier allocation
// (raising or cutting it, cancelling it to zero or reviving a cancelled
// one). Every command is valid: amounts are drawn within the free
// balances read from the ledger, and never take an account below
// QuotaFloor.
func (h *History) QuotaStep() {
	h.t.Helper()
	fy, program := pick(h.qrnd, years), pick(h.qrnd, programs)
	l := h.ledgerState(fy, program)

	// A transfer, from a province account with room to spare.
	from := quota.AccountKey{Agency: pick(h.qrnd, agencies), Province: pick(h.qrnd, areas).province}
	var to quota.AccountKey
	if c, ok := countyOf[from.Province]; ok && h.qrnd.Float64() < 0.6 {
		to = quota.AccountKey{Agency: from.Agency, Province: from.Province, County: c}
	} else {
		to = quota.AccountKey{Agency: pick(h.qrnd, agencies), Province: pick(h.qrnd, areas).province}
	}
	if b, ok := l.Account(from); ok && to != from && b.FreeRials() > 2*QuotaFloor {
		amount := (b.FreeRials() - QuotaFloor) * int64(5+h.qrnd.IntN(16)) / 100 / 1_000_000 * 1_000_000
		h.moves++
		at := h.at()
		_, err := h.svc.Quota(context.Background(), quota.Transfer{
			FiscalYear: fy, Program: program, TransferID: fmt.Sprintf("tr-%d", h.moves), From: from, To: to,
			AmountRials: amount, JobsTarget: h.qrnd.IntN(b.JobsTarget/10 + 1), LegalBasis: "budget law note 15",
			DecisionRef: fmt.Sprintf("M-%d", h.moves), At: at,
		}, h.lastMeta())
		require.NoError(h.t, err)
		l = h.ledgerState(fy, program)
	}

	// A supplementary allocation, to a province or county account.
	if h.qrnd.Float64() < 0.4 {
		k := quota.AccountKey{Agency: pick(h.qrnd, agencies), Province: pick(h.qrnd, areas).province}
		if c, ok := countyOf[k.Province]; ok && h.qrnd.Float64() < 0.5 {
			k.County = c
		}
		h.Allocate(fy, program, k, int64(100+h.qrnd.IntN(400))*1_000_000_000, 10+h.qrnd.IntN(90))
		l = h.ledgerState(fy, program)
	}

	// A correction of an earlier allocation of this ledger.
	if h.qrnd.Float64() < 0.5 {
		var mine []*Allocation
		for _, a := range h.Allocations {
			if a.FiscalYear == fy && a.Program == program {
				mine = append(mine, a)
			}
		}
		a := pick(h.qrnd, mine)
		b, _ := l.Account(a.Account)
		amount, jobs := a.Amount, a.Jobs
		switch r := h.qrnd.Float64(); {
		case a.Amount == 0:
			amount, jobs = a.Original, 10
		case r < 0.3:
			amount, jobs = 0, 0 // a mistaken allocation, cancelled
		default:
			amount = a.Amount * int64(90+h.qrnd.IntN(21)) / 100 / 1_000_000 * 1_000_000
			jobs = max(0, a.Jobs+h.qrnd.IntN(11)-5)
		}
		cut, jobsCut := a.Amount-amount, a.Jobs-jobs
		if (amount != a.Amount || jobs != a.Jobs) && b.FreeRials()-cut >= QuotaFloor && jobsCut <= b.JobsTarget {
			h.CorrectAllocation(a, amount, jobs)
		}
	}
}

// ledgerState returns the current state of a quota ledger.
func (h *History) ledgerState(fy int, program string) quota.Ledger {
	h.t.Helper()
	l, _, err := ledger.State(context.Background(), h.svc.Ledger(), quota.Stream(fy, program), quota.Decider(), nil)
	require.NoError(h.t, err)
	return l
}

// Allocate allocates quota to an account and remembers the allocation.
func (h *History) Allocate(fy int, program string, k quota.AccountKey, amount int64, jobs int) *Allocation {
	h.t.Helper()
	at := h.at()
	res, err := h.svc.Quota(context.Background(), quota.Allocate{
		FiscalYear: fy, Program: program, Account: k, AmountRials: amount, JobsTarget: jobs,
		LegalBasis: "budget law note 18, supplement", DecisionRef: fmt.Sprintf("S-%d", len(h.Allocations)+1), At: at,
	}, h.lastMeta())
	require.NoError(h.t, err)
	a := &Allocation{EventID: res.EventIDs[0], FiscalYear: fy, Program: program, Account: k, Amount: amount, Jobs: jobs, Original: amount}
	h.Allocations = append(h.Allocations, a)
	return a
}

// CorrectAllocation replaces an allocation's amount and job target.
func (h *History) CorrectAllocation(a *Allocation, amount int64, jobs int) {
	h.t.Helper()
	at := h.at()
	_, err := h.svc.Quota(context.Background(), quota.CorrectAllocation{
		FiscalYear: a.FiscalYear, Program: a.Program, CorrectsEventID: a.EventID,
		AmountRials: amount, JobsTarget: jobs, Reason: "decision misread", At: at,
	}, h.lastMeta())
	require.NoError(h.t, err)
	a.Amount, a.Jobs = amount, jobs
}

// Build registers n facilities in a few waves and runs rounds of steps, each
// followed by a quota step, so the log holds every kind of facility and
// quota event, interleaved.
func Build(t testing.TB, svc *ledger.Service, n int, seed uint64) *History {
	t.Helper()
	h := NewHistory(t, svc, seed)
	waves := 3
	for w := range waves {
		h.Register(n/waves + boolInt(w < n%waves))
		for range 4 {
			h.Step()
			h.QuotaStep()
		}
	}
	for range 6 {
		h.Step()
		h.QuotaStep()
	}
	return h
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
