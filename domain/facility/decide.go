package facility

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
)

// MaxJobs bounds every jobs figure (promised, reported, verified). No single
// plan creates a million jobs; a larger figure is a typing mistake, and the
// bound keeps the figures far from integer overflow.
const MaxJobs = 1_000_000

// MaxTitleLength is the longest plan title accepted, in characters.
const MaxTitleLength = 500

// Decider returns the facility aggregate as a domain.Decider.
func Decider() domain.Decider[Facility, Command] {
	return domain.Decider[Facility, Command]{
		Initial: func() Facility { return Facility{} },
		Decide:  Decide,
		Evolve:  Evolve,
	}
}

// Decide checks a command against the facility's state and returns the events
// recording its outcome. It first validates the command's own fields and
// reports every problem at once (*domain.ValidationError); then it checks the
// facility exists (*domain.NotFoundError) and that the current stage allows
// the step (*domain.TransitionError); then the rules that depend on recorded
// figures: balances and duplicate ids (*domain.ConflictError), and fields
// that contradict the facility's own data, such as an approval larger than
// the request or a date before the previous step (*domain.ValidationError).
// It never modifies the state.
func Decide(f Facility, cmd Command) ([]domain.Event, error) {
	switch c := cmd.(type) {
	case Register:
		return decideRegister(f, c)
	case Review:
		return decideReview(f, c)
	case ApproveLoan:
		return decideApproveLoan(f, c)
	case RejectLoan:
		return decideRejectLoan(f, c)
	case DisburseTranche:
		return decideDisburse(f, c)
	case ReportJobs:
		return decideReportJobs(f, c)
	case RecordInspection:
		return decideInspection(f, c)
	case OpenDeviation:
		return decideOpenDeviation(f, c)
	case AddDeviationEvidence:
		return decideEvidence(f, c)
	case ResolveDeviation:
		return decideResolve(f, c)
	case Close:
		return decideClose(f, c)
	case Correct:
		return decideCorrect(f, c)
	}
	return nil, fmt.Errorf("facility: unsupported command %T", cmd)
}

func decideRegister(f Facility, c Register) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	v.Check(c.FiscalYear >= MinFiscalYear && c.FiscalYear <= MaxFiscalYear, "fiscal_year", "out_of_range",
		fmt.Sprintf("must be a Solar Hijri year from %d to %d", MinFiscalYear, MaxFiscalYear),
		fmt.Sprintf("باید سالی هجری شمسی از %d تا %d باشد", MinFiscalYear, MaxFiscalYear))
	v.Check(quota.ValidProgram(c.Program), "program", "malformed",
		"must be a program id of lower-case letters, digits and hyphens",
		"باید شناسه برنامه از حروف کوچک لاتین، رقم و خط تیره باشد")
	keyPart(&v, "agency", c.Agency, true)
	keyPart(&v, "province", c.Province, true)
	keyPart(&v, "county", c.County, false)
	required(&v, "applicant.ref", c.Applicant.Ref)
	required(&v, "applicant.key_id", c.Applicant.KeyID)
	v.Check(len(c.Applicant.Ciphertext) > 0, "applicant.ciphertext", "required",
		"the encrypted personal data is required", "داده‌های شخصی رمزنگاری‌شده الزامی است")
	required(&v, "title", c.Title)
	v.Check(utf8.RuneCountInString(c.Title) <= MaxTitleLength, "title", "too_long",
		fmt.Sprintf("must not exceed %d characters", MaxTitleLength),
		fmt.Sprintf("نباید بیش از %d نویسه باشد", MaxTitleLength))
	positive(&v, "requested_rials", c.RequestedRials)
	v.Check(c.JobsPromised >= 1 && c.JobsPromised <= MaxJobs, "jobs_promised", "out_of_range",
		fmt.Sprintf("must be from 1 to %d: a plan that promises no job is not an employment plan", MaxJobs),
		fmt.Sprintf("باید از ۱ تا %d باشد؛ طرحی که شغلی تعهد نکند طرح اشتغال نیست", MaxJobs))
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if f.Exists() {
		return nil, &domain.ConflictError{
			Reason:   fmt.Sprintf("facility %s is already registered", f.id),
			ReasonFa: fmt.Sprintf("طرح %s پیش‌تر ثبت شده است", f.id),
		}
	}
	return []domain.Event{RegisteredV1{
		FacilityID:     c.FacilityID,
		FiscalYear:     c.FiscalYear,
		Program:        c.Program,
		Agency:         c.Agency,
		Province:       c.Province,
		County:         c.County,
		Applicant:      c.Applicant,
		Title:          c.Title,
		RequestedRials: c.RequestedRials,
		JobsPromised:   c.JobsPromised,
	}}, nil
}

func decideReview(f Facility, c Review) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	oneOf(&v, "decision", c.Decision, ReviewApproved, ReviewRejected)
	required(&v, "expert", c.Expert)
	switch c.Decision {
	case ReviewApproved:
		v.Check(strings.TrimSpace(c.Bank) != "", "bank", "required",
			"is required when the plan is approved: approval refers it to a bank",
			"در صورت تأیید طرح الزامی است؛ تأیید یعنی معرفی به بانک عامل")
	case ReviewRejected:
		v.Check(strings.TrimSpace(c.Reason) != "", "reason", "required",
			"is required when the plan is rejected", "در صورت رد طرح الزامی است")
		v.Check(c.Bank == "", "bank", "not_allowed",
			"must be empty when the plan is rejected", "در صورت رد طرح نباید بانکی تعیین شود")
	}
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	if f.stage != StageRegistered {
		return nil, f.refuse(c, "the plan has already been through expert review",
			"طرح پیش‌تر در چرخه کارشناسی بررسی شده است")
	}
	if err := notBefore(c.At, f.lastStepAt, "previous step", "مرحله قبلی"); err != nil {
		return nil, err
	}
	return []domain.Event{ReviewedV1{
		Decision: c.Decision, Bank: c.Bank, Expert: c.Expert, Reason: c.Reason, Notes: c.Notes,
	}}, nil
}

func decideApproveLoan(f Facility, c ApproveLoan) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "bank", c.Bank)
	positive(&v, "amount_rials", c.AmountRials)
	key, keyErr := quota.ParseAccountKey(c.QuotaAccount)
	if c.QuotaAccount == "" {
		required(&v, "quota_account", c.QuotaAccount)
	} else {
		v.Check(keyErr == nil, "quota_account", "malformed",
			"must be a quota account key such as agency/province or agency/province/county",
			"باید شناسه حساب سهمیه به شکل دستگاه/استان یا دستگاه/استان/شهرستان باشد")
	}
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	if f.stage != StageReferred {
		return nil, f.refuse(c, "only a plan referred to a bank awaits the bank's decision",
			"فقط طرحی که به بانک معرفی شده در انتظار تصمیم بانک است")
	}
	if c.Bank != f.bank {
		return nil, f.wrongBank(c, c.Bank)
	}
	v.Check(c.AmountRials <= f.requested, "amount_rials", "exceeds_requested",
		fmt.Sprintf("%d rials exceeds the %d rials requested", c.AmountRials, f.requested),
		fmt.Sprintf("%d ریال بیش از مبلغ درخواستی %d ریال است", c.AmountRials, f.requested))
	v.Check(key.Agency == f.agency && key.Province == f.province && (key.County == "" || key.County == f.county),
		"quota_account", "wrong_account",
		fmt.Sprintf("account %s is not a quota of the facility's agency %s in %s", key, f.agency, f.location()),
		fmt.Sprintf("حساب %s سهمیه دستگاه %s در %s نیست", key, f.agency, f.location()))
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := notBefore(c.At, f.lastStepAt, "referral", "معرفی به بانک"); err != nil {
		return nil, err
	}
	return []domain.Event{LoanApprovedV1{Bank: c.Bank, AmountRials: c.AmountRials, QuotaAccount: key.String()}}, nil
}

func decideRejectLoan(f Facility, c RejectLoan) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "bank", c.Bank)
	required(&v, "reason", c.Reason)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	if f.stage != StageReferred {
		return nil, f.refuse(c, "only a plan referred to a bank awaits the bank's decision",
			"فقط طرحی که به بانک معرفی شده در انتظار تصمیم بانک است")
	}
	if c.Bank != f.bank {
		return nil, f.wrongBank(c, c.Bank)
	}
	if err := notBefore(c.At, f.lastStepAt, "referral", "معرفی به بانک"); err != nil {
		return nil, err
	}
	return []domain.Event{LoanRejectedV1{Bank: c.Bank, Reason: c.Reason}}, nil
}

func decideDisburse(f Facility, c DisburseTranche) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "bank", c.Bank)
	v.Check(c.Tranche >= 0, "tranche", "negative", "must not be negative (0 means the next tranche)",
		"نباید منفی باشد (صفر یعنی قسط بعدی)")
	positive(&v, "amount_rials", c.AmountRials)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	switch f.stage {
	case StageLoanApproved, StageDisbursing:
	case StageDisbursed:
		return nil, f.refuse(c, "the whole approved loan has already been paid",
			"کل مبلغ مصوب تسهیلات پیش‌تر پرداخت شده است")
	default:
		return nil, f.refuse(c, "money can be paid only after the bank approves the loan",
			"پرداخت فقط پس از تصویب تسهیلات در بانک ممکن است")
	}
	if c.Bank != f.bank {
		return nil, f.wrongBank(c, c.Bank)
	}
	next := len(f.tranches) + 1
	if c.Tranche != 0 && c.Tranche != next {
		return nil, &domain.ConflictError{
			Reason:   fmt.Sprintf("tranche %d given, but %d tranches are recorded: the next is tranche %d", c.Tranche, next-1, next),
			ReasonFa: fmt.Sprintf("قسط %d اعلام شده اما %d قسط ثبت شده است؛ قسط بعدی شماره %d است", c.Tranche, next-1, next),
		}
	}
	disbursed := f.DisbursedRials()
	if c.AmountRials > f.approved-disbursed {
		return nil, overDisbursed(f.approved, disbursed, c.AmountRials)
	}
	if err := notBefore(c.At, f.lastStepAt, "previous step", "مرحله قبلی"); err != nil {
		return nil, err
	}
	return []domain.Event{TrancheDisbursedV1{Tranche: next, AmountRials: c.AmountRials}}, nil
}

func overDisbursed(approved, disbursed, amount int64) error {
	return &domain.ConflictError{
		Reason: fmt.Sprintf("paying %d rials would exceed the approved loan: %d approved, %d already paid, %d left",
			amount, approved, disbursed, approved-disbursed),
		ReasonFa: fmt.Sprintf("پرداخت %d ریال از مبلغ مصوب فراتر می‌رود: مصوب %d، پرداخت‌شده %d، باقی‌مانده %d ریال",
			amount, approved, disbursed, approved-disbursed),
	}
}

func decideReportJobs(f Facility, c ReportJobs) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	jobsInRange(&v, "jobs", int64(c.Jobs))
	oneOf(&v, "reported_by", c.ReportedBy, ReportedByAgency, ReportedByBank)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	if !f.stage.Paid() {
		return nil, f.refuse(c, "jobs are reported only once at least one tranche has been paid",
			"گزارش اشتغال فقط پس از پرداخت دست‌کم یک قسط ممکن است")
	}
	if err := notBefore(c.At, f.firstPaidAt, "first payment", "نخستین پرداخت"); err != nil {
		return nil, err
	}
	return []domain.Event{JobsReportedV1{Jobs: c.Jobs, ReportedBy: c.ReportedBy, Period: c.Period}}, nil
}

func decideInspection(f Facility, c RecordInspection) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "inspection_id", c.InspectionID)
	required(&v, "firm", c.Firm)
	required(&v, "guideline_version", c.GuidelineVersion)
	oneOf(&v, "status", c.Status, InspectionActive, InspectionInactive, InspectionNotFound, InspectionMisused)
	jobsInRange(&v, "verified_jobs", int64(c.VerifiedJobs))
	inspectionConsistent(&v, "confirmed", "verified_jobs", c.Status, c.Confirmed, c.VerifiedJobs)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	if !f.stage.Paid() {
		return nil, f.refuse(c, "a plan is inspected only once at least one tranche has been paid",
			"نظارت میدانی فقط پس از پرداخت دست‌کم یک قسط ممکن است")
	}
	if f.inspectionIndex(c.InspectionID) >= 0 {
		return nil, &domain.ConflictError{
			Reason:   fmt.Sprintf("inspection %s is already recorded for this facility", c.InspectionID),
			ReasonFa: fmt.Sprintf("بازدید %s پیش‌تر برای این طرح ثبت شده است", c.InspectionID),
		}
	}
	f.verifiedWithinPromise(&v, "verified_jobs", c.VerifiedJobs)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := notBefore(c.At, f.firstPaidAt, "first payment", "نخستین پرداخت"); err != nil {
		return nil, err
	}
	return []domain.Event{InspectedV1{
		InspectionID:     c.InspectionID,
		Firm:             c.Firm,
		GuidelineVersion: c.GuidelineVersion,
		Status:           c.Status,
		Confirmed:        c.Confirmed,
		VerifiedJobs:     c.VerifiedJobs,
		Notes:            c.Notes,
	}}, nil
}

// inspectionConsistent holds the rules tying an inspection's figures to its
// status: only an operating business can be confirmed or employ anyone, so a
// confirmation requires status active and any status but active requires zero
// verified jobs.
// The field names are parameters because a correction reports the problem
// on new_value.
func inspectionConsistent(v *domain.Validator, confirmedField, verifiedField string, status InspectionStatus, confirmed bool, verified int) {
	switch status {
	case InspectionInactive, InspectionNotFound, InspectionMisused:
	default:
		return // active, or an unknown status already reported
	}
	v.Check(!confirmed, confirmedField, "not_active",
		fmt.Sprintf("an inspection with status %s cannot confirm the plan", status),
		fmt.Sprintf("بازدیدی با وضعیت %s نمی‌تواند طرح را تأیید کند", status))
	v.Check(verified == 0, verifiedField, "not_active",
		fmt.Sprintf("must be 0 when the status is %s: a business that does not operate employs no one", status),
		fmt.Sprintf("با وضعیت %s باید صفر باشد؛ کسب‌وکاری که فعال نیست شغلی ندارد", status))
}

// verifiedWithinPromise bounds verified jobs at twice the jobs promised. An
// inspector may find more jobs than promised, but more than double is taken
// as a typing mistake (usually an extra digit); if it is real, jobs_promised
// is corrected first.
func (f Facility) verifiedWithinPromise(v *domain.Validator, field string, verified int) {
	limit := 2 * f.jobsPromised
	v.Check(verified <= limit, field, "implausible",
		fmt.Sprintf("%d verified jobs is more than twice the %d promised (limit %d)", verified, f.jobsPromised, limit),
		fmt.Sprintf("%d شغل تأییدشده بیش از دو برابر %d شغل تعهدشده است (سقف %d)", verified, f.jobsPromised, limit))
}

func decideOpenDeviation(f Facility, c OpenDeviation) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "deviation_id", c.DeviationID)
	oneOf(&v, "kind", c.Kind, KindDeviation, KindViolation, KindDiscrepancy)
	required(&v, "description", c.Description)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	if f.stage.Terminal() {
		return nil, f.refuse(c, "", "")
	}
	if _, dup := f.deviations[c.DeviationID]; dup {
		return nil, &domain.ConflictError{
			Reason:   fmt.Sprintf("deviation %s already exists for this facility", c.DeviationID),
			ReasonFa: fmt.Sprintf("پرونده تخلف %s پیش‌تر برای این طرح ثبت شده است", c.DeviationID),
		}
	}
	since, what, whatFa := f.registeredAt, "registration", "ثبت طرح"
	if c.InspectionID != "" {
		in, ok := f.Inspection(c.InspectionID)
		if !ok {
			return nil, &domain.NotFoundError{Kind: "inspection", ID: c.InspectionID}
		}
		since, what, whatFa = in.At, "inspection", "بازدید"
	}
	if err := notBefore(c.At, since, what, whatFa); err != nil {
		return nil, err
	}
	return []domain.Event{DeviationOpenedV1{
		DeviationID: c.DeviationID, Kind: c.Kind, InspectionID: c.InspectionID, Description: c.Description,
	}}, nil
}

// openDeviation finds an open audit case. Follow-up of a case is allowed in
// every stage, terminal ones included: a case opened before the agency or
// the bank rejected the plan is still followed up until it is resolved.
func (f Facility) openDeviation(c Command, id string) (Deviation, error) {
	d, ok := f.deviations[id]
	if !ok {
		return Deviation{}, &domain.NotFoundError{Kind: "deviation", ID: id}
	}
	if !d.Open() {
		return Deviation{}, &domain.TransitionError{
			Aggregate: "facility", State: string(f.stage), Command: c.name(),
			Reason:   fmt.Sprintf("deviation %s was already resolved (%s)", id, d.Resolution),
			ReasonFa: fmt.Sprintf("پرونده تخلف %s پیش‌تر مختومه شده است (%s)", id, d.Resolution),
		}
	}
	return d, nil
}

func decideEvidence(f Facility, c AddDeviationEvidence) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "deviation_id", c.DeviationID)
	required(&v, "evidence", c.Evidence)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	d, err := f.openDeviation(c, c.DeviationID)
	if err != nil {
		return nil, err
	}
	if err := notBefore(c.At, d.OpenedAt, "opening of the case", "گشایش پرونده"); err != nil {
		return nil, err
	}
	return []domain.Event{DeviationEvidenceAddedV1{
		DeviationID: c.DeviationID, Evidence: c.Evidence, DocumentRef: c.DocumentRef,
	}}, nil
}

func decideResolve(f Facility, c ResolveDeviation) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "deviation_id", c.DeviationID)
	oneOf(&v, "resolution", c.Resolution, ResolutionCorrected, ResolutionFundsRecovered, ResolutionDismissed)
	if c.Resolution == ResolutionFundsRecovered {
		positive(&v, "recovered_rials", c.RecoveredRials)
	} else {
		v.Check(c.RecoveredRials == 0, "recovered_rials", "not_allowed",
			"must be 0 unless the resolution is funds_recovered",
			"جز در حالت بازگشت وجه باید صفر باشد")
	}
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	d, err := f.openDeviation(c, c.DeviationID)
	if err != nil {
		return nil, err
	}
	if disbursed := f.DisbursedRials(); c.RecoveredRials > disbursed-f.recovered {
		return nil, &domain.ConflictError{
			Reason: fmt.Sprintf("recovering %d rials would exceed the money paid: %d paid, %d already recovered",
				c.RecoveredRials, disbursed, f.recovered),
			ReasonFa: fmt.Sprintf("بازگشت %d ریال از وجه پرداخت‌شده بیشتر است: پرداخت‌شده %d، بازگشت‌داده‌شده %d ریال",
				c.RecoveredRials, disbursed, f.recovered),
		}
	}
	if err := notBefore(c.At, d.OpenedAt, "opening of the case", "گشایش پرونده"); err != nil {
		return nil, err
	}
	return []domain.Event{DeviationResolvedV1{
		DeviationID: c.DeviationID, Resolution: c.Resolution, RecoveredRials: c.RecoveredRials, Note: c.Note,
	}}, nil
}

func decideClose(f Facility, c Close) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "reason", c.Reason)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	if f.stage.Terminal() {
		return nil, f.refuse(c, "", "")
	}
	if open := f.OpenDeviations(); len(open) > 0 {
		ids := make([]string, len(open))
		for i, d := range open {
			ids[i] = d.ID
		}
		return nil, f.refuse(c,
			fmt.Sprintf("audit cases are still open: %s", strings.Join(ids, ", ")),
			fmt.Sprintf("پرونده‌های تخلف باز هنوز مختومه نشده‌اند: %s", strings.Join(ids, "، ")))
	}
	if err := notBefore(c.At, f.lastStepAt, "previous step", "مرحله قبلی"); err != nil {
		return nil, err
	}
	return []domain.Event{ClosedV1{Reason: c.Reason}}, nil
}

func decideCorrect(f Facility, c Correct) ([]domain.Event, error) {
	var v domain.Validator
	validFacilityID(&v, c.FacilityID)
	required(&v, "corrects_event_id", c.CorrectsEventID)
	oneOf(&v, "field", c.Field, FieldJobsPromised, FieldRequestedRials, FieldCounty,
		FieldJobs, FieldVerifiedJobs, FieldConfirmed, FieldAmountRials)
	v.Check(c.NewValue.wellFormed(), "new_value", "malformed",
		"must be a value of kind int, string or bool with only that member set",
		"باید مقداری از نوع int، string یا bool باشد و فقط همان عضو مقدار داشته باشد")
	required(&v, "reason", c.Reason)
	validAt(&v, c.At)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := f.mustExist(c); err != nil {
		return nil, err
	}
	ref, ok := f.events[c.CorrectsEventID]
	if !ok {
		return nil, &domain.NotFoundError{Kind: "event", ID: c.CorrectsEventID}
	}
	fields := fieldsOf(ref.typ)
	kind, ok := fields[c.Field]
	if !ok {
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, string(name))
		}
		slices.Sort(names)
		if len(names) == 0 {
			v.Add("field", "not_correctable",
				fmt.Sprintf("a %s event has no correctable field", ref.typ),
				fmt.Sprintf("رویداد %s هیچ مورد قابل اصلاحی ندارد", ref.typ))
			return nil, v.Err()
		}
		v.Add("field", "not_correctable",
			fmt.Sprintf("%s cannot be corrected on a %s event; correctable: %s", c.Field, ref.typ, strings.Join(names, ", ")),
			fmt.Sprintf("%s در رویداد %s قابل اصلاح نیست؛ موارد قابل اصلاح: %s", c.Field, ref.typ, strings.Join(names, "، ")))
		return nil, v.Err()
	}
	if c.NewValue.Kind != kind {
		v.Add("new_value", "wrong_kind",
			fmt.Sprintf("%s takes a value of kind %s, not %s", c.Field, kind, c.NewValue.Kind),
			fmt.Sprintf("%s مقداری از نوع %s می‌گیرد، نه %s", c.Field, kind, c.NewValue.Kind))
		return nil, v.Err()
	}
	old := f.valueOf(ref, c.Field)
	if old == c.NewValue {
		v.Add("new_value", "unchanged", fmt.Sprintf("equals the current value %s", old),
			fmt.Sprintf("با مقدار کنونی %s برابر است", old))
		return nil, v.Err()
	}
	if err := f.checkCorrection(ref, c.Field, c.NewValue); err != nil {
		return nil, err
	}
	if err := notBefore(c.At, ref.at, "corrected event", "رویداد اصلاح‌شونده"); err != nil {
		return nil, err
	}
	return []domain.Event{CorrectedV1{
		CorrectsEventID:   c.CorrectsEventID,
		CorrectsEventType: ref.typ,
		Field:             c.Field,
		OldValue:          old,
		NewValue:          c.NewValue,
		Reason:            c.Reason,
	}}, nil
}

// checkCorrection applies to a corrected figure the same rules as to the
// original, plus the balances that depend on it.
func (f Facility) checkCorrection(ref eventRef, field Field, nv Value) error {
	var v domain.Validator
	switch field {
	case FieldJobsPromised:
		v.Check(nv.Int >= 1 && nv.Int <= MaxJobs, "new_value", "out_of_range",
			fmt.Sprintf("jobs promised must be from 1 to %d", MaxJobs),
			fmt.Sprintf("تعداد شغل تعهدشده باید از ۱ تا %d باشد", MaxJobs))
	case FieldRequestedRials:
		positive(&v, "new_value", nv.Int)
		if f.approved > 0 && nv.Int > 0 && nv.Int < f.approved {
			return &domain.ConflictError{
				Reason:   fmt.Sprintf("requested %d rials would be less than the %d rials already approved", nv.Int, f.approved),
				ReasonFa: fmt.Sprintf("مبلغ درخواستی %d ریال کمتر از مبلغ مصوب %d ریال می‌شود", nv.Int, f.approved),
			}
		}
	case FieldCounty:
		keyPart(&v, "new_value", nv.Str, false)
	case FieldJobs:
		jobsInRange(&v, "new_value", nv.Int)
	case FieldVerifiedJobs:
		in := f.inspections[ref.index]
		jobsInRange(&v, "new_value", nv.Int)
		if err := v.Err(); err != nil {
			return err
		}
		inspectionConsistent(&v, "new_value", "new_value", in.Status, in.Confirmed, int(nv.Int))
		f.verifiedWithinPromise(&v, "new_value", int(nv.Int))
	case FieldConfirmed:
		in := f.inspections[ref.index]
		inspectionConsistent(&v, "new_value", "new_value", in.Status, nv.Bool, in.VerifiedJobs)
	case FieldAmountRials:
		positive(&v, "new_value", nv.Int)
		if err := v.Err(); err != nil {
			return err
		}
		others := f.DisbursedRials() - f.tranches[ref.index].AmountRials
		if nv.Int > f.approved-others {
			return overDisbursed(f.approved, others, nv.Int)
		}
		if others+nv.Int < f.recovered {
			return &domain.ConflictError{
				Reason: fmt.Sprintf("total paid would fall to %d rials, below the %d rials already recovered",
					others+nv.Int, f.recovered),
				ReasonFa: fmt.Sprintf("جمع پرداخت به %d ریال می‌رسد که کمتر از %d ریال بازگشت‌داده‌شده است",
					others+nv.Int, f.recovered),
			}
		}
	}
	return v.Err()
}

// valueOf reads the current (corrected) value of a correctable field.
func (f Facility) valueOf(ref eventRef, field Field) Value {
	switch field {
	case FieldJobsPromised:
		return IntValue(int64(f.jobsPromised))
	case FieldRequestedRials:
		return IntValue(f.requested)
	case FieldCounty:
		return StringValue(f.county)
	case FieldJobs:
		return IntValue(int64(f.reports[ref.index].Jobs))
	case FieldVerifiedJobs:
		return IntValue(int64(f.inspections[ref.index].VerifiedJobs))
	case FieldConfirmed:
		return BoolValue(f.inspections[ref.index].Confirmed)
	case FieldAmountRials:
		return IntValue(f.tranches[ref.index].AmountRials)
	}
	return Value{}
}

// wellFormed reports whether exactly the member named by Kind may be set.
func (v Value) wellFormed() bool {
	switch v.Kind {
	case KindInt:
		return v.Str == "" && !v.Bool
	case KindString:
		return v.Int == 0 && !v.Bool
	case KindBool:
		return v.Int == 0 && v.Str == ""
	}
	return false
}

// mustExist refuses a command for a facility that was never registered, and
// one routed to another facility's stream.
func (f Facility) mustExist(c Command) error {
	if !f.Exists() {
		return &domain.NotFoundError{Kind: "facility", ID: c.Target()}
	}
	if c.Target() != f.id {
		var v domain.Validator
		v.Add("facility_id", "wrong_stream",
			fmt.Sprintf("the command is for facility %s but was applied to facility %s", c.Target(), f.id),
			fmt.Sprintf("فرمان برای طرح %s است اما بر طرح %s اعمال شده است", c.Target(), f.id))
		return v.Err()
	}
	return nil
}

// refuse builds the TransitionError for a command the current stage forbids.
// In a terminal stage the reason says so, whatever the command.
func (f Facility) refuse(c Command, en, fa string) error {
	if f.stage.Terminal() {
		en = fmt.Sprintf("the file is final (%s); no further step is possible", f.stage)
		fa = fmt.Sprintf("پرونده در وضعیت پایانی (%s) است و اقدام دیگری ممکن نیست", f.stage)
	}
	return &domain.TransitionError{Aggregate: "facility", State: string(f.stage), Command: c.name(), Reason: en, ReasonFa: fa}
}

// wrongBank refuses a bank acting on a plan that was referred to another
// bank. It is a transition error rather than a conflict: the command is well
// formed, but the facility's state (referred to one bank) forbids the step
// for every other bank. Whether the caller really speaks for the bank named
// in the command is the API's authorisation concern.
func (f Facility) wrongBank(c Command, bank string) error {
	return &domain.TransitionError{
		Aggregate: "facility", State: string(f.stage), Command: c.name(),
		Reason:   fmt.Sprintf("the plan was referred to bank %s, not %s", f.bank, bank),
		ReasonFa: fmt.Sprintf("طرح به بانک %s معرفی شده است، نه %s", f.bank, bank),
	}
}

func (f Facility) location() string {
	if f.county == "" {
		return f.province
	}
	return f.province + "/" + f.county
}

func validFacilityID(v *domain.Validator, id string) {
	if id == "" {
		required(v, "facility_id", id)
		return
	}
	v.Check(ValidID(id), "facility_id", "malformed",
		"must be 3 to 64 lower-case letters, digits or hyphens, not starting with a hyphen",
		"باید ۳ تا ۶۴ نویسه از حروف کوچک لاتین، رقم یا خط تیره باشد و با خط تیره آغاز نشود")
}

func required(v *domain.Validator, field, value string) {
	v.Check(strings.TrimSpace(value) != "", field, "required", "is required", "الزامی است")
}

// keyPart checks an agency, province or county id, which become parts of a
// quota account key and so may not contain the key's separator.
func keyPart(v *domain.Validator, field, value string, mandatory bool) {
	if value == "" && !mandatory {
		return
	}
	if strings.TrimSpace(value) == "" {
		required(v, field, "")
		return
	}
	v.Check(quota.ValidKeyPart(value), field, "malformed",
		"must not contain '/' or surrounding spaces", "نباید «/» یا فاصله در ابتدا و انتها داشته باشد")
}

func positive(v *domain.Validator, field string, n int64) {
	v.Check(n > 0, field, "not_positive", "must be greater than zero", "باید بیشتر از صفر باشد")
}

func jobsInRange(v *domain.Validator, field string, n int64) {
	v.Check(n >= 0 && n <= MaxJobs, field, "out_of_range",
		fmt.Sprintf("must be from 0 to %d", MaxJobs), fmt.Sprintf("باید از ۰ تا %d باشد", MaxJobs))
}

func oneOf[T ~string](v *domain.Validator, field string, value T, allowed ...T) {
	if slices.Contains(allowed, value) {
		return
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	v.Add(field, "not_allowed",
		fmt.Sprintf("must be one of %s", strings.Join(names, ", ")),
		fmt.Sprintf("باید یکی از %s باشد", strings.Join(names, "، ")))
}

func validAt(v *domain.Validator, at time.Time) {
	v.Check(!at.IsZero(), "at", "required", "the business time of the step is required", "زمان انجام اقدام الزامی است")
}

// notBefore refuses a step dated before the step it follows: the lifecycle is
// ordered, so a tranche paid before the loan was approved, or an inspection
// before any payment, is an input mistake.
func notBefore(at, since time.Time, what, whatFa string) error {
	if !at.Before(since) {
		return nil
	}
	var v domain.Validator
	v.Add("at", "out_of_order",
		fmt.Sprintf("must not be earlier than the %s (%s)", what, since.UTC().Format(time.RFC3339)),
		fmt.Sprintf("نباید پیش از %s (%s) باشد", whatFa, since.UTC().Format(time.RFC3339)))
	return v.Err()
}
