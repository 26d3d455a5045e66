package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/ledger"
)

// The facility commands: one stream per facility, facility-<id>.

// registerFacilityRequest registers an applicant's plan (schema
// RegisterFacilityRequest in openapi/commands.json, like every request).
type registerFacilityRequest struct {
	FacilityID     string           `json:"facility_id"`
	FiscalYear     int              `json:"fiscal_year"`
	Program        string           `json:"program"`
	Agency         string           `json:"agency"`
	Province       string           `json:"province"`
	County         string           `json:"county"`
	Title          string           `json:"title"`
	RequestedRials int64            `json:"requested_rials"`
	JobsPromised   int              `json:"jobs_promised"`
	Applicant      applicantRequest `json:"applicant"`
	when
}

// applicantRequest is the applicant's personal data, sealed by the ledger
// before anything is written.
type applicantRequest struct {
	NationalID string `json:"national_id"`
	Name       string `json:"name"`
	Phone      string `json:"phone"`
}

type reviewRequest struct {
	Decision string `json:"decision"`
	Bank     string `json:"bank"`
	Expert   string `json:"expert"`
	Reason   string `json:"reason"`
	Notes    string `json:"notes"`
	when
}

type approvalRequest struct {
	Bank         string `json:"bank"`
	AmountRials  int64  `json:"amount_rials"`
	QuotaAccount string `json:"quota_account"`
	when
}

type rejectionRequest struct {
	Bank   string `json:"bank"`
	Reason string `json:"reason"`
	when
}

type trancheRequest struct {
	Bank        string `json:"bank"`
	Tranche     int    `json:"tranche"`
	AmountRials int64  `json:"amount_rials"`
	when
}

// jobReportRequest's and inspectionRequest's figures are pointers: zero
// and false are meaningful, so a forgotten field must be refused rather
// than recorded as none.
type jobReportRequest struct {
	Jobs       *int   `json:"jobs"`
	ReportedBy string `json:"reported_by"`
	Period     string `json:"period"`
	when
}

type inspectionRequest struct {
	InspectionID     string `json:"inspection_id"`
	Firm             string `json:"firm"`
	GuidelineVersion string `json:"guideline_version"`
	Status           string `json:"status"`
	Confirmed        *bool  `json:"confirmed"`
	VerifiedJobs     *int   `json:"verified_jobs"`
	Notes            string `json:"notes"`
	when
}

type deviationRequest struct {
	DeviationID  string `json:"deviation_id"`
	Kind         string `json:"kind"`
	InspectionID string `json:"inspection_id"`
	Description  string `json:"description"`
	when
}

type evidenceRequest struct {
	Evidence    string `json:"evidence"`
	DocumentRef string `json:"document_ref"`
	when
}

type resolutionRequest struct {
	Resolution     string `json:"resolution"`
	RecoveredRials int64  `json:"recovered_rials"`
	Note           string `json:"note"`
	when
}

type correctionRequest struct {
	CorrectsEventID string          `json:"corrects_event_id"`
	Field           string          `json:"field"`
	NewValue        json.RawMessage `json:"new_value"`
	Reason          string          `json:"reason"`
	when
}

type closureRequest struct {
	Reason string `json:"reason"`
	when
}

var (
	facilityIDParam = cmdPathParam("id", "The facility's ID.",
		map[string]any{"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{2,63}$"})
	deviationIDParam = cmdPathParam("deviation_id", "The audit case's ID, as given when it was opened.",
		map[string]any{"type": "string", "minLength": 1})
)

// facilityRoutes lists the facility commands.
func (c *commander) facilityRoutes() []route {
	post := func(pattern string, a auth.Action, h func(http.ResponseWriter, *http.Request, auth.Principal) error, d routeDoc) route {
		return route{Method: http.MethodPost, Pattern: pattern, Action: a, Handle: h, Doc: d}
	}
	const tag = "facility commands"
	return []route{
		post("/v1/facilities", auth.ActionRegisterFacility,
			handle(c, cmdSpec[registerFacilityRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionRegisterFacility}, build: c.register}),
			commandDoc(tag, "Register a facility",
				"An agency registers an applicant's plan under a program, with the applicant's personal data (sealed under the applicant's own key before anything is written: "+
					"the log holds only a pseudonym and ciphertext). One registration per applicant, fiscal year and program. Who: agency, for its own agency "+
					"(agency defaults to the caller's; another is 403). facility_id may be chosen by the client; without it the server assigns one, derived from "+
					"the Idempotency-Key when one is given so that a retry registers the same facility. Answers 201 with Location /v1/facilities/{id}.",
				"RegisterFacilityRequest", http.StatusCreated)),
		post("/v1/facilities/{id}/review", auth.ActionReviewFacility,
			handle(c, cmdSpec[reviewRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionReviewFacility}, build: c.review}),
			commandDoc(tag, "Record the agency's expert review",
				"The agency's expert review: approved and referred to a bank, or rejected with a reason. Who: agency, for its own facilities. "+
					"expert defaults to the caller's subject.",
				"ReviewRequest", http.StatusOK, facilityIDParam)),
		post("/v1/facilities/{id}/approval", auth.ActionApproveLoan,
			handle(c, cmdSpec[approvalRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionApproveLoan}, build: c.approve}),
			commandDoc(tag, "Approve the loan",
				"The referred bank approves a loan, which charges the facility's quota account (quota_account, or by default the county's account "+
					"when the ledger has one, else the province's). Who: bank, for facilities referred to it (bank defaults to the caller's; another is 403).",
				"ApprovalRequest", http.StatusOK, facilityIDParam)),
		post("/v1/facilities/{id}/rejection", auth.ActionRejectLoan,
			handle(c, cmdSpec[rejectionRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionRejectLoan}, build: c.reject}),
			commandDoc(tag, "Reject the loan",
				"The referred bank refuses the loan; the file ends. Who: bank, for facilities referred to it.",
				"RejectionRequest", http.StatusOK, facilityIDParam)),
		post("/v1/facilities/{id}/tranches", auth.ActionDisburseTranche,
			handle(c, cmdSpec[trancheRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionDisburseTranche}, build: c.disburse}),
			commandDoc(tag, "Disburse a tranche",
				"The approving bank records a payment. tranche is the bank's number for it: 0 or absent means the next; a number other than the next is "+
					"409, so a repeated submission cannot pay twice. Who: bank, for facilities referred to it.",
				"TrancheRequest", http.StatusCreated, facilityIDParam)),
		post("/v1/facilities/{id}/job-reports", auth.ActionReportJobs,
			handle(c, cmdSpec[jobReportRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionReportJobs}, build: c.reportJobs}),
			commandDoc(tag, "Report jobs created",
				"The agency or the bank reports the jobs a paid plan created. reported_by defaults to the caller's kind (agency or bank); the other is 403. "+
					"Who: agency for its own facilities, bank for facilities referred to it.",
				"JobReportRequest", http.StatusCreated, facilityIDParam)),
		post("/v1/facilities/{id}/inspections", auth.ActionRecordInspection,
			handle(c, cmdSpec[inspectionRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionRecordInspection}, build: c.inspect}),
			commandDoc(tag, "Record a field inspection",
				"An inspection firm records what it found at a paid plan's site. Who: inspector, for its own firm (firm defaults to the caller's), "+
					"on any facility in the country.",
				"InspectionRequest", http.StatusCreated, facilityIDParam)),
		post("/v1/facilities/{id}/deviations", auth.ActionOpenDeviation,
			handle(c, cmdSpec[deviationRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionOpenDeviation}, build: c.openDeviation}),
			commandDoc(tag, "Open an audit case",
				"Opens a deviation, violation or discrepancy case, from an inspection (inspection_id) or on the caller's own finding. "+
					"Who: ministry and auditor anywhere, province_office in its province.",
				"DeviationRequest", http.StatusCreated, facilityIDParam)),
		post("/v1/facilities/{id}/deviations/{deviation_id}/evidence", auth.ActionAddDeviationEvidence,
			handle(c, cmdSpec[evidenceRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionAddDeviationEvidence}, build: c.addEvidence}),
			commandDoc(tag, "Add evidence to an audit case",
				"Adds evidence to an open case. Who: ministry and auditor anywhere, province_office in its province.",
				"EvidenceRequest", http.StatusCreated, facilityIDParam, deviationIDParam)),
		post("/v1/facilities/{id}/deviations/{deviation_id}/resolution", auth.ActionResolveDeviation,
			handle(c, cmdSpec[resolutionRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionResolveDeviation}, build: c.resolve}),
			commandDoc(tag, "Resolve an audit case",
				"Ends an open case: corrected, funds_recovered (with recovered_rials) or dismissed. Who: ministry anywhere, province_office in its "+
					"province; never auditors, who raise cases.",
				"ResolutionRequest", http.StatusOK, facilityIDParam, deviationIDParam)),
		post("/v1/facilities/{id}/corrections", auth.ActionCorrectRegistration,
			handle(c, cmdSpec[correctionRequest]{status: http.StatusCreated, actions: []auth.Action{
				auth.ActionCorrectRegistration, auth.ActionCorrectJobs, auth.ActionCorrectInspection, auth.ActionCorrectTranche,
			}, build: c.correct}),
			commandDoc(tag, "Correct a recorded figure",
				"Replaces one figure of an earlier event of this facility (named by its event ID) with a new value, with a reason; nothing is edited, "+
					"the correction is a new event. The party that recorded the figure corrects it, so the policy action depends on field: "+
					"jobs_promised, requested_rials, county → facility.correct_registration (agency); jobs → facility.correct_jobs (agency or bank, "+
					"each its own reports); verified_jobs, confirmed → facility.correct_inspection (inspector, its own firm's inspections); "+
					"amount_rials → facility.correct_tranche (bank). new_value is a JSON integer, string or boolean as the field takes.",
				"CorrectionRequest", http.StatusCreated, facilityIDParam)),
		post("/v1/facilities/{id}/closure", auth.ActionCloseFacility,
			handle(c, cmdSpec[closureRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionCloseFacility}, build: c.closeFacility}),
			commandDoc(tag, "Close the facility's file",
				"Closes the file (no audit case may be open) and returns the approved but unpaid part of its quota charge to the pool "+
					"(a second event, in the quota ledger, after the closure: the answer's position is the closure's). Who: agency, for its own facilities.",
				"ClosureRequest", http.StatusOK, facilityIDParam)),
	}
}

// pathFacility returns the facility ID of the path; a malformed one names
// no facility (404).
func pathFacility(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !facility.ValidID(id) {
		return "", &domain.NotFoundError{Kind: "facility", ID: id}
	}
	return id, nil
}

// ownScope returns value, or the principal's scope ID when value is empty
// and the principal's role is role: fields naming the caller's own
// organisation default to it (and are checked against it by the policy).
func ownScope(value string, p auth.Principal, role auth.Role) string {
	if value == "" && p.Role == role {
		return p.Scope.ID
	}
	return value
}

// facilityAuth decides, on the facility's state as the command will be
// decided on, whether p may send cmd: 404 for a facility that does not
// exist (but for a registration), then the policy with its party checks.
func (c *commander) facilityAuth(p auth.Principal, cmd facility.Command) func(any) error {
	_, registering := cmd.(facility.Register)
	return func(state any) error {
		f, ok := state.(facility.Facility)
		if !ok {
			return fmt.Errorf("api: a facility command was checked against %T", state)
		}
		if !registering && !f.Exists() {
			return &domain.NotFoundError{Kind: "facility", ID: cmd.Target()}
		}
		return c.s.policy.AuthorizeFacility(p, f, cmd)
	}
}

// facilityPlan is the plan of a single-stream facility command.
func (c *commander) facilityPlan(p auth.Principal, cmd facility.Command) cmdPlan {
	return cmdPlan{
		run: func(ctx context.Context, meta ledger.Meta) (ledger.Result, error) {
			return c.s.cfg.Service.Facility(ctx, cmd, meta)
		},
		authorize: c.facilityAuth(p, cmd),
	}
}

// newFacilityID names a facility registered without an ID: derived from
// the principal's subject and Idempotency-Key when there is one, so that a
// retry after a lost answer names the same facility, random otherwise.
func newFacilityID(subject, key string) string {
	if key == "" {
		return uuid.Must(uuid.NewV7()).String()
	}
	return uuid.NewSHA1(facilityIDSpace, []byte(subject+"\x00"+key)).String()
}

// facilityIDSpace is the UUID namespace of derived facility IDs.
var facilityIDSpace = uuid.MustParse("6f1c1f39-52d4-4bb0-9a34-7c0e5f1f6a90")

func (c *commander) register(in cmdInput, req *registerFacilityRequest) (cmdPlan, error) {
	id := req.FacilityID
	if id == "" {
		id = newFacilityID(in.p.Subject, in.key)
	}
	cmd := ledger.RegisterFacility{
		Register: facility.Register{
			FacilityID: id, FiscalYear: req.FiscalYear, Program: req.Program,
			Agency: ownScope(req.Agency, in.p, auth.RoleAgency), Province: req.Province, County: req.County,
			Title: req.Title, RequestedRials: req.RequestedRials, JobsPromised: req.JobsPromised, At: in.at,
		},
		Applicant: applicant.Personal{NationalID: req.Applicant.NationalID, Name: req.Applicant.Name, Phone: req.Applicant.Phone},
	}
	// The registration names its agency: refuse another agency's before
	// validating anything (the precondition checks again on the stream).
	if err := c.s.policy.AuthorizeFacility(in.p, facility.Facility{}, cmd.Register); err != nil {
		return cmdPlan{}, err
	}
	return cmdPlan{
		run: func(ctx context.Context, meta ledger.Meta) (ledger.Result, error) {
			return c.s.cfg.Service.Register(ctx, cmd, meta)
		},
		authorize: c.facilityAuth(in.p, cmd.Register),
		location:  "/v1/facilities/" + id,
	}, nil
}

func (c *commander) review(in cmdInput, req *reviewRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	expert := req.Expert
	if expert == "" {
		expert = in.p.Subject
	}
	return c.facilityPlan(in.p, facility.Review{
		FacilityID: id, Decision: facility.ReviewDecision(req.Decision), Bank: req.Bank, Expert: expert,
		Reason: req.Reason, Notes: req.Notes, At: in.at,
	}), nil
}

func (c *commander) approve(in cmdInput, req *approvalRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	cmd := facility.ApproveLoan{
		FacilityID: id, Bank: ownScope(req.Bank, in.p, auth.RoleBank), AmountRials: req.AmountRials,
		QuotaAccount: req.QuotaAccount, At: in.at,
	}
	return cmdPlan{
		run: func(ctx context.Context, meta ledger.Meta) (ledger.Result, error) {
			return c.s.cfg.Service.ApproveLoan(ctx, cmd, meta)
		},
		authorize: c.facilityAuth(in.p, cmd),
	}, nil
}

func (c *commander) reject(in cmdInput, req *rejectionRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.facilityPlan(in.p, facility.RejectLoan{
		FacilityID: id, Bank: ownScope(req.Bank, in.p, auth.RoleBank), Reason: req.Reason, At: in.at,
	}), nil
}

func (c *commander) disburse(in cmdInput, req *trancheRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.facilityPlan(in.p, facility.DisburseTranche{
		FacilityID: id, Bank: ownScope(req.Bank, in.p, auth.RoleBank), Tranche: req.Tranche,
		AmountRials: req.AmountRials, At: in.at,
	}), nil
}

func (c *commander) reportJobs(in cmdInput, req *jobReportRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	var v domain.Validator
	jobs := required(&v, "jobs", req.Jobs)
	if err := v.Err(); err != nil {
		return cmdPlan{}, err
	}
	by := facility.Reporter(req.ReportedBy)
	if by == "" {
		by, _ = auth.ReporterOf(in.p)
	}
	return c.facilityPlan(in.p, facility.ReportJobs{
		FacilityID: id, Jobs: jobs, ReportedBy: by, Period: req.Period, At: in.at,
	}), nil
}

func (c *commander) inspect(in cmdInput, req *inspectionRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	var v domain.Validator
	confirmed := required(&v, "confirmed", req.Confirmed)
	verified := required(&v, "verified_jobs", req.VerifiedJobs)
	if err := v.Err(); err != nil {
		return cmdPlan{}, err
	}
	return c.facilityPlan(in.p, facility.RecordInspection{
		FacilityID: id, InspectionID: req.InspectionID, Firm: ownScope(req.Firm, in.p, auth.RoleInspector),
		GuidelineVersion: req.GuidelineVersion, Status: facility.InspectionStatus(req.Status),
		Confirmed: confirmed, VerifiedJobs: verified, Notes: req.Notes, At: in.at,
	}), nil
}

func (c *commander) openDeviation(in cmdInput, req *deviationRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.facilityPlan(in.p, facility.OpenDeviation{
		FacilityID: id, DeviationID: req.DeviationID, Kind: facility.DeviationKind(req.Kind),
		InspectionID: req.InspectionID, Description: req.Description, At: in.at,
	}), nil
}

func (c *commander) addEvidence(in cmdInput, req *evidenceRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.facilityPlan(in.p, facility.AddDeviationEvidence{
		FacilityID: id, DeviationID: in.r.PathValue("deviation_id"), Evidence: req.Evidence,
		DocumentRef: req.DocumentRef, At: in.at,
	}), nil
}

func (c *commander) resolve(in cmdInput, req *resolutionRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.facilityPlan(in.p, facility.ResolveDeviation{
		FacilityID: id, DeviationID: in.r.PathValue("deviation_id"), Resolution: facility.Resolution(req.Resolution),
		RecoveredRials: req.RecoveredRials, Note: req.Note, At: in.at,
	}), nil
}

func (c *commander) correct(in cmdInput, req *correctionRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	v, err := correctionValue(req.NewValue)
	if err != nil {
		return cmdPlan{}, err
	}
	cmd := facility.Correct{
		FacilityID: id, CorrectsEventID: req.CorrectsEventID, Field: facility.Field(req.Field),
		NewValue: v, Reason: req.Reason, At: in.at,
	}
	// The action depends on the field: an unknown field is a 422 before
	// anything is loaded.
	if _, _, err := auth.FacilityRequest(facility.Facility{}, cmd); err != nil {
		return cmdPlan{}, err
	}
	return c.facilityPlan(in.p, cmd), nil
}

// correctionValue reads new_value: a JSON integer, string or boolean.
func correctionValue(raw json.RawMessage) (facility.Value, error) {
	bad := func(en, fa string) error {
		var v domain.Validator
		v.Add("new_value", "type", en, fa)
		return v.Err()
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		var v domain.Validator
		v.Add("new_value", "required", "is required", "الزامی است")
		return facility.Value{}, v.Err()
	}
	switch raw[0] {
	case 't', 'f':
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			return facility.BoolValue(b), nil
		}
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return facility.StringValue(s), nil
		}
	default:
		var n int64
		if json.Unmarshal(raw, &n) == nil {
			return facility.IntValue(n), nil
		}
		if bytes.IndexAny(raw, "-0123456789") == 0 {
			return facility.Value{}, bad("must be a whole number that fits in 64 bits", "باید عددی صحیح در بازهٔ ۶۴ بیتی باشد")
		}
	}
	return facility.Value{}, bad("must be an integer, a string or true/false, as the corrected field takes",
		"باید عدد صحیح، رشته یا true/false باشد، به تناسب موردی که اصلاح می‌شود")
}

func (c *commander) closeFacility(in cmdInput, req *closureRequest) (cmdPlan, error) {
	id, err := pathFacility(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	cmd := facility.Close{FacilityID: id, Reason: req.Reason, At: in.at}
	return cmdPlan{
		run: func(ctx context.Context, meta ledger.Meta) (ledger.Result, error) {
			return c.s.cfg.Service.CloseFacility(ctx, cmd, meta)
		},
		authorize: c.facilityAuth(in.p, cmd),
	}, nil
}
