package reference

import (
	"time"

	"github.com/payesh/payesh/domain"
)

// AgencyAdded records that an executive agency joined the catalogue.
type AgencyAdded struct {
	ID        string    `json:"id"`
	NameEn    string    `json:"name_en"`
	NameFa    string    `json:"name_fa"`
	ValidFrom time.Time `json:"valid_from"`
}

// EventType implements domain.Event.
func (AgencyAdded) EventType() string { return "reference.agency_added.v1" }

// BankAdded records that an operating bank joined the catalogue.
type BankAdded struct {
	ID        string    `json:"id"`
	NameEn    string    `json:"name_en"`
	NameFa    string    `json:"name_fa"`
	ValidFrom time.Time `json:"valid_from"`
}

// EventType implements domain.Event.
func (BankAdded) EventType() string { return "reference.bank_added.v1" }

// ProgramAdded records that a facility programme joined the catalogue, with
// its note and its per-applicant cap (zero when none is stated).
type ProgramAdded struct {
	ID           string    `json:"id"`
	NameEn       string    `json:"name_en"`
	NameFa       string    `json:"name_fa"`
	Note         string    `json:"note"`
	MaxLoanRials int64     `json:"max_loan_rials"`
	ValidFrom    time.Time `json:"valid_from"`
}

// EventType implements domain.Event.
func (ProgramAdded) EventType() string { return "reference.program_added.v1" }

// CountyAdded records that a county exists in a province from ValidFrom on,
// for instance after a split.
type CountyAdded struct {
	ID        string    `json:"id"`
	Province  string    `json:"province"`
	NameEn    string    `json:"name_en"`
	NameFa    string    `json:"name_fa"`
	ValidFrom time.Time `json:"valid_from"`
}

// EventType implements domain.Event.
func (CountyAdded) EventType() string { return "reference.county_added.v1" }

// FirmAdded records that an inspection firm joined the catalogue.
type FirmAdded struct {
	ID           string    `json:"id"`
	NameEn       string    `json:"name_en"`
	NameFa       string    `json:"name_fa"`
	SeatProvince string    `json:"seat_province"`
	ValidFrom    time.Time `json:"valid_from"`
}

// EventType implements domain.Event.
func (FirmAdded) EventType() string { return "reference.firm_added.v1" }

// EntityRenamed records that an entity of any kind took new names from
// ValidFrom on. One event type for all kinds keeps the schema small; the ID
// never changes, so history stays linked.
type EntityRenamed struct {
	Kind      Kind      `json:"kind"`
	ID        string    `json:"id"`
	NameEn    string    `json:"name_en"`
	NameFa    string    `json:"name_fa"`
	ValidFrom time.Time `json:"valid_from"`
}

// EventType implements domain.Event.
func (EntityRenamed) EventType() string { return "reference.entity_renamed.v1" }

// EventTypes lists every event type of this package, for the registry.
func EventTypes() []domain.EventType {
	return []domain.EventType{
		domain.Type[AgencyAdded](),
		domain.Type[BankAdded](),
		domain.Type[ProgramAdded](),
		domain.Type[CountyAdded](),
		domain.Type[FirmAdded](),
		domain.Type[EntityRenamed](),
	}
}
