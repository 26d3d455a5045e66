// Package deviationstest adds audit work to the histories of
// projectionstest: inspections by several firms under several guideline
// versions, audit cases of every kind (from inspections and on auditors'
// own findings, some before the facility is referred to a bank), evidence,
// resolutions with recovered funds, and corrections made while cases are
// open (of the inspections they came from, and of the county), each by
// its own actor. The inspections and deviations read models' tests use it.
package deviationstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

// The actors of the audit steps (the histories' own steps are the
// ministry's, projectionstest.Ministry; inspections are their firm's).
var (
	Auditor    = eventstore.Actor{ID: "aud-7", Role: "auditor", Org: "ministry-audit"}
	Provincial = eventstore.Actor{ID: "prov-3", Role: "provincial_auditor", Org: "governorate"}
)

// Guidelines are the guideline versions the audits inspect under.
var Guidelines = []string{"1402-v1", "1403-v2", "1403-v3"}

// Audits issues audit commands for the facilities of a History, keeping the
// History's plans consistent (open cases, inspections, recovered funds,
// county) so that its own later steps stay valid.
type Audits struct {
	t     testing.TB
	svc   *ledger.Service
	store eventstore.Store
	h     *projectionstest.History
	rnd   *rand.Rand
	firms []string
	seq   int
	clock time.Time
	ticks int
	// cases maps a facility id to the inspection id (by case id; "" for an
	// auditor's own finding) of the cases this driver opened or saw the
	// History open.
	cases map[string]map[string]string
}

// NewAudits returns a driver for h's facilities, writing through svc to
// store, with choices drawn from seed.
func NewAudits(t testing.TB, svc *ledger.Service, store eventstore.Store, h *projectionstest.History, seed uint64) *Audits {
	a := &Audits{t: t, svc: svc, store: store, h: h, rnd: rand.New(rand.NewPCG(seed, 7)), cases: map[string]map[string]string{}}
	for _, e := range reference.DefaultEvents() {
		if f, ok := e.(reference.FirmAdded); ok && len(a.firms) < 4 {
			a.firms = append(a.firms, f.ID)
		}
	}
	return a
}

// Build is projectionstest.Build with a round of audits after every round
// of the History's steps.
func Build(t testing.TB, env *projectionstest.Env, n int, seed uint64) (*projectionstest.History, *Audits) {
	t.Helper()
	svc := env.Service(t)
	h := projectionstest.NewHistory(t, svc, seed)
	a := NewAudits(t, svc, env.Store, h, seed)
	const waves = 3
	for w := range waves {
		k := n / waves
		if w < n%waves {
			k++
		}
		h.Register(k)
		a.Round()
		for range 4 {
			h.Step()
			a.Round()
		}
	}
	for range 6 {
		h.Step()
		a.Round()
	}
	return h, a
}

func (a *Audits) chance(p float64) bool { return a.rnd.Float64() < p }

// tick moves the business time of audit steps a second on. A round starts
// at the latest event of the log, so its steps come after what they follow
// up and before the History's next step (an hour after its last).
func (a *Audits) tick() time.Time {
	a.ticks++
	require.Less(a.t, a.ticks, 3600, "an audit round must fit in the hour between the History's steps")
	a.clock = a.clock.Add(time.Second)
	return a.clock
}

func (a *Audits) exec(cmd facility.Command, actor eventstore.Actor) ledger.Result {
	a.t.Helper()
	a.seq++
	res, err := a.svc.Facility(context.Background(), cmd, ledger.Meta{
		Actor: actor, OccurredAt: a.clock, BackdateReason: "test audit",
		CorrelationID: fmt.Sprintf("audit-%d", a.seq),
	})
	require.NoError(a.t, err, "%T %+v", cmd, cmd)
	return res
}

// Round runs one round of audit work over the History's facilities.
func (a *Audits) Round() {
	a.t.Helper()
	ctx := context.Background()
	head, err := a.store.Head(ctx)
	require.NoError(a.t, err)
	last, err := a.store.ReadAll(ctx, head.Position-1, 1, eventstore.Filter{})
	require.NoError(a.t, err)
	require.Len(a.t, last, 1)
	a.clock, a.ticks = last[0].OccurredAt, 0

	for _, p := range a.h.Facilities {
		a.learn(p)
		switch {
		case p.Stage == facility.StageRegistered && a.chance(0.15):
			// An auditor's own finding before the expert review: the case
			// has no bank until the facility is referred.
			a.open(p, "", a.kind(), Auditor, "registration documents do not match the site")
		case p.Stage.Paid() && a.chance(0.25):
			a.inspect(p)
		case p.Stage.Paid() && len(p.Inspections) > 0 && a.chance(0.1):
			in := p.Inspections[a.rnd.IntN(len(p.Inspections))]
			a.open(p, in.ID, facility.KindDiscrepancy, Auditor, "reported jobs disagree with the inspection")
		}
		if len(p.OpenCases) > 0 && a.chance(0.3) {
			id := p.OpenCases[a.rnd.IntN(len(p.OpenCases))]
			a.tick()
			a.exec(facility.AddDeviationEvidence{
				FacilityID: p.ID, DeviationID: id, Evidence: "bank statement of " + p.ID,
				DocumentRef: fmt.Sprintf("doc-%d", a.seq+1), At: a.clock,
			}, Auditor)
		}
		if len(p.OpenCases) > 0 && a.chance(0.2) {
			a.resolve(p)
		}
		if a.chance(0.35) {
			a.correctInspection(p)
		}
		if p.Province == "IR-23" && len(a.cases[p.ID]) > 0 && a.chance(0.2) {
			next := "IR-23-pardis"
			if p.County == next {
				next = "IR-23-tehran"
			}
			a.tick()
			a.exec(facility.Correct{
				FacilityID: p.ID, CorrectsEventID: p.RegEventID, Field: facility.FieldCounty,
				NewValue: facility.StringValue(next), Reason: "the plan's site is in " + next, At: a.clock,
			}, Provincial)
			p.County = next
		}
	}
}

// learn notes the open cases the History opened (one from each of its
// inactive inspections, numbered after the inspection).
func (a *Audits) learn(p *projectionstest.Plan) {
	for i, in := range p.Inspections {
		id := fmt.Sprintf("dv-%s-%d", p.ID, i+1)
		if in.Status == facility.InspectionInactive && slices.Contains(p.OpenCases, id) {
			a.note(p.ID, id, in.ID)
		}
	}
}

func (a *Audits) note(facilityID, caseID, inspectionID string) {
	if a.cases[facilityID] == nil {
		a.cases[facilityID] = map[string]string{}
	}
	a.cases[facilityID][caseID] = inspectionID
}

func (a *Audits) kind() facility.DeviationKind {
	kinds := []facility.DeviationKind{facility.KindDeviation, facility.KindViolation, facility.KindDiscrepancy}
	return kinds[a.rnd.IntN(len(kinds))]
}

func (a *Audits) open(p *projectionstest.Plan, inspectionID string, kind facility.DeviationKind, actor eventstore.Actor, why string) {
	id := fmt.Sprintf("da-%s-%d", p.ID, a.seq+1)
	a.tick()
	a.exec(facility.OpenDeviation{
		FacilityID: p.ID, DeviationID: id, Kind: kind, InspectionID: inspectionID, Description: why, At: a.clock,
	}, actor)
	p.OpenCases = append(p.OpenCases, id)
	a.note(p.ID, id, inspectionID)
}

// inspect records an inspection by one of several firms under one of
// several guideline versions, with any status, and mostly opens a case
// from it.
func (a *Audits) inspect(p *projectionstest.Plan) {
	firm := a.firms[a.rnd.IntN(len(a.firms))]
	inspector := eventstore.Actor{ID: "inspector-" + firm, Role: "inspector", Org: firm}
	in := projectionstest.Inspected{ID: fmt.Sprintf("ia-%s-%d", p.ID, a.seq+1)}
	statuses := []facility.InspectionStatus{facility.InspectionActive, facility.InspectionActive, facility.InspectionInactive,
		facility.InspectionNotFound, facility.InspectionMisused}
	in.Status = statuses[a.rnd.IntN(len(statuses))]
	if in.Status == facility.InspectionActive {
		in.Confirmed = a.chance(0.6)
		in.Verified = a.rnd.IntN(2*p.Promised + 1)
	}
	a.tick()
	res := a.exec(facility.RecordInspection{
		FacilityID: p.ID, InspectionID: in.ID, Firm: firm, GuidelineVersion: Guidelines[a.rnd.IntN(len(Guidelines))],
		Status: in.Status, Confirmed: in.Confirmed, VerifiedJobs: in.Verified, At: a.clock,
	}, inspector)
	in.EventID = res.EventIDs[0]
	p.Inspections = append(p.Inspections, in)
	if a.chance(0.7) {
		kind := a.kind()
		if in.Status == facility.InspectionMisused {
			kind = facility.KindViolation
		}
		a.open(p, in.ID, kind, inspector, "found at the site: "+string(in.Status))
	}
}

// resolve ends one of the facility's open cases, recovering funds when
// paid money is left to recover.
func (a *Audits) resolve(p *projectionstest.Plan) {
	i := a.rnd.IntN(len(p.OpenCases))
	id := p.OpenCases[i]
	var paid int64
	for _, tr := range p.Tranches {
		paid += tr.Amount
	}
	cmd := facility.ResolveDeviation{FacilityID: p.ID, DeviationID: id, Resolution: facility.ResolutionDismissed, Note: "unfounded"}
	switch left := paid - p.Recovered; {
	case left > 0 && a.chance(0.6):
		cmd.Resolution, cmd.RecoveredRials, cmd.Note = facility.ResolutionFundsRecovered, max(left/3, 1), "recovered through the bank"
		p.Recovered += cmd.RecoveredRials
	case a.chance(0.5):
		cmd.Resolution, cmd.Note = facility.ResolutionCorrected, "the applicant restarted the business"
	}
	a.tick()
	cmd.At = a.clock
	a.exec(cmd, Provincial)
	p.OpenCases = slices.Delete(slices.Clone(p.OpenCases), i, i+1)
}

// correctInspection corrects the confirmation or the verified jobs of an
// active inspection that a case was opened from.
func (a *Audits) correctInspection(p *projectionstest.Plan) {
	var candidates []int
	for i, in := range p.Inspections {
		if in.Status != facility.InspectionActive {
			continue
		}
		for _, insID := range a.cases[p.ID] {
			if insID == in.ID {
				candidates = append(candidates, i)
				break
			}
		}
	}
	if len(candidates) == 0 {
		return
	}
	in := &p.Inspections[candidates[a.rnd.IntN(len(candidates))]]
	c := facility.Correct{FacilityID: p.ID, CorrectsEventID: in.EventID, Reason: "re-inspection by the province"}
	if a.chance(0.5) {
		in.Confirmed = !in.Confirmed
		c.Field, c.NewValue = facility.FieldConfirmed, facility.BoolValue(in.Confirmed)
	} else {
		n := (in.Verified + 1) % (2*p.Promised + 1)
		if n == in.Verified {
			return
		}
		in.Verified = n
		c.Field, c.NewValue = facility.FieldVerifiedJobs, facility.IntValue(int64(n))
	}
	a.tick()
	c.At = a.clock
	a.exec(c, Auditor)
}

// FirmOf returns the i-th firm the audits inspect with (of four).
func FirmOf(t testing.TB, i int) string {
	var firms []string
	for _, e := range reference.DefaultEvents() {
		if f, ok := e.(reference.FirmAdded); ok && len(firms) < 4 {
			firms = append(firms, f.ID)
		}
	}
	require.Less(t, i, len(firms))
	return firms[i]
}
