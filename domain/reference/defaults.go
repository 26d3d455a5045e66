package reference

import (
	"strings"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
)

// DefaultValidFrom is the valid-from date of every default entity:
// 1 Farvardin of calendar.MinFiscalYear (1380), the earliest year the ledger
// accepts, meaning "valid for as long as the ledger cares".
func DefaultValidFrom() time.Time { return calendar.MinFiscalYear.Start() }

// DefaultEvents returns the events that seed an empty ledger's reference
// stream, in this order: the agencies, banks and programmes of
// /work/shared/data, one county per province capital plus Pardis (Tehran
// province, named in the seeds; Qom, also named there, is a capital), and
// one placeholder inspection firm seated in each province. Every event
// passes Decide when applied in order to the empty catalogue. The slice is
// built afresh on every call.
func DefaultEvents() []domain.Event {
	from := DefaultValidFrom()
	var out []domain.Event
	for _, a := range agencyTable() {
		out = append(out, AgencyAdded{ID: a.ID, NameEn: a.NameEn, NameFa: a.NameFa, ValidFrom: from})
	}
	for _, b := range bankTable() {
		out = append(out, BankAdded{ID: b.ID, NameEn: b.NameEn, NameFa: b.NameFa, ValidFrom: from})
	}
	for _, p := range programTable() {
		out = append(out, ProgramAdded{ID: p.ID, NameEn: p.NameEn, NameFa: p.NameFa, Note: p.Note, MaxLoanRials: p.MaxLoanRials, ValidFrom: from})
	}
	provinces := provinceTable()
	for _, p := range provinces {
		out = append(out, CountyAdded{ID: p.CapitalCounty, Province: p.Code, NameEn: p.CapitalEn, NameFa: p.CapitalFa, ValidFrom: from})
	}
	out = append(out, CountyAdded{ID: "IR-23-pardis", Province: "IR-23", NameEn: "Pardis", NameFa: "پردیس", ValidFrom: from})
	// The 1403 national round used 120 consulting firms across all 31
	// provinces. These 31 firms are placeholders with invented, neutral
	// names, one seated in each province, so that a fresh ledger can record
	// inspections; they are not real companies. Administrators add the
	// contracted firms with AddFirm.
	for _, p := range provinces {
		out = append(out, FirmAdded{
			ID:           slugify(p.NameEn) + "-field-monitoring",
			NameEn:       p.NameEn + " Field Monitoring Consultants",
			NameFa:       "مشاوران نظارت میدانی " + p.NameFa,
			SeatProvince: p.Code,
			ValidFrom:    from,
		})
	}
	return out
}

// DefaultCatalog returns the catalogue of a freshly seeded ledger: the empty
// catalogue with DefaultEvents folded in.
func DefaultCatalog() Catalog {
	d := Decider()
	c := d.Initial()
	for _, e := range DefaultEvents() {
		c = d.Evolve(c, domain.Recorded{Stream: Stream, Event: e})
	}
	return c
}

// slugify turns an English province name into an ID part:
// "Kohgiluyeh and Boyer-Ahmad" becomes "kohgiluyeh-and-boyer-ahmad".
func slugify(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), " ", "-")
}
