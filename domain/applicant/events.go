package applicant

import (
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
)

// StreamFor returns the name of the applicant's duplicate-check stream,
// "applicant-<ref>". The stream holds Refs and facility IDs only, never
// personal data.
func StreamFor(ref string) string { return "applicant-" + ref }

// Claimed records that a facility claimed the applicant's one open slot for
// a programme in a fiscal year.
type Claimed struct {
	FacilityID string              `json:"facility_id"`
	FiscalYear calendar.FiscalYear `json:"fiscal_year"`
	Program    string              `json:"program"`
}

// EventType implements domain.Event.
func (Claimed) EventType() string { return "applicant.claimed.v1" }

// Released records that a facility gave its claim up (rejected, withdrawn,
// cancelled), so the applicant may apply again for that year and programme.
type Released struct {
	FacilityID string `json:"facility_id"`
	Reason     string `json:"reason"`
}

// EventType implements domain.Event.
func (Released) EventType() string { return "applicant.released.v1" }

// Erased records that the data key KeyID is to be destroyed, making the
// personal data sealed under it unreadable. The event is recorded first and
// the key destroyed after (Vault.Destroy is idempotent, so a failed
// destruction is retried from the log). Claims are unaffected: they hold no
// personal data, and the duplicate check must keep working.
type Erased struct {
	KeyID  string `json:"key_id"`
	Reason string `json:"reason"`
}

// EventType implements domain.Event.
func (Erased) EventType() string { return "applicant.erased.v1" }

// EventTypes lists every event type of this package, for the registry.
func EventTypes() []domain.EventType {
	return []domain.EventType{
		domain.Type[Claimed](),
		domain.Type[Released](),
		domain.Type[Erased](),
	}
}
