package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/facilities"
)

// facilityView is a facility as the API shows it: the facilities read
// model's row, or the same figures rebuilt from the facility's events (as
// of a moment), with every date in both calendars.
//
// Applicants' personal data is in no facility view, in clear or sealed:
// read models never hold it, and a view rebuilt from the events leaves it
// out too, so no reader (scoped or national) gets it through a query. The
// events' own data, served verbatim by the history endpoint so that hashes
// can be checked, holds it only sealed (applicant.Sealed: a keyed
// pseudonym and ciphertext), which the API never decrypts.
type facilityView struct {
	ID                 string          `json:"id"`
	FiscalYear         int             `json:"fiscal_year"`
	Province           string          `json:"province"`
	County             string          `json:"county"` // "" when none was given
	Agency             string          `json:"agency"`
	Program            string          `json:"program"`
	Bank               string          `json:"bank"` // "" until referred
	Stage              facility.Stage  `json:"stage"`
	Title              string          `json:"title"`
	RequestedRials     int64           `json:"requested_rials"`
	ApprovedRials      int64           `json:"approved_rials"`
	DisbursedRials     int64           `json:"disbursed_rials"`
	Tranches           int             `json:"tranches"`
	JobsPromised       int             `json:"jobs_promised"`
	JobsReported       *int            `json:"jobs_reported"`
	JobsVerified       *int            `json:"jobs_verified"`
	Inspections        int             `json:"inspections"`
	LastInspection     *inspectionView `json:"last_inspection"`
	OpenDeviations     int             `json:"open_deviations"`
	RecoveredRials     int64           `json:"recovered_rials"`
	RegisteredAt       time.Time       `json:"registered_at"`
	RegisteredAtJalali string          `json:"registered_at_jalali"`
	ReviewedAt         *time.Time      `json:"reviewed_at"`
	ReviewedAtJalali   *string         `json:"reviewed_at_jalali"`
	ReferredAt         *time.Time      `json:"referred_at"`
	ReferredAtJalali   *string         `json:"referred_at_jalali"`
	ApprovedAt         *time.Time      `json:"approved_at"`
	ApprovedAtJalali   *string         `json:"approved_at_jalali"`
	FirstPaidAt        *time.Time      `json:"first_paid_at"`
	FirstPaidAtJalali  *string         `json:"first_paid_at_jalali"`
	ClosedAt           *time.Time      `json:"closed_at"`
	ClosedAtJalali     *string         `json:"closed_at_jalali"`
	// Version is the stream version of the latest event (If-Match for a
	// command), LastEventPosition its global position.
	Version           uint64 `json:"version"`
	LastEventPosition uint64 `json:"last_event_position"`
}

type inspectionView struct {
	ID        string                    `json:"id"`
	Firm      string                    `json:"firm"`
	Status    facility.InspectionStatus `json:"status"`
	Confirmed bool                      `json:"confirmed"`
	At        time.Time                 `json:"at"`
	AtJalali  string                    `json:"at_jalali"`
}

func facilityViewOf(f facilities.Facility) facilityView {
	v := facilityView{
		ID: f.ID, FiscalYear: f.FiscalYear, Province: f.Province, County: f.County, Agency: f.Agency, Program: f.Program,
		Bank: f.Bank, Stage: f.Stage, Title: f.Title, RequestedRials: f.RequestedRials, ApprovedRials: f.ApprovedRials,
		DisbursedRials: f.DisbursedRials, Tranches: f.Tranches, JobsPromised: f.JobsPromised, JobsReported: f.JobsReported,
		JobsVerified: f.JobsVerified, Inspections: f.Inspections, OpenDeviations: f.OpenDeviations, RecoveredRials: f.RecoveredRials,
		RegisteredAt: f.RegisteredAt.UTC(), RegisteredAtJalali: jalali(f.RegisteredAt),
		ReviewedAt: utcPtr(f.ReviewedAt), ReferredAt: utcPtr(f.ReferredAt), ApprovedAt: utcPtr(f.ApprovedAt),
		FirstPaidAt: utcPtr(f.FirstPaidAt), ClosedAt: utcPtr(f.ClosedAt),
		Version: f.Version, LastEventPosition: f.Position,
	}
	v.ReviewedAtJalali, v.ReferredAtJalali, v.ApprovedAtJalali = jalaliPtr(v.ReviewedAt), jalaliPtr(v.ReferredAt), jalaliPtr(v.ApprovedAt)
	v.FirstPaidAtJalali, v.ClosedAtJalali = jalaliPtr(v.FirstPaidAt), jalaliPtr(v.ClosedAt)
	if in := f.LastInspection; in != nil {
		v.LastInspection = &inspectionView{ID: in.ID, Firm: in.Firm, Status: in.Status, Confirmed: in.Confirmed,
			At: in.At.UTC(), AtJalali: jalali(in.At)}
	}
	return v
}

var facilityCSVHeader = []string{
	"id", "fiscal_year", "province", "county", "agency", "program", "bank", "stage", "title",
	"requested_rials", "approved_rials", "disbursed_rials", "tranches", "jobs_promised", "jobs_reported", "jobs_verified",
	"inspections", "last_inspection_id", "last_inspection_firm", "last_inspection_status", "last_inspection_confirmed",
	"last_inspection_at", "open_deviations", "recovered_rials",
	"registered_at", "registered_at_jalali", "reviewed_at", "reviewed_at_jalali", "referred_at", "referred_at_jalali",
	"approved_at", "approved_at_jalali", "first_paid_at", "first_paid_at_jalali", "closed_at", "closed_at_jalali",
	"version", "last_event_position",
}

func facilityCSV(f facilities.Facility) []string {
	v := facilityViewOf(f)
	var li [5]string
	if in := v.LastInspection; in != nil {
		li = [5]string{in.ID, in.Firm, string(in.Status), csvBool(in.Confirmed), csvTime(in.At)}
	}
	return []string{
		v.ID, csvInt(v.FiscalYear), v.Province, v.County, v.Agency, v.Program, v.Bank, string(v.Stage), csvText(v.Title),
		csvInt(v.RequestedRials), csvInt(v.ApprovedRials), csvInt(v.DisbursedRials), csvInt(v.Tranches), csvInt(v.JobsPromised),
		csvIntPtr(v.JobsReported), csvIntPtr(v.JobsVerified), csvInt(v.Inspections), li[0], li[1], li[2], li[3], li[4],
		csvInt(v.OpenDeviations), csvInt(v.RecoveredRials),
		csvTime(v.RegisteredAt), v.RegisteredAtJalali, csvTimePtr(v.ReviewedAt), csvStr(v.ReviewedAtJalali),
		csvTimePtr(v.ReferredAt), csvStr(v.ReferredAtJalali), csvTimePtr(v.ApprovedAt), csvStr(v.ApprovedAtJalali),
		csvTimePtr(v.FirstPaidAt), csvStr(v.FirstPaidAtJalali), csvTimePtr(v.ClosedAt), csvStr(v.ClosedAtJalali),
		csvInt(v.Version), csvInt(v.LastEventPosition),
	}
}

var stageNames = []string{
	string(facility.StageRegistered), string(facility.StageReferred), string(facility.StageReviewRejected),
	string(facility.StageLoanApproved), string(facility.StageLoanRejected), string(facility.StageDisbursing),
	string(facility.StageDisbursed), string(facility.StageClosed),
}

// ─── GET /v1/facilities ──────────────────────────────────────────────────

func (q *queries) listFacilitiesRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/facilities", Action: auth.ActionReadFacilities, Handle: q.listFacilities,
		Cache: &cacheSpec{model: facilities.Name},
		Doc: routeDoc{
			Summary: "List facilities",
			Description: "Facilities from the facilities read model, filtered (ANDed with the caller's scope: a province office " +
				"sees its province, an agency its own, a bank the facilities referred to it), sorted and paged by cursor." +
				queryDescription + csvDescription,
			Tags: []string{"facilities"},
			Params: append([]paramDoc{
				qpFiscalYear, qpProvince, qpCounty, qpAgency, qpProgram, qpBank,
				qpEnum("stage", "Lifecycle stage.", stageNames...),
				qpEnum("sort", "id (default, ascending), recent (latest change first) or approved (largest approved loan first).",
					"id", "recent", "approved"),
				qpLimit, qpCursor,
			}, qpWait()...),
			Responses: map[int]string{http.StatusOK: "FacilityPage", http.StatusNotAcceptable: "Problem"},
			CSV:       true,
		},
	}
}

func (q *queries) listFacilities(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadFacilities); err != nil {
		return err
	}
	p := newParams(r)
	f := facilities.Filter{
		FiscalYear: p.fiscalYear(), Province: p.province(), County: p.id("county"), Agency: p.id("agency"),
		Program: p.id("program"), Bank: p.id("bank"), Stage: facility.Stage(p.choice("stage", "", stageNames...)),
	}
	sort := facilities.Sort(p.choice("sort", string(facilities.SortID), "id", "recent", "approved"))
	limit := p.limit()
	wt := p.wait(q.s.cfg.MaxWait)
	sc, scopeErr := q.scope(pr, auth.ActionReadFacilities, scoped{province: f.Province, agency: f.Agency, bank: f.Bank})
	f.Province, f.Agency, f.Bank = sc.province, sc.agency, sc.bank
	fp := fingerprint("facilities", f, sort)
	after := p.cursor(fp)
	out, err := checkList(r, p, scopeErr)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := q.await(ctx, w, wt, facilities.Name); err != nil {
		return err
	}
	return serveList(q, w, r, out, fp, after, limit, func(after string, limit int) (page[facilities.Facility], error) {
		res, err := q.facilities.Facilities(ctx, f, facilities.Page{After: after, Limit: limit, Sort: sort})
		return page[facilities.Facility]{res.Facilities, res.Next, res.Position}, err
	}, facilityList)
}

var facilityList = listFormat[facilities.Facility, facilityView]{
	csvName: "facilities", csvHeader: facilityCSVHeader, csvRow: facilityCSV, view: facilityViewOf,
}

// ─── GET /v1/facilities/{id} ─────────────────────────────────────────────

// facilityAnswer is one facility; AsOf or AsOfPosition say which past
// state was rebuilt, when one was asked for.
type facilityAnswer struct {
	Facility     facilityView `json:"facility"`
	AsOf         *time.Time   `json:"as_of,omitempty"`
	AsOfJalali   *string      `json:"as_of_jalali,omitempty"`
	AsOfPosition *uint64      `json:"as_of_position,omitempty"`
	Position     uint64       `json:"position"`
}

func (q *queries) facilityRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/facilities/{id}", Action: auth.ActionReadFacilities, Handle: q.facility,
		Cache: &cacheSpec{model: facilities.Name, replays: asOfParams},
		Doc: routeDoc{
			Summary: "One facility, now or as it stood at a past moment",
			Description: "Without as_of or as_of_position: the facility's row in the facilities read model (min_position applies)." +
				queryDescription + "\n\n" +
				"With as_of or as_of_position, the facility is rebuilt from its events (folded with the facility aggregate's Evolve), " +
				"on one of two time axes:\n" +
				"- as_of=T (business time): every event whose occurred_at is at or before T, as the ledger knows them now, " +
				"backdated events and corrections dated up to T included. \"What was true at T, by what we know today.\"\n" +
				"- as_of_position=N (system time): every event with a global position up to N, whatever its business time. " +
				"\"What the ledger had recorded at N\"; it equals what the facilities read model showed at position N.\n" +
				"The answer's position is N for as_of_position, and the log head the answer was read at for as_of. " +
				"A facility not yet registered at that moment is 404. " +
				"A facility outside the caller's scope (judged by its current state) is 404 as if it did not exist.",
			Tags: []string{"facilities"},
			Params: append([]paramDoc{
				qpPath("id", "Facility id."),
				{Name: "as_of", In: "query", Description: "Business time: ISO 8601 (2024-12-05, 2024-12-05T14:30:00Z) or Solar Hijri (1403/09/15, 1403/09/15 14:30; Persian digits accepted); times without a zone are Tehran time.",
					Schema: map[string]any{"type": "string"}},
				{Name: "as_of_position", In: "query", Description: "System time: a global log position, at most the log's head.",
					Schema: map[string]any{"type": "integer", "minimum": 1}},
			}, qpWait()...),
			Responses: map[int]string{http.StatusOK: "FacilityAnswer", http.StatusNotFound: "Problem", http.StatusNotAcceptable: "Problem"},
		},
	}
}

func facilityNotFound(id string) error { return &domain.NotFoundError{Kind: "facility", ID: id} }

func (q *queries) facility(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadFacilities); err != nil {
		return err
	}
	id := r.PathValue("id")
	p := newParams(r)
	asOf, byTime := p.time("as_of")
	asOfPos, byPos := p.uint("as_of_position")
	if byPos && asOfPos == 0 {
		p.v.Add("as_of_position", "out_of_range", "must be a log position, 1 or more", "باید موقعیتی در دفتر، ۱ یا بیشتر باشد")
	}
	if byTime && byPos {
		p.v.Add("as_of_position", "conflict", "give as_of or as_of_position, not both", "تنها یکی از as_of یا as_of_position را بدهید")
	}
	wt := p.wait(q.s.cfg.MaxWait)
	if err := p.check(); err != nil {
		return err
	}
	if _, err := negotiate(r, false); err != nil {
		return err
	}
	if !facility.ValidID(id) {
		return facilityNotFound(id)
	}
	ctx := r.Context()
	if byTime || byPos {
		return q.facilityAsOf(ctx, w, pr, id, wt, asOf, byTime, asOfPos)
	}
	if err := q.await(ctx, w, wt, facilities.Name); err != nil {
		return err
	}
	f, pos, err := q.facilities.Facility(ctx, id)
	if err != nil {
		return err
	}
	res := auth.Resource{Province: f.Province, Agency: f.Agency, Bank: f.Bank}
	if err := q.s.policy.Authorize(pr, auth.ActionReadFacilities, res); err != nil {
		return hidden(err, facilityNotFound(id))
	}
	return answer(w, pos, facilityAnswer{Facility: facilityViewOf(f), Position: pos})
}

// history reads a facility's stream as the log stood at its head, and
// checks that pr may take action a on the facility (by its current state;
// out of scope is not found). It returns the events and the head.
func (q *queries) history(ctx context.Context, pr auth.Principal, a auth.Action, id string) ([]ledger.Loaded, uint64, error) {
	head, err := q.s.cfg.Store.Head(ctx)
	if err != nil {
		return nil, 0, err
	}
	all, _, err := q.s.cfg.Service.Ledger().Load(ctx, facility.Stream(id))
	if err != nil {
		return nil, 0, err
	}
	// Events appended after the head was read are left out, so that the
	// answer is exactly the log at its position.
	n := len(all)
	for n > 0 && all[n-1].Envelope.Position > head.Position {
		n--
	}
	events := all[:n]
	if len(events) == 0 {
		return nil, 0, facilityNotFound(id)
	}
	current := foldFacility(events, nil)
	if err := q.s.policy.Authorize(pr, a, auth.FacilityResource(current.state)); err != nil {
		return nil, 0, hidden(err, facilityNotFound(id))
	}
	return events, head.Position, nil
}

func (q *queries) facilityAsOf(ctx context.Context, w http.ResponseWriter, pr auth.Principal, id string, wt waitSpec,
	asOf time.Time, byTime bool, asOfPos uint64) error {
	if err := q.awaitLog(ctx, w, wt); err != nil {
		return err
	}
	events, head, err := q.history(ctx, pr, auth.ActionReadFacilities, id)
	if err != nil {
		return err
	}
	ans := facilityAnswer{Position: head}
	var keep func(ledger.Loaded) bool
	var when, whenFa string
	if byTime {
		t := asOf.UTC()
		ans.AsOf, ans.AsOfJalali = &t, jalaliPtr(&t)
		keep = func(h ledger.Loaded) bool { return !h.Envelope.OccurredAt.After(t) }
		when = t.Format(time.RFC3339)
		whenFa = calendar.PersianDigits(calendar.FormatJalaliTime(t))
	} else {
		if asOfPos > head {
			var v domain.Validator
			v.Add("as_of_position", "beyond_head", fmt.Sprintf("the log's head is at position %d", head),
				calendar.PersianDigits(fmt.Sprintf("سر دفتر در موقعیت %d است", head)))
			return v.Err()
		}
		ans.AsOfPosition, ans.Position = &asOfPos, asOfPos
		keep = func(h ledger.Loaded) bool { return h.Envelope.Position <= asOfPos }
		when = "position " + strconv.FormatUint(asOfPos, 10)
		whenFa = "موقعیت " + calendar.PersianDigits(strconv.FormatUint(asOfPos, 10))
	}
	f := foldFacility(events, keep)
	if !f.state.Exists() {
		return fail(probNotFound, fmt.Sprintf("facility %q had not been registered as of %s", id, when),
			fmt.Sprintf("طرح %q تا %s ثبت نشده بود", id, whenFa))
	}
	ans.Facility = facilityViewOf(f.public())
	return answer(w, ans.Position, ans)
}

// folded is a facility's state folded from (some of) its events, with the
// dates of the steps the state itself does not keep.
type folded struct {
	state                                      facility.Facility
	reviewedAt, referredAt, approvedAt, closed *time.Time
	position                                   uint64
}

// fold folds the events keep selects (all when nil) with the facility
// aggregate's Evolve, in stream order.
func foldFacility(events []ledger.Loaded, keep func(ledger.Loaded) bool) folded {
	d := facility.Decider()
	f := folded{state: d.Initial()}
	for _, h := range events {
		if keep != nil && !keep(h) {
			continue
		}
		f.state = d.Evolve(f.state, h.Recorded)
		f.position = h.Envelope.Position
		at := h.Envelope.OccurredAt
		switch e := h.Recorded.Event.(type) {
		case facility.ReviewedV1:
			f.reviewedAt = &at
			if e.Decision == facility.ReviewApproved {
				f.referredAt = &at
			}
		case facility.LoanApprovedV1:
			f.approvedAt = &at
		case facility.ClosedV1:
			f.closed = &at
		}
	}
	return f
}

// public returns the folded facility in the read model's terms.
func (f folded) public() facilities.Facility {
	s := f.state
	out := facilities.Facility{
		ID: s.ID(), FiscalYear: s.FiscalYear(), Province: s.Province(), County: s.County(), Agency: s.Agency(),
		Program: s.Program(), Bank: s.Bank(), Stage: s.Stage(), Title: s.Title(), RequestedRials: s.RequestedRials(),
		ApprovedRials: s.ApprovedRials(), DisbursedRials: s.DisbursedRials(), Tranches: s.TrancheCount(),
		JobsPromised: s.JobsPromised(), Inspections: len(s.Inspections()), OpenDeviations: len(s.OpenDeviations()),
		RecoveredRials: s.RecoveredRials(), RegisteredAt: s.RegisteredAt(),
		ReviewedAt: f.reviewedAt, ReferredAt: f.referredAt, ApprovedAt: f.approvedAt, ClosedAt: f.closed,
		Version: s.Version(), Position: f.position,
	}
	if n, ok := s.JobsReported(); ok {
		out.JobsReported = &n
	}
	if n, ok := s.JobsVerified(); ok {
		out.JobsVerified = &n
	}
	if t := s.FirstPaidAt(); !t.IsZero() {
		out.FirstPaidAt = &t
	}
	if in, ok := s.LastInspection(); ok {
		out.LastInspection = &facilities.Inspection{ID: in.ID, Firm: in.Firm, Status: in.Status, Confirmed: in.Confirmed, At: in.At}
	}
	return out
}

// ─── GET /v1/facilities/{id}/events ──────────────────────────────────────

// eventView is a stored event with its full envelope. Data is the payload
// byte for byte, so that a client can recompute the hash chain
// (eventstore.Chain over eventstore.Canonical).
type eventView struct {
	ID               string           `json:"id"`
	Type             string           `json:"type"`
	Stream           string           `json:"stream"`
	Version          uint64           `json:"version"`
	Position         uint64           `json:"position"`
	OccurredAt       time.Time        `json:"occurred_at"`
	OccurredAtJalali string           `json:"occurred_at_jalali"`
	RecordedAt       time.Time        `json:"recorded_at"`
	RecordedAtJalali string           `json:"recorded_at_jalali"`
	BackdateReason   string           `json:"backdate_reason,omitempty"`
	Actor            eventstore.Actor `json:"actor"`
	IdempotencyKey   string           `json:"idempotency_key,omitempty"`
	CorrelationID    string           `json:"correlation_id,omitempty"`
	CausationID      string           `json:"causation_id,omitempty"`
	Data             json.RawMessage  `json:"data"`
	Hash             string           `json:"hash"`
	PrevHash         string           `json:"prev_hash"`
}

func eventViewOf(e *eventstore.Event) eventView {
	return eventView{
		ID: e.ID, Type: e.Type, Stream: e.Stream, Version: e.Version, Position: e.Position,
		OccurredAt: e.OccurredAt.UTC(), OccurredAtJalali: jalali(e.OccurredAt),
		RecordedAt: e.RecordedAt.UTC(), RecordedAtJalali: jalali(e.RecordedAt),
		BackdateReason: e.BackdateReason, Actor: e.Actor, IdempotencyKey: e.IdempotencyKey,
		CorrelationID: e.CorrelationID, CausationID: e.CausationID, Data: json.RawMessage(e.Data),
		Hash: e.Hash.String(), PrevHash: e.PrevHash.String(),
	}
}

func (q *queries) facilityEventsRoute() route {
	return route{
		Method: http.MethodGet, Pattern: "/v1/facilities/{id}/events", Action: auth.ActionReadEvents, Handle: q.facilityEvents,
		Doc: routeDoc{
			Summary: "A facility's event history",
			Description: "The facility's stream, oldest first, each event with its full envelope (ids, type, stream version, " +
				"global position, business time occurred_at and system time recorded_at in both calendars, actor, correlation and " +
				"causation ids, data, hash and prev_hash), paged by cursor. data is the payload byte for byte, so the hash chain can " +
				"be checked; applicants' personal data appears in it only sealed (a keyed pseudonym and ciphertext), never decrypted. " +
				"The answer's position is the log head it was read at; min_position waits for the log to reach a position. " +
				"A facility outside the caller's scope is 404 as if it did not exist.",
			Tags: []string{"facilities", "history"},
			Params: append([]paramDoc{
				qpPath("id", "Facility id."),
				qpLimit, qpCursor,
			}, qpWait()...),
			Responses: map[int]string{http.StatusOK: "EventPage", http.StatusNotFound: "Problem", http.StatusNotAcceptable: "Problem"},
		},
	}
}

func (q *queries) facilityEvents(w http.ResponseWriter, r *http.Request, pr auth.Principal) error {
	if _, err := q.readFilter(pr, auth.ActionReadEvents); err != nil {
		return err
	}
	id := r.PathValue("id")
	p := newParams(r)
	limit := p.limit()
	wt := p.wait(q.s.cfg.MaxWait)
	fp := fingerprint("events", id)
	after := p.cursor(fp)
	var from uint64
	if after != "" {
		n, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			p.v.Add("cursor", "malformed", "is not a cursor this API returned", "مکان‌نمایی نیست که این API برگردانده باشد")
		}
		from = n
	}
	if err := p.check(); err != nil {
		return err
	}
	if _, err := negotiate(r, false); err != nil {
		return err
	}
	if !facility.ValidID(id) {
		return facilityNotFound(id)
	}
	ctx := r.Context()
	if err := q.awaitLog(ctx, w, wt); err != nil {
		return err
	}
	events, head, err := q.history(ctx, pr, auth.ActionReadEvents, id)
	if err != nil {
		return err
	}
	// Versions are 1, 2, ... in order: the page after version v starts at
	// index v.
	start := int(min(from, uint64(len(events))))
	end := min(start+limit, len(events))
	items := make([]eventView, 0, end-start)
	for i := start; i < end; i++ {
		items = append(items, eventViewOf(&events[i].Envelope))
	}
	var next string
	if end < len(events) {
		next = sealCursor(fp, strconv.FormatUint(events[end-1].Envelope.Version, 10))
	}
	return answer(w, head, newListPage(r, items, next, head))
}
