package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

// ─── harness ─────────────────────────────────────────────────────────────

// cmdEnv is a server over a real store, ledger service and read-model
// database, behind an httptest server whose answers are checked against
// the OpenAPI document.
type cmdEnv struct {
	t      *testing.T
	env    *projectionstest.Env
	svc    *ledger.Service
	srv    *Server
	url    string
	issuer *auth.Issuer
	tokens map[auth.Principal]string
}

// Principals of the tests. The dev principals act for Tehran (IR-23), the
// Relief Committee, Bank Melli and Tehran's inspection firm.
var (
	asMinistry  = auth.DevPrincipal(auth.RoleMinistry)
	asAgency    = auth.DevPrincipal(auth.RoleAgency)
	asBank      = auth.DevPrincipal(auth.RoleBank)
	asInspector = auth.DevPrincipal(auth.RoleInspector)
	asAuditor   = auth.DevPrincipal(auth.RoleAuditor)
	asAdmin     = auth.DevPrincipal(auth.RoleAdmin)
	asProvince  = auth.DevPrincipal(auth.RoleProvinceOffice)

	asOtherAgency   = auth.Principal{Subject: "welfare-desk", Role: auth.RoleAgency, Scope: auth.Scope{Kind: auth.ScopeAgency, ID: "welfare"}}
	asOtherBank     = auth.Principal{Subject: "keshavarzi-branch-7", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "keshavarzi"}}
	asOtherProvince = auth.Principal{Subject: "markazi-office", Role: auth.RoleProvinceOffice, Scope: auth.Scope{Kind: auth.ScopeProvince, ID: "IR-00"}}
	asOtherMinistry = auth.Principal{Subject: "ministry-desk-2", Role: auth.RoleMinistry, Scope: auth.National}
)

type cmdOption func(*Config)

func newCmdEnv(t *testing.T, b projectionstest.Backend, opts ...cmdOption) *cmdEnv {
	t.Helper()
	env := b.Open(t)
	svc := env.Service(t)
	cat := auth.CatalogFunc(func(k reference.Kind, id string) bool {
		c, err := svc.Catalog(context.Background())
		return err == nil && c.Has(k, id)
	})
	cfg := Config{
		Store: env.Store, Service: svc, ReadModels: env.DB, Auth: auth.DevVerifier(cat, time.Now),
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := New(cfg)
	ts := httptest.NewServer(newContract(t, srv))
	t.Cleanup(ts.Close)
	return &cmdEnv{t: t, env: env, svc: svc, srv: srv, url: ts.URL, issuer: auth.DevIssuer(time.Now), tokens: map[auth.Principal]string{}}
}

func (e *cmdEnv) token(p auth.Principal) string {
	e.t.Helper()
	if tok, ok := e.tokens[p]; ok {
		return tok
	}
	tok, _, err := e.issuer.Issue(p, time.Hour)
	require.NoError(e.t, err)
	e.tokens[p] = tok
	return tok
}

// cmdReply is an answer as the client saw it.
type cmdReply struct {
	Status int
	Header http.Header
	Body   []byte
}

// send posts body (a string is sent as it is, anything else as JSON) with
// extra headers given as name, value pairs; p nil sends no token.
func (e *cmdEnv) send(p *auth.Principal, path string, body any, headers ...string) cmdReply {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		raw, err = json.Marshal(body)
		require.NoError(e.t, err)
	}
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(raw))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	if p != nil {
		req.Header.Set("Authorization", "Bearer "+e.token(*p))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		switch headers[i] {
		case "Content-Type", "Authorization":
			req.Header.Set(headers[i], headers[i+1])
		default:
			req.Header.Add(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return cmdReply{Status: res.StatusCode, Header: res.Header, Body: out}
}

// post sends a command as p.
func (e *cmdEnv) post(p auth.Principal, path string, body any, headers ...string) cmdReply {
	e.t.Helper()
	return e.send(&p, path, body, headers...)
}

// ok sends a command that must succeed with status and returns its result,
// checked against its headers.
func (e *cmdEnv) ok(status int, p auth.Principal, path string, body any, headers ...string) CommandResult {
	e.t.Helper()
	r := e.post(p, path, body, headers...)
	require.Equal(e.t, status, r.Status, "%s: %s", path, r.Body)
	return r.result(e.t)
}

func (r cmdReply) result(t *testing.T) CommandResult {
	t.Helper()
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var res CommandResult
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&res), "%s", r.Body)
	require.Equal(t, `"`+strconv.FormatUint(res.Version, 10)+`"`, r.Header.Get("ETag"))
	require.Equal(t, strconv.FormatUint(res.Position, 10), r.Header.Get("Payesh-Position"))
	return res
}

// cmdProblem is a problem document as a client reads it.
type cmdProblem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Errors []FieldProblem `json:"errors"`
	Extra  map[string]any `json:"-"`
}

// refused checks that r is a problem of the given status and type (the slug
// after urn:payesh:problem:) and returns it.
func (r cmdReply) refused(t *testing.T, status int, slug string) cmdProblem {
	t.Helper()
	require.Equal(t, status, r.Status, "%s", r.Body)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	var p cmdProblem
	require.NoError(t, json.Unmarshal(r.Body, &p))
	require.NoError(t, json.Unmarshal(r.Body, &p.Extra))
	require.Equal(t, ProblemTypeBase+slug, p.Type, "%s", r.Body)
	require.Equal(t, status, p.Status)
	return p
}

// field returns the field problem for name.
func (p cmdProblem) field(t *testing.T, name string) FieldProblem {
	t.Helper()
	for _, f := range p.Errors {
		if f.Field == name {
			return f
		}
	}
	require.Failf(t, "no field problem", "no problem with %q in %+v", name, p.Errors)
	return FieldProblem{}
}

func (e *cmdEnv) head() uint64 {
	e.t.Helper()
	return e.env.Head(e.t)
}

// event reads one stored event by stream and version.
func (e *cmdEnv) event(stream string, version uint64) eventstore.Event {
	e.t.Helper()
	evs, err := e.env.Store.ReadStream(context.Background(), stream, version, eventstore.Forwards, 1)
	require.NoError(e.t, err)
	require.Len(e.t, evs, 1)
	return evs[0]
}

func (e *cmdEnv) facility(id string) facility.Facility {
	e.t.Helper()
	f, _, err := ledger.State(context.Background(), e.svc.Ledger(), facility.Stream(id), facility.Decider(), nil)
	require.NoError(e.t, err)
	return f
}

// ─── fixtures ────────────────────────────────────────────────────────────

const cmdQuotaPath = "/v1/quotas/1403/home-business"

func cmdAllocation(agency, province string, rials int64) map[string]any {
	return map[string]any{
		"account":      map[string]any{"agency": agency, "province": province},
		"amount_rials": rials, "jobs_target": 100,
		"legal_basis": "1403 budget law note 18", "decision_ref": "D-1403-77",
	}
}

func cmdRegistration(id string, seq uint64) map[string]any {
	return map[string]any{
		"facility_id": id, "fiscal_year": 1403, "program": "home-business",
		"province": "IR-23", "county": "IR-23-tehran", "title": "tailoring workshop",
		"requested_rials": 1_500_000_000, "jobs_promised": 3,
		"applicant": map[string]any{"national_id": nationalid.Generate(seq), "name": "Zahra Ahmadi", "phone": "09120000000"},
	}
}

// fund allocates quota for the Relief Committee in Tehran.
func (e *cmdEnv) fund() {
	e.t.Helper()
	e.ok(http.StatusCreated, asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("relief-committee", "IR-23", 20_000_000_000))
}

// referred registers a facility and refers it to bank.
func (e *cmdEnv) referred(id string, seq uint64, bank string) {
	e.t.Helper()
	e.ok(http.StatusCreated, asAgency, "/v1/facilities", cmdRegistration(id, seq))
	e.ok(http.StatusOK, asAgency, "/v1/facilities/"+id+"/review", map[string]any{"decision": "approved", "bank": bank})
}

// paid takes a facility to its first tranche, paid by Bank Melli.
func (e *cmdEnv) paid(id string, seq uint64) {
	e.t.Helper()
	e.referred(id, seq, "melli")
	e.ok(http.StatusOK, asBank, "/v1/facilities/"+id+"/approval", map[string]any{"amount_rials": 1_000_000_000})
	e.ok(http.StatusCreated, asBank, "/v1/facilities/"+id+"/tranches", map[string]any{"amount_rials": 400_000_000})
}

// ─── lifecycle ───────────────────────────────────────────────────────────

func TestCommandsFacilityLifecycle(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		e.fund()

		// Registration, with Persian digits in the national ID and a Solar
		// Hijri business date recorded late with a reason.
		reg := cmdRegistration("f-life-1", 1)
		nid := nationalid.Generate(1)
		reg["applicant"].(map[string]any)["national_id"] = calendar.PersianDigits(nid)
		reg["occurred_at"] = "۱۴۰۳/۰۹/۱۵ ۱۰:۳۰"
		reg["backdate_reason"] = "registered on paper during the outage"
		r := e.post(asAgency, "/v1/facilities", reg)
		res := r.result(t)
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		require.Equal(t, "/v1/facilities/f-life-1", r.Header.Get("Location"))
		require.Equal(t, "facility-f-life-1", res.Stream)
		require.Len(t, res.EventIDs, 1)
		require.Equal(t, uint64(1), res.Version)
		require.False(t, res.Duplicate)
		require.Equal(t, e.head(), res.Position)
		ev := e.event("facility-f-life-1", 1)
		require.Equal(t, res.EventIDs[0], ev.ID)
		require.Equal(t, asAgency.Actor(), ev.Actor, "the actor comes from the token")
		want, err := calendar.ParseDate("1403/09/15 10:30")
		require.NoError(t, err)
		require.True(t, want.Equal(ev.OccurredAt), "%s", ev.OccurredAt)
		require.Equal(t, "registered on paper during the outage", ev.BackdateReason)
		all, err := e.env.Store.ReadAll(context.Background(), 0, 10_000, eventstore.Filter{})
		require.NoError(t, err)
		for _, x := range all {
			require.NotContains(t, string(x.Data), nid, "the national ID never enters the log")
			require.NotContains(t, string(x.Data), "Zahra", "nor the name")
		}

		id := "/v1/facilities/f-life-1"
		res = e.ok(http.StatusOK, asAgency, id+"/review", map[string]any{"decision": "approved", "bank": "melli", "notes": "sound plan"})
		require.Equal(t, uint64(2), res.Version)
		f := e.facility("f-life-1")
		require.Equal(t, facility.StageReferred, f.Stage())
		require.Equal(t, asAgency.Subject, f.Expert(), "expert defaults to the caller")

		res = e.ok(http.StatusOK, asBank, id+"/approval", map[string]any{"amount_rials": 1_000_000_000})
		require.Equal(t, uint64(3), res.Version)
		require.Equal(t, "relief-committee/IR-23", e.facility("f-life-1").QuotaAccount())
		require.Equal(t, asBank.Actor(), e.event("facility-f-life-1", 3).Actor)

		tr1 := e.ok(http.StatusCreated, asBank, id+"/tranches", map[string]any{"amount_rials": 400_000_000})
		e.ok(http.StatusCreated, asBank, id+"/tranches", map[string]any{"amount_rials": 100_000_000, "tranche": 2})
		bankJobs := e.ok(http.StatusCreated, asBank, id+"/job-reports", map[string]any{"jobs": 2, "period": "1403-Q3"})
		agencyJobs := e.ok(http.StatusCreated, asAgency, id+"/job-reports", map[string]any{"jobs": 3})
		e.ok(http.StatusCreated, asInspector, id+"/inspections", map[string]any{
			"inspection_id": "in-1", "guideline_version": "1403-v2", "status": "active", "confirmed": true, "verified_jobs": 2,
		})
		e.ok(http.StatusCreated, asMinistry, id+"/deviations", map[string]any{
			"deviation_id": "d-1", "kind": "discrepancy", "inspection_id": "in-1", "description": "3 jobs reported, 2 seen",
		})
		e.ok(http.StatusCreated, asAuditor, id+"/deviations/d-1/evidence", map[string]any{"evidence": "site photos", "document_ref": "DOC-9"})
		e.ok(http.StatusOK, asProvince, id+"/deviations/d-1/resolution", map[string]any{"resolution": "corrected", "note": "figure corrected"})
		e.ok(http.StatusCreated, asAgency, id+"/corrections", map[string]any{
			"corrects_event_id": agencyJobs.EventIDs[0], "field": "jobs", "new_value": 2, "reason": "counted the owner twice",
		})
		e.ok(http.StatusCreated, asBank, id+"/corrections", map[string]any{
			"corrects_event_id": tr1.EventIDs[0], "field": "amount_rials", "new_value": 450_000_000, "reason": "typo",
		})
		e.ok(http.StatusCreated, asInspector, id+"/corrections", map[string]any{
			"corrects_event_id": e.facility("f-life-1").Inspections()[0].EventID, "field": "confirmed", "new_value": false, "reason": "re-read",
		})
		before := e.head()
		res = e.ok(http.StatusOK, asAgency, id+"/closure", map[string]any{"reason": "plan completed"})
		require.Equal(t, before+2, e.head(), "the closure and the release of the unpaid charge")
		require.Equal(t, before+1, res.Position, "the answer names the facility's own event")

		f = e.facility("f-life-1")
		require.Equal(t, facility.StageClosed, f.Stage())
		require.Equal(t, int64(550_000_000), f.DisbursedRials())
		reports := f.JobsReports()
		require.Len(t, reports, 2)
		require.Equal(t, bankJobs.EventIDs[0], reports[0].EventID)
		require.Equal(t, facility.ReportedByBank, reports[0].ReportedBy, "reported_by defaults to the caller's kind")
		require.Equal(t, 2, reports[1].Jobs, "corrected")
		require.False(t, f.Inspections()[0].Confirmed, "corrected")
		d, ok := f.Deviation("d-1")
		require.True(t, ok)
		require.False(t, d.Open())
		require.Equal(t, asInspector.Scope.ID, f.Inspections()[0].Firm, "the firm defaults to the caller's")

		// A second plan, refused by its bank.
		e.referred("f-life-2", 2, "melli")
		e.ok(http.StatusOK, asBank, "/v1/facilities/f-life-2/rejection", map[string]any{"reason": "no collateral"})
		require.Equal(t, facility.StageLoanRejected, e.facility("f-life-2").Stage())

		// A registration without an ID gets one.
		reg = cmdRegistration("", 3)
		delete(reg, "facility_id")
		r = e.post(asAgency, "/v1/facilities", reg)
		res = r.result(t)
		require.Equal(t, http.StatusCreated, r.Status)
		newID, ok := facility.IDFromStream(res.Stream)
		require.True(t, ok, res.Stream)
		require.Equal(t, "/v1/facilities/"+newID, r.Header.Get("Location"))
		require.True(t, e.facility(newID).Exists())
	})
}

func TestCommandsQuota(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		body := cmdAllocation("relief-committee", "IR-23", 5_000_000_000)
		body["occurred_at"] = "2024-04-02"
		body["backdate_reason"] = "allocated by letter"
		a1 := e.ok(http.StatusCreated, asMinistry, "/v1/quotas/۱۴۰۳/home-business/allocations", body)
		require.Equal(t, "quota-1403-home-business", a1.Stream)
		require.Equal(t, uint64(1), a1.Version)
		ev := e.event(a1.Stream, 1)
		require.Equal(t, asMinistry.Actor(), ev.Actor)
		require.Equal(t, "allocated by letter", ev.BackdateReason)

		a2 := e.ok(http.StatusCreated, asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("welfare", "IR-00", 1_000_000_000))
		require.Equal(t, uint64(2), a2.Version)
		tr := e.ok(http.StatusCreated, asMinistry, cmdQuotaPath+"/transfers", map[string]any{
			"transfer_id": "T-1", "from": map[string]any{"agency": "relief-committee", "province": "IR-23"},
			"to": map[string]any{"agency": "welfare", "province": "IR-00"}, "amount_rials": 2_000_000_000, "jobs_target": 10,
			"legal_basis": "note 1, clause A of article 6", "decision_ref": "MIN-1403-12", "proposal_id": "P-4",
		})
		require.Equal(t, uint64(3), tr.Version)
		e.ok(http.StatusCreated, asMinistry, cmdQuotaPath+"/allocation-corrections", map[string]any{
			"corrects_event_id": a2.EventIDs[0], "amount_rials": 1_200_000_000, "jobs_target": 100, "reason": "decision amended",
		})

		ql, version, err := ledger.State(context.Background(), e.svc.Ledger(), a1.Stream, quota.Decider(), nil)
		require.NoError(t, err)
		require.Equal(t, uint64(4), version)
		from, _ := ql.Account(quota.AccountKey{Agency: "relief-committee", Province: "IR-23"})
		to, _ := ql.Account(quota.AccountKey{Agency: "welfare", Province: "IR-00"})
		require.Equal(t, int64(3_000_000_000), from.FreeRials())
		require.Equal(t, int64(3_200_000_000), to.FreeRials())

		// More than is free: refused with the figures, nothing appended.
		before := e.head()
		p := e.post(asMinistry, cmdQuotaPath+"/transfers", map[string]any{
			"transfer_id": "T-2", "from": map[string]any{"agency": "relief-committee", "province": "IR-23"},
			"to": map[string]any{"agency": "welfare", "province": "IR-00"}, "amount_rials": 3_000_000_001,
			"legal_basis": "note 1", "decision_ref": "MIN-1403-13",
		}).refused(t, http.StatusConflict, "quota-exceeded")
		require.Contains(t, p.Detail, "3000000000")
		require.Equal(t, before, e.head())

		// Every command that reached the ledger, refused or not, was timed.
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		require.Contains(t, rec.Body.String(), "\npayesh_append_duration_seconds_count 5\n")
	})
}

func TestCommandsReference(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		res := e.ok(http.StatusCreated, asAdmin, "/v1/reference/banks", map[string]any{
			"id": "ayandeh", "name_en": "Ayandeh Bank", "name_fa": "بانک آینده", "valid_from": "1403/01/01",
		})
		require.Equal(t, reference.Stream, res.Stream)
		cat, err := e.svc.Catalog(context.Background())
		require.NoError(t, err)
		require.True(t, cat.Has(reference.KindBank, "ayandeh"))

		e.ok(http.StatusCreated, asAdmin, "/v1/reference/agencies", map[string]any{
			"id": "red-crescent", "name_en": "Red Crescent", "name_fa": "هلال احمر", "valid_from": "2024-03-20",
		})
		e.ok(http.StatusCreated, asAdmin, "/v1/reference/programs", map[string]any{
			"id": "craft-hubs", "name_en": "Craft hubs", "name_fa": "کانون‌های صنایع دستی", "max_loan_rials": 500_000_000, "valid_from": "1403/01/01",
		})
		e.ok(http.StatusCreated, asAdmin, "/v1/reference/counties", map[string]any{
			"id": "IR-23-new-town", "province": "IR-23", "name_en": "New Town", "name_fa": "شهر نو", "valid_from": "1403/06/01",
		})
		e.ok(http.StatusCreated, asAdmin, "/v1/reference/firms", map[string]any{
			"id": "alborz-audit", "name_en": "Alborz Audit", "name_fa": "حسابرسی البرز", "seat_province": "IR-30", "valid_from": "1403/01/01",
		})
		rename := map[string]any{"name_en": "Ayandeh Bank (merged)", "name_fa": "بانک آینده (ادغام‌شده)", "valid_from": "1403/08/01"}
		res = e.ok(http.StatusOK, asAdmin, "/v1/reference/banks/ayandeh/names", rename)
		require.Len(t, res.EventIDs, 1)
		// The same names again change nothing.
		before := e.head()
		res = e.ok(http.StatusOK, asAdmin, "/v1/reference/banks/ayandeh/names", rename)
		require.Empty(t, res.EventIDs)
		require.Zero(t, res.Position)
		require.Equal(t, before, e.head())

		// The new bank can be named at once (a token for it is accepted, and
		// a review may refer plans to it).
		e.fund()
		e.referred("f-ref-1", 1, "ayandeh")
		newBank := auth.Principal{Subject: "ayandeh-1", Role: auth.RoleBank, Scope: auth.Scope{Kind: auth.ScopeBank, ID: "ayandeh"}}
		e.ok(http.StatusOK, newBank, "/v1/facilities/f-ref-1/approval", map[string]any{"amount_rials": 100_000_000})

		e.post(asAdmin, "/v1/reference/banks", map[string]any{
			"id": "ayandeh", "name_en": "Ayandeh", "name_fa": "آینده", "valid_from": "1403/01/01",
		}).refused(t, http.StatusConflict, "conflict")
		e.post(asAdmin, "/v1/reference/firms/nobody/names", rename).refused(t, http.StatusNotFound, "not-found")
		p := e.post(asAdmin, "/v1/reference/counties", map[string]any{
			"id": "IR-23-x", "province": "IR-23", "name_en": "X", "name_fa": "X", "valid_from": "1403/01/01",
		}).refused(t, http.StatusUnprocessableEntity, "validation")
		p.field(t, "name_fa")
		// fund 1, registration 2 (claim, facility), review 1, approval 2
		// (charge, approval); the refusals nothing.
		require.Equal(t, before+6, e.head())
	})
}
