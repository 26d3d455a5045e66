package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
)

// Problem is an RFC 9457 problem details object. Type is stable: clients
// branch on it (and on Errors[].Code), never on Title or Detail, which are
// in the language the client asked for.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []FieldProblem `json:"errors,omitempty"`
	// Extra holds extension members (e.g. current_version on a 412).
	Extra map[string]any `json:"-"`
}

// FieldProblem is one problem with one input field; Field is a JSON
// pointer-like dotted path into the request ("applicant.national_id") or a
// query parameter's name.
type FieldProblem struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// MarshalJSON flattens Extra into the object, as RFC 9457 extension members.
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	b, err := json.Marshal(plain(p))
	if err != nil || len(p.Extra) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// ProblemTypeBase prefixes every problem type: a URN, since the types name
// kinds of failure, not pages (they are listed in the OpenAPI document).
const ProblemTypeBase = "urn:payesh:problem:"

// problemKind is one stable kind of failure, with its status and its title
// in both languages.
type problemKind struct {
	slug    string
	status  int
	titleEn string
	titleFa string
}

// The kinds of failure the API reports.
var (
	probMalformed  = problemKind{"malformed-request", http.StatusBadRequest, "The request could not be read", "درخواست قابل خواندن نیست"}
	probValidation = problemKind{"validation", http.StatusUnprocessableEntity, "The request has invalid fields", "درخواست دارای فیلدهای نامعتبر است"}
	probUnauth     = problemKind{"unauthenticated", http.StatusUnauthorized, "Authentication is required", "احراز هویت لازم است"}
	probForbidden  = problemKind{"forbidden", http.StatusForbidden, "Not allowed", "مجاز نیست"}
	probNotFound   = problemKind{"not-found", http.StatusNotFound, "Not found", "یافت نشد"}
	probIllegal    = problemKind{"illegal-transition", http.StatusConflict, "Not possible in the record's current state", "در وضعیت فعلی پرونده امکان‌پذیر نیست"}
	probConflict   = problemKind{"conflict", http.StatusConflict, "Conflicts with the ledger", "با دفتر کل در تعارض است"}
	probQuota      = problemKind{"quota-exceeded", http.StatusConflict, "Not enough free quota", "سهمیه آزاد کافی نیست"}
	probPrecond    = problemKind{"version-mismatch", http.StatusPreconditionFailed, "The record has changed since the version given in If-Match", "پرونده پس از نسخه اعلام‌شده در If-Match تغییر کرده است"}
	probIdemReuse  = problemKind{"idempotency-key-reused", http.StatusUnprocessableEntity, "The Idempotency-Key was used for a different request", "کلید Idempotency-Key برای درخواست دیگری به کار رفته است"}
	probTooLarge   = problemKind{"request-too-large", http.StatusRequestEntityTooLarge, "The request body is too large", "بدنه درخواست بیش از حد بزرگ است"}
	probMediaType  = problemKind{"unsupported-media-type", http.StatusUnsupportedMediaType, "The request body must be JSON", "بدنه درخواست باید JSON باشد"}
	probNotAccept  = problemKind{"not-acceptable", http.StatusNotAcceptable, "No representation in the requested format", "قالب درخواست‌شده پشتیبانی نمی‌شود"}
	probNotReached = problemKind{"position-not-reached", http.StatusServiceUnavailable, "The read model has not reached the requested position yet", "مدل خواندنی هنوز به موقعیت درخواست‌شده نرسیده است"}
	probUnavail    = problemKind{"unavailable", http.StatusServiceUnavailable, "Temporarily unavailable", "موقتاً در دسترس نیست"}
	probTimeout    = problemKind{"timeout", http.StatusServiceUnavailable, "The request took too long", "درخواست بیش از حد طول کشید"}
	probInternal   = problemKind{"internal", http.StatusInternalServerError, "Internal error", "خطای داخلی"}
	probMethod     = problemKind{"method-not-allowed", http.StatusMethodNotAllowed, "Method not allowed", "این روش مجاز نیست"}
)

// problemKinds lists every kind, for the OpenAPI document and its test.
var problemKinds = []problemKind{
	probMalformed, probValidation, probUnauth, probForbidden, probNotFound, probIllegal, probConflict,
	probQuota, probPrecond, probIdemReuse, probTooLarge, probMediaType, probNotAccept, probNotReached,
	probUnavail, probTimeout, probInternal, probMethod,
}

// persian reports whether the client prefers Persian (Accept-Language
// fa, fa-IR, with any quality ordering that puts it before English).
func persian(r *http.Request) bool {
	best, bestQ := "", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, q := strings.TrimSpace(part), 1.0
		if i := strings.Index(tag, ";"); i >= 0 {
			v, err := strconv.ParseFloat(strings.TrimPrefix(strings.TrimSpace(tag[i+1:]), "q="), 64)
			if err != nil {
				v = 0
			}
			q = v
			tag = strings.TrimSpace(tag[:i])
		}
		lang := strings.ToLower(strings.SplitN(tag, "-", 2)[0])
		if (lang == "fa" || lang == "en") && q > bestQ {
			best, bestQ = lang, q
		}
	}
	return best == "fa"
}

// newProblem builds a problem of kind k in the request's language.
func newProblem(r *http.Request, k problemKind, detail string) Problem {
	title := k.titleEn
	if persian(r) {
		title = k.titleFa
	}
	return Problem{Type: ProblemTypeBase + k.slug, Title: title, Status: k.status, Detail: detail, Instance: r.URL.Path}
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// problemFor translates an error from the layers below into the problem a
// client sees: the one place where domain, ledger and store errors become
// HTTP. Errors it does not know are internal: logged by the caller, and
// shown without their text.
func problemFor(r *http.Request, err error) Problem {
	fa := persian(r)
	var (
		ve *domain.ValidationError
		te *domain.TransitionError
		nf *domain.NotFoundError
		qe *domain.QuotaExceededError
		ce *domain.ConflictError
		pe *problemError
	)
	var se *quota.StaleProposalError
	switch {
	case errors.As(err, &se):
		return staleProblem(r, se)
	case errors.As(err, &pe):
		p := newProblem(r, pe.kind, pe.detail(fa))
		p.Errors, p.Extra = pe.fields, pe.extra
		return p
	case errors.As(err, &ve):
		p := newProblem(r, probValidation, "")
		for _, f := range ve.Fields {
			msg := f.Message
			if fa && f.MessageFa != "" {
				msg = f.MessageFa
			}
			p.Errors = append(p.Errors, FieldProblem{Field: f.Field, Code: f.Code, Message: msg})
		}
		return p
	case errors.As(err, &te):
		if fa && te.ReasonFa != "" {
			return newProblem(r, probIllegal, te.ReasonFa)
		}
		return newProblem(r, probIllegal, te.Error())
	case errors.As(err, &nf):
		return newProblem(r, probNotFound, nf.Error())
	case errors.As(err, &qe):
		return newProblem(r, probQuota, qe.Error())
	case errors.As(err, &ce):
		if fa && ce.ReasonFa != "" {
			return newProblem(r, probConflict, ce.ReasonFa)
		}
		return newProblem(r, probConflict, ce.Error())
	case errors.Is(err, domain.ErrInvalid):
		return newProblem(r, probValidation, err.Error())
	case errors.Is(err, domain.ErrNotFound):
		return newProblem(r, probNotFound, err.Error())
	case errors.Is(err, domain.ErrIllegalTransition):
		return newProblem(r, probIllegal, err.Error())
	case errors.Is(err, domain.ErrConflict):
		return newProblem(r, probConflict, err.Error())
	}
	return newProblem(r, probInternal, "")
}

// problemError is an error the API raises itself, already classified.
type problemError struct {
	kind     problemKind
	en, fa   string
	fields   []FieldProblem
	extra    map[string]any
	internal error // logged, never shown
}

func (e *problemError) Error() string {
	if e.internal != nil {
		return e.en + ": " + e.internal.Error()
	}
	return e.en
}

func (e *problemError) Unwrap() error { return e.internal }

func (e *problemError) detail(fa bool) string {
	if fa && e.fa != "" {
		return e.fa
	}
	return e.en
}

// fail returns a classified error with its detail in both languages.
func fail(k problemKind, en, fa string) *problemError {
	return &problemError{kind: k, en: en, fa: fa}
}
