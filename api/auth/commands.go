package auth

import (
	"errors"
	"fmt"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
)

// FacilityResource returns the policy attributes of a facility from its
// state: province, agency and the bank it is referred to.
func FacilityResource(f facility.Facility) Resource {
	return Resource{Province: f.Province(), Agency: f.Agency(), Bank: f.Bank()}
}

// AccountResource returns the policy attributes of a quota account.
func AccountResource(k quota.AccountKey) Resource {
	return Resource{Province: k.Province, Agency: k.Agency}
}

// ErrNotAPICommand is returned for domain commands that clients never send:
// the ledger issues quota charges and releases itself when a loan is
// approved or a facility closed.
var ErrNotAPICommand = errors.New("auth: not a command clients may send")

// FacilityRequest returns the action cmd asks for on the facility whose
// current state is f (the zero Facility when it does not exist yet) and the
// resource attributes the policy checks. Attributes come from the state
// wherever it has them, so a command cannot claim another province, agency
// or bank than its facility's; only a registration of a new facility (its
// agency and province) and an inspection (its firm) take them from the
// command. A correction's action depends on the corrected field, and for
// an inspection figure the firm is that of the corrected inspection. An
// unknown field is an input error (matching domain.ErrInvalid).
func FacilityRequest(f facility.Facility, cmd facility.Command) (Action, Resource, error) {
	res := FacilityResource(f)
	switch c := cmd.(type) {
	case facility.Register:
		if !f.Exists() {
			res = Resource{Province: c.Province, Agency: c.Agency}
		}
		return ActionRegisterFacility, res, nil
	case facility.Review:
		return ActionReviewFacility, res, nil
	case facility.ApproveLoan:
		return ActionApproveLoan, res, nil
	case facility.RejectLoan:
		return ActionRejectLoan, res, nil
	case facility.DisburseTranche:
		return ActionDisburseTranche, res, nil
	case facility.ReportJobs:
		return ActionReportJobs, res, nil
	case facility.RecordInspection:
		res.Firm = c.Firm
		return ActionRecordInspection, res, nil
	case facility.OpenDeviation:
		return ActionOpenDeviation, res, nil
	case facility.AddDeviationEvidence:
		return ActionAddDeviationEvidence, res, nil
	case facility.ResolveDeviation:
		return ActionResolveDeviation, res, nil
	case facility.Close:
		return ActionCloseFacility, res, nil
	case facility.Correct:
		switch c.Field {
		case facility.FieldJobsPromised, facility.FieldRequestedRials, facility.FieldCounty:
			return ActionCorrectRegistration, res, nil
		case facility.FieldJobs:
			return ActionCorrectJobs, res, nil
		case facility.FieldAmountRials:
			return ActionCorrectTranche, res, nil
		case facility.FieldVerifiedJobs, facility.FieldConfirmed:
			for _, in := range f.Inspections() {
				if in.EventID == c.CorrectsEventID {
					res.Firm = in.Firm
				}
			}
			return ActionCorrectInspection, res, nil
		}
		var v domain.Validator
		v.Add("field", "unknown", fmt.Sprintf("%q is not a correctable field", c.Field),
			fmt.Sprintf("«%s» قابل اصلاح نیست", c.Field))
		return "", Resource{}, v.Err()
	}
	return "", Resource{}, fmt.Errorf("%w: facility command %T", ErrUnknownAction, cmd)
}

// QuotaRequest returns the action and resource of a quota command. Charge
// and ReleaseCharge give ErrNotAPICommand.
func QuotaRequest(cmd quota.Command) (Action, Resource, error) {
	switch c := cmd.(type) {
	case quota.Allocate:
		return ActionAllocateQuota, AccountResource(c.Account), nil
	case quota.Transfer:
		return ActionTransferQuota, AccountResource(c.From), nil
	case quota.CorrectAllocation:
		return ActionCorrectAllocation, Resource{}, nil
	case quota.ProposeReallocation, quota.ApproveReallocation, quota.CancelReallocation:
		return ActionReallocateQuota, Resource{}, nil
	case quota.Charge, quota.ReleaseCharge:
		return "", Resource{}, fmt.Errorf("%w: %T", ErrNotAPICommand, cmd)
	}
	return "", Resource{}, fmt.Errorf("%w: quota command %T", ErrUnknownAction, cmd)
}

// ReferenceAction returns the action of every reference-data command.
func ReferenceAction(reference.Command) Action { return ActionManageReference }

// ReporterOf returns the reporter a principal's jobs figures are recorded
// as: the agency or the bank; false for roles that do not report jobs.
// Handlers fill facility.ReportJobs.ReportedBy with it rather than taking
// it from the request body.
func ReporterOf(p Principal) (facility.Reporter, bool) {
	switch p.Role {
	case RoleAgency:
		return facility.ReportedByAgency, true
	case RoleBank:
		return facility.ReportedByBank, true
	}
	return "", false
}

// AuthorizeFacility decides whether pr may send cmd to the facility whose
// current state is f: Authorize on FacilityRequest's action and resource,
// then a check that every party the command names is the principal's own,
// so a principal cannot act in another party's name:
//
//   - ReportJobs.ReportedBy must be ReporterOf(pr);
//   - a correction of a jobs figure must correct a report of the
//     principal's own kind (an agency cannot correct the bank's figure);
//   - ApproveLoan, RejectLoan and DisburseTranche must name the principal's
//     bank; RecordInspection its firm; Register its agency.
//
// It returns nil, a *DeniedError, or FacilityRequest's error.
func (p Policy) AuthorizeFacility(pr Principal, f facility.Facility, cmd facility.Command) error {
	a, res, err := FacilityRequest(f, cmd)
	if err != nil {
		return err
	}
	if err := p.Authorize(pr, a, res); err != nil {
		return err
	}
	if p.Reach(pr.Role, a) != InScope {
		return nil
	}
	named := ""
	switch c := cmd.(type) {
	case facility.Register:
		named = c.Agency
	case facility.ApproveLoan:
		named = c.Bank
	case facility.RejectLoan:
		named = c.Bank
	case facility.DisburseTranche:
		named = c.Bank
	case facility.RecordInspection:
		named = c.Firm
	case facility.ReportJobs:
		if want, _ := ReporterOf(pr); c.ReportedBy != want {
			return mismatch(pr, a, fmt.Sprintf("the %s role reports jobs as %q, not %q", pr.Role, want, c.ReportedBy),
				fmt.Sprintf("گزارش اشتغال «%s» باید با عنوان «%s» ثبت شود", roleFa(pr.Role), want))
		}
		return nil
	case facility.Correct:
		if c.Field != facility.FieldJobs {
			return nil
		}
		want, _ := ReporterOf(pr)
		for _, r := range f.JobsReports() {
			if r.EventID == c.CorrectsEventID && r.ReportedBy != want {
				return mismatch(pr, a, fmt.Sprintf("event %s is a jobs report by the %s; the %s role corrects only its own reports", c.CorrectsEventID, r.ReportedBy, pr.Role),
					fmt.Sprintf("رویداد %s گزارش اشتغالِ %s است و «%s» تنها گزارش‌های خود را اصلاح می‌کند", c.CorrectsEventID, r.ReportedBy, roleFa(pr.Role)))
			}
		}
		return nil
	default:
		return nil
	}
	if named != pr.Scope.ID {
		return mismatch(pr, a, fmt.Sprintf("the command names %s %q, but the caller acts for %s %q", pr.Scope.Kind, named, pr.Scope.Kind, pr.Scope.ID),
			fmt.Sprintf("فرمان به نام «%s» است ولی فراخواننده از سوی «%s» عمل می‌کند", named, pr.Scope.ID))
	}
	return nil
}

func mismatch(pr Principal, a Action, en, fa string) error {
	return &DeniedError{Action: a, Role: pr.Role, Scope: pr.Scope, Denial: DeniedMismatch, Reason: en, ReasonFa: fa}
}
