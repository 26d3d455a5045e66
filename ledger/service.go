package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/eventstore"
)

// Service runs Payesh's commands, including those that touch more than one
// aggregate: registering a facility also claims the applicant's slot (the
// duplicate check), and a bank's approval also charges the quota. Each step
// is one atomic append; when a later step is refused, the earlier one is
// compensated by a new event (a released claim or charge), never by an edit.
// A process that dies between the two steps leaves the first one standing:
// a claim or charge without its facility event, visible in the log and
// released by retrying the command with the same idempotency key.
type Service struct {
	ledger       *Ledger
	vault        applicant.Vault
	pseudonymKey []byte

	mu      sync.Mutex
	catalog reference.Catalog
	catVer  uint64
}

// HotStreams is the state cache the service's ledger should be built with:
// quota ledgers take a charge for every approval of their fiscal year and
// program, so re-reading them per command grows with the year's volume.
// (quota.Evolve is copy-on-write, as WithStateCache requires.)
func HotStreams() Option { return WithStateCache("quota-") }

// NewService returns a service over l. vault holds applicants' data keys;
// pseudonymKey (at least 32 bytes) keys the HMAC that turns national IDs into
// applicant references.
func NewService(l *Ledger, vault applicant.Vault, pseudonymKey []byte) (*Service, error) {
	if err := applicant.CheckPseudonymKey(pseudonymKey); err != nil {
		return nil, err
	}
	return &Service{ledger: l, vault: vault, pseudonymKey: pseudonymKey}, nil
}

// Ledger returns the underlying ledger.
func (s *Service) Ledger() *Ledger { return s.ledger }

// EnsureReference writes the default reference data into an empty ledger.
// It is safe to call on every start: a ledger that has reference data is
// left alone.
func (s *Service) EnsureReference(ctx context.Context, meta Meta) error {
	v, err := s.ledger.store.StreamVersion(ctx, reference.Stream)
	if err != nil || v > 0 {
		return err
	}
	_, err = s.ledger.Append(ctx, reference.Stream, eventstore.NoStream, reference.DefaultEvents(), meta)
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return nil // another process seeded it first
	}
	return err
}

// Catalog returns the current reference catalogue, re-reading the reference
// stream only when it has grown.
func (s *Service) Catalog(ctx context.Context) (reference.Catalog, error) {
	v, err := s.ledger.store.StreamVersion(ctx, reference.Stream)
	if err != nil {
		return reference.Catalog{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == s.catVer && v > 0 {
		return s.catalog, nil
	}
	cat, ver, err := State(ctx, s.ledger, reference.Stream, reference.Decider(), nil)
	if err != nil {
		return reference.Catalog{}, err
	}
	s.catalog, s.catVer = cat, ver
	return cat, nil
}

// Reference executes a reference-data command (adding an agency, a county…).
func (s *Service) Reference(ctx context.Context, cmd reference.Command, meta Meta) (Result, error) {
	return Execute(ctx, s.ledger, reference.Stream, reference.Decider(), cmd, meta)
}

// refs collects unknown-reference problems as field errors.
type refs struct {
	cat reference.Catalog
	v   domain.Validator
}

func (r *refs) check(kind reference.Kind, field, id string) {
	if id == "" {
		return // emptiness is the decider's to report
	}
	if !r.cat.Has(kind, id) {
		r.v.Add(field, "unknown_reference", fmt.Sprintf("no %s %q in the reference data", kind, id),
			fmt.Sprintf("%s با شناسه %q در داده‌های پایه نیست", kind, id))
	}
}

func (r *refs) province(field, code string) {
	if code == "" {
		return
	}
	if _, ok := r.cat.Province(code); !ok {
		r.v.Add(field, "unknown_reference", fmt.Sprintf("no province %q (codes run IR-00 to IR-30)", code),
			fmt.Sprintf("استانی با کد %q نیست", code))
	}
}

func (r *refs) account(prefix string, k quota.AccountKey) {
	r.check(reference.KindAgency, prefix+".agency", k.Agency)
	r.province(prefix+".province", k.Province)
	r.check(reference.KindCounty, prefix+".county", k.County)
}

func (s *Service) refs(ctx context.Context) (*refs, error) {
	cat, err := s.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	return &refs{cat: cat}, nil
}

// RegisterFacility is a facility registration with the applicant's personal
// data still in plaintext; the service seals it before anything is written.
type RegisterFacility struct {
	facility.Register
	Applicant applicant.Personal
}

// Register validates the applicant, seals their personal data under their
// own key, claims their slot for the fiscal year and program (refusing a
// duplicate), and registers the facility. meta.Check runs on the facility
// stream before the claim, and again when the registration is appended.
func (s *Service) Register(ctx context.Context, cmd RegisterFacility, meta Meta) (Result, error) {
	r, err := s.refs(ctx)
	if err != nil {
		return Result{}, err
	}
	nid, idErr := nationalid.Validate(cmd.Applicant.NationalID)
	if idErr != nil {
		r.v.Add("applicant.national_id", "invalid_national_id", "is not a valid national ID (10 digits with a correct check digit)",
			"کد ملی معتبر نیست (ده رقم با رقم کنترل درست)")
	}
	r.v.Check(cmd.Applicant.Name != "", "applicant.name", "required", "is required", "الزامی است")
	r.check(reference.KindProgram, "program", cmd.Program)
	r.check(reference.KindAgency, "agency", cmd.Agency)
	r.province("province", cmd.Province)
	r.check(reference.KindCounty, "county", cmd.County)
	if err := r.v.Err(); err != nil {
		return Result{}, err
	}
	if p, ok := r.cat.Program(cmd.Program); ok && p.MaxLoanRials > 0 && cmd.RequestedRials > p.MaxLoanRials {
		var v domain.Validator
		v.Add("requested_rials", "over_program_cap",
			fmt.Sprintf("%d rials exceeds the program's cap of %d rials", cmd.RequestedRials, p.MaxLoanRials),
			fmt.Sprintf("%d ریال بیش از سقف %d ریال این برنامه است", cmd.RequestedRials, p.MaxLoanRials))
		return Result{}, v.Err()
	}
	cmd.Applicant.NationalID = nid

	// A retry of a registration already done is answered with its outcome
	// before anything is judged against the state it produced.
	fstream := facility.Stream(cmd.FacilityID)
	history, version, err := s.ledger.Load(ctx, fstream)
	if err != nil {
		return Result{}, err
	}
	if res, ok := replayed(fstream, history, meta.IdempotencyKey); ok {
		return res, nil
	}
	f := facility.Decider().Fold(recordedOf(history))
	// The precondition runs before the claim, so a refused registration
	// claims nothing.
	if meta.Check != nil {
		if err := meta.Check(f, version); err != nil {
			return Result{}, err
		}
	}

	ref := applicant.RefOf(s.pseudonymKey, nid)
	stream := applicant.StreamFor(ref)
	state, _, err := State(ctx, s.ledger, stream, applicant.Decider(), nil)
	if err != nil {
		return Result{}, err
	}
	keyID := state.KeyID(ref)
	key, err := s.vault.Key(ctx, keyID, true)
	if err != nil {
		return Result{}, fmt.Errorf("ledger: applicant key: %w", err)
	}
	sealed, err := applicant.Seal(key, cmd.Applicant, ref, keyID)
	clear(key)
	if err != nil {
		return Result{}, err
	}
	cmd.Register.Applicant = facility.Applicant{Ref: sealed.Ref, KeyID: sealed.KeyID, Ciphertext: sealed.Ciphertext}

	// Judge the registration itself (its fields, and a facility ID already
	// taken) before claiming anything, so that a refusal leaves no claim
	// behind; Execute judges it again under the stream's lock.
	if _, err := facility.Decide(f, cmd.Register); err != nil {
		return Result{}, err
	}
	claimMeta := meta
	claimMeta.Check = nil
	if meta.IdempotencyKey != "" {
		claimMeta.IdempotencyKey = meta.IdempotencyKey + "/claim"
	}
	claim, err := Execute(ctx, s.ledger, stream, applicant.Decider(), applicant.Command(applicant.ClaimFacility{
		FacilityID: cmd.FacilityID, FiscalYear: calendar.FiscalYear(cmd.FiscalYear), Program: cmd.Program,
	}), claimMeta)
	if err != nil {
		return Result{}, err
	}
	res, err := Execute(ctx, s.ledger, fstream, facility.Decider(), facility.Command(cmd.Register), meta)
	if err != nil && len(claim.EventIDs) > 0 && !claim.Duplicate {
		compensate(claim, meta, func(m Meta) error {
			_, err := Execute(ctx, s.ledger, stream, applicant.Decider(), applicant.Command(applicant.ReleaseFacility{
				FacilityID: cmd.FacilityID, Reason: "registration refused: " + err.Error(),
			}), m)
			return err
		})
	}
	return res, err
}

// ApproveLoan charges the facility's quota account and records the bank's
// approval. When the command names no account, the county's account is used
// if the ledger has one, else the province's. meta.Check runs on the
// facility before the charge, and again when the approval is appended.
func (s *Service) ApproveLoan(ctx context.Context, cmd facility.ApproveLoan, meta Meta) (Result, error) {
	if res, ok, err := s.ledger.Replayed(ctx, facility.Stream(cmd.FacilityID), meta.IdempotencyKey); err != nil || ok {
		return res, err
	}
	f, version, err := State(ctx, s.ledger, facility.Stream(cmd.FacilityID), facility.Decider(), nil)
	if err != nil {
		return Result{}, err
	}
	// The precondition runs before the charge, so a refused approval
	// charges nothing; Execute runs it again on the state it decides on.
	if meta.Check != nil {
		if err := meta.Check(f, version); err != nil {
			return Result{}, err
		}
	}
	if !f.Exists() {
		return Result{}, &domain.NotFoundError{Kind: "facility", ID: cmd.FacilityID}
	}
	qstream := quota.Stream(f.FiscalYear(), f.Program())
	if cmd.QuotaAccount == "" {
		ql, _, err := State(ctx, s.ledger, qstream, quota.Decider(), nil)
		if err != nil {
			return Result{}, err
		}
		cmd.QuotaAccount = pickAccount(ql, f)
	}
	// Let the facility decider judge the approval first, so an illegal
	// approval never charges quota.
	if _, err := facility.Decide(f, cmd); err != nil {
		return Result{}, err
	}
	key, err := quota.ParseAccountKey(cmd.QuotaAccount)
	if err != nil {
		return Result{}, err
	}
	chargeMeta := meta
	chargeMeta.Check = nil
	if meta.IdempotencyKey != "" {
		chargeMeta.IdempotencyKey = meta.IdempotencyKey + "/charge"
	}
	charge, err := Execute(ctx, s.ledger, qstream, quota.Decider(), quota.Command(quota.Charge{
		FiscalYear: f.FiscalYear(), Program: f.Program(), Account: key,
		FacilityID: cmd.FacilityID, AmountRials: cmd.AmountRials, At: cmd.At,
	}), chargeMeta)
	if err != nil {
		return Result{}, err
	}
	res, err := Execute(ctx, s.ledger, facility.Stream(cmd.FacilityID), facility.Decider(), facility.Command(cmd), meta)
	if err != nil && len(charge.EventIDs) > 0 && !charge.Duplicate {
		compensate(charge, meta, func(m Meta) error {
			_, err := Execute(ctx, s.ledger, qstream, quota.Decider(), quota.Command(quota.ReleaseCharge{
				FiscalYear: f.FiscalYear(), Program: f.Program(), FacilityID: cmd.FacilityID,
				AmountRials: cmd.AmountRials, Reason: "approval refused: " + err.Error(), At: cmd.At,
			}), m)
			return err
		})
	}
	return res, err
}

// pickAccount chooses the quota account an approval charges.
func pickAccount(ql quota.Ledger, f facility.Facility) string {
	if f.County() != "" {
		k := quota.AccountKey{Agency: f.Agency(), Province: f.Province(), County: f.County()}
		if _, ok := ql.Account(k); ok {
			return k.String()
		}
	}
	return quota.AccountKey{Agency: f.Agency(), Province: f.Province()}.String()
}

// CloseFacility closes a facility and releases the part of its quota charge
// that was approved but never paid out, so the money returns to the pool.
func (s *Service) CloseFacility(ctx context.Context, cmd facility.Close, meta Meta) (Result, error) {
	res, err := Execute(ctx, s.ledger, facility.Stream(cmd.FacilityID), facility.Decider(), facility.Command(cmd), meta)
	if err != nil {
		return res, err
	}
	f, _, err := State(ctx, s.ledger, facility.Stream(cmd.FacilityID), facility.Decider(), nil)
	if err != nil {
		return res, err
	}
	if f.UndisbursedRials() <= 0 || f.QuotaAccount() == "" {
		return res, nil
	}
	releaseMeta := meta
	releaseMeta.Check = nil
	if meta.IdempotencyKey != "" {
		releaseMeta.IdempotencyKey = meta.IdempotencyKey + "/release"
	}
	_, err = Execute(ctx, s.ledger, quota.Stream(f.FiscalYear(), f.Program()), quota.Decider(), quota.Command(quota.ReleaseCharge{
		FiscalYear: f.FiscalYear(), Program: f.Program(), FacilityID: cmd.FacilityID,
		AmountRials: f.UndisbursedRials(), Reason: "facility closed: " + cmd.Reason, At: cmd.At,
	}), releaseMeta)
	return res, err
}

// Facility executes a single-aggregate facility command after checking the
// references it names. Registration, approval and closing have their own
// methods because they touch other aggregates; passing them here is refused.
func (s *Service) Facility(ctx context.Context, cmd facility.Command, meta Meta) (Result, error) {
	r, err := s.refs(ctx)
	if err != nil {
		return Result{}, err
	}
	switch c := cmd.(type) {
	case facility.Register, facility.ApproveLoan, facility.Close:
		return Result{}, fmt.Errorf("ledger: %T spans aggregates: use its Service method", cmd)
	case facility.Review:
		r.check(reference.KindBank, "bank", c.Bank)
	case facility.RejectLoan:
		r.check(reference.KindBank, "bank", c.Bank)
	case facility.DisburseTranche:
		r.check(reference.KindBank, "bank", c.Bank)
	case facility.RecordInspection:
		r.check(reference.KindFirm, "firm", c.Firm)
	}
	if err := r.v.Err(); err != nil {
		return Result{}, err
	}
	return Execute(ctx, s.ledger, facility.Stream(cmd.Target()), facility.Decider(), cmd, meta)
}

// Quota executes a quota-ledger command after checking its references.
func (s *Service) Quota(ctx context.Context, cmd quota.Command, meta Meta) (Result, error) {
	r, err := s.refs(ctx)
	if err != nil {
		return Result{}, err
	}
	fy, program := cmd.Target()
	r.check(reference.KindProgram, "program", program)
	switch c := cmd.(type) {
	case quota.Allocate:
		r.account("account", c.Account)
	case quota.Transfer:
		r.account("from", c.From)
		r.account("to", c.To)
	case quota.Charge:
		r.account("account", c.Account)
	case quota.ProposeReallocation:
		for i, ln := range c.Lines {
			r.account(fmt.Sprintf("lines[%d].from", i), ln.From)
			r.account(fmt.Sprintf("lines[%d].to", i), ln.To)
		}
	}
	if err := r.v.Err(); err != nil {
		return Result{}, err
	}
	return Execute(ctx, s.ledger, quota.Stream(fy, program), quota.Decider(), cmd, meta)
}

// compensate records the undoing of a step whose follow-up was refused,
// caused by the step's first event. Its own failure is not returned (the
// refusal is the error that matters to the caller); the first step then
// stays in the log, visible, until a retry of the command with the same
// idempotency key finds it done and completes or compensates it again.
func compensate(first Result, meta Meta, undo func(Meta) error) {
	m := meta
	m.IdempotencyKey, m.Check = "", nil
	m.CausationID = first.EventIDs[0]
	_ = undo(m)
}
