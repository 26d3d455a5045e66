package banks_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

// aged drives facilities through their lifecycle over a year and a half of
// business time, through the real command path (ledger.Service), so that
// the backlogs hold facilities of every age: projectionstest.History
// advances its clock an hour per step, which puts a whole history within a
// few weeks. Each facility's next step is scheduled days or months after its
// last one; steps of all facilities run in order of business time, so the
// streams interleave in the log. Steps stop at random points, leaving
// facilities waiting in every stage, and include the corrections and
// closings that move facilities between backlogs and groups.
type aged struct {
	t       testing.TB
	svc     *ledger.Service
	rnd     *rand.Rand
	queue   []*agedPlan // facilities with a next step, by its time
	plans   []*agedPlan
	actions map[string]int // how many of each kind of step were taken
}

// The aged history's span and dimensions, apart from those of
// projectionstest.History (its own quota accounts, its own applicants).
var (
	agedStart = time.Date(2024, 4, 1, 6, 0, 0, 0, time.UTC)
	agedEnd   = time.Date(2025, 9, 30, 18, 0, 0, 0, time.UTC)

	agedAreas    = []struct{ province, county string }{{"IR-23", "IR-23-tehran"}, {"IR-23", "IR-23-pardis"}, {"IR-05", ""}, {"IR-05", "IR-05-kermanshah"}}
	agedAgencies = []string{"barakat", "alavi"}
	agedPrograms = []string{"note-18", "micro-jobs"}
	agedBanks    = []string{"melli", "sepah", "keshavarzi"}
	agedYears    = []int{1402, 1403}
)

type agedPlan struct {
	id, bank, province, county string
	stage                      facility.Stage
	requested, approved        int64
	regEventID                 string
	tranches                   []projectionstest.Tranche
	next                       time.Time // the next step's business time
}

func (p *agedPlan) paid() int64 {
	var s int64
	for _, t := range p.tranches {
		s += t.Amount
	}
	return s
}

// newAged allocates the quota the aged history's approvals charge and
// registers n facilities at random times of the history's span.
func newAged(t testing.TB, svc *ledger.Service, n int, seed uint64) *aged {
	t.Helper()
	a := &aged{t: t, svc: svc, rnd: rand.New(rand.NewPCG(seed, 1403)), actions: map[string]int{}}
	for _, fy := range agedYears {
		for _, p := range agedPrograms {
			for _, ag := range agedAgencies {
				for _, pr := range []string{"IR-23", "IR-05"} {
					_, err := svc.Quota(context.Background(), quota.Allocate{
						FiscalYear: fy, Program: p, Account: quota.AccountKey{Agency: ag, Province: pr},
						AmountRials: 1_000_000_000_000_000, JobsTarget: 1000, LegalBasis: "budget law note 18",
						DecisionRef: "D-aged", At: agedStart.Add(-48 * time.Hour),
					}, a.meta(agedStart.Add(-48*time.Hour)))
					require.NoError(t, err)
				}
			}
		}
	}
	span := int(agedEnd.Sub(agedStart).Hours()/24) - 1
	for i := range n {
		ar := agedAreas[a.rnd.IntN(len(agedAreas))]
		p := &agedPlan{
			id: fmt.Sprintf("b-%04d", i+1), province: ar.province, county: ar.county,
			requested: int64(500+a.rnd.IntN(2500)) * 1_000_000,
		}
		at := a.jitter(agedStart.Add(time.Duration(a.rnd.IntN(span)) * 24 * time.Hour))
		res, err := svc.Register(context.Background(), ledger.RegisterFacility{
			Register: facility.Register{
				FacilityID: p.id, FiscalYear: agedYears[a.rnd.IntN(len(agedYears))],
				Program: agedPrograms[a.rnd.IntN(len(agedPrograms))], Agency: agedAgencies[a.rnd.IntN(len(agedAgencies))],
				Province: p.province, County: p.county, Title: "plan " + p.id,
				RequestedRials: p.requested, JobsPromised: 1 + a.rnd.IntN(4), At: at,
			},
			Applicant: applicant.Personal{NationalID: nationalid.Generate(uint64(500_000 + i)), Name: "Applicant " + p.id, Phone: "09120000000"},
		}, a.meta(at))
		require.NoError(t, err)
		p.regEventID, p.stage = res.EventIDs[0], facility.StageRegistered
		a.plans = append(a.plans, p)
		a.schedule(p, at, 0, 30)
	}
	return a
}

func (a *aged) meta(at time.Time) ledger.Meta {
	return ledger.Meta{Actor: projectionstest.Ministry, OccurredAt: at, BackdateReason: "test history"}
}

// jitter moves t to a random minute of its UTC day, so that steps fall on
// either side of Tehran's midnight (20:30 UTC).
func (a *aged) jitter(t time.Time) time.Time {
	return t.Truncate(24 * time.Hour).Add(time.Duration(a.rnd.IntN(24*60)) * time.Minute)
}

// schedule sets p's next step between minDays and maxDays after from, and
// drops p when that is after the history's end.
func (a *aged) schedule(p *agedPlan, from time.Time, minDays, maxDays int) {
	next := from.Add(time.Duration(minDays*24*60+a.rnd.IntN((maxDays-minDays)*24*60+1)) * time.Minute)
	if next.After(agedEnd) {
		return
	}
	p.next = next
	i, _ := slices.BinarySearchFunc(a.queue, p, func(x, y *agedPlan) int {
		if x.next.After(y.next) {
			return 1
		}
		return -1 // after the facilities due at the same time
	})
	a.queue = slices.Insert(a.queue, i, p)
}

// Run takes every step due up to until, in order of business time.
func (a *aged) Run(until time.Time) {
	a.t.Helper()
	for len(a.queue) > 0 && !a.queue[0].next.After(until) {
		p := a.queue[0]
		a.queue = a.queue[1:]
		a.step(p, p.next)
	}
}

func (a *aged) chance(p float64) bool { return a.rnd.Float64() < p }

func (a *aged) fac(cmd facility.Command, at time.Time) ledger.Result {
	a.t.Helper()
	res, err := a.svc.Facility(context.Background(), cmd, a.meta(at))
	require.NoError(a.t, err, "%T %+v", cmd, cmd)
	return res
}

// step takes p's next step at business time at.
func (a *aged) step(p *agedPlan, at time.Time) {
	a.t.Helper()
	ctx := context.Background()
	r := a.rnd.Float64()
	switch p.stage {
	case facility.StageRegistered:
		switch {
		case r < 0.85:
			p.bank = agedBanks[a.rnd.IntN(len(agedBanks))]
			a.fac(facility.Review{FacilityID: p.id, Decision: facility.ReviewApproved, Bank: p.bank, Expert: "e1", At: at}, at)
			p.stage = facility.StageReferred
			a.actions["refer"]++
			// Most banks decide within weeks; some take most of a year.
			if a.chance(0.7) {
				a.schedule(p, at, 0, 60)
			} else {
				a.schedule(p, at, 60, 300)
			}
		case r < 0.95:
			a.fac(facility.Review{FacilityID: p.id, Decision: facility.ReviewRejected, Expert: "e2", Reason: "incomplete plan", At: at}, at)
			p.stage = facility.StageReviewRejected
			a.actions["review-reject"]++
		}
	case facility.StageReferred:
		switch {
		case r < 0.6:
			p.approved = p.requested * int64(60+a.rnd.IntN(41)) / 100 / 1_000_000 * 1_000_000
			_, err := a.svc.ApproveLoan(ctx, facility.ApproveLoan{FacilityID: p.id, Bank: p.bank, AmountRials: p.approved, At: at}, a.meta(at))
			require.NoError(a.t, err)
			p.stage = facility.StageLoanApproved
			a.actions["approve"]++
			if a.chance(0.7) {
				a.schedule(p, at, 0, 45)
			} else {
				a.schedule(p, at, 45, 250)
			}
		case r < 0.68:
			a.fac(facility.RejectLoan{FacilityID: p.id, Bank: p.bank, Reason: "collateral", At: at}, at)
			p.stage = facility.StageLoanRejected
			a.actions["loan-reject"]++
			a.schedule(p, at, 1, 60) // a later correction of the rejected file
		case r < 0.75:
			a.close(p, at)
		case r < 0.85:
			p.requested += 50_000_000
			a.fac(facility.Correct{FacilityID: p.id, CorrectsEventID: p.regEventID, Field: facility.FieldRequestedRials,
				NewValue: facility.IntValue(p.requested), Reason: "data entry error", At: at}, at)
			a.actions["correct-requested"]++
			a.schedule(p, at, 0, 120)
		default:
			a.correctCounty(p, at)
		}
	case facility.StageLoanApproved, facility.StageDisbursing:
		switch {
		case r < 0.6:
			left := p.approved - p.paid()
			amount := left
			if a.chance(0.5) {
				amount = left * int64(30+a.rnd.IntN(50)) / 100
			}
			if amount <= 0 {
				amount = left
			}
			res := a.fac(facility.DisburseTranche{FacilityID: p.id, Bank: p.bank, AmountRials: amount, At: at}, at)
			p.tranches = append(p.tranches, projectionstest.Tranche{EventID: res.EventIDs[0], Amount: amount})
			p.stage = facility.StageDisbursing
			if p.paid() >= p.approved {
				p.stage = facility.StageDisbursed
			}
			a.actions["pay"]++
			a.schedule(p, at, 0, 90)
		case r < 0.7:
			a.close(p, at)
		case r < 0.85 && len(p.tranches) > 0:
			a.correctTranche(p, at)
		case r < 0.9:
			a.correctCounty(p, at)
		}
	case facility.StageDisbursed:
		switch {
		case r < 0.35:
			a.correctTranche(p, at)
		case r < 0.5:
			a.close(p, at)
		case r < 0.6:
			a.correctCounty(p, at)
		}
	case facility.StageClosed, facility.StageLoanRejected:
		if r < 0.5 {
			a.correctCounty(p, at)
		}
	}
}

func (a *aged) close(p *agedPlan, at time.Time) {
	a.t.Helper()
	_, err := a.svc.CloseFacility(context.Background(), facility.Close{FacilityID: p.id, Reason: "applicant withdrew", At: at}, a.meta(at))
	require.NoError(a.t, err)
	a.actions["close-"+string(p.stage)]++
	p.stage = facility.StageClosed
	a.schedule(p, at, 1, 60) // a later correction of the closed file
}

// correctCounty moves p to the other county of its province, and then
// goes on.
func (a *aged) correctCounty(p *agedPlan, at time.Time) {
	a.t.Helper()
	next := map[string]string{
		"IR-23-tehran": "IR-23-pardis", "IR-23-pardis": "IR-23-tehran", "": "IR-05-kermanshah", "IR-05-kermanshah": "",
	}[p.county]
	a.fac(facility.Correct{FacilityID: p.id, CorrectsEventID: p.regEventID, Field: facility.FieldCounty,
		NewValue: facility.StringValue(next), Reason: "wrong county", At: at}, at)
	p.county = next
	a.actions["correct-county"]++
	if p.stage != facility.StageClosed && p.stage != facility.StageLoanRejected {
		a.schedule(p, at, 0, 90)
	}
}

// correctTranche changes a tranche's amount: down for a fully paid
// facility (which puts it back in the pending-payment backlog), up to at
// most what is left otherwise (which may complete it).
func (a *aged) correctTranche(p *agedPlan, at time.Time) {
	a.t.Helper()
	i := a.rnd.IntN(len(p.tranches))
	tr := &p.tranches[i]
	others := p.paid() - tr.Amount
	var n int64
	if p.paid() >= p.approved {
		n = tr.Amount / 2
		a.actions["reopen"]++
	} else {
		n = p.approved - others
		if a.chance(0.5) {
			n = tr.Amount + (p.approved-p.paid())/2
		}
	}
	if n <= 0 || n == tr.Amount {
		a.schedule(p, at, 0, 60)
		return
	}
	a.fac(facility.Correct{FacilityID: p.id, CorrectsEventID: tr.EventID, Field: facility.FieldAmountRials,
		NewValue: facility.IntValue(n), Reason: "bank statement", At: at}, at)
	tr.Amount = n
	p.stage = facility.StageDisbursing
	if p.paid() >= p.approved {
		p.stage = facility.StageDisbursed
	}
	a.actions["correct-tranche"]++
	a.schedule(p, at, 0, 90)
}
