package api

// The command side of the API: one POST endpoint per domain command. This
// file holds what every command shares (the route table, the request's
// headers, the business time, executing through ledger.Service with the
// authorisation and If-Match precondition, the answer); the endpoints are in
// commands_facility.go and commands_quota.go (quota and reference data),
// Idempotency-Key in idempotency.go, and the date parsing every handler
// shares in commands_dates.go.
//
// Decisions, documented for clients in the OpenAPI document:
//
//   - Every command answers {"stream", "event_ids", "version", "position",
//     "duplicate"}: the stream written, the IDs of the events appended, the
//     stream's version after them, the global log position of the last one
//     (0 when the command appended nothing, a rename to the current names),
//     and whether the ledger recognised the command as a retry of one
//     already executed. The version is also the ETag ("<version>", quoted
//     as RFC 9110 wants), to send back as If-Match; the position is also
//     the Payesh-Position header, to send to a query as min_position and
//     read one's own write. 201 when the command creates something (a
//     facility, a tranche, a report, an inspection, a case, evidence, a
//     correction, an allocation, a transfer, a reference entity; Location
//     for a new facility), 200 when it moves something that exists on
//     (review, approval, rejection, resolution, closure, rename).
//   - The business time is occurred_at (any form parseTime reads: ISO 8601
//     or Solar Hijri, Persian digits accepted), now when absent. More than
//     eventstore.BackdateTolerance in the past it needs backdate_reason,
//     which is recorded in the event; in the future it is refused.
//   - Who may act is decided on the state the command is decided on: the
//     policy check runs inside ledger.Execute (ledger.Meta.Check), under the
//     stream's lock, and the append expects exactly the version it saw. A
//     role that may never take the action is refused before the body is
//     read. The actor is the principal's (never the body's), and fields
//     that name the caller's own organisation (a registration's agency, an
//     approving bank, an inspecting firm, a jobs report's reporter) default
//     to the principal's and, when given, must be it (403 otherwise).
//   - If-Match: "<version>" (or a list, or *) makes the command conditional
//     on the stream's version, checked by the same precondition: 412
//     version-mismatch with current_version otherwise. A malformed If-Match
//     is 400.
//   - Idempotency-Key: see idempotency.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
)

// commander holds what every command route shares.
type commander struct {
	s    *Server
	idem *idempotencyStore
	now  func() time.Time
}

// commandRoutes lists the POST endpoints.
func (s *Server) commandRoutes() []route {
	c := &commander{s: s, idem: newIdempotencyStore(s.cfg.ReadModels, s.cfg.RequestTimeout), now: time.Now}
	var rs []route
	rs = append(rs, c.facilityRoutes()...)
	rs = append(rs, c.quotaRoutes()...)
	rs = append(rs, c.reallocationRoutes()...)
	rs = append(rs, c.referenceRoutes()...)
	return rs
}

// CommandResult is the answer to every command.
type CommandResult struct {
	Stream    string   `json:"stream"`
	EventIDs  []string `json:"event_ids"`
	Version   uint64   `json:"version"`
	Position  uint64   `json:"position"`
	Duplicate bool     `json:"duplicate"`
}

// when is the business time every command request carries.
type when struct {
	// OccurredAt is when the step happened; empty means now.
	OccurredAt string `json:"occurred_at"`
	// BackdateReason says why a step is recorded late.
	BackdateReason string `json:"backdate_reason"`
}

func (w *when) timing() *when { return w }

// resolve returns the business time, checking it against now: not in the
// future, and not in the past beyond the tolerance without a reason.
func (w *when) resolve(now time.Time) (time.Time, error) {
	if strings.TrimSpace(w.OccurredAt) == "" {
		if strings.TrimSpace(w.BackdateReason) != "" {
			var v domain.Validator
			v.Add("backdate_reason", "not_backdated", "is only given with an occurred_at in the past",
				"فقط همراه با occurred_at گذشته داده می‌شود")
			return time.Time{}, v.Err()
		}
		return now, nil
	}
	at, err := parseTime("occurred_at", w.OccurredAt)
	if err != nil {
		return time.Time{}, err
	}
	var v domain.Validator
	switch {
	case at.After(now.Add(eventstore.BackdateTolerance)):
		v.Add("occurred_at", "in_future", "is in the future; record a step once it has happened",
			"در آینده است؛ اقدام را پس از انجام آن ثبت کنید")
	case at.Before(eventstore.MinOccurredAt):
		v.Add("occurred_at", "out_of_range", "is before 1900", "پیش از سال ۱۹۰۰ میلادی است")
	case at.Before(now.Add(-eventstore.BackdateTolerance)) && strings.TrimSpace(w.BackdateReason) == "":
		v.Add("backdate_reason", "required",
			fmt.Sprintf("is required when occurred_at is more than %s in the past: say why the step is recorded late", eventstore.BackdateTolerance),
			fmt.Sprintf("وقتی occurred_at بیش از %s پیش است الزامی است؛ علت ثبت دیرهنگام را بنویسید", eventstore.BackdateTolerance))
	}
	return at, v.Err()
}

// timed is a request type that embeds when.
type timed[T any] interface {
	*T
	timing() *when
}

// cmdInput is what a route's builder gets besides its decoded body.
type cmdInput struct {
	r   *http.Request
	p   auth.Principal
	at  time.Time
	key string // the client's Idempotency-Key, "" without one
}

// cmdPlan is a decoded command, ready to execute.
type cmdPlan struct {
	// run executes the command through ledger.Service with meta.
	run func(ctx context.Context, meta ledger.Meta) (ledger.Result, error)
	// authorize decides, on the state of the command's stream as it will
	// be decided on, whether the principal may send the command.
	authorize func(state any) error
	// location is the Location of a created resource, if any.
	location string
	// fields renames the domain's field names in validation problems to the
	// request's (beyond "at" → "occurred_at").
	fields map[string]string
	// body, when set, builds the answer's body from the command's result
	// (a CommandResult with the command's own figures); an idempotent
	// replay serves the body built the first time.
	body func(ctx context.Context, res ledger.Result) (any, error)
}

// cmdSpec describes one command route.
type cmdSpec[Req any] struct {
	status int
	// actions are the policy actions the route may need: a role with no
	// reach for any of them is refused before the body is read.
	actions []auth.Action
	build   func(in cmdInput, req *Req) (cmdPlan, error)
}

// handle returns the handler of a command route: the order of checks is
// the role, the headers, the idempotency key, the body, then the command
// with its precondition.
func handle[Req any, P timed[Req]](c *commander, spec cmdSpec[Req]) func(http.ResponseWriter, *http.Request, auth.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p auth.Principal) (err error) {
		if err := c.mayEver(p, spec.actions); err != nil {
			return err
		}
		match, err := parseIfMatch(r)
		if err != nil {
			return err
		}
		key, err := idempotencyKey(r)
		if err != nil {
			return err
		}
		body, err := readBody(w, r, c.s.cfg.MaxBody)
		if err != nil {
			return err
		}
		ctx := r.Context()
		var (
			rsv       *reservation
			ledgerKey string
		)
		if key != "" {
			hash := requestHash(r, body)
			var kept *storedAnswer
			rsv, kept, err = c.idem.begin(ctx, p.Subject, key, hash)
			if err != nil {
				if errors.Is(err, errKeyInFlight) {
					w.Header().Set("Retry-After", "1")
				}
				return err
			}
			if kept != nil {
				kept.write(w, true)
				return nil
			}
			defer func() {
				if err != nil {
					if rerr := rsv.release(context.WithoutCancel(ctx)); rerr != nil {
						c.s.cfg.Logger.Warn("idempotency key not released", "request_id", requestID(ctx), "err", rerr)
					}
				}
			}()
			// The subject cannot contain white space, so this is unambiguous.
			ledgerKey = p.Subject + " " + key + " " + hash[:16]
		}

		var req Req
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := decodeJSON(w, r, c.s.cfg.MaxBody, &req); err != nil {
			return err
		}
		now := c.now()
		tm := P(&req).timing()
		at, err := tm.resolve(now)
		if err != nil {
			return err
		}
		plan, err := spec.build(cmdInput{r: r, p: p, at: at, key: key}, &req)
		if err != nil {
			return err
		}
		meta := ledger.Meta{
			Actor:          p.Actor(),
			IdempotencyKey: ledgerKey,
			CorrelationID:  requestID(ctx),
			OccurredAt:     at,
			BackdateReason: strings.TrimSpace(tm.BackdateReason),
			Check: func(state any, version uint64) error {
				if err := plan.authorize(state); err != nil {
					return err
				}
				return match.check(version)
			},
		}
		start := time.Now()
		res, err := plan.run(ctx, meta)
		c.s.appendLatency.Observe(time.Since(start).Seconds())
		if err != nil {
			return c.commandError(w, err, plan.fields)
		}
		a := answerOf(spec.status, res, plan.location)
		if plan.body != nil {
			v, err := plan.body(ctx, res)
			if err != nil {
				return err
			}
			if a.Body, err = json.Marshal(v); err != nil {
				return fmt.Errorf("api: encode answer: %w", err)
			}
			a.Body = append(a.Body, '\n')
		}
		if rsv != nil {
			if kerr := rsv.complete(context.WithoutCancel(ctx), a); kerr != nil {
				// The command is done: answer it. A retry finds the
				// reservation stale after the lease and is recognised by
				// the ledger's key.
				c.s.cfg.Logger.Error("idempotent answer not kept", "request_id", requestID(ctx), "err", kerr)
			}
		}
		a.write(w, false)
		return nil
	}
}

// answerOf builds a command's answer.
func answerOf(status int, res ledger.Result, location string) storedAnswer {
	ids := res.EventIDs
	if ids == nil {
		ids = []string{}
	}
	body, _ := json.Marshal(CommandResult{ // a CommandResult always marshals
		Stream: res.Stream, EventIDs: ids, Version: res.Version, Position: res.Position, Duplicate: res.Duplicate,
	})
	body = append(body, '\n')
	h := map[string]string{
		"Content-Type":  "application/json",
		"Cache-Control": "no-store",
		"ETag":          etag(res.Version),
		positionHeader:  strconv.FormatUint(res.Position, 10),
	}
	if location != "" {
		h["Location"] = location
	}
	return storedAnswer{Status: status, Header: h, Body: body}
}

func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// mayEver refuses a principal whose role may take none of actions anywhere
// (an auditor approving a loan), before anything else is looked at.
func (c *commander) mayEver(p auth.Principal, actions []auth.Action) error {
	if len(actions) == 0 {
		return nil
	}
	for _, a := range actions {
		if c.s.policy.Reach(p.Role, a) != auth.Nowhere {
			return nil
		}
	}
	return c.s.policy.Authorize(p, actions[0], auth.Resource{})
}

// commandError classifies what executing a command returned.
func (c *commander) commandError(w http.ResponseWriter, err error, fields map[string]string) error {
	var pe *problemError
	switch {
	case errors.As(err, &pe) && pe.kind == probPrecond:
		if v, ok := pe.extra["current_version"].(uint64); ok {
			w.Header().Set("ETag", etag(v))
		}
		return err
	case errors.Is(err, eventstore.ErrInvalidEvent):
		// The request passed the API's checks but not the store's (an
		// occurred_at at the edge of the backdating tolerance): input.
		pe := fail(probValidation, "the event store refused the event: "+err.Error(), "دفتر رویداد را نپذیرفت: "+err.Error())
		return pe
	case errors.Is(err, ledger.ErrTooMuchContention):
		w.Header().Set("Retry-After", "1")
		pe := fail(probUnavail, "the record is being changed by many requests at once; retry", "پرونده هم‌زمان با درخواست‌های بسیاری تغییر می‌کند؛ دوباره تلاش کنید")
		pe.internal = err
		return pe
	}
	names := map[string]string{"at": "occurred_at"}
	for k, v := range fields {
		names[k] = v
	}
	return renameFields(err, names)
}

// readBody reads the whole body, at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fail(probTooLarge, fmt.Sprintf("the body is larger than %d bytes", max), fmt.Sprintf("بدنه درخواست بزرگ‌تر از %d بایت است", max))
	}
	if err != nil {
		return nil, fail(probMalformed, "the body cannot be read: "+err.Error(), "بدنه درخواست قابل خواندن نیست: "+err.Error())
	}
	return b, nil
}

// ifMatch is a parsed If-Match header; the nil *ifMatch matches anything.
type ifMatch struct {
	any      bool     // "*": the stream must exist
	versions []uint64 // the stream must be at one of them
}

// parseIfMatch reads If-Match: "*", or a comma-separated list of strong
// entity tags holding stream versions ("3", "0" for a stream that must not
// exist yet). Anything else is a 400.
func parseIfMatch(r *http.Request) (*ifMatch, error) {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return nil, nil
	}
	bad := func(v string) error {
		pe := fail(probMalformed,
			fmt.Sprintf(`If-Match %q is not a stream version: send the ETag of an earlier answer, such as "3" with its quotes, or *`, v),
			fmt.Sprintf(`If-Match %q نسخهٔ پرونده نیست؛ ETag پاسخ پیشین را مانند "3" همراه با گیومه یا * بفرستید`, v))
		pe.fields = []FieldProblem{{Field: "If-Match", Code: "malformed", Message: "must be * or a list of quoted stream versions"}}
		return pe
	}
	m := &ifMatch{}
	for _, part := range strings.Split(strings.Join(vals, ","), ",") {
		tag := strings.TrimSpace(part)
		if tag == "*" {
			m.any = true
			continue
		}
		if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
			return nil, bad(tag)
		}
		n, err := strconv.ParseUint(tag[1:len(tag)-1], 10, 64)
		if err != nil {
			return nil, bad(tag)
		}
		m.versions = append(m.versions, n)
	}
	if m.any && len(m.versions) > 0 {
		return nil, bad(strings.Join(vals, ","))
	}
	return m, nil
}

// check returns a 412 problem unless the stream's version satisfies m.
func (m *ifMatch) check(version uint64) error {
	if m == nil || (m.any && version > 0) {
		return nil
	}
	for _, v := range m.versions {
		if v == version {
			return nil
		}
	}
	pe := fail(probPrecond,
		fmt.Sprintf("the record is at version %d, not the one given in If-Match", version),
		fmt.Sprintf("پرونده در نسخهٔ %d است، نه نسخهٔ اعلام‌شده در If-Match", version))
	pe.extra = map[string]any{"current_version": version}
	return pe
}

// ─── documentation helpers ───────────────────────────────────────────────

// commandDoc documents a command route: every command takes Idempotency-Key
// and If-Match, and answers CommandResult, or 404, 409 and 412 problems
// besides the common ones.
func commandDoc(tag, summary, description, request string, status int, params ...paramDoc) routeDoc {
	return routeDoc{
		Summary: summary,
		Description: description + " The answer carries the stream version as ETag (send it back as If-Match) and the log position as " +
			"the Payesh-Position header (send it to a query as min_position to read your own write). A replay of an Idempotency-Key's " +
			"first answer carries Idempotent-Replayed: true.",
		Tags:    []string{tag},
		Params:  params,
		Request: request,
		Responses: map[int]string{
			status:                        "CommandResult",
			http.StatusNotFound:           "Problem",
			http.StatusConflict:           "Problem",
			http.StatusPreconditionFailed: "Problem",
		},
		Idempotent: true,
		IfMatch:    true,
	}
}

func cmdPathParam(name, description string, schema map[string]any) paramDoc {
	return paramDoc{Name: name, In: "path", Description: description, Required: true, Schema: schema}
}
