package api

// The query side of the API: GET endpoints over the read models, and over
// the log for a facility's history. This file holds what every query shares
// (the route table, parameters, scoping, waiting for a position, cursors,
// content negotiation, answers); the endpoints are in queries_*.go.
//
// Decisions, documented for clients in the OpenAPI document:
//
//   - Every answer says which position of the log it reflects: "position"
//     in the body and the Payesh-Position header. A read model's answer is
//     read in one snapshot with its checkpoint; a history answer reflects
//     the log up to the head read before the stream.
//   - min_position=N waits (up to max_wait, at most Config.MaxWait) until
//     the read model reflects N, then answers from a snapshot at or after
//     N. If it cannot, the answer is 503 position-not-reached with the
//     position reached, never older data without saying so.
//   - Filters are single-valued and ANDed; a scoped principal's mandatory
//     filter (auth.Policy.ReadFilter) is ANDed with them on every list and
//     aggregate. A client filter that contradicts the mandatory one (a
//     province office asking for another province) is refused with 403
//     naming the scope, rather than answered with an empty result that
//     looks like "no data". A read model that cannot apply a principal's
//     mandatory filter (quota totals are per whole ledger) is refused with
//     403.
//   - One resource outside the principal's scope (a facility, its history,
//     an audit case) is 404, exactly as if it did not exist, so that its
//     existence does not leak; a role that may not read the kind of
//     resource at all gets 403, which leaks nothing.
//   - Unknown, repeated or malformed parameters, impossible fiscal years,
//     sorts, limits and cursors are 422 validation problems naming the
//     parameter, as unknown or mistyped body fields are for commands.
//   - Cursors are opaque and bound to their query: a cursor is only
//     accepted with the same filters, sort and grouping it came from.
//     Lists page by keyset in the read models (a total order, so pages
//     never skip or repeat a row whose sort value does not change);
//     aggregates (job counts, inspection statistics) are computed whole per
//     request (they are sums over grouped rows, not facilities) and paged
//     by keyset over their total order.
//   - CSV (Accept: text/csv) is an export: every row matching the filters,
//     all pages, from the cursor if one is given, in the requested order,
//     streamed one page of at most 1000 rows at a time, so memory stays
//     bounded whatever the size. The Payesh-Position header is the first
//     page's position; later pages are read in later snapshots and reflect
//     that position or a later one, never an earlier one. limit does not
//     apply to CSV. A failure after the first row aborts the connection,
//     so a truncated export cannot pass for a complete one.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/quotas"
)

// positionHeader carries the log position an answer reflects.
const positionHeader = "Payesh-Position"

// queries holds the read models' readers. Readers are stateless wrappers
// around the database, safe for concurrent use.
type queries struct {
	s           *Server
	positions   *projections.Reader
	facilities  *facilities.Reader
	quotas      *quotas.Reader
	banks       *banks.Reader
	inspections *inspections.Reader
	deviations  *deviations.Reader
}

// queryProjectors are the projectors whose read models the queries read,
// for a positions reader when the composition root gives none.
func queryProjectors() []projections.Projector {
	return []projections.Projector{facilities.New(), quotas.New(), banks.New(), inspections.New(), deviations.New()}
}

func (s *Server) newQueries() *queries {
	db := s.cfg.ReadModels
	q := &queries{
		s: s, positions: s.positions,
		facilities: facilities.NewReader(db), quotas: quotas.NewReader(db), banks: banks.NewReader(db),
		inspections: inspections.NewReader(db), deviations: deviations.NewReader(db),
	}
	return q
}

// queryRoutes lists the GET endpoints.
func (s *Server) queryRoutes() []route {
	q := s.newQueries()
	return []route{
		q.listFacilitiesRoute(),
		q.facilityRoute(),
		q.facilityEventsRoute(),
		q.jobCountsRoute(),
		q.quotaAccountsRoute(),
		q.quotaTotalsRoute(),
		q.agencyRankingRoute(),
		q.bankPerformanceRoute(),
		q.inspectionStatsRoute(),
		q.deviationsRoute(),
		q.deviationTrailRoute(),
	}
}

// ─── keyset-paged lists ──────────────────────────────────────────────────

// listFormat is how a list endpoint answers its rows: the CSV export's
// file name, header and row, and the JSON view of a row.
type listFormat[T, V any] struct {
	csvName   string
	csvHeader []string
	csvRow    func(T) []string
	view      func(T) V
}

// page is one page a read model returned: its rows, the read model's own
// cursor of the next page ("" on the last) and its position.
type page[T any] struct {
	rows     []T
	next     string
	position uint64
}

// checkList ends the parameter reading of every list and aggregate
// endpoint the same way: the parameter problems first (all of them), then
// a scope the filters contradict, then the answer's format.
func checkList(r *http.Request, p *params, scopeErr error) (answerFormat, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	if scopeErr != nil {
		return 0, scopeErr
	}
	return negotiate(r, true)
}

// serveList answers a list from its read model: the page after the
// cursor, as JSON with the next page's sealed cursor and link, or, for
// CSV, every row from there on, page after page (fetch is asked for
// maxLimit rows a page then).
func serveList[T, V any](q *queries, w http.ResponseWriter, r *http.Request, out answerFormat, fp, after string, limit int,
	fetch func(after string, limit int) (page[T], error), f listFormat[T, V]) error {
	if out == asCSV {
		limit = maxLimit
	}
	get := func(after string) (page[T], error) {
		pg, err := fetch(after, limit)
		return pg, innerCursorError(err)
	}
	first, err := get(after)
	if err != nil {
		return err
	}
	if out == asCSV {
		c := q.s.startCSV(w, r, f.csvName, first.position, f.csvHeader)
		streamPages(c, first.rows, first.next, func(after string) ([]T, string, error) {
			pg, err := get(after)
			return pg.rows, pg.next, err
		}, f.csvRow)
		return nil
	}
	items := make([]V, len(first.rows))
	for i, row := range first.rows {
		items[i] = f.view(row)
	}
	return answer(w, first.position, newListPage(r, items, sealCursor(fp, first.next), first.position))
}

// ─── parameters ──────────────────────────────────────────────────────────

// params reads a request's query parameters, collecting every problem, so
// that a client learns of all of them at once; check adds the parameters
// the endpoint does not know.
type params struct {
	vals  url.Values
	known map[string]bool
	v     domain.Validator
}

func newParams(r *http.Request) *params {
	return &params{vals: r.URL.Query(), known: map[string]bool{}}
}

// one returns the single value of parameter name, trimmed, and whether it
// was given. A repeated or empty parameter is a problem.
func (p *params) fig1(name string) (string, bool) {
	p.known[name] = true
	vs, ok := p.vals[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		p.v.Add(name, "repeated", "is given more than once; filters take one value",
			"بیش از یک بار آمده است؛ هر پارامتر یک مقدار می‌پذیرد")
		return "", false
	}
	s := strings.TrimSpace(vs[0])
	if s == "" {
		p.v.Add(name, "empty", "is empty; leave the parameter out to not filter by it",
			"خالی است؛ برای فیلتر نکردن، این پارامتر را نفرستید")
		return "", false
	}
	return s, true
}

// id returns an identifier filter (an agency, bank, programme, county,
// firm or facility id): at most 128 printable characters without spaces.
func (p *params) id(name string) string {
	s, ok := p.fig1(name)
	if !ok {
		return ""
	}
	if len(s) > 128 || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		p.v.Add(name, "malformed", "must be an identifier: at most 128 printable characters without spaces",
			"باید شناسه باشد: حداکثر ۱۲۸ نویسه چاپی بدون فاصله")
		return ""
	}
	return s
}

// province returns the province filter: a province code, IR-00 to IR-30
// (Persian digits accepted).
func (p *params) province() string {
	s, ok := p.fig1("province")
	if !ok {
		return ""
	}
	s = strings.ToUpper(calendar.NormalizeDigits(s))
	if _, known := reference.ProvinceByCode(s); !known {
		p.v.Add("province", "unknown", fmt.Sprintf("%q is not a province code (IR-00 to IR-30)", s),
			fmt.Sprintf("%q کد استان نیست (IR-00 تا IR-30)", s))
		return ""
	}
	return s
}

// fiscalYear returns the fiscal_year filter, a Solar Hijri year; 0 when
// absent.
func (p *params) fiscalYear() int {
	s, ok := p.fig1("fiscal_year")
	if !ok {
		return 0
	}
	fy, err := calendar.ParseFiscalYear(s)
	if err != nil {
		p.addFieldErrors("fiscal_year", err)
		return 0
	}
	return int(fy)
}

// addFieldErrors records a validation error's problems under param.
func (p *params) addFieldErrors(param string, err error) {
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			p.v.Add(param, f.Code, f.Message, f.MessageFa)
		}
		return
	}
	p.v.Add(param, "invalid", err.Error(), err.Error())
}

// choice returns the parameter's value, one of allowed, or def.
func (p *params) choice(name, def string, allowed ...string) string {
	s, ok := p.fig1(name)
	if !ok {
		return def
	}
	if !slices.Contains(allowed, s) {
		list := strings.Join(allowed, ", ")
		p.v.Add(name, "unknown", fmt.Sprintf("%q is not one of %s", s, list), fmt.Sprintf("%q یکی از %s نیست", s, list))
		return def
	}
	return s
}

// list returns a comma-separated list of values from allowed, each at most
// once.
func (p *params) list(name string, allowed ...string) []string {
	s, ok := p.fig1(name)
	if !ok {
		return nil
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case !slices.Contains(allowed, part):
			list := strings.Join(allowed, ", ")
			p.v.Add(name, "unknown", fmt.Sprintf("%q is not one of %s", part, list), fmt.Sprintf("%q یکی از %s نیست", part, list))
			return nil
		case slices.Contains(out, part):
			p.v.Add(name, "repeated", fmt.Sprintf("%q is listed twice", part), fmt.Sprintf("%q دو بار آمده است", part))
			return nil
		}
		out = append(out, part)
	}
	return out
}

// uint returns a non-negative integer parameter (Persian digits accepted).
func (p *params) uint(name string) (uint64, bool) {
	s, ok := p.fig1(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(calendar.NormalizeDigits(s), 10, 64)
	if err != nil {
		p.v.Add(name, "type", "must be a non-negative integer", "باید عدد صحیح نامنفی باشد")
		return 0, false
	}
	return n, true
}

// defaultLimit and maxLimit bound a JSON page (the readers' MaxLimit).
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// limit returns the page size: 1 to maxLimit, default defaultLimit.
func (p *params) limit() int {
	n, ok := p.uint("limit")
	if !ok {
		return defaultLimit
	}
	if n < 1 || n > maxLimit {
		p.v.Add("limit", "out_of_range", fmt.Sprintf("must be from 1 to %d", maxLimit),
			calendar.PersianDigits(fmt.Sprintf("باید از 1 تا %d باشد", maxLimit)))
		return defaultLimit
	}
	return int(n)
}

// time returns a date or instant parameter (see parseQueryTime).
func (p *params) time(name string) (time.Time, bool) {
	s, ok := p.fig1(name)
	if !ok {
		return time.Time{}, false
	}
	t, err := parseTime(name, s)
	if err != nil {
		p.addFieldErrors(name, err)
		return time.Time{}, false
	}
	return t, true
}

// check returns the problems found, with one for every parameter the
// endpoint does not take, as a *domain.ValidationError (422).
func (p *params) check() error {
	var unknown []string
	for name := range p.vals {
		if !p.known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		takes := strings.Join(slices.Sorted(maps.Keys(p.known)), ", ")
		for _, name := range unknown {
			p.v.Add(name, "unknown_parameter", "is not a parameter of this query; it takes "+takes,
				"پارامتر این پرسش نیست؛ پارامترهای مجاز: "+takes)
		}
	}
	return p.v.Err()
}

// ─── scoping ─────────────────────────────────────────────────────────────

// narrow ANDs a client's filter value on one dimension with the principal's
// mandatory one (auth.Narrow). A contradiction is refused with 403.
func narrow(pr auth.Principal, param, client, mandatory string) (string, error) {
	v, ok := auth.Narrow(client, mandatory)
	if ok {
		return v, nil
	}
	pe := fail(probForbidden,
		fmt.Sprintf("%s reads only its own %s %q; %s=%s selects nothing it may read", pr.Role, param, mandatory, param, client),
		fmt.Sprintf("این نقش تنها دادهٔ %s خود («%s») را می‌بیند؛ %s=%s خارج از محدودهٔ آن است", param, mandatory, param, client))
	pe.extra = map[string]any{"denial": string(auth.DeniedScope)}
	pe.fields = []FieldProblem{{Field: param, Code: "out_of_scope", Message: "outside the caller's scope"}}
	return "", pe
}

// scoped is the mandatory filter and the narrowed client filter on the
// four scope dimensions.
type scoped struct {
	province, agency, bank, firm string
}

// scope reads a list's read filter for action a, and ANDs the client's
// province, agency, bank and firm filters (given; "" when absent) with it.
func (q *queries) scope(pr auth.Principal, a auth.Action, client scoped) (scoped, error) {
	f, err := q.s.policy.ReadFilter(pr, a)
	if err != nil {
		return scoped{}, err
	}
	var out scoped
	if out.province, err = narrow(pr, "province", client.province, f.Province); err != nil {
		return scoped{}, err
	}
	if out.agency, err = narrow(pr, "agency", client.agency, f.Agency); err != nil {
		return scoped{}, err
	}
	if out.bank, err = narrow(pr, "bank", client.bank, f.Bank); err != nil {
		return scoped{}, err
	}
	if out.firm, err = narrow(pr, "firm", client.firm, f.Firm); err != nil {
		return scoped{}, err
	}
	return out, nil
}

// readFilter returns the mandatory filter for a (403 for a role that may
// not read it at all), before the parameters are read.
func (q *queries) readFilter(pr auth.Principal, a auth.Action) (auth.Filter, error) {
	return q.s.policy.ReadFilter(pr, a)
}

// hidden turns an out-of-scope refusal of one resource into the not-found
// answer the resource would get if it did not exist, so that existence does
// not leak; a refusal of the role stays 403.
func hidden(err error, notFound error) error {
	var denied *auth.DeniedError
	if errors.As(err, &denied) && denied.Denial == auth.DeniedScope {
		return notFound
	}
	return err
}

// ─── waiting for a position ──────────────────────────────────────────────

// wait is what a query asks of the read model's position.
type waitSpec struct {
	min     uint64        // min_position; 0 asks for nothing
	timeout time.Duration // max_wait, at most Config.MaxWait
}

// wait reads min_position and max_wait.
func (p *params) wait(maxWait time.Duration) waitSpec {
	w := waitSpec{timeout: maxWait}
	w.min, _ = p.uint("min_position")
	if s, ok := p.fig1("max_wait"); ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			p.v.Add("max_wait", "malformed", "must be a positive duration such as 500ms or 2s",
				"باید مدت زمانی مثبت مانند 500ms یا 2s باشد")
		} else {
			w.timeout = min(d, maxWait)
		}
	}
	return w
}

// await returns once read model name reflects w.min, or the problem that
// says it does not (503 position-not-reached, with the position reached).
func (q *queries) await(ctx context.Context, rw http.ResponseWriter, w waitSpec, name string) error {
	if w.min == 0 {
		return nil
	}
	reached, err := q.positions.WaitFor(ctx, name, w.min, w.timeout)
	var (
		timeout *projections.WaitTimeoutError
		failed  *projections.FailedError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &timeout):
		return notReached(rw, name, w, reached,
			fmt.Sprintf("the %s read model reflects the log up to position %d, not yet %d, after waiting %s", name, reached, w.min, w.timeout),
			fmt.Sprintf("مدل خواندنی %s تا موقعیت %d را بازتاب می‌دهد و پس از %s انتظار هنوز به %d نرسیده است", name, reached, w.timeout, w.min))
	case errors.As(err, &failed):
		return notReached(rw, name, w, reached,
			fmt.Sprintf("the %s read model stopped at position %d on an event it could not apply; it will not reach %d until an operator repairs it", name, reached, w.min),
			fmt.Sprintf("مدل خواندنی %s در موقعیت %d متوقف شده است و تا رفع مشکل به %d نمی‌رسد", name, reached, w.min))
	case errors.Is(err, projections.ErrUnknownProjection):
		return fail(probUnavail, "the "+name+" read model is not served by this node", "مدل خواندنی "+name+" در این گره ارائه نمی‌شود")
	}
	return err
}

// awaitLog is await for answers read from the log itself: it waits until
// the log's head reaches w.min (a position that may not be appended yet).
func (q *queries) awaitLog(ctx context.Context, rw http.ResponseWriter, w waitSpec) error {
	if w.min == 0 {
		return nil
	}
	deadline := time.Now().Add(w.timeout)
	for {
		h, err := q.s.cfg.Store.Head(ctx)
		if err != nil {
			return err
		}
		if h.Position >= w.min {
			return nil
		}
		if time.Now().After(deadline) {
			return notReached(rw, "log", w, h.Position,
				fmt.Sprintf("the log's head is at position %d, not yet %d, after waiting %s", h.Position, w.min, w.timeout),
				fmt.Sprintf("سر دفتر در موقعیت %d است و پس از %s انتظار هنوز به %d نرسیده است", h.Position, w.timeout, w.min))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func notReached(rw http.ResponseWriter, name string, w waitSpec, reached uint64, en, fa string) error {
	rw.Header().Set("Retry-After", "1")
	rw.Header().Set(positionHeader, strconv.FormatUint(reached, 10))
	pe := fail(probNotReached, en, fa)
	pe.extra = map[string]any{"read_model": name, "min_position": w.min, "reached_position": reached}
	return pe
}

// ─── cursors ─────────────────────────────────────────────────────────────

// A cursor is base64url of {"q": the query's fingerprint, "c": the inner
// cursor (the reader's, or the aggregate's keyset)}. The fingerprint binds
// it to the endpoint, filters, sort and grouping that produced it.
type sealedCursor struct {
	Q string `json:"q"`
	C string `json:"c"`
}

// fingerprint identifies a query's shape: the endpoint and every parameter
// that decides its rows and their order.
func fingerprint(parts ...any) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%#v", parts))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

func sealCursor(fp, inner string) string {
	if inner == "" {
		return ""
	}
	b, _ := json.Marshal(sealedCursor{Q: fp, C: inner}) // two strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursor reads the cursor parameter of a query with fingerprint fp and
// returns the inner cursor ("" for the first page).
func (p *params) cursor(fp string) string {
	s, ok := p.fig1("cursor")
	if !ok {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	var c sealedCursor
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err = dec.Decode(&c)
	}
	switch {
	case err != nil || c.C == "":
		p.v.Add("cursor", "malformed", "is not a cursor this API returned", "مکان‌نمایی نیست که این API برگردانده باشد")
		return ""
	case c.Q != fp:
		p.v.Add("cursor", "mismatch", "belongs to another query: keep the filters, sort and grouping of the page it came from",
			"متعلق به پرسش دیگری است: فیلترها، ترتیب و گروه‌بندی صفحه‌ای را که از آن آمده حفظ کنید")
		return ""
	}
	return c.C
}

// innerCursorError turns a reader's refusal of an inner cursor (which a
// fingerprint-checked cursor only gets when forged) into a problem on the
// cursor parameter.
func innerCursorError(err error) error {
	if errors.Is(err, domain.ErrInvalid) && strings.Contains(err.Error(), "cursor") {
		var v domain.Validator
		v.Add("cursor", "malformed", "is not a cursor this API returned", "مکان‌نمایی نیست که این API برگردانده باشد")
		return v.Err()
	}
	return err
}

// nextLink is the URL of the next page: the request's own with the cursor
// replaced.
func nextLink(r *http.Request, next string) string {
	if next == "" {
		return ""
	}
	v := r.URL.Query()
	v.Set("cursor", next)
	return r.URL.Path + "?" + v.Encode()
}

// ─── answers ─────────────────────────────────────────────────────────────

// format is an answer's representation.
type answerFormat int

const (
	asJSON answerFormat = iota
	asCSV
)

// negotiate picks JSON or, when the route offers it and the client prefers
// it, CSV, from the Accept header; 406 when neither is acceptable.
func negotiate(r *http.Request, csvOK bool) (answerFormat, error) {
	accept := r.Header.Get("Accept")
	if strings.TrimSpace(accept) == "" {
		return asJSON, nil
	}
	qJSON, qCSV := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, ps, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := ps["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		switch mt {
		case "application/json", "application/*", "*/*":
			qJSON = max(qJSON, q)
		}
		switch mt {
		case "text/csv", "text/*":
			qCSV = max(qCSV, q)
		case "*/*":
			qCSV = max(qCSV, q-0.0001) // JSON wins a tie on */*
		}
	}
	switch {
	case csvOK && qCSV > 0 && qCSV > qJSON:
		return asCSV, nil
	case qJSON > 0:
		return asJSON, nil
	}
	offers := "application/json"
	if csvOK {
		offers += " or text/csv"
	}
	return 0, fail(probNotAccept, "this endpoint answers "+offers+", which the Accept header does not allow",
		"این نشانی تنها "+offers+" برمی‌گرداند که سرآیند Accept آن را نمی‌پذیرد")
}

// answer writes a JSON answer reflecting position.
func answer(w http.ResponseWriter, position uint64, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // event data is shown byte for byte (hashes)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("api: encode answer: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(positionHeader, strconv.FormatUint(position, 10))
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept, Accept-Language, Authorization")
	// With its length known, net/http writes the body in one system
	// call rather than as chunks of a few KiB each (a page of 100
	// facilities is about 90 KiB).
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// page is the body of a list or aggregate page.
type listPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
	Next       string `json:"next,omitempty"`
	Position   uint64 `json:"position"`
}

func newListPage[T any](r *http.Request, items []T, next string, position uint64) listPage[T] {
	if items == nil {
		items = []T{}
	}
	return listPage[T]{Items: items, NextCursor: next, Next: nextLink(r, next), Position: position}
}

// csvStream writes a CSV export: the header row, then rows page by page,
// flushed after each page.
type csvStream struct {
	s  *Server
	r  *http.Request
	w  http.ResponseWriter
	cw *csv.Writer
	rc *http.ResponseController
}

// startCSV begins a CSV export named name (the download's file name).
func (s *Server) startCSV(w http.ResponseWriter, r *http.Request, name string, position uint64, header []string) *csvStream {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	h.Set(positionHeader, strconv.FormatUint(position, 10))
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept, Accept-Language, Authorization")
	w.WriteHeader(http.StatusOK)
	c := &csvStream{s: s, r: r, w: w, cw: csv.NewWriter(w), rc: http.NewResponseController(w)}
	c.row(header)
	return c
}

func (c *csvStream) row(fields []string) { _ = c.cw.Write(fields) }

// flush sends what is buffered; it returns the client's write error.
func (c *csvStream) flush() error {
	c.cw.Flush()
	if err := c.cw.Error(); err != nil {
		return err
	}
	if err := c.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// abort ends an export that failed after it began: the error is logged
// and the connection dropped, so that the client sees a truncated
// transfer, not a complete-looking file.
func (c *csvStream) abort(err error) {
	c.s.cfg.Logger.Error("CSV export failed midway", "path", c.r.URL.Path, "request_id", requestID(c.r.Context()), "err", err)
	panic(http.ErrAbortHandler)
}

// streamPages exports every page: the first is already read; fetch reads
// the page after an inner cursor. Each row is turned into CSV fields by
// fields.
func streamPages[T any](c *csvStream, first []T, next string, fetch func(after string) ([]T, string, error), fields func(T) []string) {
	rows := first
	for {
		for _, it := range rows {
			c.row(fields(it))
		}
		if err := c.flush(); err != nil {
			return // the client went away
		}
		if next == "" {
			return
		}
		var err error
		if rows, next, err = fetch(next); err != nil {
			c.abort(err)
		}
	}
}

// CSV cell helpers.

func csvInt[N ~int | ~int64 | ~uint64](n N) string { return strconv.FormatInt(int64(n), 10) }

func csvIntPtr(n *int) string {
	if n == nil {
		return ""
	}
	return strconv.Itoa(*n)
}

func csvTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func csvTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return csvTime(*t)
}

func csvStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func csvFloatPtr(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func csvBool(b bool) string { return strconv.FormatBool(b) }

// csvText guards free text typed by users (titles, descriptions, notes)
// against formula injection when the export is opened in a spreadsheet.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ─── documentation helpers ───────────────────────────────────────────────

func qpString(name, desc string) paramDoc {
	return paramDoc{Name: name, In: "query", Description: desc, Schema: map[string]any{"type": "string", "minLength": 1, "maxLength": 128}}
}

func qpEnum(name, desc string, values ...string) paramDoc {
	return paramDoc{Name: name, In: "query", Description: desc, Schema: map[string]any{"type": "string", "enum": values}}
}

func qpPath(name, desc string) paramDoc {
	return paramDoc{Name: name, In: "path", Description: desc, Required: true, Schema: map[string]any{"type": "string", "minLength": 1}}
}

var (
	qpFiscalYear = paramDoc{Name: "fiscal_year", In: "query",
		Description: "Fiscal year as a Solar Hijri year (1403; Persian digits ۱۴۰۳ accepted), 1380 to 1500.",
		Schema:      map[string]any{"type": "string", "pattern": "^\\s*[0-9۰-۹٠-٩]{4}\\s*$"}}
	qpProvince = paramDoc{Name: "province", In: "query", Description: "Province code, IR-00 to IR-30.",
		Schema: map[string]any{"type": "string", "pattern": "^[Ii][Rr]-[0-9۰-۹]{2}$"}}
	qpCounty  = qpString("county", "County id.")
	qpAgency  = qpString("agency", "Executive agency id.")
	qpProgram = qpString("program", "Programme id.")
	qpBank    = qpString("bank", "Operating bank id.")
	qpLimit   = paramDoc{Name: "limit", In: "query", Description: "Page size (JSON only), 1 to 1000; default 50.",
		Schema: map[string]any{"type": "integer", "minimum": 1, "maximum": maxLimit}}
	qpCursor = paramDoc{Name: "cursor", In: "query",
		Description: "Opaque cursor of the next page (next_cursor of the previous page), valid only with the same filters, sort and grouping.",
		Schema:      map[string]any{"type": "string"}}
	qpMinPosition = paramDoc{Name: "min_position", In: "query",
		Description: "Read-your-writes: wait until the read model reflects this log position (the position a command answered with). " +
			"If it does not within max_wait, the answer is 503 position-not-reached with the position reached.",
		Schema: map[string]any{"type": "integer", "minimum": 0}}
	qpMaxWait = paramDoc{Name: "max_wait", In: "query",
		Description: "How long min_position may wait, as a duration (500ms, 2s); at most the server's limit (default 5s), which is also the default.",
		Schema:      map[string]any{"type": "string"}}
)

// qpWait are the parameters of every read-model query.
func qpWait() []paramDoc { return []paramDoc{qpMinPosition, qpMaxWait} }

// queryDescription ends every query's description.
const queryDescription = " The answer's position (body and Payesh-Position header) is the log position the read model reflects."

// csvDescription documents the CSV export of a list.
const csvDescription = " With Accept: text/csv the answer is a CSV export of every matching row (all pages, from cursor if given), streamed; limit does not apply."
