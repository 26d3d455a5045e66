package seed

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/eventstore"
)

const day = 24 * time.Hour

// days returns d days (fractional) as a duration, to the second.
func days(d float64) time.Duration { return time.Duration(d * float64(day)).Truncate(time.Second) }

// idMultiplier scatters facility numbers over the national-ID space; it is
// coprime with nationalid.GenerateLimit, so distinct facilities get
// distinct IDs (the test checks).
const idMultiplier = 2654435761

// nationalSeq is the sequence number of facility i's applicant.
func nationalSeq(seed uint64, i int) uint64 {
	return (uint64(i)*idMultiplier + seed%nationalid.GenerateLimit*7919) % nationalid.GenerateLimit
}

// facGen generates one facility's history.
type facGen struct {
	g      *Generator
	p      *Piece
	r      *rand.Rand
	spec   *programSpec
	prov   *provinceSpec
	id     string
	stream string
	fy     int
	jobs   int
	agency string
	bank   string
	county string
	f      facility.Facility
	events []pending
	post   []appendPlan // appends after the facility's own

	agencyActor, bankActor, auditActor eventstore.Actor

	astream string
	astate  applicant.State
	aver    uint64

	book *quotaBook
	key  quota.AccountKey
	corr int // corrections made
}

// facility generates facility i: its quota prerequisites, then its claim,
// charge, history and releases, appended to p in that order.
func (g *Generator) facility(p *Piece, i int) error {
	r := rand.New(rand.NewPCG(g.cfg.Seed^0x5eed5eed5eed5eed, uint64(i)))
	k := g.fyIndex(i)
	fy := FirstFiscalYear + k
	reg := g.registrationTime(i, k, r)
	if !reg.Before(g.cutoff) {
		return nil
	}
	if err := g.before(p, i, k, reg); err != nil {
		return err
	}
	u := r.Float64()
	cell := g.joint[sort.Search(len(g.joint), func(j int) bool { return g.joint[j].cum > u })]
	spec := &g.programs[cell.program]
	prov := &provinceTable[cell.province]
	b := &facGen{
		g: g, p: p, r: r, spec: spec, prov: prov, fy: fy,
		id:     fmt.Sprintf("%d-%s-%07d", fy, strings.TrimPrefix(prov.code, "IR-"), i+1),
		agency: pick(r, spec.agencies),
		bank:   pick(r, spec.banks),
	}
	b.stream = facility.Stream(b.id)
	b.agencyActor = eventstore.Actor{ID: b.agency + "/" + prov.code, Role: "agency", Org: b.agency}
	b.bankActor = eventstore.Actor{ID: b.bank + "/" + prov.code, Role: "bank", Org: b.bank}
	b.auditActor = eventstore.Actor{ID: "monitoring/" + prov.code, Role: "auditor", Org: "labour-ministry"}
	b.book = g.book(fy, spec)
	b.key = quota.AccountKey{Agency: b.agency, Province: prov.code}
	if err := b.run(i, reg); err != nil {
		return fmt.Errorf("seed: facility %s: %w", b.id, err)
	}
	return nil
}

// exec decides a facility command on the facility's state and records the
// events under the step's envelope.
func (b *facGen) exec(cmd facility.Command, at time.Time, actor eventstore.Actor, step string) error {
	evs, err := facility.Decide(b.f, cmd)
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	m := b.g.meta(actor, at, b.id+"/"+step, b.id)
	for _, e := range evs {
		v := b.f.Version() + 1
		id := b.g.ids.eventID(at, b.stream, v)
		b.f = facility.Evolve(b.f, domain.Recorded{ID: id, Stream: b.stream, Version: v, OccurredAt: at, Event: e})
		b.events = append(b.events, pending{id: id, event: e, meta: m})
	}
	return nil
}

// applicantStep decides an applicant command and returns its append.
func (b *facGen) applicantStep(cmd applicant.Command, at time.Time, step string) (appendPlan, error) {
	d := applicant.Decider()
	evs, err := d.Decide(b.astate, cmd)
	if err != nil {
		return appendPlan{}, fmt.Errorf("%s: %w", step, err)
	}
	a := appendPlan{stream: b.astream, expected: eventstore.Exact(b.aver)}
	m := b.g.meta(b.agencyActor, at, b.id+"/"+step, b.id)
	for _, e := range evs {
		b.aver++
		id := b.g.ids.eventID(at, b.astream, b.aver)
		b.astate = d.Evolve(b.astate, domain.Recorded{ID: id, Stream: b.astream, Version: b.aver, OccurredAt: at, Event: e})
		a.events = append(a.events, pending{id: id, event: e, meta: m})
	}
	return a, nil
}

// releaseClaim frees the applicant's slot for the programme and year.
func (b *facGen) releaseClaim(at time.Time, reason string) error {
	a, err := b.applicantStep(applicant.ReleaseFacility{FacilityID: b.id, Reason: reason}, at, "release-claim")
	if err != nil {
		return err
	}
	if len(a.events) > 0 {
		b.post = append(b.post, a)
	}
	return nil
}

// charge reserves the loan in the quota ledger, as ledger.Service.ApproveLoan
// does before the approval; false means the account has no free quota left.
func (b *facGen) charge(amount int64, at time.Time) (bool, error) {
	evs, err := quota.Decide(b.book.l, quota.Charge{
		FiscalYear: b.fy, Program: b.spec.id, Account: b.key, FacilityID: b.id, AmountRials: amount, At: at,
	})
	var qe *domain.QuotaExceededError
	if errors.As(err, &qe) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("charge: %w", err)
	}
	m := b.g.meta(b.bankActor, at, b.id+"/approve/charge", b.id)
	a := appendPlan{stream: b.book.stream, expected: eventstore.Exact(b.book.l.Version())}
	for _, e := range evs {
		a.events = append(a.events, b.g.evolveQuota(b.book, e, m))
	}
	b.p.add(a)
	return true, nil
}

// release returns the undisbursed part of the charge when the file closes,
// as ledger.Service.CloseFacility does.
func (b *facGen) release(at time.Time, reason string) error {
	und := b.f.UndisbursedRials()
	if und <= 0 || b.f.QuotaAccount() == "" {
		return nil
	}
	evs, err := quota.Decide(b.book.l, quota.ReleaseCharge{
		FiscalYear: b.fy, Program: b.spec.id, FacilityID: b.id, AmountRials: und,
		Reason: "facility closed: " + reason, At: at,
	})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	m := b.g.meta(b.agencyActor, at, b.id+"/close/release", b.id)
	a := appendPlan{stream: b.book.stream, expected: eventstore.Exact(b.book.l.Version())}
	for _, e := range evs {
		a.events = append(a.events, b.g.evolveQuota(b.book, e, m))
	}
	b.post = append(b.post, a)
	return nil
}

// finish appends the facility's history and what follows it, and counts it.
func (b *facGen) finish(seal sealRef) {
	seal.append = b.p.add(appendPlan{stream: b.stream, expected: eventstore.NoStream, events: b.events})
	seal.event = 0
	b.p.seals = append(b.p.seals, seal)
	for _, a := range b.post {
		b.p.add(a)
	}
	b.g.stats.addFacility(b.f, b.corr)
}

// run plays the facility's life from registration at reg.
func (b *facGen) run(i int, reg time.Time) error {
	r, spec, prov, cutoff := b.r, b.spec, b.prov, b.g.cutoff

	// The plan and the applicant. Quota is held per province; the county,
	// when given, is descriptive.
	if counties := b.g.counties[prov.code]; r.Float64() < 0.55 && len(counties) > 0 {
		b.county = counties[r.IntN(len(counties))]
	}
	b.jobs = spec.jobs(b.g.quasi("jobs/"+spec.id+"/"+prov.code, alphaJobs))
	requested := spec.request(r)
	title := spec.titles[r.IntN(len(spec.titles))]
	nid := nationalid.Generate(nationalSeq(b.g.cfg.Seed, i))
	personal := applicant.Personal{
		NationalID: nid,
		Name:       firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))],
		Phone:      fmt.Sprintf("09%s%07d", phonePrefixes[r.IntN(len(phonePrefixes))], r.IntN(10_000_000)),
	}
	ref := applicant.RefOf(b.g.cfg.PseudonymKey, nid)
	keyID := applicant.KeyIDFor(ref, b.astate.KeyGeneration())
	b.astream = applicant.StreamFor(ref)
	seal := sealRef{personal: personal, ref: ref, keyID: keyID}

	// Registration: the applicant's claim first, then the facility
	// (ledger.Service.Register).
	claim, err := b.applicantStep(applicant.ClaimFacility{
		FacilityID: b.id, FiscalYear: calendar.FiscalYear(b.fy), Program: spec.id,
	}, reg, "register/claim")
	if err != nil {
		return err
	}
	b.p.add(claim)
	if err := b.exec(facility.Register{
		FacilityID: b.id, FiscalYear: b.fy, Program: spec.id, Agency: b.agency, Province: prov.code,
		County:         b.county,
		Applicant:      facility.Applicant{Ref: ref, KeyID: keyID, Ciphertext: placeholderCiphertext},
		Title:          title,
		RequestedRials: requested, JobsPromised: b.jobs, At: reg,
	}, reg, b.agencyActor, "register"); err != nil {
		return err
	}

	// Expert review.
	reviewAt := reg.Add(days(between(r, 5, 45)))
	size := "small"
	if b.jobs > 6 {
		size = "large"
	}
	referred := b.g.quasi("referral/"+spec.id+"/"+size, alphaReferral) < spec.referral(b.jobs)
	reason := reviewRejections[r.IntN(len(reviewRejections))]
	expert := fmt.Sprintf("expert-%s-%s-%02d", b.agency, strings.ToLower(prov.code), 1+r.IntN(12))
	if !reviewAt.Before(cutoff) {
		b.finish(seal)
		return nil
	}
	if !referred {
		if err := b.exec(facility.Review{
			FacilityID: b.id, Decision: facility.ReviewRejected, Expert: expert, Reason: reason, At: reviewAt,
		}, reviewAt, b.agencyActor, "review"); err != nil {
			return err
		}
		if err := b.releaseClaim(reviewAt, "rejected in expert review: "+reason); err != nil {
			return err
		}
		b.finish(seal)
		return nil
	}
	if err := b.exec(facility.Review{
		FacilityID: b.id, Decision: facility.ReviewApproved, Bank: b.bank, Expert: expert,
		Notes: "referred to the operating bank", At: reviewAt,
	}, reviewAt, b.agencyActor, "review"); err != nil {
		return err
	}

	// The bank's decision, charging the quota first.
	bankAt := reviewAt.Add(days(between(r, 10, 75) / prov.bank))
	u := b.g.quasi("bank/"+spec.id+"/"+prov.code, alphaBank)
	share := spec.approveShare(r)
	wait := r.Float64()
	bankReason := bankRejections[r.IntN(len(bankRejections))]
	if !bankAt.Before(cutoff) {
		b.finish(seal)
		return nil
	}
	approve := min(0.9995, spec.bankApprove*prov.bank)
	switch {
	case u < approve:
		amount := rials(float64(requested) * share)
		ok, err := b.charge(amount, bankAt)
		if err != nil {
			return err
		}
		if !ok {
			// The command path refuses the approval; the bank turns most
			// such plans down and leaves the rest waiting for quota.
			if wait < 0.4 {
				b.finish(seal)
				return nil
			}
			why := fmt.Sprintf("%s %d %s quota of %s in %s", QuotaExhausted, b.fy, spec.id, b.agency, prov.code)
			if err := b.rejectLoan(bankAt, why); err != nil {
				return err
			}
			b.finish(seal)
			return nil
		}
		if err := b.exec(facility.ApproveLoan{
			FacilityID: b.id, Bank: b.bank, AmountRials: amount, QuotaAccount: b.key.String(), At: bankAt,
		}, bankAt, b.bankActor, "approve"); err != nil {
			return err
		}
	case (u-approve)/(1-approve) < spec.pending:
		b.finish(seal) // still waiting for the bank
		return nil
	default:
		if err := b.rejectLoan(bankAt, bankReason); err != nil {
			return err
		}
		b.finish(seal)
		return nil
	}

	if err := b.afterApproval(bankAt); err != nil {
		return err
	}
	b.finish(seal)
	return nil
}

// QuotaExhausted starts the reason of a bank refusal for lack of quota.
const QuotaExhausted = "quota exhausted: no free"

func (b *facGen) rejectLoan(at time.Time, reason string) error {
	if err := b.exec(facility.RejectLoan{FacilityID: b.id, Bank: b.bank, Reason: reason, At: at},
		at, b.bankActor, "reject"); err != nil {
		return err
	}
	return b.releaseClaim(at, "loan refused by the bank: "+reason)
}

var phonePrefixes = []string{"12", "13", "15", "16", "17", "18", "19", "35", "36", "37", "38", "39", "01", "02", "03", "90", "91"}
