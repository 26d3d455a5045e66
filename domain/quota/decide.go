package quota

import (
	"fmt"
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
)

// MaxJobsTarget bounds a job target in one allocation or transfer; it is far
// above any national program's target and keeps sums far from overflow.
const MaxJobsTarget = 10_000_000

// MaxAmountRials bounds one allocation, transfer or charge at 10^16 rials,
// above any employment budget line, so that a typing mistake of a few extra
// digits is caught and sums of realistic ledgers stay far from int64
// overflow.
const MaxAmountRials = 10_000_000_000_000_000

// Decider returns the quota ledger aggregate as a domain.Decider.
func Decider() domain.Decider[Ledger, Command] {
	return domain.Decider[Ledger, Command]{
		Initial: func() Ledger { return Ledger{} },
		Decide:  Decide,
		Evolve:  Evolve,
	}
}

// Decide checks a command against the ledger and returns the events
// recording it. It first validates the command's fields, reporting every
// problem at once (*domain.ValidationError, which also covers a command for
// another ledger); then the ledger's rules: unknown accounts, charges and
// allocations (*domain.NotFoundError), a free balance that would go negative
// (*domain.QuotaExceededError), and duplicate transfer ids, a second open
// charge or a job target that would go negative (*domain.ConflictError).
// It never modifies the ledger.
func Decide(l Ledger, cmd Command) ([]domain.Event, error) {
	switch c := cmd.(type) {
	case Allocate:
		return decideAllocate(l, c)
	case Transfer:
		return decideTransfer(l, c)
	case Charge:
		return decideCharge(l, c)
	case ReleaseCharge:
		return decideRelease(l, c)
	case CorrectAllocation:
		return decideCorrect(l, c)
	case ProposeReallocation:
		return decidePropose(l, c)
	case ApproveReallocation:
		return decideApprove(l, c)
	case CancelReallocation:
		return decideCancel(l, c)
	}
	return nil, fmt.Errorf("quota: unsupported command %T", cmd)
}

func decideAllocate(l Ledger, c Allocate) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	account(&v, "account", c.Account)
	amount(&v, "amount_rials", c.AmountRials)
	jobs(&v, "jobs_target", c.JobsTarget)
	required(&v, "legal_basis", c.LegalBasis)
	required(&v, "decision_ref", c.DecisionRef)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []domain.Event{AllocatedV1{
		FiscalYear: c.FiscalYear, Program: c.Program, Account: c.Account, AmountRials: c.AmountRials,
		JobsTarget: c.JobsTarget, LegalBasis: c.LegalBasis, DecisionRef: c.DecisionRef,
	}}, nil
}

func decideTransfer(l Ledger, c Transfer) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	required(&v, "transfer_id", c.TransferID)
	account(&v, "from", c.From)
	account(&v, "to", c.To)
	if c.From.Valid() {
		v.Check(c.From != c.To, "to", "same_account",
			"must differ from the account the quota is taken from",
			"باید با حساب مبدأ متفاوت باشد")
	}
	amount(&v, "amount_rials", c.AmountRials)
	jobs(&v, "jobs_target", c.JobsTarget)
	required(&v, "legal_basis", c.LegalBasis)
	required(&v, "decision_ref", c.DecisionRef)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if l.HasTransfer(c.TransferID) {
		return nil, &domain.ConflictError{
			Reason:   fmt.Sprintf("transfer %s is already recorded in this ledger", c.TransferID),
			ReasonFa: fmt.Sprintf("جابه‌جایی %s پیش‌تر در این دفتر ثبت شده است", c.TransferID),
		}
	}
	from, ok := l.Account(c.From)
	if !ok {
		return nil, &domain.NotFoundError{Kind: "quota account", ID: c.From.String()}
	}
	if free := from.FreeRials(); c.AmountRials > free {
		return nil, &domain.QuotaExceededError{Account: c.From.String(), Free: free, Requested: c.AmountRials}
	}
	if c.JobsTarget > from.JobsTarget {
		return nil, &domain.ConflictError{
			Reason: fmt.Sprintf("account %s has a job target of %d, cannot move %d",
				c.From, from.JobsTarget, c.JobsTarget),
			ReasonFa: fmt.Sprintf("هدف اشتغال حساب %s برابر %d است و جابه‌جایی %d شغل ممکن نیست",
				c.From, from.JobsTarget, c.JobsTarget),
		}
	}
	return []domain.Event{TransferredV1{
		FiscalYear: c.FiscalYear, Program: c.Program, TransferID: c.TransferID, From: c.From, To: c.To,
		AmountRials: c.AmountRials, JobsTarget: c.JobsTarget, LegalBasis: c.LegalBasis,
		DecisionRef: c.DecisionRef, ProposalID: c.ProposalID,
	}}, nil
}

func decideCharge(l Ledger, c Charge) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	account(&v, "account", c.Account)
	required(&v, "facility_id", c.FacilityID)
	amount(&v, "amount_rials", c.AmountRials)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if open, ok := l.Charge(c.FacilityID); ok {
		return nil, &domain.ConflictError{
			Reason: fmt.Sprintf("facility %s already holds an open charge of %d rials on %s",
				c.FacilityID, open.OutstandingRials(), open.Account),
			ReasonFa: fmt.Sprintf("طرح %s هم‌اکنون %d ریال از سهمیه %s را در اختیار دارد",
				c.FacilityID, open.OutstandingRials(), open.Account),
		}
	}
	b, ok := l.Account(c.Account)
	if !ok {
		return nil, &domain.NotFoundError{Kind: "quota account", ID: c.Account.String()}
	}
	if free := b.FreeRials(); c.AmountRials > free {
		return nil, &domain.QuotaExceededError{Account: c.Account.String(), Free: free, Requested: c.AmountRials}
	}
	return []domain.Event{ChargedV1{
		FiscalYear: c.FiscalYear, Program: c.Program, Account: c.Account,
		FacilityID: c.FacilityID, AmountRials: c.AmountRials,
	}}, nil
}

func decideRelease(l Ledger, c ReleaseCharge) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	required(&v, "facility_id", c.FacilityID)
	amount(&v, "amount_rials", c.AmountRials)
	required(&v, "reason", c.Reason)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	open, ok := l.Charge(c.FacilityID)
	if !ok {
		return nil, &domain.NotFoundError{Kind: "quota charge", ID: c.FacilityID}
	}
	if out := open.OutstandingRials(); c.AmountRials > out {
		return nil, &domain.ConflictError{
			Reason: fmt.Sprintf("facility %s has %d rials charged on %s, cannot release %d",
				c.FacilityID, out, open.Account, c.AmountRials),
			ReasonFa: fmt.Sprintf("طرح %s تنها %d ریال از سهمیه %s در اختیار دارد و آزادسازی %d ریال ممکن نیست",
				c.FacilityID, out, open.Account, c.AmountRials),
		}
	}
	return []domain.Event{ChargeReleasedV1{
		FiscalYear: c.FiscalYear, Program: c.Program, Account: open.Account,
		FacilityID: c.FacilityID, AmountRials: c.AmountRials, Reason: c.Reason,
	}}, nil
}

func decideCorrect(l Ledger, c CorrectAllocation) ([]domain.Event, error) {
	var v domain.Validator
	l.checkLedger(&v, c)
	required(&v, "corrects_event_id", c.CorrectsEventID)
	v.Check(c.AmountRials >= 0 && c.AmountRials <= MaxAmountRials, "amount_rials", "out_of_range",
		fmt.Sprintf("must be from 0 to %d", int64(MaxAmountRials)),
		fmt.Sprintf("باید از ۰ تا %d باشد", int64(MaxAmountRials)))
	jobs(&v, "jobs_target", c.JobsTarget)
	required(&v, "reason", c.Reason)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	a, ok := l.Allocation(c.CorrectsEventID)
	if !ok {
		return nil, &domain.NotFoundError{Kind: "event", ID: c.CorrectsEventID}
	}
	if a.AmountRials == c.AmountRials && a.JobsTarget == c.JobsTarget {
		v.Add("amount_rials", "unchanged", "the correction changes neither the amount nor the job target",
			"این اصلاح نه مبلغ را تغییر می‌دهد نه هدف اشتغال را")
		return nil, v.Err()
	}
	b, _ := l.Account(a.Account)
	if cut := a.AmountRials - c.AmountRials; cut > b.FreeRials() {
		return nil, &domain.QuotaExceededError{Account: a.Account.String(), Free: b.FreeRials(), Requested: cut}
	}
	if cut := a.JobsTarget - c.JobsTarget; cut > b.JobsTarget {
		return nil, &domain.ConflictError{
			Reason: fmt.Sprintf("account %s has a job target of %d left, cannot reduce it by %d",
				a.Account, b.JobsTarget, cut),
			ReasonFa: fmt.Sprintf("هدف اشتغال باقی‌مانده حساب %s برابر %d است و کاهش %d ممکن نیست",
				a.Account, b.JobsTarget, cut),
		}
	}
	return []domain.Event{AllocationCorrectedV1{
		FiscalYear: c.FiscalYear, Program: c.Program, CorrectsEventID: c.CorrectsEventID, Account: a.Account,
		PreviousAmountRials: a.AmountRials, PreviousJobsTarget: a.JobsTarget,
		AmountRials: c.AmountRials, JobsTarget: c.JobsTarget, Reason: c.Reason,
	}}, nil
}

// checkLedger validates the fiscal year and program, and refuses a command
// meant for another ledger than the one it is applied to.
func (l Ledger) checkLedger(v *domain.Validator, c Command) {
	fy, program := c.Target()
	v.Check(fy >= MinFiscalYear && fy <= MaxFiscalYear, "fiscal_year", "out_of_range",
		fmt.Sprintf("must be a Solar Hijri year from %d to %d", MinFiscalYear, MaxFiscalYear),
		fmt.Sprintf("باید سالی هجری شمسی از %d تا %d باشد", MinFiscalYear, MaxFiscalYear))
	v.Check(ValidProgram(program), "program", "malformed",
		"must be a program id of lower-case letters, digits and hyphens",
		"باید شناسه برنامه از حروف کوچک لاتین، رقم و خط تیره باشد")
	if l.fiscalYear == 0 {
		return // a new ledger takes its identity from its first event
	}
	v.Check(fy == l.fiscalYear, "fiscal_year", "wrong_ledger",
		fmt.Sprintf("the command is for fiscal year %d but the ledger is %s", fy, Stream(l.fiscalYear, l.program)),
		fmt.Sprintf("فرمان برای سال مالی %d است اما دفتر %s است", fy, Stream(l.fiscalYear, l.program)))
	v.Check(program == l.program, "program", "wrong_ledger",
		fmt.Sprintf("the command is for program %s but the ledger is %s", program, Stream(l.fiscalYear, l.program)),
		fmt.Sprintf("فرمان برای برنامه %s است اما دفتر %s است", program, Stream(l.fiscalYear, l.program)))
}

func account(v *domain.Validator, field string, k AccountKey) {
	part := func(name, value string, mandatory bool) {
		if value == "" {
			v.Check(!mandatory, field+"."+name, "required", "is required", "الزامی است")
			return
		}
		v.Check(ValidKeyPart(value), field+"."+name, "malformed",
			"must not contain '/' or surrounding spaces", "نباید «/» یا فاصله در ابتدا و انتها داشته باشد")
	}
	part("agency", k.Agency, true)
	part("province", k.Province, true)
	part("county", k.County, false)
}

func amount(v *domain.Validator, field string, n int64) {
	v.Check(n > 0 && n <= MaxAmountRials, field, "out_of_range",
		fmt.Sprintf("must be greater than zero and at most %d", int64(MaxAmountRials)),
		fmt.Sprintf("باید بیشتر از صفر و حداکثر %d باشد", int64(MaxAmountRials)))
}

func jobs(v *domain.Validator, field string, n int) {
	v.Check(n >= 0 && n <= MaxJobsTarget, field, "out_of_range",
		fmt.Sprintf("must be from 0 to %d", MaxJobsTarget), fmt.Sprintf("باید از ۰ تا %d باشد", MaxJobsTarget))
}

func required(v *domain.Validator, field, value string) {
	v.Check(strings.TrimSpace(value) != "", field, "required", "is required", "الزامی است")
}

func validAt(v *domain.Validator, at time.Time) {
	v.Check(!at.IsZero(), "at", "required", "the business time is required", "زمان رویداد الزامی است")
}
