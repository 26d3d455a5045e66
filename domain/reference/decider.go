package reference

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/payesh/payesh/domain"
)

// Command is a request to change the catalogue: AddAgency, AddBank,
// AddProgram, AddCounty, AddFirm or Rename. The interface is closed so that
// Decide can be exhaustive.
type Command interface{ referenceCommand() }

// AddAgency adds an executive agency.
type AddAgency struct {
	ID        string    // lowercase slug, such as "relief-committee"
	NameEn    string    // English name
	NameFa    string    // Persian name
	ValidFrom time.Time // when the agency exists from
}

// AddBank adds an operating bank.
type AddBank struct {
	ID        string    // lowercase slug, such as "keshavarzi"
	NameEn    string    // English name
	NameFa    string    // Persian name
	ValidFrom time.Time // when the bank exists from
}

// AddProgram adds a facility programme.
type AddProgram struct {
	ID           string    // lowercase slug, such as "home-business"
	NameEn       string    // English name
	NameFa       string    // Persian name
	Note         string    // legal basis and terms, optional
	MaxLoanRials int64     // per-applicant cap; zero for none
	ValidFrom    time.Time // when the programme exists from
}

// AddCounty adds a county to a province.
type AddCounty struct {
	ID        string    // province code and slug, such as "IR-23-pardis"
	Province  string    // province code; must match the ID's prefix
	NameEn    string    // English name
	NameFa    string    // Persian name
	ValidFrom time.Time // when the county exists from, e.g. the date of a split
}

// AddFirm adds an inspection firm.
type AddFirm struct {
	ID           string    // lowercase slug
	NameEn       string    // English name
	NameFa       string    // Persian name
	SeatProvince string    // province code of the firm's seat
	ValidFrom    time.Time // when the firm's contract starts
}

// Rename gives an existing entity new names from ValidFrom on. Renaming to
// the current names is a no-op, so retries are safe.
type Rename struct {
	Kind      Kind
	ID        string
	NameEn    string
	NameFa    string
	ValidFrom time.Time // must not be earlier than the current names' ValidFrom
}

func (AddAgency) referenceCommand()  {}
func (AddBank) referenceCommand()    {}
func (AddProgram) referenceCommand() {}
func (AddCounty) referenceCommand()  {}
func (AddFirm) referenceCommand()    {}
func (Rename) referenceCommand()     {}

// Limits on free text, generous for real names but small enough to keep
// garbage out of the log.
const (
	maxNameRunes = 200
	maxNoteRunes = 1000
)

// Identifier patterns. Compiled regular expressions are immutable and safe
// for concurrent use.
var (
	slugPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)
	countyPattern   = regexp.MustCompile(`^(IR-[0-9]{2})-[a-z0-9][a-z0-9-]{1,56}$`)
	provincePattern = regexp.MustCompile(`^IR-[0-9]{2}$`)
)

// Decider returns the catalogue aggregate. Its Initial state is the empty
// catalogue; the ledger's first events are DefaultEvents.
//
// Decide refuses with a *domain.ValidationError a malformed command (bad
// slug, missing name, zero ValidFrom, negative cap), with a
// *domain.ConflictError an ID that already exists, and with a
// *domain.NotFoundError a county or firm in an unknown province or the
// rename of a missing entity.
func Decider() domain.Decider[Catalog, Command] {
	return domain.Decider[Catalog, Command]{
		Initial: func() Catalog { return Catalog{} },
		Decide:  decide,
		Evolve:  evolve,
	}
}

func decide(c Catalog, cmd Command) ([]domain.Event, error) {
	switch cmd := cmd.(type) {
	case AddAgency:
		e := AgencyAdded{ID: cmd.ID, NameEn: strings.TrimSpace(cmd.NameEn), NameFa: strings.TrimSpace(cmd.NameFa), ValidFrom: cmd.ValidFrom.UTC()}
		var v domain.Validator
		checkSlug(&v, e.ID)
		checkNames(&v, e.NameEn, e.NameFa)
		checkValidFrom(&v, e.ValidFrom)
		return add(c, KindAgency, e.ID, v, e)
	case AddBank:
		e := BankAdded{ID: cmd.ID, NameEn: strings.TrimSpace(cmd.NameEn), NameFa: strings.TrimSpace(cmd.NameFa), ValidFrom: cmd.ValidFrom.UTC()}
		var v domain.Validator
		checkSlug(&v, e.ID)
		checkNames(&v, e.NameEn, e.NameFa)
		checkValidFrom(&v, e.ValidFrom)
		return add(c, KindBank, e.ID, v, e)
	case AddProgram:
		e := ProgramAdded{ID: cmd.ID, NameEn: strings.TrimSpace(cmd.NameEn), NameFa: strings.TrimSpace(cmd.NameFa),
			Note: strings.TrimSpace(cmd.Note), MaxLoanRials: cmd.MaxLoanRials, ValidFrom: cmd.ValidFrom.UTC()}
		var v domain.Validator
		checkSlug(&v, e.ID)
		checkNames(&v, e.NameEn, e.NameFa)
		v.Check(utf8.RuneCountInString(e.Note) <= maxNoteRunes, "note", "too_long",
			fmt.Sprintf("note is longer than %d characters", maxNoteRunes),
			fmt.Sprintf("یادداشت بیش از %d نویسه است", maxNoteRunes))
		v.Check(e.MaxLoanRials >= 0, "max_loan_rials", "negative",
			"maximum loan cannot be negative (use 0 for no cap)",
			"سقف تسهیلات نمی‌تواند منفی باشد (برای نبود سقف ۰ وارد کنید)")
		checkValidFrom(&v, e.ValidFrom)
		return add(c, KindProgram, e.ID, v, e)
	case AddCounty:
		e := CountyAdded{ID: cmd.ID, Province: cmd.Province, NameEn: strings.TrimSpace(cmd.NameEn), NameFa: strings.TrimSpace(cmd.NameFa), ValidFrom: cmd.ValidFrom.UTC()}
		var v domain.Validator
		checkProvinceCode(&v, "province", e.Province)
		if m := countyPattern.FindStringSubmatch(e.ID); m == nil {
			v.Add("id", "format",
				fmt.Sprintf("county ID %q must be the province code and a lowercase slug, such as IR-23-pardis", e.ID),
				fmt.Sprintf("شناسهٔ شهرستان %q باید کد استان و یک نام کوتاه لاتین با حروف کوچک باشد، مانند IR-23-pardis", e.ID))
		} else {
			v.Check(m[1] == e.Province, "id", "province_mismatch",
				fmt.Sprintf("county ID %q does not start with its province code %q", e.ID, e.Province),
				fmt.Sprintf("شناسهٔ شهرستان %q با کد استان %q شروع نمی‌شود", e.ID, e.Province))
		}
		checkNames(&v, e.NameEn, e.NameFa)
		checkValidFrom(&v, e.ValidFrom)
		if err := v.Err(); err != nil {
			return nil, err
		}
		if err := provinceExists(e.Province); err != nil {
			return nil, err
		}
		return add(c, KindCounty, e.ID, v, e)
	case AddFirm:
		e := FirmAdded{ID: cmd.ID, NameEn: strings.TrimSpace(cmd.NameEn), NameFa: strings.TrimSpace(cmd.NameFa), SeatProvince: cmd.SeatProvince, ValidFrom: cmd.ValidFrom.UTC()}
		var v domain.Validator
		checkSlug(&v, e.ID)
		checkNames(&v, e.NameEn, e.NameFa)
		checkProvinceCode(&v, "seat_province", e.SeatProvince)
		checkValidFrom(&v, e.ValidFrom)
		if err := v.Err(); err != nil {
			return nil, err
		}
		if err := provinceExists(e.SeatProvince); err != nil {
			return nil, err
		}
		return add(c, KindFirm, e.ID, v, e)
	case Rename:
		return rename(c, cmd)
	default:
		return nil, fmt.Errorf("reference: unknown command %T: %w", cmd, domain.ErrInvalid)
	}
}

// add returns e if the validator is clean and no entity of kind has id yet.
func add(c Catalog, kind Kind, id string, v domain.Validator, e domain.Event) ([]domain.Event, error) {
	if err := v.Err(); err != nil {
		return nil, err
	}
	if c.Has(kind, id) {
		return nil, &domain.ConflictError{
			Reason:   fmt.Sprintf("%s %q already exists", kind, id),
			ReasonFa: fmt.Sprintf("%s با شناسهٔ %q از قبل وجود دارد", kind.persian(), id),
		}
	}
	return []domain.Event{e}, nil
}

func rename(c Catalog, cmd Rename) ([]domain.Event, error) {
	e := EntityRenamed{Kind: cmd.Kind, ID: cmd.ID, NameEn: strings.TrimSpace(cmd.NameEn), NameFa: strings.TrimSpace(cmd.NameFa), ValidFrom: cmd.ValidFrom.UTC()}
	var v domain.Validator
	v.Check(e.Kind.valid(), "kind", "unknown",
		fmt.Sprintf("kind %q is not one of agency, bank, program, county, firm (provinces cannot be renamed)", e.Kind),
		fmt.Sprintf("نوع %q معتبر نیست؛ انواع مجاز: agency، bank، program، county، firm (استان‌ها تغییر نام نمی‌دهند)", e.Kind))
	checkNames(&v, e.NameEn, e.NameFa)
	checkValidFrom(&v, e.ValidFrom)
	if err := v.Err(); err != nil {
		return nil, err
	}
	en, fa, ok := c.names(e.Kind, e.ID)
	if !ok {
		return nil, &domain.NotFoundError{Kind: string(e.Kind), ID: e.ID}
	}
	if en == e.NameEn && fa == e.NameFa {
		return nil, nil
	}
	if from := c.validFrom(e.Kind, e.ID); e.ValidFrom.Before(from) {
		v.Add("valid_from", "before_current",
			fmt.Sprintf("new names cannot take effect before the current ones (%s)", from.Format(time.RFC3339)),
			fmt.Sprintf("نام جدید نمی‌تواند پیش از نام فعلی (%s) اعتبار یابد", from.Format(time.RFC3339)))
		return nil, v.Err()
	}
	return []domain.Event{e}, nil
}

// validFrom returns when the entity's current names took effect.
func (c Catalog) validFrom(kind Kind, id string) time.Time {
	switch kind {
	case KindAgency:
		return c.agencies[id].ValidFrom
	case KindBank:
		return c.banks[id].ValidFrom
	case KindProgram:
		return c.programs[id].ValidFrom
	case KindCounty:
		return c.counties[id].ValidFrom
	case KindFirm:
		return c.firms[id].ValidFrom
	default:
		return time.Time{}
	}
}

func evolve(c Catalog, r domain.Recorded) Catalog {
	switch e := r.Event.(type) {
	case AgencyAdded:
		c.agencies = with(c.agencies, e.ID, Agency(e))
	case BankAdded:
		c.banks = with(c.banks, e.ID, Bank(e))
	case ProgramAdded:
		c.programs = with(c.programs, e.ID, Program(e))
	case CountyAdded:
		c.counties = with(c.counties, e.ID, County(e))
	case FirmAdded:
		c.firms = with(c.firms, e.ID, Firm(e))
	case EntityRenamed:
		switch e.Kind {
		case KindAgency:
			if x, ok := c.agencies[e.ID]; ok {
				x.NameEn, x.NameFa, x.ValidFrom = e.NameEn, e.NameFa, e.ValidFrom
				c.agencies = with(c.agencies, e.ID, x)
			}
		case KindBank:
			if x, ok := c.banks[e.ID]; ok {
				x.NameEn, x.NameFa, x.ValidFrom = e.NameEn, e.NameFa, e.ValidFrom
				c.banks = with(c.banks, e.ID, x)
			}
		case KindProgram:
			if x, ok := c.programs[e.ID]; ok {
				x.NameEn, x.NameFa, x.ValidFrom = e.NameEn, e.NameFa, e.ValidFrom
				c.programs = with(c.programs, e.ID, x)
			}
		case KindCounty:
			if x, ok := c.counties[e.ID]; ok {
				x.NameEn, x.NameFa, x.ValidFrom = e.NameEn, e.NameFa, e.ValidFrom
				c.counties = with(c.counties, e.ID, x)
			}
		case KindFirm:
			if x, ok := c.firms[e.ID]; ok {
				x.NameEn, x.NameFa, x.ValidFrom = e.NameEn, e.NameFa, e.ValidFrom
				c.firms = with(c.firms, e.ID, x)
			}
		}
	}
	return c
}

func checkSlug(v *domain.Validator, id string) {
	v.Check(slugPattern.MatchString(id), "id", "format",
		fmt.Sprintf("ID %q must be a lowercase slug of 2 to 63 characters: a-z, 0-9 and hyphens, not starting with a hyphen", id),
		fmt.Sprintf("شناسهٔ %q باید ۲ تا ۶۳ نویسهٔ لاتین کوچک، رقم یا خط تیره باشد و با خط تیره شروع نشود", id))
}

func checkNames(v *domain.Validator, en, fa string) {
	checkName(v, "name_en", "English name", "نام انگلیسی", en)
	checkName(v, "name_fa", "Persian name", "نام فارسی", fa)
	if fa != "" && !strings.ContainsFunc(fa, func(r rune) bool { return unicode.Is(unicode.Arabic, r) }) {
		v.Add("name_fa", "not_persian",
			"Persian name contains no Persian letters; were the names swapped?",
			"نام فارسی هیچ حرف فارسی ندارد؛ آیا جای نام‌ها عوض شده است؟")
	}
}

func checkName(v *domain.Validator, field, en, fa, value string) {
	switch {
	case value == "":
		v.Add(field, "required", en+" is required", fa+" الزامی است")
	case utf8.RuneCountInString(value) > maxNameRunes:
		v.Add(field, "too_long",
			fmt.Sprintf("%s is longer than %d characters", en, maxNameRunes),
			fmt.Sprintf("%s بیش از %d نویسه است", fa, maxNameRunes))
	case strings.ContainsFunc(value, unicode.IsControl):
		v.Add(field, "control_character", en+" contains control characters", fa+" نویسهٔ کنترلی دارد")
	}
}

func checkValidFrom(v *domain.Validator, t time.Time) {
	v.Check(!t.IsZero(), "valid_from", "required",
		"valid-from date is required", "تاریخ شروع اعتبار الزامی است")
}

func checkProvinceCode(v *domain.Validator, field, code string) {
	v.Check(provincePattern.MatchString(code), field, "format",
		fmt.Sprintf("province code %q must look like IR-00", code),
		fmt.Sprintf("کد استان %q باید به شکل IR-00 باشد", code))
}

// provinceExists returns a *domain.NotFoundError for a well-formed but
// unknown province code.
func provinceExists(code string) error {
	if _, ok := ProvinceByCode(code); !ok {
		return &domain.NotFoundError{Kind: "province", ID: code}
	}
	return nil
}
