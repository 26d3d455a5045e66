package bench

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// history generates synthetic facility histories shaped like the ledger's:
// each facility's life (registration with a sealed applicant, expert review,
// the bank's decision, tranches, jobs reports, inspections, deviation cases,
// closing, the odd correction) is one append to its own stream, and each
// approved loan also charges its quota ledger, a few hot streams appended to
// with Any. Payloads follow the facility events' JSON (see
// domain/facility/testdata/events), with ciphertexts of a sealed applicant's
// size. Its events are the size of payesh seed's: about 510 bytes each with
// envelope and hashes, 150 of them payload.
//
// It is deterministic: chunk i is the same events with the same IDs whoever
// generates it, so a baseline can write exactly the rows Payesh wrote, and a
// log can be grown across processes. Every chunk has exactly events events,
// so a log's head position says how many chunks it holds.
type history struct {
	seed   uint64
	events int // per chunk
	now    time.Time
}

// historySource describes the data for the report.
const historySource = "Command appends: one facility registration payload (421 bytes). " +
	"Bulk import and the SQLite log Verify walks: the history `payesh seed` generates (seed/), " +
	"7.3 events per facility, payloads of 160 bytes on average, 520 bytes per event with envelope and hashes. " +
	"PostgreSQL log for subscriptions and Verify, and watermill-sql's messages: synthetic facility histories " +
	"(bench/history.go) of the same shape and size (8.7 events per facility, 150-byte payloads, 510 bytes per event), " +
	"which can be generated in any order and so grown chunk by chunk across processes"

func newHistory(seed uint64, chunkEvents int) history {
	// Business times lie in fiscal years 1400–1404 (from 21 March 2021)
	// and never after an hour ago.
	// (The cut-off is fixed, not the clock, so every process generates the
	// same events.)
	now := fyStart(1405).AddDate(0, 6, 0)
	if clock := time.Now().Add(-time.Hour); clock.Before(now) {
		now = clock
	}
	return history{seed: seed, events: chunkEvents, now: now}
}

var (
	programs    = []string{"home-business", "rural-employment", "inclusive-employment", "quick-yield", "nomadic-employment"}
	agencies    = []string{"relief-committee", "welfare-organisation", "agriculture-jihad", "cultural-heritage", "bonyad-barakat"}
	banks       = []string{"keshavarzi", "mellat", "sepah", "tosee-taavon", "post-bank", "mehr-iran"}
	firms       = []string{"firm-arak-consult", "firm-tabriz-audit", "firm-shiraz-nazer", "firm-mashhad-pardaz"}
	titles      = []string{"کارگاه خیاطی خانگی", "پرورش قارچ خوراکی", "قالی‌بافی دستباف", "پرورش زنبور عسل", "تعمیرگاه لوازم خانگی", "نانوایی سنتی", "گلخانه سبزی و صیفی", "پرورش دام سبک"}
	counties    = []string{"arak", "khomein", "saveh", "delijan", "tafresh", "ashtian", "mahallat", "shazand"}
	reviewNotes = []string{"plan complete", "guarantor documents verified", "site visited, equipment in place", "needs revised budget table", "applicant trained by the agency"}
	closeWhy    = []string{"loan fully repaid", "plan abandoned by the applicant", "converted to a group plan"}
	inspNotes   = []string{"workshop operating", "one of two jobs found", "equipment sold", "operating, insurance list matches"}
)

// fyStart is 1 Farvardin of fiscal year fy (1400 = 21 March 2021).
func fyStart(fy int) time.Time {
	return time.Date(2021+fy-1400, time.March, 21, 0, 0, 0, 0, time.UTC)
}

// chunk returns chunk i's appends.
func (h history) chunk(i int) []eventstore.StreamAppend {
	r := rand.New(rand.NewPCG(h.seed, uint64(i)))
	// IDs number events within the chunk after the chunk's index, so
	// they never collide across chunks (a chunk has under 2^24 events).
	g := &historyGen{h: h, r: r, next: uint64(i) << 24}
	var out []eventstore.StreamAppend
	remaining := h.events
	for n := 0; remaining > 0; n++ {
		facility, charge := g.facility(uint64(i)*uint64(h.events) + uint64(n))
		if len(facility.Events) > remaining {
			facility.Events = facility.Events[:remaining]
		}
		out = append(out, facility)
		remaining -= len(facility.Events)
		if charge != nil && remaining > 0 {
			out = append(out, *charge)
			remaining--
		}
	}
	return out
}

type historyGen struct {
	h    history
	r    *rand.Rand
	next uint64 // event counter, unique in the history
}

func (g *historyGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// id returns a UUIDv7-shaped ID: the millisecond time of at, then the
// event's number in the history (unique), then bits from the seed.
func (g *historyGen) id(at time.Time) string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[0:8], uint64(at.UnixMilli())<<16)
	binary.BigEndian.PutUint64(u[8:16], g.next|(g.h.seed&0xffff)<<48)
	u[6] = 0x70 | byte(g.h.seed>>16)&0x0f
	u[7] = byte(g.h.seed >> 20)
	u[8] = 0x80 | (u[8] & 0x3f)
	g.next++
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

func (g *historyGen) later(t time.Time, minDays, maxDays int) time.Time {
	d := time.Duration(minDays*24)*time.Hour + time.Duration(g.r.Int64N(int64(maxDays-minDays+1)*24*3600))*time.Second
	t = t.Add(d)
	if t.After(g.h.now) {
		t = g.h.now.Add(-time.Duration(g.r.IntN(3600)) * time.Second)
	}
	return t
}

// facility returns facility number n's history and, if its loan was
// approved, the quota charge.
func (g *historyGen) facility(n uint64) (eventstore.StreamAppend, *eventstore.StreamAppend) {
	r := g.r
	fy := 1400 + r.IntN(5)
	program, agency, bank := g.pick(programs), g.pick(agencies), g.pick(banks)
	province := fmt.Sprintf("IR-%02d", 1+r.IntN(31))
	county := province + "-" + g.pick(counties)
	fid := fmt.Sprintf("f-%d-%07d", fy, n)
	stream := "facility-" + fid
	t := g.later(fyStart(fy), 15, 330)
	amount := int64(3+r.IntN(98)) * 50_000_000
	jobs := 1 + r.IntN(4)

	var events []eventstore.Proposed
	var corr, prev string
	add := func(typ string, actor eventstore.Actor, data []byte) {
		id := g.id(t)
		if corr == "" {
			corr = id
		}
		events = append(events, eventstore.Proposed{
			ID: id, Type: typ, Data: data, OccurredAt: t,
			BackdateReason: "synthetic history (payesh bench)",
			Actor:          actor,
			IdempotencyKey: "cmd-" + id[24:] + "-" + fmt.Sprint(len(events)),
			CorrelationID:  corr, CausationID: prev,
		})
		prev = id
	}
	agencyActor := eventstore.Actor{ID: fmt.Sprintf("officer-%s-%03d", province, r.IntN(400)), Role: "agency", Org: agency}
	bankActor := eventstore.Actor{ID: fmt.Sprintf("branch-%s-%04d", bank, r.IntN(3000)), Role: "bank", Org: bank}

	cipher := make([]byte, 150+r.IntN(80))
	for i := range cipher {
		cipher[i] = byte(r.Uint32())
	}
	add("facility.registered.v1", agencyActor, fmt.Appendf(nil,
		`{"facility_id":%q,"fiscal_year":%d,"program":%q,"agency":%q,"province":%q,"county":%q,"applicant":{"ref":"%016x%016x","key_id":"k-%016x","ciphertext":%q},"title":%q,"requested_rials":%d,"jobs_promised":%d}`,
		fid, fy, program, agency, province, county, r.Uint64(), r.Uint64(), r.Uint64(),
		base64.StdEncoding.EncodeToString(cipher), g.pick(titles), amount, jobs))

	t = g.later(t, 3, 40)
	add("facility.reviewed.v1", eventstore.Actor{ID: fmt.Sprintf("expert-%d", r.IntN(900)), Role: "expert", Org: agency},
		fmt.Appendf(nil, `{"decision":"approved","bank":%q,"expert":"expert-%d","notes":%q}`, bank, r.IntN(900), g.pick(reviewNotes)))

	t = g.later(t, 5, 60)
	if r.IntN(100) < 12 {
		add("facility.loan_rejected.v1", bankActor, fmt.Appendf(nil, `{"bank":%q,"reason":"no guarantor"}`, bank))
		return eventstore.StreamAppend{Stream: stream, Expected: eventstore.NoStream, Events: events}, nil
	}
	approved := amount - int64(r.IntN(3))*50_000_000
	account := agency + "/" + province + "/" + county
	add("facility.loan_approved.v1", bankActor, fmt.Appendf(nil,
		`{"bank":%q,"amount_rials":%d,"quota_account":%q}`, bank, approved, account))
	chargeAt := t
	charge := &eventstore.StreamAppend{
		Stream: fmt.Sprintf("quota-%d-%s", fy, program), Expected: eventstore.Any,
		Events: []eventstore.Proposed{{
			ID: g.id(chargeAt), Type: "quota.charged.v1",
			Data: fmt.Appendf(nil, `{"account":{"agency":%q,"province":%q,"county":%q},"facility_id":%q,"amount_rials":%d,"bank":%q}`,
				agency, province, county, fid, approved, bank),
			OccurredAt: chargeAt, BackdateReason: "synthetic history (payesh bench)",
			Actor: bankActor, IdempotencyKey: "cmd-charge-" + fid, CorrelationID: corr, CausationID: prev,
		}},
	}

	tranches := 1 + r.IntN(3)
	for k := 1; k <= tranches; k++ {
		t = g.later(t, 10, 90)
		add("facility.tranche_disbursed.v1", bankActor, fmt.Appendf(nil, `{"tranche":%d,"amount_rials":%d}`, k, approved/int64(tranches)))
	}
	for k := r.IntN(4); k > 0; k-- {
		t = g.later(t, 30, 120)
		add("facility.jobs_reported.v1", agencyActor, fmt.Appendf(nil,
			`{"jobs":%d,"reported_by":"agency","period":"%d-Q%d"}`, r.IntN(jobs+1), fy, 1+r.IntN(4)))
	}
	for k := r.IntN(3); k > 0; k-- {
		t = g.later(t, 30, 200)
		firm := g.pick(firms)
		insp := fmt.Sprintf("insp-%d-%06d", fy, r.IntN(1_000_000))
		confirmed := r.IntN(100) < 75
		add("facility.inspected.v1", eventstore.Actor{ID: firm + "-inspector", Role: "inspector", Org: firm}, fmt.Appendf(nil,
			`{"inspection_id":%q,"firm":%q,"guideline_version":"%d.2","status":"active","confirmed":%t,"verified_jobs":%d,"notes":%q}`,
			insp, firm, fy, confirmed, r.IntN(jobs+1), g.pick(inspNotes)))
		if !confirmed {
			ministry := eventstore.Actor{ID: "deviation-desk-" + province, Role: "ministry", Org: "labour-ministry"}
			t = g.later(t, 1, 20)
			add("facility.deviation_opened.v1", ministry, fmt.Appendf(nil,
				`{"deviation_id":"dev-%d","kind":"discrepancy","inspection_id":%q,"description":"promised jobs not found at the site"}`, k, insp))
			t = g.later(t, 5, 60)
			add("facility.deviation_evidence_added.v1", agencyActor, fmt.Appendf(nil,
				`{"deviation_id":"dev-%d","evidence":"insurance list shows fewer employees","document_ref":"doc-%06d"}`, k, r.IntN(1_000_000)))
			t = g.later(t, 10, 90)
			add("facility.deviation_resolved.v1", ministry, fmt.Appendf(nil,
				`{"deviation_id":"dev-%d","resolution":"funds_recovered","recovered_rials":%d,"note":"repaid"}`, k, approved/10))
		}
	}
	if r.IntN(100) < 25 {
		t = g.later(t, 30, 300)
		add("facility.closed.v1", bankActor, fmt.Appendf(nil, `{"reason":%q}`, g.pick(closeWhy)))
	}
	if r.IntN(100) < 5 {
		t = g.later(t, 1, 30)
		add("facility.corrected.v1", agencyActor, fmt.Appendf(nil,
			`{"corrects_event_id":%q,"corrects_event_type":"facility.jobs_reported.v1","field":"jobs","old_value":{"kind":"int","int":20},"new_value":{"kind":"int","int":2},"reason":"extra digit typed by the agency"}`,
			corr))
	}
	return eventstore.StreamAppend{Stream: stream, Expected: eventstore.NoStream, Events: events}, charge
}

// countEvents counts the events of appends.
func countEvents(appends []eventstore.StreamAppend) int {
	n := 0
	for _, a := range appends {
		n += len(a.Events)
	}
	return n
}

// chain builds the stored rows of a chunk as Payesh would store them after
// head, tracking stream versions in versions: what a baseline writes.
func chain(appends []eventstore.StreamAppend, head eventstore.Head, versions map[string]uint64, now time.Time) ([]eventstore.Event, eventstore.Head) {
	out := make([]eventstore.Event, 0, countEvents(appends))
	for _, a := range appends {
		built, h := eventstore.Build(a.Stream, versions[a.Stream], head.Position, head.Hash, now, a.Events)
		versions[a.Stream] += uint64(len(built))
		head = eventstore.Head{Position: built[len(built)-1].Position, Hash: h}
		out = append(out, built...)
	}
	return out, head
}
