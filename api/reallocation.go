package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/quotas"
)

// Quota reallocation (domain/quota/reallocation.go): the ministry asks for
// a proposal computed from the quota_balances read model, which is
// recorded in the ledger with its justification figures and the position
// they were read at; then approves it (whole or in part: the approved
// lines become transfers in the same append, after a re-check against the
// ledger) or cancels it.

type proposalRequest struct {
	FiscalYear int    `json:"fiscal_year"`
	Program    string `json:"program"`
	Scope      struct {
		Province string `json:"province"`
		Agency   string `json:"agency"`
	} `json:"scope"`
	Donors struct {
		MaxAbsorptionPct       *float64 `json:"max_absorption_pct"`
		MinDaysSinceAllocation *int     `json:"min_days_since_allocation"`
	} `json:"donors"`
	Receivers struct {
		MinUnmetDemandRials *int64 `json:"min_unmet_demand_rials"`
	} `json:"receivers"`
	CapPerTransferRials int64 `json:"cap_per_transfer_rials"`
	// MinPosition makes the proposal wait (up to Config.MaxWait) until the
	// read model reflects it: read-your-writes after the client's last
	// command.
	MinPosition uint64 `json:"min_position"`
	when
}

type proposalApprovalRequest struct {
	Lines       []int  `json:"lines"`
	LegalBasis  string `json:"legal_basis"`
	DecisionRef string `json:"decision_ref"`
	when
}

type proposalCancellationRequest struct {
	Reason string `json:"reason"`
	when
}

// proposalView is a proposal as the API shows it.
type proposalView struct {
	ProposalID      string               `json:"proposal_id"`
	FiscalYear      int                  `json:"fiscal_year"`
	Program         string               `json:"program"`
	Status          quota.ProposalStatus `json:"status"`
	Policy          quota.Policy         `json:"policy"`
	Lines           []quota.ProposedLine `json:"lines"`
	TotalRials      int64                `json:"total_rials"`
	BasedOnPosition uint64               `json:"based_on_position"`
	ApprovedLines   []int                `json:"approved_lines"`
	LegalBasis      string               `json:"legal_basis,omitempty"`
	DecisionRef     string               `json:"decision_ref,omitempty"`
	Reason          string               `json:"reason,omitempty"`
}

func proposalViewOf(fy int, program string, p quota.Proposal) proposalView {
	v := proposalView{
		ProposalID: p.ID, FiscalYear: fy, Program: program, Status: p.Status, Policy: p.Policy, Lines: p.Lines,
		BasedOnPosition: p.BasedOnPosition, ApprovedLines: p.Approved, LegalBasis: p.LegalBasis, DecisionRef: p.DecisionRef, Reason: p.Reason,
	}
	if v.ApprovedLines == nil {
		v.ApprovedLines = []int{}
	}
	for _, l := range p.Lines {
		v.TotalRials += l.AmountRials
	}
	return v
}

// proposalAnswer answers a proposal's creation: the command's result and
// the proposal.
type proposalAnswer struct {
	CommandResult
	proposalView
}

var proposalIDParam = cmdPathParam("proposal_id", "The proposal's id: fiscal year, program and number, such as 1403.home-business.2.",
	map[string]any{"type": "string", "pattern": "^[0-9]{4}\\.[a-z0-9][a-z0-9-]*\\.[1-9][0-9]*$"})

// reallocationRoutes lists the proposal commands (ministry only) and the
// proposal query.
func (c *commander) reallocationRoutes() []route {
	const tag = "quota reallocation"
	create := commandDoc(tag, "Ask for a reallocation proposal",
		"Computes quota transfers from the quota_balances read model (its figures as they stand, at the position the answer names) "+
			"and records them as a proposal in the ledger of the fiscal year and program, with the figures that justify every line. "+
			"Donors are the accounts in scope whose absorption (charged ÷ allocated) is below donors.max_absorption_pct at least "+
			"donors.min_days_since_allocation days after their first allocation, with free quota beyond their own unmet demand (which they "+
			"keep); receivers are those whose unmet demand (rials requested by facilities waiting for a bank's decision that an approval "+
			"would charge to them) exceeds their free quota by more than receivers.min_unmet_demand_rials. Receivers are served largest need "+
			"first, each from the lowest-absorbing donors first; each line is at most the donor's spare quota, the receiver's remaining need and cap_per_transfer_rials (0: none, else "+
			"one line per donor and receiver); a donor's job target moves in proportion to the money. Nothing moves until the proposal is "+
			"approved. A policy no account meets is 422 no_transfers, and nothing is recorded. Who: ministry.",
		"ReallocationProposalRequest", http.StatusCreated)
	create.Responses[http.StatusCreated] = "ReallocationProposalAnswer"
	approve := commandDoc(tag, "Approve a reallocation proposal",
		"Approves a pending proposal whole (no lines) or the lines named, under a legal basis and decision reference. The decision is "+
			"checked against the ledger itself, not the read model: every approved line's donor must still have at least the free quota the "+
			"proposal showed, and every transfer must keep the ledger's rules. It is one unit: either the approval and one quota transfer "+
			"per approved line (transfer id <proposal_id>/<line>, linked to the proposal) are appended together, or nothing is, and the 409 "+
			"conflict lists every failing line with the proposal's figure (proposed_free_rials) and the ledger's (current_free_rials); "+
			"approve the other lines, or ask for a new proposal. Who: ministry.",
		"ReallocationApprovalRequest", http.StatusOK, proposalIDParam)
	cancel := commandDoc(tag, "Cancel a reallocation proposal",
		"Withdraws a pending proposal; nothing moves. Who: ministry.",
		"ReallocationCancellationRequest", http.StatusOK, proposalIDParam)
	spec := func(build func(cmdInput, *proposalRequest) (cmdPlan, error)) cmdSpec[proposalRequest] {
		return cmdSpec[proposalRequest]{status: http.StatusCreated, actions: []auth.Action{auth.ActionReallocateQuota}, build: build}
	}
	return []route{
		{Method: http.MethodPost, Pattern: "/v1/quota/reallocation-proposals", Action: auth.ActionReallocateQuota, Global: true,
			Handle: handle(c, spec(c.propose)), Doc: create},
		{Method: http.MethodPost, Pattern: "/v1/quota/reallocation-proposals/{proposal_id}/approval", Action: auth.ActionReallocateQuota, Global: true,
			Handle: handle(c, cmdSpec[proposalApprovalRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionReallocateQuota}, build: c.approveProposal}),
			Doc:    approve},
		{Method: http.MethodPost, Pattern: "/v1/quota/reallocation-proposals/{proposal_id}/cancellation", Action: auth.ActionReallocateQuota, Global: true,
			Handle: handle(c, cmdSpec[proposalCancellationRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionReallocateQuota}, build: c.cancelProposal}),
			Doc:    cancel},
		{Method: http.MethodGet, Pattern: "/v1/quota/reallocation-proposals/{proposal_id}", Action: auth.ActionReadQuotas, Global: true,
			Handle: c.getProposal,
			Doc: routeDoc{
				Summary: "A reallocation proposal",
				Description: "The proposal as the ledger records it now: its status (pending, approved, cancelled), policy, lines with their " +
					"justification figures, the read-model position they were read at, and the decision. Read from the ledger, not a read model: " +
					"the answer's position is the log head it was read at, its ETag the ledger stream's version. Who: ministry, auditors, admin.",
				Tags:      []string{tag},
				Params:    []paramDoc{proposalIDParam},
				Responses: map[int]string{http.StatusOK: "ReallocationProposal", http.StatusNotFound: "Problem"},
			}},
	}
}

func (c *commander) propose(in cmdInput, req *proposalRequest) (cmdPlan, error) {
	var v domain.Validator
	v.Check(req.Donors.MaxAbsorptionPct != nil, "donors.max_absorption_pct", "required", "is required", "الزامی است")
	v.Check(req.Donors.MinDaysSinceAllocation != nil, "donors.min_days_since_allocation", "required", "is required", "الزامی است")
	v.Check(req.Receivers.MinUnmetDemandRials != nil, "receivers.min_unmet_demand_rials", "required", "is required", "الزامی است")
	v.Check(req.CapPerTransferRials >= 0, "cap_per_transfer_rials", "out_of_range", "must not be negative", "نباید منفی باشد")
	v.Check(req.FiscalYear >= quota.MinFiscalYear && req.FiscalYear <= quota.MaxFiscalYear, "fiscal_year", "out_of_range",
		fmt.Sprintf("must be a Solar Hijri year from %d to %d", quota.MinFiscalYear, quota.MaxFiscalYear),
		fmt.Sprintf("باید سالی هجری شمسی از %d تا %d باشد", quota.MinFiscalYear, quota.MaxFiscalYear))
	v.Check(quota.ValidProgram(req.Program), "program", "malformed", "must be a program id", "باید شناسه برنامه باشد")
	if err := v.Err(); err != nil {
		return cmdPlan{}, err
	}
	var pol quota.Policy
	pol.Scope.Province, pol.Scope.Agency = strings.TrimSpace(req.Scope.Province), strings.TrimSpace(req.Scope.Agency)
	pol.MaxAbsorptionPct, pol.MinDaysSinceAllocation = *req.Donors.MaxAbsorptionPct, *req.Donors.MinDaysSinceAllocation
	pol.MinUnmetDemandRials, pol.CapPerTransferRials = *req.Receivers.MinUnmetDemandRials, req.CapPerTransferRials

	if req.MinPosition > 0 {
		reached, err := c.s.positions.WaitFor(in.r.Context(), quotas.Name, req.MinPosition, c.s.cfg.MaxWait)
		var timeout *projections.WaitTimeoutError
		if errors.As(err, &timeout) {
			pe := fail(probNotReached,
				fmt.Sprintf("the quota_balances read model reflects the log up to position %d, not yet %d, after waiting %s", reached, req.MinPosition, c.s.cfg.MaxWait),
				fmt.Sprintf("مدل خواندنی quota_balances تا موقعیت %d را بازتاب می‌دهد و پس از %s انتظار هنوز به %d نرسیده است", reached, c.s.cfg.MaxWait, req.MinPosition))
			pe.extra = map[string]any{"reached": reached}
			return cmdPlan{}, pe
		}
		if err != nil {
			return cmdPlan{}, err
		}
	}
	rd := quotas.NewReader(c.s.cfg.ReadModels)
	accounts, pos, err := rd.LedgerAccounts(in.r.Context(), quotas.Filter{FiscalYear: req.FiscalYear, Program: req.Program,
		Province: pol.Scope.Province, Agency: pol.Scope.Agency})
	if err != nil {
		return cmdPlan{}, err
	}
	figures := make([]quota.AccountFigures, len(accounts))
	for i, a := range accounts {
		figures[i] = accountFigures(a, in.at)
	}
	lines := quota.Propose(figures, pol)
	if len(lines) == 0 {
		donors, receivers := quota.Candidates(figures, pol)
		pe := fail(probValidation,
			fmt.Sprintf("no transfer meets the policy: of the %d accounts of ledger %d/%s in scope (read model at position %d), %d may give and %d need quota",
				len(accounts), req.FiscalYear, req.Program, pos, len(donors), len(receivers)),
			fmt.Sprintf("هیچ جابه‌جایی با این سیاست جور نیست: از %d حساب دفتر %d/%s در این دامنه (مدل خواندنی در موقعیت %d)، %d می‌توانند بدهند و %d نیاز دارند",
				len(accounts), req.FiscalYear, req.Program, pos, len(donors), len(receivers)))
		pe.fields = []FieldProblem{{Field: "policy", Code: "no_transfers", Message: pe.en}}
		pe.extra = map[string]any{"accounts": len(accounts), "donors": len(donors), "receivers": len(receivers), "position": pos}
		return cmdPlan{}, pe
	}
	stream := quota.Stream(req.FiscalYear, req.Program)
	plan := c.quotaPlan(in.p, quota.ProposeReallocation{
		FiscalYear: req.FiscalYear, Program: req.Program, Policy: pol, Lines: lines, BasedOnPosition: pos, At: in.at,
	})
	plan.body = func(ctx context.Context, res ledger.Result) (any, error) {
		// The proposal as recorded (a replay of the request finds the
		// first one's).
		evs, err := c.s.cfg.Store.ReadStream(ctx, stream, res.Version, eventstore.Forwards, 1)
		if err != nil || len(evs) == 0 {
			return nil, fmt.Errorf("api: read the recorded proposal: %w", err)
		}
		ev, err := c.s.cfg.Service.Ledger().Registry().Decode(evs[0].Type, evs[0].Data)
		if err != nil {
			return nil, err
		}
		e, ok := ev.(quota.ReallocationProposedV1)
		if !ok {
			return nil, fmt.Errorf("api: %s at version %d is a %s, not a proposal", stream, res.Version, evs[0].Type)
		}
		ids := res.EventIDs
		if ids == nil {
			ids = []string{}
		}
		return proposalAnswer{
			CommandResult: CommandResult{Stream: res.Stream, EventIDs: ids, Version: res.Version, Position: res.Position, Duplicate: res.Duplicate},
			proposalView: proposalViewOf(e.FiscalYear, e.Program, quota.Proposal{ID: e.ProposalID, Policy: e.Policy, Lines: e.Lines,
				BasedOnPosition: e.BasedOnPosition, Status: quota.ProposalPending}),
		}, nil
	}
	return plan, nil
}

// accountFigures are a read-model account's figures for a proposal, with
// its days since allocation as of at.
func accountFigures(a quotas.Account, at time.Time) quota.AccountFigures {
	f := quota.AccountFigures{
		Account: a.Key(), AllocatedRials: a.AllocatedRials, AvailableRials: a.AllocatedRials + a.TransferredInRials - a.TransferredOutRials,
		ChargedRials: a.OpenChargesRials, FreeRials: a.FreeRials, JobsTarget: a.JobsTarget, AbsorptionPct: a.AbsorptionPct,
		UnmetFacilities: a.UnmetFacilities, UnmetRequestedRials: a.UnmetRequestedRials,
	}
	if d, ok := a.DaysSinceAllocation(at); ok {
		f.DaysSinceAllocation = &d
	}
	return f
}

// pathProposal reads the proposal id of the path and its ledger; an id
// that cannot be a proposal's is 404.
func pathProposal(r *http.Request) (string, int, string, error) {
	id := r.PathValue("proposal_id")
	fy, program, ok := quota.ParseProposalID(id)
	if !ok {
		return "", 0, "", &domain.NotFoundError{Kind: "reallocation proposal", ID: id}
	}
	return id, fy, program, nil
}

func (c *commander) approveProposal(in cmdInput, req *proposalApprovalRequest) (cmdPlan, error) {
	id, fy, program, err := pathProposal(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.quotaPlan(in.p, quota.ApproveReallocation{FiscalYear: fy, Program: program, ProposalID: id, Lines: req.Lines,
		LegalBasis: req.LegalBasis, DecisionRef: req.DecisionRef, At: in.at}), nil
}

func (c *commander) cancelProposal(in cmdInput, req *proposalCancellationRequest) (cmdPlan, error) {
	id, fy, program, err := pathProposal(in.r)
	if err != nil {
		return cmdPlan{}, err
	}
	return c.quotaPlan(in.p, quota.CancelReallocation{FiscalYear: fy, Program: program, ProposalID: id, Reason: req.Reason, At: in.at}), nil
}

// proposalState is a proposal read from its ledger.
type proposalState struct {
	proposalView
	Version  uint64 `json:"version"`  // the ledger stream's
	Position uint64 `json:"position"` // the log head read at
}

func (c *commander) getProposal(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if _, err := negotiate(r, false); err != nil {
		return err
	}
	p := newParams(r)
	if err := p.check(); err != nil {
		return err
	}
	id, fy, program, err := pathProposal(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	head, err := c.s.cfg.Store.Head(ctx)
	if err != nil {
		return err
	}
	l, version, err := ledger.State(ctx, c.s.cfg.Service.Ledger(), quota.Stream(fy, program), quota.Decider(), nil)
	if err != nil {
		return err
	}
	prop, ok := l.Proposal(id)
	if !ok {
		return &domain.NotFoundError{Kind: "reallocation proposal", ID: id}
	}
	w.Header().Set("ETag", etag(version))
	return answer(w, head.Position, proposalState{proposalView: proposalViewOf(fy, program, prop), Version: version, Position: head.Position})
}

// staleProblem is the 409 of an approval the ledger no longer supports.
func staleProblem(r *http.Request, e *quota.StaleProposalError) Problem {
	p := newProblem(r, probConflict, e.Error())
	if persian(r) {
		parts := make([]string, len(e.Lines))
		for i, l := range e.Lines {
			parts[i] = fmt.Sprintf("سطر %d: مانده آزاد حساب %s هنگام پیشنهاد %d ریال بود و اکنون %d ریال است", l.Line, l.Donor, l.Proposed, l.Current)
		}
		p.Detail = fmt.Sprintf("پیشنهاد %s دیگر با دفتر جور نیست و هیچ سطری تصویب نشد: %s", e.ProposalID, strings.Join(parts, "؛ "))
	}
	lines := slices.Clone(e.Lines)
	p.Extra = map[string]any{"proposal_id": e.ProposalID, "stale_lines": lines}
	return p
}
