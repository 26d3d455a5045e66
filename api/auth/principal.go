package auth

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
)

// Role is what a principal is in the real process. The set is closed;
// Roles lists it.
type Role string

// The roles of the ledger's users (see docs/DOMAIN.md for the actors).
const (
	// RoleMinistry: the Ministry of Cooperatives, Labour and Social
	// Welfare's deputy for entrepreneurship and employment: allocates and
	// moves quota, follows audit cases nationally.
	RoleMinistry Role = "ministry"
	// RoleProvinceOffice: a provincial office (the governorate's and the
	// ministry's provincial monitoring level), which watches its province.
	RoleProvinceOffice Role = "province_office"
	// RoleAgency: an executive agency (دستگاه اجرایی) that registers and
	// reviews plans.
	RoleAgency Role = "agency"
	// RoleBank: an operating bank (بانک عامل) that approves, rejects and
	// pays the loans referred to it.
	RoleBank Role = "bank"
	// RoleInspector: a consulting firm contracted for field inspections.
	RoleInspector Role = "inspector"
	// RoleAuditor: an auditor who reads everything and raises audit cases.
	RoleAuditor Role = "auditor"
	// RoleAdmin: a Payesh administrator who manages reference data.
	RoleAdmin Role = "admin"
)

// Roles returns every role in a stable order, for validation messages and
// exhaustive tests.
func Roles() []Role {
	return []Role{RoleMinistry, RoleProvinceOffice, RoleAgency, RoleBank, RoleInspector, RoleAuditor, RoleAdmin}
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.ScopeKind() != "" }

// ScopeKind returns the one kind of scope a principal of role r must have;
// empty for an unknown role.
func (r Role) ScopeKind() ScopeKind {
	switch r {
	case RoleMinistry, RoleAuditor, RoleAdmin:
		return ScopeNational
	case RoleProvinceOffice:
		return ScopeProvince
	case RoleAgency:
		return ScopeAgency
	case RoleBank:
		return ScopeBank
	case RoleInspector:
		return ScopeFirm
	}
	return ""
}

// ScopeKind is the kind of organisation a principal acts for.
type ScopeKind string

// The scope kinds. National scope has no ID; the others name a province
// code, an agency, a bank or an inspection firm of the reference catalogue.
const (
	ScopeNational ScopeKind = "national"
	ScopeProvince ScopeKind = "province"
	ScopeAgency   ScopeKind = "agency"
	ScopeBank     ScopeKind = "bank"
	ScopeFirm     ScopeKind = "firm"
)

// Scope is the part of the country's facilities a principal acts for.
type Scope struct {
	Kind ScopeKind `json:"kind"`
	ID   string    `json:"id,omitempty"` // empty for national scope
}

// National is the scope of ministry, auditor and admin principals.
var National = Scope{Kind: ScopeNational}

func (s Scope) String() string {
	if s.Kind == ScopeNational {
		return string(ScopeNational)
	}
	return string(s.Kind) + ":" + s.ID
}

// OrgMinistry is the Org recorded for ministry and auditor principals: the
// reference catalogue's ID of the Ministry of Cooperatives, Labour and Social
// Welfare, as the seeded history records it. OrgPayesh is the Org of
// administrators, the operators of the system itself.
const (
	OrgMinistry = "labour-ministry"
	OrgPayesh   = "payesh"
)

// Principal is who calls the API: a stable subject, its role and the scope
// it acts for. Principals returned by an Authenticator are always valid;
// one built by hand should be checked with Validate.
type Principal struct {
	// Subject is a stable ID of the person or system, such as
	// "melli-branch-0412" or an employee number. It is recorded in every
	// event the principal causes.
	Subject string `json:"subject"`
	Role    Role   `json:"role"`
	Scope   Scope  `json:"scope"`
}

// NewPrincipal builds a principal of role with the scope kind the role
// requires, scopeID naming the province, agency, bank or firm (empty for
// national roles), and validates it against cat (see Validate).
func NewPrincipal(subject string, role Role, scopeID string, cat Catalog) (Principal, error) {
	p := Principal{Subject: subject, Role: role, Scope: Scope{Kind: role.ScopeKind(), ID: scopeID}}
	return p, p.Validate(cat)
}

// Catalog answers whether an agency, bank or inspection firm exists.
// reference.Catalog implements it; a server whose catalogue changes while
// it runs passes one that consults the latest catalogue. Has must be safe
// for concurrent use. Provinces are fixed by law and checked without it.
type Catalog interface {
	Has(kind reference.Kind, id string) bool
}

// CatalogFunc adapts a function to Catalog.
type CatalogFunc func(kind reference.Kind, id string) bool

// Has calls f.
func (f CatalogFunc) Has(kind reference.Kind, id string) bool { return f(kind, id) }

// maxSubject bounds a subject's length; subjects are IDs, not prose.
const maxSubject = 128

// Validate checks that the subject is a printable ID without white space,
// that the role is known, that the scope is exactly the kind the role needs
// (national roles carry no ID, the others a non-empty one), that a province
// scope is a province code (IR-00 … IR-30), and, when cat is not nil, that
// an agency, bank or firm scope exists in it. It returns an error matching
// ErrInvalidPrincipal, or an *UnknownScopeError.
func (p Principal) Validate(cat Catalog) error {
	var problems []string
	switch {
	case p.Subject == "":
		problems = append(problems, "subject is required")
	case len(p.Subject) > maxSubject:
		problems = append(problems, fmt.Sprintf("subject is longer than %d bytes", maxSubject))
	case strings.IndexFunc(p.Subject, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		problems = append(problems, fmt.Sprintf("subject %q contains white space or unprintable characters", p.Subject))
	}
	want := p.Role.ScopeKind()
	switch {
	case want == "":
		problems = append(problems, fmt.Sprintf("role %q is not one of %s", p.Role, joinRoles()))
	case p.Scope.Kind != want:
		problems = append(problems, fmt.Sprintf("role %s needs a %s scope, not %q", p.Role, want, p.Scope.Kind))
	case want == ScopeNational && p.Scope.ID != "":
		problems = append(problems, fmt.Sprintf("role %s has national scope and takes no scope ID (got %q)", p.Role, p.Scope.ID))
	case want != ScopeNational && p.Scope.ID == "":
		problems = append(problems, fmt.Sprintf("role %s needs the ID of its %s", p.Role, want))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidPrincipal, strings.Join(problems, "; "))
	}
	switch p.Scope.Kind {
	case ScopeProvince:
		if _, ok := reference.ProvinceByCode(p.Scope.ID); !ok {
			return &UnknownScopeError{Kind: ScopeProvince, ID: p.Scope.ID}
		}
	case ScopeAgency, ScopeBank, ScopeFirm:
		if cat != nil && !cat.Has(referenceKind(p.Scope.Kind), p.Scope.ID) {
			return &UnknownScopeError{Kind: p.Scope.Kind, ID: p.Scope.ID}
		}
	}
	return nil
}

// referenceKind maps an organisation scope kind to the catalogue's kind.
func referenceKind(k ScopeKind) reference.Kind {
	switch k {
	case ScopeAgency:
		return reference.KindAgency
	case ScopeBank:
		return reference.KindBank
	case ScopeFirm:
		return reference.KindFirm
	}
	return ""
}

func joinRoles() string {
	var b strings.Builder
	for i, r := range Roles() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(r))
	}
	return b.String()
}

// Org returns the organisation the principal acts for: the scope's ID, or
// for national roles OrgMinistry (ministry, auditor) or OrgPayesh (admin).
func (p Principal) Org() string {
	switch p.Role {
	case RoleMinistry, RoleAuditor:
		return OrgMinistry
	case RoleAdmin:
		return OrgPayesh
	}
	return p.Scope.ID
}

// Actor returns the actor recorded in the events this principal causes:
// ID is the subject, Role the role, Org as Org returns. Handlers put it in
// ledger.Meta; the actor always comes from the credential, never from a
// request body.
func (p Principal) Actor() eventstore.Actor {
	return eventstore.Actor{ID: p.Subject, Role: string(p.Role), Org: p.Org()}
}

func (p Principal) String() string {
	return p.Subject + " (" + string(p.Role) + ", " + p.Scope.String() + ")"
}

type principalKey struct{}

// NewContext returns a copy of ctx carrying p, for the handlers behind an
// authenticating middleware.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal NewContext stored in ctx; false when
// the request was not authenticated (a handler must then refuse with 401).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
