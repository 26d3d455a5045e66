package auth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Action is something a principal asks to do: one domain command, or one
// kind of read. Values are stable; they appear in 403 problem documents and
// logs.
type Action string

// The write actions, one per domain command a client may send. Corrections
// are split by whose figure they correct (see FacilityRequest), because the
// party that recorded a figure is the one that may correct it.
const (
	ActionAllocateQuota        Action = "quota.allocate"
	ActionTransferQuota        Action = "quota.transfer"
	ActionReallocateQuota      Action = "quota.reallocate"
	ActionCorrectAllocation    Action = "quota.correct_allocation"
	ActionRegisterFacility     Action = "facility.register"
	ActionReviewFacility       Action = "facility.review"
	ActionApproveLoan          Action = "facility.approve_loan"
	ActionRejectLoan           Action = "facility.reject_loan"
	ActionDisburseTranche      Action = "facility.disburse_tranche"
	ActionReportJobs           Action = "facility.report_jobs"
	ActionRecordInspection     Action = "facility.record_inspection"
	ActionOpenDeviation        Action = "facility.open_deviation"
	ActionAddDeviationEvidence Action = "facility.add_deviation_evidence"
	ActionResolveDeviation     Action = "facility.resolve_deviation"
	ActionCorrectRegistration  Action = "facility.correct_registration" // jobs_promised, requested_rials, county
	ActionCorrectJobs          Action = "facility.correct_jobs"         // jobs of a jobs report
	ActionCorrectInspection    Action = "facility.correct_inspection"   // verified_jobs, confirmed
	ActionCorrectTranche       Action = "facility.correct_tranche"      // amount_rials of a tranche
	ActionCloseFacility        Action = "facility.close"
	ActionManageReference      Action = "reference.manage" // every reference.Command
	ActionEraseApplicant       Action = "applicant.erase"  // destroy an applicant's data key (crypto-shredding)
)

// The read actions. A read of one resource is checked with Authorize; a
// list or aggregate read gets its mandatory filter from ReadFilter.
const (
	ActionReadFacilities  Action = "read.facilities"  // facilities read model, one facility
	ActionReadJobCounts   Action = "read.job_counts"  // promised / reported / verified jobs
	ActionReadQuotas      Action = "read.quotas"      // quota accounts and their use
	ActionReadBanks       Action = "read.banks"       // bank performance and backlogs
	ActionReadInspections Action = "read.inspections" // inspections and their statistics
	ActionReadDeviations  Action = "read.deviations"  // audit cases
	ActionReadReference   Action = "read.reference"   // provinces, agencies, banks, programmes, counties, firms
	ActionReadEvents      Action = "read.events"      // raw event history
	ActionVerifyLog       Action = "read.verify"      // hash-chain verification of the whole log
)

// Reach is how far a role may take an action.
type Reach uint8

// The reaches. The zero value is Nowhere, so anything the table does not
// grant is refused.
const (
	// Nowhere: no principal of the role may take the action.
	Nowhere Reach = iota
	// InScope: only on resources of the principal's own scope: the
	// resource's province for a province office, its agency for an agency,
	// the bank it is referred to for a bank, the inspection's firm for an
	// inspector.
	InScope
	// Everywhere: on every resource in the country.
	Everywhere
)

func (r Reach) String() string {
	switch r {
	case InScope:
		return "in_scope"
	case Everywhere:
		return "everywhere"
	}
	return "nowhere"
}

// Short names that keep the policy table one aligned line per action; ___
// is a blank cell.
const (
	___ = Nowhere
	own = InScope
	all = Everywhere
)

// policyTable is the authorisation policy: for each action, the reach of
// each role, in the order of Roles():
//
//	MIN ministry, PRV province_office, AGN agency, BNK bank,
//	INS inspector, AUD auditor, ADM admin
//
// Decisions the table encodes (the package comment gives the reasons):
//   - only the ministry allocates, moves and corrects quota;
//   - an agency registers, reviews, reports jobs for, corrects the
//     registration and jobs figures of, and closes only its own facilities;
//   - a bank approves, rejects, pays, reports jobs for and corrects tranches
//     and jobs figures of only the facilities referred to it;
//   - an inspection firm records and corrects only its own inspections, of
//     any facility in the country, and may read every facility to find the
//     plans it is sent to;
//   - audit cases are opened and documented by the ministry and auditors
//     nationally and by a province office in its province, and resolved by
//     the ministry or the province office, never by auditors;
//   - the admin manages reference data and erases applicants' personal
//     data on request, and writes nothing else;
//   - ministry, auditor and admin read everything; scoped roles read their
//     scope; everyone reads reference data; only auditors and the admin
//     verify the whole log: checking the log is the auditors' independent
//     work (the ministry's own decisions are in it), and each run reads all
//     of it.
func policyTable() map[Action][7]Reach {
	return map[Action][7]Reach{
		//                           MIN  PRV  AGN  BNK  INS  AUD  ADM
		ActionAllocateQuota:        {all, ___, ___, ___, ___, ___, ___},
		ActionTransferQuota:        {all, ___, ___, ___, ___, ___, ___},
		ActionReallocateQuota:      {all, ___, ___, ___, ___, ___, ___},
		ActionCorrectAllocation:    {all, ___, ___, ___, ___, ___, ___},
		ActionRegisterFacility:     {___, ___, own, ___, ___, ___, ___},
		ActionReviewFacility:       {___, ___, own, ___, ___, ___, ___},
		ActionApproveLoan:          {___, ___, ___, own, ___, ___, ___},
		ActionRejectLoan:           {___, ___, ___, own, ___, ___, ___},
		ActionDisburseTranche:      {___, ___, ___, own, ___, ___, ___},
		ActionReportJobs:           {___, ___, own, own, ___, ___, ___},
		ActionRecordInspection:     {___, ___, ___, ___, own, ___, ___},
		ActionOpenDeviation:        {all, own, ___, ___, ___, all, ___},
		ActionAddDeviationEvidence: {all, own, ___, ___, ___, all, ___},
		ActionResolveDeviation:     {all, own, ___, ___, ___, ___, ___},
		ActionCorrectRegistration:  {___, ___, own, ___, ___, ___, ___},
		ActionCorrectJobs:          {___, ___, own, own, ___, ___, ___},
		ActionCorrectInspection:    {___, ___, ___, ___, own, ___, ___},
		ActionCorrectTranche:       {___, ___, ___, own, ___, ___, ___},
		ActionCloseFacility:        {___, ___, own, ___, ___, ___, ___},
		ActionManageReference:      {___, ___, ___, ___, ___, ___, all},
		ActionEraseApplicant:       {___, ___, ___, ___, ___, ___, all},
		ActionReadFacilities:       {all, own, own, own, all, all, all},
		ActionReadJobCounts:        {all, own, own, own, ___, all, all},
		ActionReadQuotas:           {all, own, own, ___, ___, all, all},
		ActionReadBanks:            {all, own, own, own, ___, all, all},
		ActionReadInspections:      {all, own, own, own, own, all, all},
		ActionReadDeviations:       {all, own, own, own, ___, all, all},
		ActionReadReference:        {all, all, all, all, all, all, all},
		ActionReadEvents:           {all, own, own, own, ___, all, all},
		ActionVerifyLog:            {___, ___, ___, ___, ___, all, all},
	}
}

// actionNames returns an action's English and Persian phrases for
// messages.
func actionNames(a Action) (en, fa string) {
	switch a {
	case ActionAllocateQuota:
		return "allocate quota", "تخصیص سهمیه"
	case ActionTransferQuota:
		return "transfer quota", "جابه‌جایی سهمیه"
	case ActionReallocateQuota:
		return "propose and decide quota reallocations", "پیشنهاد و تصمیم بازتوزیع سهمیه"
	case ActionCorrectAllocation:
		return "correct quota allocations", "اصلاح تخصیص سهمیه"
	case ActionRegisterFacility:
		return "register facilities", "ثبت طرح"
	case ActionReviewFacility:
		return "review facilities", "بررسی کارشناسی طرح"
	case ActionApproveLoan:
		return "approve loans", "تصویب تسهیلات"
	case ActionRejectLoan:
		return "reject loans", "رد تسهیلات"
	case ActionDisburseTranche:
		return "disburse tranches", "پرداخت قسط تسهیلات"
	case ActionReportJobs:
		return "report jobs", "گزارش اشتغال ایجادشده"
	case ActionRecordInspection:
		return "record inspections", "ثبت نظارت میدانی"
	case ActionOpenDeviation:
		return "open deviation cases", "گشودن پرونده انحراف"
	case ActionAddDeviationEvidence:
		return "add evidence to deviation cases", "افزودن مستند به پرونده انحراف"
	case ActionResolveDeviation:
		return "resolve deviation cases", "مختومه کردن پرونده انحراف"
	case ActionCorrectRegistration:
		return "correct registration figures", "اصلاح اطلاعات ثبت طرح"
	case ActionCorrectJobs:
		return "correct jobs reports", "اصلاح گزارش اشتغال"
	case ActionCorrectInspection:
		return "correct inspection findings", "اصلاح نتیجه نظارت میدانی"
	case ActionCorrectTranche:
		return "correct tranche amounts", "اصلاح مبلغ قسط"
	case ActionCloseFacility:
		return "close facilities", "بستن پرونده طرح"
	case ActionEraseApplicant:
		return "erase applicants' personal data", "پاک کردن دادهٔ شخصی متقاضی"
	case ActionManageReference:
		return "manage reference data", "مدیریت داده‌های پایه"
	case ActionReadFacilities:
		return "read facilities", "مشاهده طرح‌ها"
	case ActionReadJobCounts:
		return "read job counts", "مشاهده آمار اشتغال"
	case ActionReadQuotas:
		return "read quotas", "مشاهده سهمیه‌ها"
	case ActionReadBanks:
		return "read bank performance", "مشاهده عملکرد بانک‌ها"
	case ActionReadInspections:
		return "read inspections", "مشاهده نظارت‌های میدانی"
	case ActionReadDeviations:
		return "read deviation cases", "مشاهده پرونده‌های انحراف"
	case ActionReadReference:
		return "read reference data", "مشاهده داده‌های پایه"
	case ActionReadEvents:
		return "read the event history", "مشاهده تاریخچه رویدادها"
	case ActionVerifyLog:
		return "verify the log", "بررسی یکپارچگی دفتر"
	}
	return string(a), string(a)
}

// Actions returns every action the policy knows, sorted.
func Actions() []Action { return slices.Sorted(maps.Keys(policyTable())) }

// IsRead reports whether a is a read action.
func (a Action) IsRead() bool { return len(a) > 5 && a[:5] == "read." }

// roleIndex is r's column in the policy table; -1 for an unknown role.
func roleIndex(r Role) int {
	for i, x := range Roles() {
		if x == r {
			return i
		}
	}
	return -1
}

// Resource is what the policy needs to know about the thing acted on.
// Build it from the stored state (FacilityResource, AccountResource,
// FacilityRequest), never from the request body alone. An empty attribute
// matches no scope.
type Resource struct {
	Province string // the facility's province, or the quota account's
	Agency   string // the facility's agency, or the quota account's
	Bank     string // the bank the facility is referred to; empty before referral
	Firm     string // the inspection firm, for inspection actions
}

// Filter is the mandatory part of a read query for a principal: every
// non-empty field must be ANDed with the client's own filter on the same
// dimension (see Narrow). The zero Filter restricts nothing. A handler
// whose read model cannot filter on a non-empty field must refuse the read
// (403) rather than ignore the field.
type Filter struct {
	Province string
	Agency   string
	Bank     string
	Firm     string
}

// IsZero reports whether f restricts nothing.
func (f Filter) IsZero() bool { return f == Filter{} }

// Narrow combines a client's filter value on one dimension with the
// mandatory value for it. It returns the value to query with and whether
// the combination can match anything: with no mandatory value the client's
// value stands; with one, the client may repeat it or leave it empty, and
// any other value selects nothing (ok false: answer with an empty result,
// or with 403 naming the mandatory value).
func Narrow(client, mandatory string) (value string, ok bool) {
	switch {
	case mandatory == "":
		return client, true
	case client == "" || client == mandatory:
		return mandatory, true
	}
	return "", false
}

// ErrUnknownAction is returned for an action the policy does not know: a
// programming error, which a server answers with 500, never with a grant.
var ErrUnknownAction = errors.New("auth: unknown action")

// Policy answers who may do what. The zero Policy refuses everything; use
// DefaultPolicy. A Policy is immutable and safe for concurrent use.
type Policy struct {
	rows map[Action][7]Reach
}

// DefaultPolicy returns the policy of policyTable.
func DefaultPolicy() Policy { return Policy{rows: policyTable()} }

// Reach returns how far role may take action; Nowhere for an unknown role
// or action.
func (p Policy) Reach(role Role, a Action) Reach {
	i := roleIndex(role)
	r, ok := p.rows[a]
	if i < 0 || !ok {
		return Nowhere
	}
	return r[i]
}

// Authorize returns nil if pr may take action a on res, a *DeniedError
// (matching ErrForbidden) saying why not, or ErrUnknownAction.
func (p Policy) Authorize(pr Principal, a Action, res Resource) error {
	if _, ok := p.rows[a]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAction, a)
	}
	switch p.Reach(pr.Role, a) {
	case Everywhere:
		return nil
	case InScope:
		kind := pr.Role.ScopeKind()
		attr, attrEn, attrFa := scopeAttribute(kind, res)
		if pr.Scope.Kind == kind && pr.Scope.ID != "" && attr == pr.Scope.ID {
			return nil
		}
		got, gotFa := "none", "هیچ"
		if attr != "" {
			got, gotFa = fmt.Sprintf("%q", attr), attr
		}
		en, fa := actionNames(a)
		return &DeniedError{
			Action: a, Role: pr.Role, Scope: pr.Scope, Denial: DeniedScope,
			Reason: fmt.Sprintf("%s may %s only within its own %s %q; this resource's %s is %s",
				pr.Role, en, kind, pr.Scope.ID, attrEn, got),
			ReasonFa: fmt.Sprintf("«%s» تنها در محدودهٔ %s خود («%s») اجازهٔ «%s» دارد و %s این مورد «%s» است",
				roleFa(pr.Role), attrFa, pr.Scope.ID, fa, attrFa, gotFa),
		}
	}
	en, fa := actionNames(a)
	return &DeniedError{
		Action: a, Role: pr.Role, Scope: pr.Scope, Denial: DeniedRole,
		Reason:   fmt.Sprintf("the %s role may not %s; allowed: %s", roleOrUnknown(pr.Role), en, p.rolesAllowed(a)),
		ReasonFa: fmt.Sprintf("نقش «%s» اجازهٔ «%s» را ندارد", roleFa(pr.Role), fa),
	}
}

// ReadFilter returns the filter that every query of read action a by pr
// must be ANDed with: the zero Filter for a role that reads a everywhere,
// the principal's province, agency, bank or firm for one that reads in its
// scope, and a *DeniedError for one that may not read it at all. It returns
// an error matching ErrUnknownAction for an action that is not a read.
func (p Policy) ReadFilter(pr Principal, a Action) (Filter, error) {
	if !a.IsRead() {
		return Filter{}, fmt.Errorf("%w: %q is not a read action", ErrUnknownAction, a)
	}
	switch p.Reach(pr.Role, a) {
	case Everywhere:
		return Filter{}, nil
	case InScope:
		if pr.Scope.ID == "" || pr.Scope.Kind != pr.Role.ScopeKind() {
			break
		}
		switch pr.Scope.Kind {
		case ScopeProvince:
			return Filter{Province: pr.Scope.ID}, nil
		case ScopeAgency:
			return Filter{Agency: pr.Scope.ID}, nil
		case ScopeBank:
			return Filter{Bank: pr.Scope.ID}, nil
		case ScopeFirm:
			return Filter{Firm: pr.Scope.ID}, nil
		}
	}
	return Filter{}, p.Authorize(pr, a, Resource{})
}

// rolesAllowed lists the roles that may take a, for messages.
func (p Policy) rolesAllowed(a Action) string {
	s := ""
	for _, role := range Roles() {
		switch p.Reach(role, a) {
		case Everywhere:
			s += ", " + string(role)
		case InScope:
			s += ", " + string(role) + " (own " + string(role.ScopeKind()) + ")"
		}
	}
	if s == "" {
		return "nobody"
	}
	return s[2:]
}

// scopeAttribute returns the resource attribute a scope kind is compared
// with, and its English and Persian names.
func scopeAttribute(k ScopeKind, res Resource) (value, en, fa string) {
	switch k {
	case ScopeProvince:
		return res.Province, "province", "استان"
	case ScopeAgency:
		return res.Agency, "agency", "دستگاه اجرایی"
	case ScopeBank:
		return res.Bank, "referred bank", "بانک عامل"
	case ScopeFirm:
		return res.Firm, "inspection firm", "شرکت نظارت"
	}
	return "", string(k), string(k)
}

func roleOrUnknown(r Role) string {
	if r.Valid() {
		return string(r)
	}
	return fmt.Sprintf("unknown %q", r)
}

// roleFa is the Persian name of a role.
func roleFa(r Role) string {
	switch r {
	case RoleMinistry:
		return "وزارت تعاون، کار و رفاه اجتماعی"
	case RoleProvinceOffice:
		return "اداره کل استان"
	case RoleAgency:
		return "دستگاه اجرایی"
	case RoleBank:
		return "بانک عامل"
	case RoleInspector:
		return "شرکت نظارت"
	case RoleAuditor:
		return "حسابرس"
	case RoleAdmin:
		return "مدیر سامانه"
	}
	return string(r)
}
