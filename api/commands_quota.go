package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/ledger"
)

// The quota commands (one stream per fiscal year and program,
// quota-<fiscal year>-<program>) and the reference-data commands (one
// stream, reference).

type accountRequest struct {
	Agency   string `json:"agency"`
	Province string `json:"province"`
	County   string `json:"county"`
}

func (a accountRequest) key() quota.AccountKey {
	return quota.AccountKey{Agency: a.Agency, Province: a.Province, County: a.County}
}

type allocationRequest struct {
	Account     accountRequest `json:"account"`
	AmountRials int64          `json:"amount_rials"`
	JobsTarget  int            `json:"jobs_target"`
	LegalBasis  string         `json:"legal_basis"`
	DecisionRef string         `json:"decision_ref"`
	when
}

type transferRequest struct {
	TransferID  string         `json:"transfer_id"`
	From        accountRequest `json:"from"`
	To          accountRequest `json:"to"`
	AmountRials int64          `json:"amount_rials"`
	JobsTarget  int            `json:"jobs_target"`
	LegalBasis  string         `json:"legal_basis"`
	DecisionRef string         `json:"decision_ref"`
	ProposalID  string         `json:"proposal_id"`
	when
}

// allocationCorrectionRequest's figures are pointers: zero is a meaningful
// correction (0 rials cancels an allocation), so a forgotten field must be
// refused rather than read as zero.
type allocationCorrectionRequest struct {
	CorrectsEventID string `json:"corrects_event_id"`
	AmountRials     *int64 `json:"amount_rials"`
	JobsTarget      *int   `json:"jobs_target"`
	Reason          string `json:"reason"`
	when
}

var (
	fiscalYearParam = cmdPathParam("fiscal_year", "The Solar Hijri fiscal year of the quota ledger, such as 1403 (Persian digits accepted).",
		map[string]any{"type": "string", "pattern": "^\\s*[0-9۰-۹٠-٩]{4}\\s*$"})
	programParam = cmdPathParam("program", "The program of the quota ledger, such as home-business.",
		map[string]any{"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"})
)

// quotaRoutes lists the quota commands. Only the ministry holds them, in
// every account, so the wrapper checks the role up front (Global); the
// precondition checks the policy again on the ledger the command is
// decided on.
func (c *commander) quotaRoutes() []route {
	const tag = "quota commands"
	return []route{
		{Method: http.MethodPost, Pattern: "/v1/quotas/{fiscal_year}/{program}/allocations", Action: auth.ActionAllocateQuota, Global: true,
			Handle: handle(c, cmdSpec[allocationRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionAllocateQuota}, build: c.allocate}),
			Doc: commandDoc(tag, "Allocate quota",
				"Allocates money and a job target to an agency's account in a province (or one county of it) under a legal basis and a decision. Who: ministry.",
				"AllocationRequest", http.StatusCreated, fiscalYearParam, programParam)},
		{Method: http.MethodPost, Pattern: "/v1/quotas/{fiscal_year}/{program}/transfers", Action: auth.ActionTransferQuota, Global: true,
			Handle: handle(c, cmdSpec[transferRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionTransferQuota}, build: c.transfer}),
			Doc: commandDoc(tag, "Transfer quota between accounts",
				"Moves free quota (and optionally part of the job target) from one account of the ledger to another by ministry decision, in one event. "+
					"More than the source's free balance is 409 quota-exceeded. Who: ministry.",
				"TransferRequest", http.StatusCreated, fiscalYearParam, programParam)},
		{Method: http.MethodPost, Pattern: "/v1/quotas/{fiscal_year}/{program}/allocation-corrections", Action: auth.ActionCorrectAllocation, Global: true,
			Handle: handle(c, cmdSpec[allocationCorrectionRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionCorrectAllocation}, build: c.correctAllocation}),
			Doc: commandDoc(tag, "Correct an allocation",
				"Replaces the amount and job target of an earlier allocation of this ledger, named by its event ID; amount_rials 0 cancels a mistaken "+
					"allocation. Both figures are required. Who: ministry.",
				"AllocationCorrectionRequest", http.StatusCreated, fiscalYearParam, programParam)},
	}
}

// pathLedger reads the fiscal year and program of the path.
func pathLedger(r *http.Request) (int, string, error) {
	fy, err := calendar.ParseFiscalYear(r.PathValue("fiscal_year"))
	if err != nil {
		return 0, "", err
	}
	return int(fy), r.PathValue("program"), nil
}

// quotaPlan is the plan of a quota command.
func (c *commander) quotaPlan(p auth.Principal, cmd quota.Command) cmdPlan {
	return cmdPlan{
		run: func(ctx context.Context, meta ledger.Meta) (ledger.Result, error) {
			return c.s.cfg.Service.Quota(ctx, cmd, meta)
		},
		authorize: func(state any) error {
			if _, ok := state.(quota.Ledger); !ok {
				return fmt.Errorf("api: a quota command was checked against %T", state)
			}
			a, res, err := auth.QuotaRequest(cmd)
			if err != nil {
				return err
			}
			return c.s.policy.Authorize(p, a, res)
		},
	}
}

func (c *commander) allocate(in cmdInput, req *allocationRequest) (cmdPlan, error) {
	fy, program, err := pathLedger(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.quotaPlan(in.p, quota.Allocate{
		FiscalYear: fy, Program: program, Account: req.Account.key(), AmountRials: req.AmountRials,
		JobsTarget: req.JobsTarget, LegalBasis: req.LegalBasis, DecisionRef: req.DecisionRef, At: in.at,
	}), nil
}

func (c *commander) transfer(in cmdInput, req *transferRequest) (cmdPlan, error) {
	fy, program, err := pathLedger(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.quotaPlan(in.p, quota.Transfer{
		FiscalYear: fy, Program: program, TransferID: req.TransferID, From: req.From.key(), To: req.To.key(),
		AmountRials: req.AmountRials, JobsTarget: req.JobsTarget, LegalBasis: req.LegalBasis,
		DecisionRef: req.DecisionRef, ProposalID: req.ProposalID, At: in.at,
	}), nil
}

func (c *commander) correctAllocation(in cmdInput, req *allocationCorrectionRequest) (cmdPlan, error) {
	fy, program, err := pathLedger(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	var v domain.Validator
	amount := required(&v, "amount_rials", req.AmountRials)
	jobs := required(&v, "jobs_target", req.JobsTarget)
	if err := v.Err(); err != nil {
		return cmdPlan{}, err
	}
	return c.quotaPlan(in.p, quota.CorrectAllocation{
		FiscalYear: fy, Program: program, CorrectsEventID: req.CorrectsEventID, AmountRials: amount,
		JobsTarget: jobs, Reason: req.Reason, At: in.at,
	}), nil
}

// required returns *p, or records that field is missing.
func required[T any](v *domain.Validator, field string, p *T) T {
	if p == nil {
		v.Add(field, "required", "is required", "الزامی است")
		var zero T
		return zero
	}
	return *p
}

// ─── reference data ──────────────────────────────────────────────────────

// entityRequest adds an agency or a bank.
type entityRequest struct {
	ID        string `json:"id"`
	NameEn    string `json:"name_en"`
	NameFa    string `json:"name_fa"`
	ValidFrom string `json:"valid_from"`
	when
}

type programRequest struct {
	ID           string `json:"id"`
	NameEn       string `json:"name_en"`
	NameFa       string `json:"name_fa"`
	Note         string `json:"note"`
	MaxLoanRials int64  `json:"max_loan_rials"`
	ValidFrom    string `json:"valid_from"`
	when
}

type countyRequest struct {
	ID        string `json:"id"`
	Province  string `json:"province"`
	NameEn    string `json:"name_en"`
	NameFa    string `json:"name_fa"`
	ValidFrom string `json:"valid_from"`
	when
}

type firmRequest struct {
	ID           string `json:"id"`
	NameEn       string `json:"name_en"`
	NameFa       string `json:"name_fa"`
	SeatProvince string `json:"seat_province"`
	ValidFrom    string `json:"valid_from"`
	when
}

type renameRequest struct {
	NameEn    string `json:"name_en"`
	NameFa    string `json:"name_fa"`
	ValidFrom string `json:"valid_from"`
	when
}

// referenceKinds maps the path segment of each kind of reference entity.
var referenceKinds = []struct {
	segment string
	kind    reference.Kind
}{
	{"agencies", reference.KindAgency}, {"banks", reference.KindBank}, {"programs", reference.KindProgram},
	{"counties", reference.KindCounty}, {"firms", reference.KindFirm},
}

// referenceRoutes lists the reference-data commands, all the admin's.
func (c *commander) referenceRoutes() []route {
	const tag = "reference commands"
	add := func(segment, what, request string, h func(http.ResponseWriter, *http.Request, auth.Principal) error, extra string) route {
		return route{Method: http.MethodPost, Pattern: "/v1/reference/" + segment, Action: auth.ActionManageReference, Global: true,
			Handle: h,
			Doc: commandDoc(tag, "Add "+what,
				"Adds "+what+" to the reference catalogue, existing from valid_from (a date or instant, ISO 8601 or Solar Hijri). "+extra+
					"An ID already in the catalogue is 409. Who: admin.",
				request, http.StatusCreated)}
	}
	manage := []auth.Action{auth.ActionManageReference}
	rs := []route{
		add("agencies", "an executive agency", "EntityRequest",
			handle(c, cmdSpec[entityRequest]{status: http.StatusCreated, actions: manage, build: c.addAgency}),
			"The ID is a lower-case slug such as relief-committee. "),
		add("banks", "an operating bank", "EntityRequest",
			handle(c, cmdSpec[entityRequest]{status: http.StatusCreated, actions: manage, build: c.addBank}),
			"The ID is a lower-case slug such as keshavarzi. "),
		add("programs", "a facility program", "ProgramRequest",
			handle(c, cmdSpec[programRequest]{status: http.StatusCreated, actions: manage, build: c.addProgram}),
			"max_loan_rials caps one applicant's loan (0: no cap). "),
		add("counties", "a county", "CountyRequest",
			handle(c, cmdSpec[countyRequest]{status: http.StatusCreated, actions: manage, build: c.addCounty}),
			"The ID is the province code and a slug, such as IR-23-pardis; an unknown province is 404. "),
		add("firms", "an inspection firm", "FirmRequest",
			handle(c, cmdSpec[firmRequest]{status: http.StatusCreated, actions: manage, build: c.addFirm}),
			"seat_province is the province code of the firm's seat; it may inspect anywhere. "),
	}
	for _, k := range referenceKinds {
		kind := k.kind
		rs = append(rs, route{Method: http.MethodPost, Pattern: "/v1/reference/" + k.segment + "/{ref_id}/names",
			Action: auth.ActionManageReference, Global: true,
			Handle: handle(c, cmdSpec[renameRequest]{status: http.StatusOK, actions: manage,
				build: func(in cmdInput, req *renameRequest) (cmdPlan, error) { return c.rename(in, req, kind) }}),
			Doc: commandDoc(tag, "Rename a "+string(kind),
				"Gives the "+string(kind)+" new English and Persian names from valid_from on (not before its current names' valid_from); the old names "+
					"stay in the history. Renaming to the current names appends nothing (event_ids empty, position 0). An unknown ID is 404. Who: admin.",
				"RenameRequest", http.StatusOK,
				cmdPathParam("ref_id", "The "+string(kind)+"'s ID.", map[string]any{"type": "string", "minLength": 1}))})
	}
	return rs
}

// referencePlan is the plan of a reference command.
func (c *commander) referencePlan(p auth.Principal, cmd reference.Command) cmdPlan {
	return cmdPlan{
		run: func(ctx context.Context, meta ledger.Meta) (ledger.Result, error) {
			return c.s.cfg.Service.Reference(ctx, cmd, meta)
		},
		authorize: func(state any) error {
			if _, ok := state.(reference.Catalog); !ok {
				return fmt.Errorf("api: a reference command was checked against %T", state)
			}
			return c.s.policy.Authorize(p, auth.ReferenceAction(cmd), auth.Resource{})
		},
	}
}

// validFrom reads a valid_from field; empty is left to the domain, which
// reports it as required.
func validFrom(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime("valid_from", s)
}

func (c *commander) addAgency(in cmdInput, req *entityRequest) (cmdPlan, error) {
	from, err := validFrom(req.ValidFrom)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.referencePlan(in.p, reference.AddAgency{ID: req.ID, NameEn: req.NameEn, NameFa: req.NameFa, ValidFrom: from}), nil
}

func (c *commander) addBank(in cmdInput, req *entityRequest) (cmdPlan, error) {
	from, err := validFrom(req.ValidFrom)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.referencePlan(in.p, reference.AddBank{ID: req.ID, NameEn: req.NameEn, NameFa: req.NameFa, ValidFrom: from}), nil
}

func (c *commander) addProgram(in cmdInput, req *programRequest) (cmdPlan, error) {
	from, err := validFrom(req.ValidFrom)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.referencePlan(in.p, reference.AddProgram{ID: req.ID, NameEn: req.NameEn, NameFa: req.NameFa, Note: req.Note,
		MaxLoanRials: req.MaxLoanRials, ValidFrom: from}), nil
}

func (c *commander) addCounty(in cmdInput, req *countyRequest) (cmdPlan, error) {
	from, err := validFrom(req.ValidFrom)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.referencePlan(in.p, reference.AddCounty{ID: req.ID, Province: req.Province, NameEn: req.NameEn, NameFa: req.NameFa,
		ValidFrom: from}), nil
}

func (c *commander) addFirm(in cmdInput, req *firmRequest) (cmdPlan, error) {
	from, err := validFrom(req.ValidFrom)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.referencePlan(in.p, reference.AddFirm{ID: req.ID, NameEn: req.NameEn, NameFa: req.NameFa, SeatProvince: req.SeatProvince,
		ValidFrom: from}), nil
}

func (c *commander) rename(in cmdInput, req *renameRequest, kind reference.Kind) (cmdPlan, error) {
	from, err := validFrom(req.ValidFrom)
	if err != nil {
		return cmdPlan{}, err
	}
	p := c.referencePlan(in.p, reference.Rename{Kind: kind, ID: in.r.PathValue("ref_id"), NameEn: req.NameEn, NameFa: req.NameFa,
		ValidFrom: from})
	p.fields = map[string]string{"id": "ref_id"}
	return p, nil
}
