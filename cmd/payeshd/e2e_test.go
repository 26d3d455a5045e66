package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/payesh/payesh/eventstore/kurrentdb/kurrenttest"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/internal/pgtest"
)

// client drives a running payeshd over HTTP and checks every answer
// against the OpenAPI document the server itself serves: the status must
// be declared for the route, the body must validate against its schema.
// It remembers which routes it reached, so the test can insist on all.
type client struct {
	t       *testing.T
	base    string
	doc     map[string]any
	schemas *jsonschema.Compiler
	tokens  map[auth.Role]string
	reached map[string]bool // "METHOD pattern"
	last    uint64          // the highest position a command answered with
}

func newClient(t *testing.T, base string) *client {
	t.Helper()
	resp, err := http.Get(base + "/openapi.json")
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	require.NoError(t, c.AddResource("payesh:openapi.json", v))
	issuer := auth.DevIssuer(time.Now)
	tokens := map[auth.Role]string{}
	for _, role := range auth.Roles() {
		tok, _, err := issuer.Issue(auth.DevPrincipal(role), time.Hour)
		require.NoError(t, err)
		tokens[role] = tok
	}
	return &client{t: t, base: base, doc: doc, schemas: c, tokens: tokens, reached: map[string]bool{}}
}

// answer is a response, read.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.Body, &m), "%s", a.Body)
	return m
}

// do calls pattern (with its {params} filled from vars, and query) as
// role, and checks the answer against the document.
func (c *client) do(role auth.Role, method, pattern string, vars map[string]string, query url.Values, body any, header ...string) answer {
	t := c.t
	t.Helper()
	path := pattern
	for k, v := range vars {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	require.NotContains(t, path, "{", "unfilled parameter in %s", pattern)
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+c.tokens[role])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	c.check(method, pattern, a)
	c.reached[method+" "+pattern] = true
	if method == http.MethodPost && a.Status < 300 {
		if p, err := strconv.ParseUint(a.Header.Get("Payesh-Position"), 10, 64); err == nil {
			c.last = max(c.last, p)
		}
	}
	return a
}

// ok calls and requires a 2xx.
func (c *client) ok(role auth.Role, method, pattern string, vars map[string]string, query url.Values, body any) answer {
	c.t.Helper()
	a := c.do(role, method, pattern, vars, query, body)
	require.Less(c.t, a.Status, 300, "%s %s as %s: %s", method, pattern, role, a.Body)
	return a
}

func (c *client) check(method, pattern string, a answer) {
	t := c.t
	t.Helper()
	where := fmt.Sprintf("%s %s → %d", method, pattern, a.Status)
	op, ok := c.doc["paths"].(map[string]any)[pattern].(map[string]any)[strings.ToLower(method)].(map[string]any)
	require.True(t, ok, "%s: not in the served document", where)
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(a.Status)].(map[string]any)
	require.True(t, ok, "%s: status not declared; body %s", where, a.Body)
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		return
	}
	ct, _, err := mime.ParseMediaType(a.Header.Get("Content-Type"))
	require.NoError(t, err, where)
	require.Contains(t, content, ct, where)
	if ct == "text/csv" {
		return
	}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	sch, err := c.schemas.Compile(fmt.Sprintf("payesh:openapi.json#/paths/%s/%s/responses/%d/content/%s/schema",
		esc(pattern), strings.ToLower(method), a.Status, esc(ct)))
	require.NoError(t, err, where)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(a.Body))
	require.NoError(t, err, where)
	require.NoError(t, sch.Validate(v), "%s: %s", where, a.Body)
}

// TestEveryEndpointEndToEnd starts a real payeshd on each backend and
// walks the whole API over HTTP as the parties would use it: the ministry
// funds quotas, an agency registers and reviews a plan, its bank approves
// and pays, an inspection firm inspects, the provincial office opens and
// resolves an audit case, corrections, reference data; then every read
// model is queried as of the last write (min_position), the facility's
// history and its state as of earlier moments. Every answer is checked
// against the server's own OpenAPI document, and the test fails if any
// route of the document was not exercised.
func TestEveryEndpointEndToEnd(t *testing.T) {
	url, schema := pgtest.Schema(t)
	_, rmSchema := pgtest.Schema(t)
	kurrent, err := kurrenttest.Start()
	require.NoError(t, err)
	t.Cleanup(kurrent.Close)
	for name, flags := range map[string][]string{
		"sqlite":   {"--store", "sqlite://" + filepath.Join(t.TempDir(), "payesh.db")},
		"postgres": {"--store", url + "&schema=" + schema},
		// The log in KurrentDB (the protocol test server), the read
		// models and the vault in PostgreSQL.
		"kurrentdb": {"--store", "kurrentdb://" + kurrent.Address() + "?tls=false", "--readmodels", url + "&schema=" + rmSchema},
	} {
		t.Run(name, func(t *testing.T) {
			m := start(t, flags[1], flags[2:]...)
			require.Eventually(t, func() bool {
				code, _ := getJSON(t, m.URL()+"/readyz")
				return code == http.StatusOK
			}, 60*time.Second, 20*time.Millisecond)
			walk(t, newClient(t, m.URL()))
		})
	}
}

func walk(t *testing.T, c *client) {
	const (
		fy      = "1403"
		program = "home-business"
		fid     = "f-e2e-1"
	)
	post := http.MethodPost
	get := http.MethodGet
	quota := map[string]string{"fiscal_year": fy, "program": program}
	fac := map[string]string{"id": fid}
	account := func(agency, province string) map[string]any {
		return map[string]any{"agency": agency, "province": province}
	}

	// Without a credential, nothing.
	a := c.do("", get, "/v1/facilities", nil, nil, nil)
	require.Equal(t, http.StatusUnauthorized, a.Status)
	require.Contains(t, a.Header.Get("WWW-Authenticate"), "Bearer")

	// The ministry funds two accounts, moves quota between them, and
	// corrects an allocation.
	alloc := c.ok(auth.RoleMinistry, post, "/v1/quotas/{fiscal_year}/{program}/allocations", quota, nil, map[string]any{
		"account": account("relief-committee", "IR-23"), "amount_rials": 50_000_000_000, "jobs_target": 100,
		"legal_basis": "budget law note 18", "decision_ref": "D-1403-1"}).json(t)
	c.ok(auth.RoleMinistry, post, "/v1/quotas/{fiscal_year}/{program}/allocations", quota, nil, map[string]any{
		"account": account("welfare", "IR-23"), "amount_rials": 10_000_000_000, "jobs_target": 20,
		"legal_basis": "budget law note 18", "decision_ref": "D-1403-2"})
	c.ok(auth.RoleMinistry, post, "/v1/quotas/{fiscal_year}/{program}/transfers", quota, nil, map[string]any{
		"transfer_id": "t-1", "from": account("welfare", "IR-23"), "to": account("relief-committee", "IR-23"),
		"amount_rials": 2_000_000_000, "legal_basis": "note 18 para 3", "decision_ref": "D-1403-3"})
	c.ok(auth.RoleMinistry, post, "/v1/quotas/{fiscal_year}/{program}/allocation-corrections", quota, nil, map[string]any{
		"corrects_event_id": alloc["event_ids"].([]any)[0], "amount_rials": 48_000_000_000, "jobs_target": 100,
		"reason": "typo in the decision"})
	// Only the ministry moves quota.
	a = c.do(auth.RoleAgency, post, "/v1/quotas/{fiscal_year}/{program}/transfers", quota, nil, map[string]any{
		"transfer_id": "t-2", "from": account("welfare", "IR-23"), "to": account("relief-committee", "IR-23"),
		"amount_rials": 1, "legal_basis": "x", "decision_ref": "y"})
	require.Equal(t, http.StatusForbidden, a.Status)

	// The agency registers and reviews; the bank approves and pays.
	reg := c.ok(auth.RoleAgency, post, "/v1/facilities", nil, nil, map[string]any{
		"facility_id": fid, "fiscal_year": 1403, "program": program, "province": "IR-23", "county": "IR-23-tehran",
		"title": "tailoring workshop", "requested_rials": 1_500_000_000, "jobs_promised": 3,
		"applicant": map[string]any{"national_id": nationalid.Generate(1), "name": "Zahra Ahmadi", "phone": "09120000000"},
	})
	require.Equal(t, http.StatusCreated, reg.Status)
	regEvent := reg.json(t)["event_ids"].([]any)[0].(string)
	afterRegistration := c.last
	c.ok(auth.RoleAgency, post, "/v1/facilities/{id}/review", fac, nil, map[string]any{"decision": "approved", "bank": "melli"})
	// If-Match: a stale version is refused with 412.
	a = c.do(auth.RoleBank, post, "/v1/facilities/{id}/approval", fac, nil, map[string]any{"amount_rials": 1_000_000_000}, "If-Match", `"1"`)
	require.Equal(t, http.StatusPreconditionFailed, a.Status, "%s", a.Body)
	c.ok(auth.RoleBank, post, "/v1/facilities/{id}/approval", fac, nil, map[string]any{"amount_rials": 1_000_000_000})
	tr := c.ok(auth.RoleBank, post, "/v1/facilities/{id}/tranches", fac, nil, map[string]any{"amount_rials": 400_000_000}).json(t)
	// Idempotency-Key: the retry answers the same and appends nothing.
	first := c.do(auth.RoleBank, post, "/v1/facilities/{id}/tranches", fac, nil, map[string]any{"amount_rials": 300_000_000}, "Idempotency-Key", "pay-2")
	again := c.do(auth.RoleBank, post, "/v1/facilities/{id}/tranches", fac, nil, map[string]any{"amount_rials": 300_000_000}, "Idempotency-Key", "pay-2")
	require.Equal(t, first.Status, again.Status)
	require.JSONEq(t, string(first.Body), string(again.Body))
	other := c.do(auth.RoleBank, post, "/v1/facilities/{id}/tranches", fac, nil, map[string]any{"amount_rials": 1}, "Idempotency-Key", "pay-2")
	require.Equal(t, http.StatusUnprocessableEntity, other.Status)
	jobs := c.ok(auth.RoleAgency, post, "/v1/facilities/{id}/job-reports", fac, nil, map[string]any{"jobs": 2, "period": "1403-Q3"}).json(t)

	// The inspection firm inspects; the provincial office opens an audit
	// case, documents and resolves it; corrections follow.
	insp := c.ok(auth.RoleInspector, post, "/v1/facilities/{id}/inspections", fac, nil, map[string]any{
		"inspection_id": "in-1", "guideline_version": "1403-v2", "status": "active", "confirmed": true, "verified_jobs": 2}).json(t)
	dev := map[string]string{"id": fid, "deviation_id": "dv-1"}
	c.ok(auth.RoleProvinceOffice, post, "/v1/facilities/{id}/deviations", fac, nil, map[string]any{
		"deviation_id": "dv-1", "kind": "deviation", "inspection_id": "in-1", "description": "equipment not found"})
	c.ok(auth.RoleProvinceOffice, post, "/v1/facilities/{id}/deviations/{deviation_id}/evidence", dev, nil, map[string]any{"evidence": "site photos"})
	c.ok(auth.RoleProvinceOffice, post, "/v1/facilities/{id}/deviations/{deviation_id}/resolution", dev, nil, map[string]any{
		"resolution": "funds_recovered", "recovered_rials": 50_000_000})
	c.ok(auth.RoleAgency, post, "/v1/facilities/{id}/corrections", fac, nil, map[string]any{
		"corrects_event_id": jobs["event_ids"].([]any)[0], "field": "jobs", "new_value": 3, "reason": "miscounted"})
	c.ok(auth.RoleBank, post, "/v1/facilities/{id}/corrections", fac, nil, map[string]any{
		"corrects_event_id": tr["event_ids"].([]any)[0], "field": "amount_rials", "new_value": 450_000_000, "reason": "bank statement"})
	c.ok(auth.RoleInspector, post, "/v1/facilities/{id}/corrections", fac, nil, map[string]any{
		"corrects_event_id": insp["event_ids"].([]any)[0], "field": "verified_jobs", "new_value": 3, "reason": "recount"})
	c.ok(auth.RoleAgency, post, "/v1/facilities/{id}/corrections", fac, nil, map[string]any{
		"corrects_event_id": regEvent, "field": "jobs_promised", "new_value": 4, "reason": "form error"})

	// A second plan is refused by its bank, a third closed by its agency.
	c.ok(auth.RoleAgency, post, "/v1/facilities", nil, nil, map[string]any{
		"facility_id": "f-e2e-2", "fiscal_year": 1403, "program": program, "province": "IR-23",
		"title": "bakery", "requested_rials": 900_000_000, "jobs_promised": 2,
		"applicant": map[string]any{"national_id": nationalid.Generate(2), "name": "Ali Karimi"}})
	c.ok(auth.RoleAgency, post, "/v1/facilities/{id}/review", map[string]string{"id": "f-e2e-2"}, nil, map[string]any{"decision": "approved", "bank": "melli"})
	// Another bank may not decide on it.
	a = c.do(auth.RoleBank, post, "/v1/facilities/{id}/rejection", map[string]string{"id": "f-e2e-2"}, nil, map[string]any{"reason": "x", "bank": "refah"})
	require.Equal(t, http.StatusForbidden, a.Status, "%s", a.Body)
	c.ok(auth.RoleBank, post, "/v1/facilities/{id}/rejection", map[string]string{"id": "f-e2e-2"}, nil, map[string]any{"reason": "insufficient collateral"})
	c.ok(auth.RoleAgency, post, "/v1/facilities", nil, nil, map[string]any{
		"facility_id": "f-e2e-3", "fiscal_year": 1403, "program": program, "province": "IR-23",
		"title": "greenhouse", "requested_rials": 700_000_000, "jobs_promised": 1,
		"applicant": map[string]any{"national_id": nationalid.Generate(3), "name": "Sara Moradi"}})
	c.ok(auth.RoleAgency, post, "/v1/facilities/{id}/closure", map[string]string{"id": "f-e2e-3"}, nil, map[string]any{"reason": "applicant withdrew"})
	// Auditors write nothing but audit cases.
	a = c.do(auth.RoleAuditor, post, "/v1/facilities/{id}/review", fac, nil, map[string]any{"decision": "approved", "bank": "melli"})
	require.Equal(t, http.StatusForbidden, a.Status)

	// Reference data, by the administrator.
	c.ok(auth.RoleAdmin, post, "/v1/reference/agencies", nil, nil, map[string]any{"id": "e2e-agency", "name_en": "E2E Agency", "name_fa": "بنیاد", "valid_from": "1403/01/01"})
	c.ok(auth.RoleAdmin, post, "/v1/reference/banks", nil, nil, map[string]any{"id": "e2e-bank", "name_en": "E2E Bank", "name_fa": "بانک سپه", "valid_from": "1403/01/01"})
	c.ok(auth.RoleAdmin, post, "/v1/reference/programs", nil, nil, map[string]any{"id": "e2e-program", "name_en": "Green jobs", "name_fa": "مشاغل سبز", "valid_from": "1403/01/01"})
	c.ok(auth.RoleAdmin, post, "/v1/reference/counties", nil, nil, map[string]any{"id": "IR-23-e2e", "province": "IR-23", "name_en": "Rey", "name_fa": "ری", "valid_from": "1403/01/01"})
	c.ok(auth.RoleAdmin, post, "/v1/reference/firms", nil, nil, map[string]any{"id": "e2e-firm", "name_en": "Rey Monitoring", "name_fa": "پایش ری", "seat_province": "IR-23", "valid_from": "1403/01/01"})
	for kind, id := range map[string]string{"agencies": "e2e-agency", "banks": "e2e-bank", "programs": "e2e-program", "counties": "IR-23-e2e", "firms": "e2e-firm"} {
		c.ok(auth.RoleAdmin, post, "/v1/reference/"+kind+"/{ref_id}/names", map[string]string{"ref_id": id}, nil, map[string]any{
			"name_en": "Renamed " + id, "name_fa": "تغییر نام", "valid_from": "1404/01/01"})
	}
	a = c.do(auth.RoleMinistry, post, "/v1/reference/banks", nil, nil, map[string]any{"id": "x", "name_en": "x", "name_fa": "x", "valid_from": "1403/01/01"})
	require.Equal(t, http.StatusForbidden, a.Status)

	// An applicant's personal data, erased by the administrator, named by
	// the ref the server's pseudonymisation key gives the national ID.
	pseudonymKey, _, err := backend.PseudonymKey("")
	require.NoError(t, err)
	erased := map[string]string{"ref": applicant.RefOf(pseudonymKey, nationalid.Generate(3))}
	c.ok(auth.RoleAdmin, post, "/v1/admin/applicants/{ref}/erasure", erased, nil, map[string]any{"reason": "erasure request e2e-1"})
	a = c.do(auth.RoleAuditor, post, "/v1/admin/applicants/{ref}/erasure", erased, nil, map[string]any{"reason": "x"})
	require.Equal(t, http.StatusForbidden, a.Status)

	// Reads, as of the last write.
	at := url.Values{"min_position": {strconv.FormatUint(c.last, 10)}}
	with := func(extra url.Values) url.Values {
		q := url.Values{}
		for k, v := range at {
			q[k] = v
		}
		for k, v := range extra {
			q[k] = v
		}
		return q
	}
	f := c.ok(auth.RoleMinistry, get, "/v1/facilities/{id}", fac, at, nil).json(t)["facility"].(map[string]any)
	require.Equal(t, float64(4), f["jobs_promised"])
	require.Equal(t, float64(3), f["jobs_reported"])
	require.Equal(t, float64(3), f["jobs_verified"])
	require.Equal(t, float64(750_000_000), f["disbursed_rials"])
	then := c.ok(auth.RoleMinistry, get, "/v1/facilities/{id}", fac, url.Values{"as_of_position": {strconv.FormatUint(afterRegistration, 10)}}, nil).json(t)["facility"].(map[string]any)
	require.Equal(t, "registered", then["stage"])
	a = c.do(auth.RoleMinistry, get, "/v1/facilities/{id}", fac, url.Values{"as_of": {"1403/01/01"}}, nil)
	require.Equal(t, http.StatusNotFound, a.Status, "before it was registered")
	list := c.ok(auth.RoleProvinceOffice, get, "/v1/facilities", nil, with(url.Values{"province": {"IR-23"}}), nil).json(t)
	require.Len(t, list["items"], 3)
	a = c.do(auth.RoleProvinceOffice, get, "/v1/facilities", nil, url.Values{"province": {"IR-07"}}, nil)
	require.Equal(t, http.StatusForbidden, a.Status, "a provincial office sees only its province")
	csv := c.do(auth.RoleMinistry, get, "/v1/facilities", nil, at, nil, "Accept", "text/csv")
	require.Equal(t, http.StatusOK, csv.Status)
	require.Equal(t, 4, strings.Count(string(csv.Body), "\n"), "a header and three rows:\n%s", csv.Body)
	events := c.ok(auth.RoleAuditor, get, "/v1/facilities/{id}/events", fac, nil, nil).json(t)
	require.NotEmpty(t, events["items"])
	c.ok(auth.RoleMinistry, get, "/v1/job-counts", nil, with(url.Values{"group_by": {"province"}}), nil)
	accts := c.ok(auth.RoleMinistry, get, "/v1/quotas/accounts", nil, with(url.Values{"fiscal_year": {fy}}), nil).json(t)
	require.Len(t, accts["items"], 2)
	c.ok(auth.RoleMinistry, get, "/v1/quotas/totals", nil, at, nil)
	// Reports as they stood, recomputed from the log.
	past := url.Values{"as_of_position": {strconv.FormatUint(afterRegistration, 10)}}
	c.ok(auth.RoleAuditor, get, "/v1/job-counts", nil, past, nil)
	c.ok(auth.RoleAuditor, get, "/v1/quotas/totals", nil, url.Values{"as_of": {"1403/06/01"}}, nil)
	c.ok(auth.RoleBank, get, "/v1/banks/performance", nil, at, nil)
	c.ok(auth.RoleInspector, get, "/v1/inspections/stats", nil, at, nil)
	devs := c.ok(auth.RoleAuditor, get, "/v1/deviations", nil, at, nil).json(t)
	require.Len(t, devs["items"], 1)
	trail := c.ok(auth.RoleAuditor, get, "/v1/deviations/{facility_id}/{deviation_id}", map[string]string{"facility_id": fid, "deviation_id": "dv-1"}, at, nil).json(t)
	require.NotEmpty(t, trail)

	// Reallocation, in a ledger of its own (1404): welfare has quota it
	// does not use, the Relief Committee a plan waiting for more than it
	// has. The ministry looks at the ranking, asks for a proposal,
	// cancels it, asks again and approves.
	next := map[string]string{"fiscal_year": "1404", "program": program}
	c.ok(auth.RoleMinistry, post, "/v1/quotas/{fiscal_year}/{program}/allocations", next, nil, map[string]any{
		"account": account("welfare", "IR-23"), "amount_rials": 10_000_000_000, "jobs_target": 20,
		"legal_basis": "budget law note 18", "decision_ref": "D-1404-1"})
	c.ok(auth.RoleMinistry, post, "/v1/quotas/{fiscal_year}/{program}/allocations", next, nil, map[string]any{
		"account": account("relief-committee", "IR-23"), "amount_rials": 500_000_000, "jobs_target": 5,
		"legal_basis": "budget law note 18", "decision_ref": "D-1404-2"})
	c.ok(auth.RoleAgency, post, "/v1/facilities", nil, nil, map[string]any{
		"facility_id": "f-e2e-1404", "fiscal_year": 1404, "program": program, "province": "IR-23",
		"title": "bakery", "requested_rials": 1_800_000_000, "jobs_promised": 4,
		"applicant": map[string]any{"national_id": nationalid.Generate(2), "name": "Ali Rezaei", "phone": "09120000001"},
	})
	c.ok(auth.RoleAgency, post, "/v1/facilities/{id}/review", map[string]string{"id": "f-e2e-1404"}, nil, map[string]any{"decision": "approved", "bank": "melli"})
	c.ok(auth.RoleAuditor, get, "/v1/quotas/agency-ranking", nil, url.Values{"fiscal_year": {fy}, "program": {program}}, nil)
	policy := map[string]any{"fiscal_year": 1404, "program": program, "min_position": c.last,
		"donors": map[string]any{"max_absorption_pct": 50, "min_days_since_allocation": 0}, "receivers": map[string]any{"min_unmet_demand_rials": 0}}
	prop := c.ok(auth.RoleMinistry, post, "/v1/quota/reallocation-proposals", nil, nil, policy).json(t)
	require.Len(t, prop["lines"], 1, "%v", prop)
	require.EqualValues(t, 1_300_000_000, prop["lines"].([]any)[0].(map[string]any)["amount_rials"], "1,800M waiting − 500M free")
	firstProp := map[string]string{"proposal_id": prop["proposal_id"].(string)}
	c.ok(auth.RoleMinistry, post, "/v1/quota/reallocation-proposals/{proposal_id}/cancellation", firstProp, nil, map[string]any{"reason": "asked too early"})
	prop = c.ok(auth.RoleMinistry, post, "/v1/quota/reallocation-proposals", nil, nil, policy).json(t)
	second := map[string]string{"proposal_id": prop["proposal_id"].(string)}
	c.ok(auth.RoleMinistry, post, "/v1/quota/reallocation-proposals/{proposal_id}/approval", second, nil, map[string]any{
		"legal_basis": "budget law note 15", "decision_ref": "D-1404-3"})
	got := c.ok(auth.RoleAuditor, get, "/v1/quota/reallocation-proposals/{proposal_id}", second, nil, nil).json(t)
	require.Equal(t, "approved", got["status"])
	moved := c.ok(auth.RoleMinistry, get, "/v1/quotas/accounts", nil, url.Values{"fiscal_year": {"1404"},
		"min_position": {strconv.FormatUint(c.last, 10)}}, nil).json(t)
	for _, it := range moved["items"].([]any) {
		a := it.(map[string]any)
		want := map[string]float64{"welfare": 8_700_000_000, "relief-committee": 1_800_000_000}[a["agency"].(string)]
		require.EqualValues(t, want, a["free_rials"], "%v", a)
	}

	// The auditor verifies the whole log in the background and follows the
	// run to its end.
	run := c.ok(auth.RoleAuditor, post, "/v1/audit/verifications", nil, nil, map[string]any{}).json(t)
	require.Equal(t, http.StatusForbidden, c.do(auth.RoleMinistry, post, "/v1/audit/verifications", nil, nil, map[string]any{}).Status)
	runID := map[string]string{"id": run["id"].(string)}
	require.Eventually(t, func() bool {
		return c.ok(auth.RoleAuditor, get, "/v1/audit/verifications/{id}", runID, nil, nil).json(t)["state"] != "running"
	}, 30*time.Second, 10*time.Millisecond)
	run = c.ok(auth.RoleAdmin, get, "/v1/audit/verifications/{id}", runID, nil, nil).json(t)
	require.Equal(t, "clean", run["state"], "%v", run)
	runs := c.ok(auth.RoleAuditor, get, "/v1/audit/verifications", nil, nil, nil).json(t)
	require.Len(t, runs["items"], 1)

	// A position the read models cannot reach is said, not served stale.
	a = c.do(auth.RoleMinistry, get, "/v1/job-counts", nil, url.Values{"min_position": {strconv.FormatUint(c.last+1000, 10)}, "max_wait": {"100ms"}}, nil)
	require.Equal(t, http.StatusServiceUnavailable, a.Status, "%s", a.Body)

	// Every route of the document was exercised.
	var missing []string
	for path, item := range c.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if key := strings.ToUpper(method) + " " + path; !c.reached[key] {
				missing = append(missing, key)
			}
		}
	}
	slices.Sort(missing)
	require.Empty(t, missing, "routes the end-to-end walk did not reach")
}
