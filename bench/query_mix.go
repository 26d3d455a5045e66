package bench

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
)

// The query scenario's mix: what 32 clients of the API ask of the read
// models, with the bearer token of the role that would ask it. Every query
// kind is a row of the table; each has a few variants (a role and a set of
// parameters), drawn by weight, whose values (provinces, agencies, banks,
// fiscal years, facilities) are drawn afresh for every request from what
// the seeded history holds.

// queryKind is one of the main read-model queries: a row of the table.
type queryKind struct {
	name  string // row key and the stats' key, e.g. "facilities"
	label string // what the row says
}

// The query kinds, in the order of the table.
var queryKinds = []queryKind{
	{"facilities", "GET /v1/facilities: filtered lists, pages 1–5"},
	{"facility", "GET /v1/facilities/{id}: one facility"},
	{"job-counts", "GET /v1/job-counts: grouped"},
	{"quota-accounts", "GET /v1/quotas/accounts"},
	{"quota-totals", "GET /v1/quotas/totals"},
	{"bank-performance", "GET /v1/banks/performance"},
	{"inspection-stats", "GET /v1/inspections/stats: grouped"},
	{"deviations", "GET /v1/deviations"},
}

// queryRequest is one request of the mix.
type queryRequest struct {
	kind string // a queryKind's name, or "healthz"
	path string // path and query string
	// token is the bearer token; role names its principal, for the
	// variant's label.
	token, role string
	// pagesLeft is how many further pages of a list the client reads
	// after this one (following the answer's "next" link).
	pagesLeft int
}

// variant labels a request by its kind, role and parameters, with the
// values of identifiers (provinces, agencies, facility IDs, cursors…)
// elided and those of choices (group_by, sort, state…) kept: the unit in
// which slow queries are reported.
func (q queryRequest) variant() string {
	path, query, _ := strings.Cut(q.path, "?")
	if strings.HasPrefix(path, "/v1/facilities/") {
		path = "/v1/facilities/{id}"
	}
	vals, _ := url.ParseQuery(query)
	var parts []string
	for _, name := range slices.Sorted(mapKeys(vals)) {
		switch name {
		case "group_by", "sort", "order", "state", "kind", "stage", "limit":
			parts = append(parts, name+"="+vals.Get(name))
		case "cursor":
			parts = append(parts, "page>1")
		default:
			parts = append(parts, name)
		}
	}
	v := q.role + " " + path
	if len(parts) > 0 {
		v += "?" + strings.Join(parts, "&")
	}
	return v
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sampledFacility is a facility of the seeded history, as a list answered
// it: what a request for it by id, with a token in its scope, needs.
type sampledFacility struct {
	ID         string `json:"id"`
	FiscalYear int    `json:"fiscal_year"`
	Province   string `json:"province"`
	Agency     string `json:"agency"`
	Program    string `json:"program"`
	Bank       string `json:"bank"`
}

// queryMix draws the requests. It is read-only once built, so the clients
// share it; each draws with its own random source.
type queryMix struct {
	tokens     map[string]string // by tokenKey
	facilities []sampledFacility
	// What the filters and scopes are drawn from: the values the sampled
	// facilities hold (so that filters select data), and the catalogue's
	// inspection firms.
	years                                []int
	provinces, agencies, banks, programs []string
	firms                                []string
	variants                             []queryVariant
	totalWeight                          int
	// healthz is the baseline's request.
	healthz queryRequest
}

// queryVariant is one kind of request of a query kind, drawn with weight.
type queryVariant struct {
	kind   string
	weight int
	build  func(m *queryMix, r *rand.Rand) queryRequest
}

func tokenKey(role auth.Role, scope string) string { return string(role) + "/" + scope }

// newQueryMix mints the tokens and lays out the variants over the sampled
// facilities. The tokens are signed with the public development key, which
// payeshd --dev accepts.
func newQueryMix(sample []sampledFacility, ttl time.Duration) (*queryMix, error) {
	if len(sample) == 0 {
		return nil, fmt.Errorf("bench: no facilities to query (the sample of the seeded history is empty)")
	}
	m := &queryMix{tokens: map[string]string{}, facilities: sample}
	distinct := func(get func(sampledFacility) string) []string {
		var out []string
		for _, f := range sample {
			if v := get(f); v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
		slices.Sort(out)
		return out
	}
	m.provinces = distinct(func(f sampledFacility) string { return f.Province })
	m.agencies = distinct(func(f sampledFacility) string { return f.Agency })
	m.banks = distinct(func(f sampledFacility) string { return f.Bank })
	m.programs = distinct(func(f sampledFacility) string { return f.Program })
	for _, f := range sample {
		if !slices.Contains(m.years, f.FiscalYear) {
			m.years = append(m.years, f.FiscalYear)
		}
	}
	slices.Sort(m.years)
	for _, f := range reference.DefaultCatalog().Firms() {
		m.firms = append(m.firms, f.ID)
	}
	if len(m.banks) == 0 || len(m.firms) == 0 {
		return nil, fmt.Errorf("bench: the sampled facilities name no bank, or the catalogue no inspection firm")
	}

	iss := auth.DevIssuer(time.Now)
	mint := func(role auth.Role, scope string) error {
		p := auth.Principal{Subject: "bench-" + string(role), Role: role, Scope: auth.Scope{Kind: role.ScopeKind(), ID: scope}}
		if scope != "" {
			p.Subject += "-" + scope
		}
		tok, _, err := iss.Issue(p, ttl)
		if err != nil {
			return fmt.Errorf("bench: token for %s: %w", tokenKey(role, scope), err)
		}
		m.tokens[tokenKey(role, scope)] = tok
		return nil
	}
	for _, role := range []auth.Role{auth.RoleMinistry, auth.RoleAuditor} {
		if err := mint(role, ""); err != nil {
			return nil, err
		}
	}
	for _, s := range []struct {
		role   auth.Role
		scopes []string
	}{
		{auth.RoleProvinceOffice, m.provinces}, {auth.RoleAgency, m.agencies},
		{auth.RoleBank, m.banks}, {auth.RoleInspector, m.firms},
	} {
		for _, id := range s.scopes {
			if err := mint(s.role, id); err != nil {
				return nil, err
			}
		}
	}
	m.healthz = queryRequest{kind: "healthz", path: "/healthz", role: "ministry", token: m.tokens[tokenKey(auth.RoleMinistry, "")]}
	m.variants = queryVariants()
	for _, v := range m.variants {
		m.totalWeight += v.weight
	}
	return m, nil
}

// next draws a request.
func (m *queryMix) next(r *rand.Rand) queryRequest {
	n := r.IntN(m.totalWeight)
	for _, v := range m.variants {
		if n < v.weight {
			return v.build(m, r)
		}
		n -= v.weight
	}
	panic("unreachable: weights sum to totalWeight")
}

// req builds a request of kind for role (scope "" for national roles)
// with the parameters given as name, value pairs; empty values are left
// out.
func (m *queryMix) req(kind string, role auth.Role, scope, path string, params ...string) queryRequest {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] != "" {
			q.Set(params[i], params[i+1])
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return queryRequest{kind: kind, path: path, role: string(role), token: m.tokens[tokenKey(role, scope)]}
}

func pickOf[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (m *queryMix) year(r *rand.Rand) string     { return fmt.Sprint(pickOf(r, m.years)) }
func (m *queryMix) province(r *rand.Rand) string { return pickOf(r, m.provinces) }
func (m *queryMix) agency(r *rand.Rand) string   { return pickOf(r, m.agencies) }
func (m *queryMix) bank(r *rand.Rand) string     { return pickOf(r, m.banks) }
func (m *queryMix) program(r *rand.Rand) string  { return pickOf(r, m.programs) }
func (m *queryMix) firm(r *rand.Rand) string     { return pickOf(r, m.firms) }

// listPages draws how many pages a client reads of a list: the first
// only, half the time; up to five.
func listPages(r *rand.Rand) int {
	n := 0
	for n < 4 && r.IntN(2) == 0 {
		n++
	}
	return n
}

// queryVariants is the mix: the kinds' shares are the weights' sums
// (facilities lists 25%, one facility 25%, job counts 12%, quota accounts
// 10%, bank performance 10%, inspection statistics 8%, deviations 7%,
// quota totals 3%).
func queryVariants() []queryVariant {
	const (
		mst = auth.RoleMinistry
		aud = auth.RoleAuditor
		prv = auth.RoleProvinceOffice
		agn = auth.RoleAgency
		bnk = auth.RoleBank
		ins = auth.RoleInspector
	)
	list := func(weight int, build func(m *queryMix, r *rand.Rand) queryRequest) queryVariant {
		return queryVariant{kind: "facilities", weight: weight, build: func(m *queryMix, r *rand.Rand) queryRequest {
			q := build(m, r)
			q.pagesLeft = listPages(r)
			return q
		}}
	}
	v := func(kind string, weight int, build func(m *queryMix, r *rand.Rand) queryRequest) queryVariant {
		return queryVariant{kind: kind, weight: weight, build: build}
	}
	stages := []string{"disbursing", "disbursed", "loan_approved", "closed"}
	return []queryVariant{
		// Facilities lists (25).
		list(5, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facilities", mst, "", "/v1/facilities", "fiscal_year", m.year(r), "province", m.province(r))
		}),
		list(3, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facilities", mst, "", "/v1/facilities", "agency", m.agency(r), "fiscal_year", m.year(r))
		}),
		list(3, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facilities", mst, "", "/v1/facilities", "bank", m.bank(r), "stage", pickOf(r, stages))
		}),
		list(2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facilities", mst, "", "/v1/facilities", "sort", "recent")
		}),
		list(4, func(m *queryMix, r *rand.Rand) queryRequest {
			p := m.province(r)
			return m.req("facilities", prv, p, "/v1/facilities", "fiscal_year", m.year(r), "sort", "recent")
		}),
		list(3, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facilities", agn, m.agency(r), "/v1/facilities", "province", m.province(r))
		}),
		list(3, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facilities", bnk, m.bank(r), "/v1/facilities", "fiscal_year", m.year(r), "sort", "approved")
		}),
		list(2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facilities", aud, "", "/v1/facilities", "program", m.program(r), "fiscal_year", m.year(r), "limit", "100")
		}),

		// One facility by id (25), by a principal who may see it.
		v("facility", 10, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facility", mst, "", "/v1/facilities/"+url.PathEscape(pickOf(r, m.facilities).ID))
		}),
		v("facility", 5, func(m *queryMix, r *rand.Rand) queryRequest {
			f := pickOf(r, m.facilities)
			return m.req("facility", prv, f.Province, "/v1/facilities/"+url.PathEscape(f.ID))
		}),
		v("facility", 4, func(m *queryMix, r *rand.Rand) queryRequest {
			f := pickOf(r, m.facilities)
			return m.req("facility", agn, f.Agency, "/v1/facilities/"+url.PathEscape(f.ID))
		}),
		v("facility", 4, func(m *queryMix, r *rand.Rand) queryRequest {
			f := pickOf(r, m.facilities)
			if f.Bank == "" { // not referred to a bank yet: the ministry asks
				return m.req("facility", mst, "", "/v1/facilities/"+url.PathEscape(f.ID))
			}
			return m.req("facility", bnk, f.Bank, "/v1/facilities/"+url.PathEscape(f.ID))
		}),
		v("facility", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("facility", ins, m.firm(r), "/v1/facilities/"+url.PathEscape(pickOf(r, m.facilities).ID))
		}),

		// Job counts (12).
		v("job-counts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("job-counts", mst, "", "/v1/job-counts", "group_by", "province")
		}),
		v("job-counts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("job-counts", mst, "", "/v1/job-counts", "fiscal_year", m.year(r), "group_by", "agency,program")
		}),
		v("job-counts", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("job-counts", mst, "", "/v1/job-counts", "group_by", "county", "sort", "jobs_verified")
		}),
		v("job-counts", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("job-counts", aud, "", "/v1/job-counts", "fiscal_year", m.year(r))
		}),
		v("job-counts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("job-counts", prv, m.province(r), "/v1/job-counts", "group_by", "county")
		}),
		v("job-counts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("job-counts", agn, m.agency(r), "/v1/job-counts", "fiscal_year", m.year(r), "group_by", "province")
		}),
		v("job-counts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("job-counts", bnk, m.bank(r), "/v1/job-counts", "group_by", "fiscal_year")
		}),

		// Quota accounts (10) and totals (3).
		v("quota-accounts", 3, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("quota-accounts", mst, "", "/v1/quotas/accounts", "fiscal_year", m.year(r), "province", m.province(r))
		}),
		v("quota-accounts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("quota-accounts", mst, "", "/v1/quotas/accounts", "fiscal_year", m.year(r), "sort", "free")
		}),
		v("quota-accounts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("quota-accounts", prv, m.province(r), "/v1/quotas/accounts", "fiscal_year", m.year(r))
		}),
		v("quota-accounts", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("quota-accounts", agn, m.agency(r), "/v1/quotas/accounts", "sort", "absorption")
		}),
		v("quota-accounts", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("quota-accounts", aud, "", "/v1/quotas/accounts", "program", m.program(r), "fiscal_year", m.year(r))
		}),
		v("quota-totals", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("quota-totals", mst, "", "/v1/quotas/totals", "fiscal_year", m.year(r))
		}),
		v("quota-totals", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("quota-totals", aud, "", "/v1/quotas/totals")
		}),

		// Bank performance (10).
		v("bank-performance", 3, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("bank-performance", mst, "", "/v1/banks/performance")
		}),
		v("bank-performance", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("bank-performance", mst, "", "/v1/banks/performance", "group_by", "province", "fiscal_year", m.year(r), "sort", "pending_payment")
		}),
		v("bank-performance", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("bank-performance", bnk, m.bank(r), "/v1/banks/performance", "group_by", "province")
		}),
		v("bank-performance", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("bank-performance", prv, m.province(r), "/v1/banks/performance")
		}),
		v("bank-performance", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("bank-performance", agn, m.agency(r), "/v1/banks/performance", "group_by", "program")
		}),

		// Inspection statistics (8).
		v("inspection-stats", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("inspection-stats", mst, "", "/v1/inspections/stats", "group_by", "firm")
		}),
		v("inspection-stats", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("inspection-stats", mst, "", "/v1/inspections/stats", "fiscal_year", m.year(r), "group_by", "province", "sort", "confirmation_rate")
		}),
		v("inspection-stats", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("inspection-stats", ins, m.firm(r), "/v1/inspections/stats", "group_by", "province")
		}),
		v("inspection-stats", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("inspection-stats", prv, m.province(r), "/v1/inspections/stats", "group_by", "firm")
		}),
		v("inspection-stats", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("inspection-stats", bnk, m.bank(r), "/v1/inspections/stats", "fiscal_year", m.year(r))
		}),

		// Deviations (7).
		v("deviations", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("deviations", mst, "", "/v1/deviations", "state", "open", "province", m.province(r))
		}),
		v("deviations", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("deviations", mst, "", "/v1/deviations", "fiscal_year", m.year(r), "sort", "recovered")
		}),
		v("deviations", 2, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("deviations", prv, m.province(r), "/v1/deviations", "state", "open")
		}),
		v("deviations", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("deviations", bnk, m.bank(r), "/v1/deviations")
		}),
		v("deviations", 1, func(m *queryMix, r *rand.Rand) queryRequest {
			return m.req("deviations", aud, "", "/v1/deviations", "kind", "discrepancy", "sort", "updated")
		}),
	}
}
