package seed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
)

// action is one planned step after the loan's approval. Steps are planned
// (every random draw made) first, then run in business-time order, so that
// the tracks (payments, jobs reports, inspections and their audit cases,
// corrections, closing) interleave as they would in the field.
type action struct {
	at  time.Time
	seq int
	do  func(at time.Time) error
}

// inspectionPlan is one planned field visit and the audit case it opens.
type inspectionPlan struct {
	at        time.Time
	id, round string
	firm      string
	status    facility.InspectionStatus
	confirmed bool
	verified  int
	notes     string
	dev       *deviationPlan
}

// deviationPlan is a planned audit case.
type deviationPlan struct {
	id          string
	kind        facility.DeviationKind
	description string
	openAt      time.Time
	evidence    []time.Time
	resolved    bool
	resolveAt   time.Time
	resolution  facility.Resolution
	recover     float64 // share of the money paid that is recovered
	followUp    *inspectionPlan
}

var (
	evidenceTexts = []string{
		"field report with photographs and GPS coordinates",
		"bank statement of the loan account",
		"social-security insurance list of the workshop",
		"written statement of the applicant",
		"report of the county employment working group",
	}
	resolutionNotes = map[facility.Resolution]string{
		facility.ResolutionCorrected:      "applicant resumed the approved activity; checked by the county working group",
		facility.ResolutionFundsRecovered: "loan recalled; the bank recovered the amount",
		facility.ResolutionDismissed:      "finding not upheld on review",
	}
)

// stochastic rounds x to an integer whose expectation is x.
func stochastic(r *rand.Rand, x float64) int {
	n := int(x)
	if r.Float64() < x-float64(n) {
		n++
	}
	return n
}

// diffuse rounds x to an integer, carrying the rounding error over to the
// next figure of the same kind (error diffusion), so that the totals of a
// programme in a province stay within one job of the expected figure.
func (g *Generator) diffuse(kind string, x float64) int {
	x += g.residual[kind]
	n := int(math.Floor(x + 0.5))
	g.residual[kind] = x - float64(n)
	return max(n, 0)
}

// roundOf names the monitoring round of an instant: fiscal year and half,
// which is also the guideline version in force ("1403.1", "1403.2").
func roundOf(at time.Time) string {
	fy := calendar.FiscalYearOf(at)
	half := 1
	if at.Sub(fy.Start()) >= firstHalfDays*day {
		half = 2
	}
	return fmt.Sprintf("%d.%d", int(fy), half)
}

// period names the quarter of a jobs report, e.g. "1403-Q2".
func period(at time.Time) string {
	fy := calendar.FiscalYearOf(at)
	q := 1 + int(at.Sub(fy.Start())/(92*day))
	return fmt.Sprintf("%d-Q%d", int(fy), min(q, 4))
}

func drawStatus(u float64, probs [4]float64) facility.InspectionStatus {
	return pickU(u, []weighted[facility.InspectionStatus]{
		{facility.InspectionActive, probs[0]}, {facility.InspectionInactive, probs[1]},
		{facility.InspectionNotFound, probs[2]}, {facility.InspectionMisused, probs[3]},
	})
}

// firm picks the inspecting firm: usually one seated in the province.
func (b *facGen) firm() string {
	if local := b.g.firms[b.prov.code]; len(local) > 0 && b.r.Float64() < 0.85 {
		return local[b.r.IntN(len(local))]
	}
	return b.g.allFirms[b.r.IntN(len(b.g.allFirms))]
}

// planInspection draws a visit's findings and the audit case they open.
func (b *facGen) planInspection(at time.Time, n int, probs [4]float64) *inspectionPlan {
	r, spec := b.r, b.spec
	in := &inspectionPlan{at: at, round: roundOf(at), firm: b.firm(), status: drawStatus(b.g.quasi("status/"+spec.id, alphaStatus), probs)}
	in.id = fmt.Sprintf("ins-%s-%d", in.round, n)
	confirm := b.g.quasi("confirm/"+spec.id, alphaConfirm) < spec.confirm
	spread := between(r, 0.85, 1.15)
	switch in.status {
	case facility.InspectionActive:
		in.confirmed = confirm
		if confirm {
			in.verified = stochastic(r, float64(b.jobs)*spec.verifiedConfirmed*spread)
			in.notes = "operating as approved"
		} else {
			in.verified = stochastic(r, float64(b.jobs)*spec.verifiedUnconfirmed*spread)
			in.notes = "operating, but not as approved"
		}
		in.verified = min(in.verified, 2*b.jobs)
	case facility.InspectionInactive:
		in.notes = "workshop closed at the time of the visit"
	case facility.InspectionNotFound:
		in.notes = "no business at the registered address"
	case facility.InspectionMisused:
		in.notes = "loan spent on housing"
	}

	// The audit case, if the finding warrants one.
	open := r.Float64()
	kindDraw := r.Float64()
	d := &deviationPlan{id: fmt.Sprintf("dev-%s-%d", in.round, n)}
	d.openAt = at.Add(days(between(r, 3, 30)))
	last := d.openAt
	for range r.IntN(3) {
		last = last.Add(days(between(r, 5, 60)))
		d.evidence = append(d.evidence, last)
	}
	d.resolved = r.Float64() < 0.8
	d.resolveAt = last.Add(days(between(r, 30, 300)))
	outcome := r.Float64()
	d.recover = between(r, 0.3, 1)
	followUp := r.Float64() < 0.35
	followAt := d.resolveAt.Add(days(between(r, 20, 90)))
	followConfirmed := r.Float64() < 0.85
	followSpread := between(r, 0.85, 1.15)
	resolution := func(corrected, recovered float64) facility.Resolution {
		switch {
		case outcome < corrected:
			return facility.ResolutionCorrected
		case outcome < corrected+recovered:
			return facility.ResolutionFundsRecovered
		}
		return facility.ResolutionDismissed
	}
	switch in.status {
	case facility.InspectionMisused:
		d.kind, d.description = facility.KindViolation, "loan spent on housing instead of the approved plan"
		d.resolution = resolution(0.15, 0.7)
	case facility.InspectionNotFound:
		d.kind, d.description = facility.KindViolation, "business not found at the registered address"
		if kindDraw < 0.3 {
			d.kind = facility.KindDeviation
		}
		d.resolution = resolution(0.25, 0.45)
	case facility.InspectionInactive:
		if open >= 0.85 {
			return in
		}
		d.kind, d.description = facility.KindDeviation, "business established but not operating"
		d.resolution = resolution(0.6, 0.15)
	default:
		if in.confirmed || open >= 0.55 {
			return in
		}
		d.kind = facility.KindDiscrepancy
		d.description = fmt.Sprintf("fewer jobs than promised: %d verified of %d", in.verified, b.jobs)
		d.resolution = resolution(0.55, 0)
	}
	if d.resolved && d.resolution == facility.ResolutionCorrected && followUp {
		f := &inspectionPlan{
			at: followAt, round: roundOf(followAt), firm: b.firm(),
			status: facility.InspectionActive, confirmed: followConfirmed,
		}
		f.id = fmt.Sprintf("ins-%s-%d", f.round, n+1)
		if followConfirmed {
			f.verified = min(2*b.jobs, stochastic(r, float64(b.jobs)*spec.verifiedConfirmed*followSpread))
			f.notes = "follow-up visit: operating as approved"
		} else {
			f.verified = min(2*b.jobs, stochastic(r, float64(b.jobs)*spec.verifiedUnconfirmed*followSpread))
			f.notes = "follow-up visit: operating, but not as approved"
		}
		d.followUp = f
	}
	in.dev = d
	return in
}

// afterApproval plans and runs the rest of an approved loan's life.
func (b *facGen) afterApproval(approvedAt time.Time) error {
	r, spec, prov := b.r, b.spec, b.prov
	var acts []action
	add := func(at time.Time, do func(time.Time) error) {
		acts = append(acts, action{at: at, seq: len(acts), do: do})
	}
	approved := b.f.ApprovedRials()

	// Payments.
	unpaid := b.g.quasi("unpaid/"+spec.id+"/"+prov.code, alphaUnpaid) < spec.unpaid
	n := pick(r, spec.tranches)
	withdraw := n > 1 && r.Float64() < spec.withdraw
	paid := n
	switch {
	case unpaid:
		paid = 0
	case withdraw:
		paid = 1
	}
	amounts := make([]int64, n)
	var sum int64
	for k := range n - 1 {
		amounts[k] = rials(float64(approved) / float64(n))
		sum += amounts[k]
	}
	amounts[n-1] = approved - sum
	times := make([]time.Time, n)
	t := approvedAt.Add(days(between(r, 5, 40)))
	for k := range n {
		times[k] = t
		t = t.Add(days(between(r, 35, 120)))
	}
	fix := -1
	if paid > 0 && r.Float64() < 0.01 {
		fix = r.IntN(paid)
	}
	fixShare := between(r, 0.05, 0.3)
	fixAfter := days(between(r, 3, 20))
	for k := range paid {
		keyed := amounts[k]
		if k == fix {
			if cut := rials(float64(amounts[k]) * fixShare); cut > 0 && cut < amounts[k] {
				keyed = amounts[k] - cut
			}
		}
		add(times[k], func(at time.Time) error {
			return b.exec(facility.DisburseTranche{
				FacilityID: b.id, Bank: b.bank, Tranche: k + 1, AmountRials: keyed, At: at,
			}, at, b.bankActor, fmt.Sprintf("tranche-%d", k+1))
		})
		if keyed != amounts[k] {
			add(times[k].Add(fixAfter), func(at time.Time) error {
				b.corr++
				return b.exec(facility.Correct{
					FacilityID: b.id, CorrectsEventID: b.f.Tranches()[k].EventID, Field: facility.FieldAmountRials,
					NewValue: facility.IntValue(amounts[k]),
					Reason:   "bank corrected a keying error in the tranche amount", At: at,
				}, at, b.bankActor, fmt.Sprintf("tranche-%d/correct", k+1))
			})
		}
	}

	var insps []*inspectionPlan
	if paid > 0 {
		first := times[0]
		// Jobs: the bank's preliminary figure (often just the promise),
		// then the agency's registered figure, which is the one counted.
		bankReport := r.Float64() < 0.35
		bankAt := first.Add(days(between(r, 20, 40)))
		bankJobs := max(0, b.jobs-r.IntN(2))
		agencyAt := first.Add(days(between(r, 45, 200)))
		jobs := b.g.diffuse(spec.id+"/"+prov.code, float64(b.jobs)*prov.jobs*spec.realised*between(r, 0.85, 1.15))
		typo := r.Float64() < 0.02
		keyedJobs := jobs + 1 + r.IntN(3)
		typoAfter := days(between(r, 10, 60))
		if bankReport {
			add(bankAt, func(at time.Time) error {
				return b.exec(facility.ReportJobs{
					FacilityID: b.id, Jobs: bankJobs, ReportedBy: facility.ReportedByBank, Period: period(at), At: at,
				}, at, b.bankActor, "jobs/bank")
			})
		}
		reported := jobs
		if typo {
			reported = keyedJobs
		}
		add(agencyAt, func(at time.Time) error {
			return b.exec(facility.ReportJobs{
				FacilityID: b.id, Jobs: reported, ReportedBy: facility.ReportedByAgency, Period: period(at), At: at,
			}, at, b.agencyActor, "jobs/agency")
		})
		if typo {
			add(agencyAt.Add(typoAfter), func(at time.Time) error {
				reports := b.f.JobsReports()
				b.corr++
				return b.exec(facility.Correct{
					FacilityID: b.id, CorrectsEventID: reports[len(reports)-1].EventID, Field: facility.FieldJobs,
					NewValue: facility.IntValue(int64(jobs)),
					Reason:   "agency re-submitted the figure after reconciliation with social-security insurance lists", At: at,
				}, at, b.agencyActor, "jobs/agency/correct")
			})
		}

		// Field inspections: a census of quick-yield firms, a sample of
		// the rest.
		censusAt := first.Add(days(between(r, 90, 365)))
		visited := spec.census && b.g.quasi("visit/"+spec.id, alphaVisit) < censusVisited
		regularAt := first.Add(days(between(r, 120, 450)))
		sampled := r.Float64() < spec.inspect
		probs := spec.status
		switch {
		case spec.census && visited:
			insps = append(insps, b.planInspection(censusAt, 1, probs))
		case !spec.census && sampled:
			active := min(0.97, probs[0]*prov.active)
			scale := (1 - active) / (1 - probs[0])
			probs = [4]float64{active, probs[1] * scale, probs[2] * scale, probs[3] * scale}
			insps = append(insps, b.planInspection(regularAt, 1, probs))
		}
	}
	for _, in := range insps {
		b.addInspection(add, in)
	}

	// Closing.
	var closeReason string
	var closeBase time.Time
	switch {
	case unpaid:
		if r.Float64() < 0.5 {
			closeReason = unpaidCloseReasons[r.IntN(len(unpaidCloseReasons))]
			closeBase = approvedAt.Add(days(between(r, 90, 240)))
		}
	case withdraw:
		closeReason = withdrawCloseReasons[r.IntN(len(withdrawCloseReasons))]
		closeBase = times[0].Add(days(between(r, 60, 150)))
	default:
		recalled := r.Float64() < 0.7
		repaid := r.Float64() < 0.6
		repaidAt := times[0].Add(days(between(r, 3*365, 4*365)))
		for _, in := range insps {
			if d := in.dev; d != nil && d.resolved && d.resolution == facility.ResolutionFundsRecovered && recalled {
				closeReason = "loan recalled after misuse; funds recovered"
				closeBase = d.resolveAt.Add(days(between(r, 10, 60)))
			}
		}
		if closeReason == "" && repaid && (spec.id == progHome || spec.id == progNote16 || spec.id == progMicro) {
			closeReason, closeBase = "loan fully repaid", repaidAt
		}
	}
	slack := days(between(r, 10, 40))
	for _, in := range insps {
		if d := in.dev; d != nil && !d.resolved {
			closeReason = "" // an open audit case keeps the file open
		}
	}
	if closeReason != "" {
		closeAt := closeBase
		for _, a := range acts {
			if end := a.at.Add(slack); end.After(closeAt) {
				closeAt = end
			}
		}
		add(closeAt, func(at time.Time) error {
			if err := b.exec(facility.Close{FacilityID: b.id, Reason: closeReason, At: at}, at, b.agencyActor, "close"); err != nil {
				return err
			}
			if err := b.release(at, closeReason); err != nil {
				return err
			}
			return b.releaseClaim(at, "facility closed: "+closeReason)
		})
	}

	sort.SliceStable(acts, func(x, y int) bool {
		if !acts[x].at.Equal(acts[y].at) {
			return acts[x].at.Before(acts[y].at)
		}
		return acts[x].seq < acts[y].seq
	})
	for _, a := range acts {
		if !a.at.Before(b.g.cutoff) {
			break
		}
		if err := a.do(a.at); err != nil {
			return err
		}
	}
	return nil
}

// inspectorActor is the consulting firm recording its visit.
func inspectorActor(firm string) eventstore.Actor {
	return eventstore.Actor{ID: firm, Role: "inspector", Org: firm}
}

// censusVisited is the share of quick-yield firms the census reached: the
// survey's four findings add up to 97.5%.
const censusVisited = 0.975

// addInspection schedules a visit and its audit case.
func (b *facGen) addInspection(add func(time.Time, func(time.Time) error), in *inspectionPlan) {
	add(in.at, func(at time.Time) error {
		return b.exec(facility.RecordInspection{
			FacilityID: b.id, InspectionID: in.id, Firm: in.firm, GuidelineVersion: in.round,
			Status: in.status, Confirmed: in.confirmed, VerifiedJobs: in.verified, Notes: in.notes, At: at,
		}, at, inspectorActor(in.firm), "inspection/"+in.id)
	})
	d := in.dev
	if d == nil {
		return
	}
	add(d.openAt, func(at time.Time) error {
		return b.exec(facility.OpenDeviation{
			FacilityID: b.id, DeviationID: d.id, Kind: d.kind, InspectionID: in.id, Description: d.description, At: at,
		}, at, b.auditActor, "deviation/"+d.id+"/open")
	})
	for j, t := range d.evidence {
		text := evidenceTexts[(j+len(d.id))%len(evidenceTexts)]
		add(t, func(at time.Time) error {
			return b.exec(facility.AddDeviationEvidence{
				FacilityID: b.id, DeviationID: d.id, Evidence: text,
				DocumentRef: fmt.Sprintf("doc/%s/%s/%d", b.id, d.id, j+1), At: at,
			}, at, b.auditActor, fmt.Sprintf("deviation/%s/evidence-%d", d.id, j+1))
		})
	}
	if !d.resolved {
		return
	}
	add(d.resolveAt, func(at time.Time) error {
		res, recovered := d.resolution, int64(0)
		if res == facility.ResolutionFundsRecovered {
			left := b.f.DisbursedRials() - b.f.RecoveredRials()
			recovered = min(left, max(1_000_000, rials(float64(left)*d.recover)))
			if recovered <= 0 {
				res, recovered = facility.ResolutionDismissed, 0
			}
		}
		return b.exec(facility.ResolveDeviation{
			FacilityID: b.id, DeviationID: d.id, Resolution: res, RecoveredRials: recovered,
			Note: resolutionNotes[res], At: at,
		}, at, b.auditActor, "deviation/"+d.id+"/resolve")
	})
	if d.followUp != nil {
		b.addInspection(add, d.followUp)
	}
}
