package applicant

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
)

// Claim is one facility's claim on an applicant.
type Claim struct {
	FacilityID string
	FiscalYear calendar.FiscalYear
	Program    string
	Open       bool // false once released
}

// State is what the duplicate check knows about one applicant: the claims
// of its facilities and the data keys erased so far. The zero value is a new
// applicant. Evolve copies what it changes, so a State is never modified
// after it was returned.
type State struct {
	claims map[string]Claim
	erased []string // key IDs, in order of erasure
}

// Claim returns the claim of one facility, open or released.
func (s State) Claim(facilityID string) (Claim, bool) {
	c, ok := s.claims[facilityID]
	return c, ok
}

// OpenClaims returns the open claims sorted by facility ID.
func (s State) OpenClaims() []Claim {
	var out []Claim
	for _, id := range slices.Sorted(maps.Keys(s.claims)) {
		if c := s.claims[id]; c.Open {
			out = append(out, c)
		}
	}
	return out
}

// KeyGeneration returns the generation of the applicant's current data key:
// 1 for a new applicant, one more after each erasure.
func (s State) KeyGeneration() int { return len(s.erased) + 1 }

// KeyID returns the ID of the data key under which new personal data of the
// applicant with this ref is sealed.
func (s State) KeyID(ref string) string { return KeyIDFor(ref, s.KeyGeneration()) }

// Erased returns the IDs of the data keys erased so far, oldest first.
func (s State) Erased() []string { return slices.Clone(s.erased) }

// Command is a request to the duplicate check: ClaimFacility,
// ReleaseFacility or Erase.
type Command interface{ applicantCommand() }

// ClaimFacility asks for the applicant's slot for a programme in a fiscal
// year on behalf of a facility. Claiming again for the same facility, year
// and programme is a no-op, so retries are safe.
type ClaimFacility struct {
	FacilityID string
	FiscalYear calendar.FiscalYear
	Program    string // programme ID from the reference catalogue
}

// ReleaseFacility gives a facility's claim up. Releasing a claim that is
// already released is a no-op.
type ReleaseFacility struct {
	FacilityID string
	Reason     string // why, such as "rejected by the bank"; required
}

// Erase records the erasure of the applicant's current data key. KeyID must
// be the current key, State.KeyID(Ref); naming a key that is already erased
// is a no-op, so retries do not erase the next generation by accident.
type Erase struct {
	Ref    string // the applicant's Ref, needed to name the current key
	KeyID  string // the key to erase
	Reason string // legal basis or request reference; required
}

func (ClaimFacility) applicantCommand()   {}
func (ReleaseFacility) applicantCommand() {}
func (Erase) applicantCommand()           {}

// Limits on free text and identifiers.
const (
	maxReasonRunes     = 500
	maxFacilityIDRunes = 100
)

// programPattern is the reference package's slug pattern for programme IDs;
// compiled regular expressions are immutable.
var programPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// Decider returns the duplicate-applicant aggregate, one instance per
// applicant stream (StreamFor).
//
// The rule: an applicant holds at most one open claim per fiscal year and
// programme; a second facility is refused with a *domain.ConflictError whose
// reason, in English and Persian, names the facility that holds the slot.
// Releasing an unknown claim is a *domain.NotFoundError. Malformed commands
// are *domain.ValidationError.
//
// Erasure does not block new claims: an applicant whose data was erased may
// apply again. The new application's personal data is sealed under the next
// key generation (State.KeyID), because an erased key can never be
// recreated. Existing claims stay, as they hold no personal data.
func Decider() domain.Decider[State, Command] {
	return domain.Decider[State, Command]{
		Initial: func() State { return State{} },
		Decide:  decide,
		Evolve:  evolve,
	}
}

func decide(s State, cmd Command) ([]domain.Event, error) {
	switch cmd := cmd.(type) {
	case ClaimFacility:
		return claim(s, cmd)
	case ReleaseFacility:
		return release(s, cmd)
	case Erase:
		return erase(s, cmd)
	default:
		return nil, fmt.Errorf("applicant: unknown command %T: %w", cmd, domain.ErrInvalid)
	}
}

func claim(s State, cmd ClaimFacility) ([]domain.Event, error) {
	var v domain.Validator
	checkFacilityID(&v, cmd.FacilityID)
	if err := cmd.FiscalYear.Validate(); err != nil {
		v.Add("fiscal_year", "out_of_range",
			fmt.Sprintf("fiscal year %d is outside %d..%d", int(cmd.FiscalYear), calendar.MinFiscalYear, calendar.MaxFiscalYear),
			calendar.PersianDigits(fmt.Sprintf("سال مالی %d خارج از بازهٔ %d تا %d است", int(cmd.FiscalYear), calendar.MinFiscalYear, calendar.MaxFiscalYear)))
	}
	v.Check(programPattern.MatchString(cmd.Program), "program", "format",
		fmt.Sprintf("programme ID %q is not a lowercase slug such as home-business", cmd.Program),
		fmt.Sprintf("شناسهٔ برنامه %q معتبر نیست (نمونه: home-business)", cmd.Program))
	if err := v.Err(); err != nil {
		return nil, err
	}

	if c, ok := s.claims[cmd.FacilityID]; ok && c.Open {
		if c.FiscalYear == cmd.FiscalYear && c.Program == cmd.Program {
			return nil, nil
		}
		return nil, &domain.ConflictError{
			Reason: fmt.Sprintf("facility %s already holds a claim for programme %s in fiscal year %d; release it before claiming another",
				c.FacilityID, c.Program, int(c.FiscalYear)),
			ReasonFa: calendar.PersianDigits(fmt.Sprintf("طرح %s پیش‌تر برای برنامهٔ %s در سال مالی %d ثبت شده است؛ پیش از ثبت دوباره آن را آزاد کنید",
				c.FacilityID, c.Program, int(c.FiscalYear))),
		}
	}
	for _, c := range s.OpenClaims() {
		if c.FiscalYear == cmd.FiscalYear && c.Program == cmd.Program {
			return nil, &domain.ConflictError{
				Reason: fmt.Sprintf("applicant already has an open facility (%s) under programme %s in fiscal year %d; one per programme and year is allowed",
					c.FacilityID, c.Program, int(c.FiscalYear)),
				ReasonFa: calendar.PersianDigits(fmt.Sprintf("متقاضی در سال مالی %d برای برنامهٔ %s یک طرح باز دیگر (%s) دارد؛ در هر سال برای هر برنامه فقط یک طرح مجاز است",
					int(c.FiscalYear), c.Program, c.FacilityID)),
			}
		}
	}
	return []domain.Event{Claimed(cmd)}, nil
}

func release(s State, cmd ReleaseFacility) ([]domain.Event, error) {
	reason := strings.TrimSpace(cmd.Reason)
	var v domain.Validator
	checkFacilityID(&v, cmd.FacilityID)
	checkReason(&v, reason)
	if err := v.Err(); err != nil {
		return nil, err
	}
	c, ok := s.claims[cmd.FacilityID]
	if !ok {
		return nil, &domain.NotFoundError{Kind: "claim", ID: cmd.FacilityID}
	}
	if !c.Open {
		return nil, nil
	}
	return []domain.Event{Released{FacilityID: cmd.FacilityID, Reason: reason}}, nil
}

func erase(s State, cmd Erase) ([]domain.Event, error) {
	reason := strings.TrimSpace(cmd.Reason)
	var v domain.Validator
	v.Check(ValidRef(cmd.Ref), "ref", "format",
		"ref must be 64 lowercase hex digits", "شناسهٔ مستعار باید ۶۴ رقم شانزده‌دهی با حروف کوچک باشد")
	v.Check(cmd.KeyID != "", "key_id", "required", "key ID is required", "شناسهٔ کلید الزامی است")
	checkReason(&v, reason)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if slices.Contains(s.erased, cmd.KeyID) {
		return nil, nil
	}
	if cmd.KeyID != s.KeyID(cmd.Ref) {
		return nil, &domain.NotFoundError{Kind: "applicant key", ID: cmd.KeyID}
	}
	return []domain.Event{Erased{KeyID: cmd.KeyID, Reason: reason}}, nil
}

func evolve(s State, r domain.Recorded) State {
	switch e := r.Event.(type) {
	case Claimed:
		s.claims = withClaim(s.claims, Claim{FacilityID: e.FacilityID, FiscalYear: e.FiscalYear, Program: e.Program, Open: true})
	case Released:
		if c, ok := s.claims[e.FacilityID]; ok {
			c.Open = false
			s.claims = withClaim(s.claims, c)
		}
	case Erased:
		if !slices.Contains(s.erased, e.KeyID) {
			s.erased = append(slices.Clip(s.erased), e.KeyID)
		}
	}
	return s
}

// withClaim returns a copy of m with c stored; m is not changed.
func withClaim(m map[string]Claim, c Claim) map[string]Claim {
	out := make(map[string]Claim, len(m)+1)
	maps.Copy(out, m)
	out[c.FacilityID] = c
	return out
}

func checkFacilityID(v *domain.Validator, id string) {
	switch {
	case strings.TrimSpace(id) == "":
		v.Add("facility_id", "required", "facility ID is required", "شناسهٔ طرح الزامی است")
	case id != strings.TrimSpace(id) || utf8.RuneCountInString(id) > maxFacilityIDRunes:
		v.Add("facility_id", "format",
			fmt.Sprintf("facility ID must be at most %d characters without surrounding spaces", maxFacilityIDRunes),
			calendar.PersianDigits(fmt.Sprintf("شناسهٔ طرح باید حداکثر %d نویسه و بدون فاصلهٔ اضافه باشد", maxFacilityIDRunes)))
	}
}

func checkReason(v *domain.Validator, reason string) {
	switch {
	case reason == "":
		v.Add("reason", "required", "reason is required", "ذکر دلیل الزامی است")
	case utf8.RuneCountInString(reason) > maxReasonRunes:
		v.Add("reason", "too_long",
			fmt.Sprintf("reason is longer than %d characters", maxReasonRunes),
			calendar.PersianDigits(fmt.Sprintf("دلیل بیش از %d نویسه است", maxReasonRunes)))
	}
}
