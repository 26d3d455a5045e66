// Package reference holds the ledger's reference data: provinces, executive
// agencies, operating banks, programmes, counties and inspection firms.
//
// Provinces are fixed by law and compiled in (Provinces). Everything else can
// change (counties split, agencies are renamed, new firms are contracted), so
// it is event-sourced in one stream, Stream, as a small catalogue aggregate:
// DefaultEvents seeds an empty ledger, Decider accepts administrators'
// commands, and Catalog answers look-ups. Every entity carries the date from
// which it is valid, so reports about earlier years can tell what existed
// then.
package reference

import "time"

// Stream is the name of the single stream that holds every reference-data
// event. The catalogue is small (hundreds of entities) and changes rarely, so
// one stream gives a total order and one optimistic-concurrency check.
const Stream = "reference"

// Kind names a kind of event-sourced reference entity. It appears in
// EntityRenamed events and in NotFoundError.Kind, so its values are stable.
type Kind string

// The kinds of entities the catalogue holds. Provinces are not among them:
// they are fixed and cannot be added or renamed.
const (
	KindAgency  Kind = "agency"
	KindBank    Kind = "bank"
	KindProgram Kind = "program"
	KindCounty  Kind = "county"
	KindFirm    Kind = "firm"
)

// Kinds lists every Kind in a stable order, for validation messages and
// exhaustive tests.
func Kinds() []Kind {
	return []Kind{KindAgency, KindBank, KindProgram, KindCounty, KindFirm}
}

// valid reports whether k is one of Kinds.
func (k Kind) valid() bool {
	for _, x := range Kinds() {
		if k == x {
			return true
		}
	}
	return false
}

// persian is the Persian word for the kind, used in Persian messages.
func (k Kind) persian() string {
	switch k {
	case KindAgency:
		return "دستگاه اجرایی"
	case KindBank:
		return "بانک عامل"
	case KindProgram:
		return "برنامه"
	case KindCounty:
		return "شهرستان"
	case KindFirm:
		return "شرکت مشاوره"
	default:
		return string(k)
	}
}

// Province is one of Iran's 31 provinces (استان). Code is the ISO 3166-2:IR
// code of the current scheme (see Provinces for the caveat about older
// numbering) and the key every other record uses.
type Province struct {
	Code          string `json:"code"`           // "IR-00" … "IR-30"
	SciOrder      int    `json:"sci_order"`      // Statistical Centre of Iran order, 0-based
	NameEn        string `json:"name_en"`        // English name
	NameFa        string `json:"name_fa"`        // Persian name
	CapitalEn     string `json:"capital_en"`     // capital city, English
	CapitalFa     string `json:"capital_fa"`     // capital city, Persian
	CapitalCounty string `json:"capital_county"` // ID of the capital's county in the default catalogue
}

// Provinces returns the 31 provinces in the Statistical Centre of Iran's
// order, which is also code order. The codes are those of
// /work/shared/data/provinces.csv (IR-00 Markazi … IR-30 Alborz). Some
// libraries and older data sets use the earlier ISO 3166-2:IR numbering, in
// which the same codes name other provinces; such data must be mapped by
// name, never by code. The slice is a fresh copy on every call.
func Provinces() []Province { return provinceTable() }

// ProvinceByCode looks a province up by its code, such as "IR-23" for Tehran.
func ProvinceByCode(code string) (Province, bool) {
	for _, p := range provinceTable() {
		if p.Code == code {
			return p, true
		}
	}
	return Province{}, false
}

// Agency is an executive agency (دستگاه اجرایی) that reviews plans and owns
// quota.
type Agency struct {
	ID        string    `json:"id"`
	NameEn    string    `json:"name_en"`
	NameFa    string    `json:"name_fa"`
	ValidFrom time.Time `json:"valid_from"` // when the current names took effect
}

// Bank is an operating bank (بانک عامل) that approves and disburses loans.
type Bank struct {
	ID        string    `json:"id"`
	NameEn    string    `json:"name_en"`
	NameFa    string    `json:"name_fa"`
	ValidFrom time.Time `json:"valid_from"` // when the current names took effect
}

// Program is a facility programme, such as home-based businesses, under which
// plans are registered and quotas are allocated.
type Program struct {
	ID     string `json:"id"`
	NameEn string `json:"name_en"`
	NameFa string `json:"name_fa"`
	Note   string `json:"note"` // legal basis and terms, free text
	// MaxLoanRials caps the loan one applicant may receive under the
	// programme. Zero means the reference data states no cap; it does not
	// mean loans must be zero.
	MaxLoanRials int64     `json:"max_loan_rials"`
	ValidFrom    time.Time `json:"valid_from"` // when the current names took effect
}

// County is a county (شهرستان) within a province. Counties split often, so
// administrators add them with the date from which they exist. Its ID is the
// province code followed by a slug, such as "IR-00-arak".
type County struct {
	ID        string    `json:"id"`
	Province  string    `json:"province"` // province code
	NameEn    string    `json:"name_en"`
	NameFa    string    `json:"name_fa"`
	ValidFrom time.Time `json:"valid_from"` // when the county, or its current names, took effect
}

// Firm is a consulting firm (شرکت مشاوره) contracted by the ministry to
// perform field inspections. SeatProvince is where it is registered; it may
// inspect elsewhere.
type Firm struct {
	ID           string    `json:"id"`
	NameEn       string    `json:"name_en"`
	NameFa       string    `json:"name_fa"`
	SeatProvince string    `json:"seat_province"` // province code
	ValidFrom    time.Time `json:"valid_from"`    // when the current names took effect
}
