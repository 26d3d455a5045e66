// Package seed generates a deterministic, calibrated national history of
// employment-creation facilities and writes it to an event store.
//
// The history covers fiscal years 1400–1404 in all 31 provinces, with the
// agencies, banks, programmes, counties and inspection firms of the default
// reference data: quota allocations per fiscal year, programme, agency and
// province, the ministry's transfers between accounts, registrations (with
// the applicant's claim and sealed personal data), expert reviews, bank
// decisions charging the quota, tranches, jobs reports, field inspections,
// deviation cases with evidence and resolutions, closings that release
// unpaid quota, and corrections.
//
// Every event is decided by the domain's own deciders (facility.Decide,
// quota.Decide, the applicant decider) on in-memory state, exactly as the
// command path (ledger.Service) would decide it, and gets the envelope
// ledger.Append would give it. Only the grouping differs: a facility's whole
// history is one append, and many streams' appends share transactions
// (eventstore.AppendMany).
//
// The generator is pure and deterministic: the same Config yields the same
// events with the same IDs, except the applicants' ciphertexts (sealed under
// fresh random keys from the store's vault with random nonces). Run writes a
// history in pieces of Config.Chunk facilities; an interrupted run is resumed
// by running it again with the same Config: pieces already stored are
// skipped and appends already stored come back as duplicates.
//
// The shape of the data is calibrated against published figures (see
// Stats.Calibration): the Markazi rural-loan funnel, the 1403 field
// inspection's confirmation rate, the quick-yield enterprise survey,
// inclusive-employment outcomes, the size of home-business loans and the
// provinces' job registration against commitments.
package seed

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/calendar"
)

// The fiscal years the history covers.
const (
	FirstFiscalYear = 1400
	LastFiscalYear  = 1404
)

// DefaultFacilities is the number of facilities generated when Config says
// nothing; MaxFacilities bounds it (national IDs are unique up to about a
// billion, and a larger history is not a demo).
const (
	DefaultFacilities = 20_000
	MaxFacilities     = 50_000_000
)

// DefaultChunk is the number of facilities per written piece.
const DefaultChunk = 1000

// HistoryEnd is when the generated history stops: the end of the first
// quarter of fiscal year 1405, so that plans of 1404 have had their first
// follow-up. A Config.Now before it cuts the history earlier.
func HistoryEnd() time.Time { return calendar.FiscalYear(LastFiscalYear+1).Start().AddDate(0, 3, 0) }

// Config is one history's identity: the same Config always generates the
// same events.
type Config struct {
	// Facilities is the number of plans registered over the five years.
	Facilities int
	// Seed selects the history.
	Seed uint64
	// Now is the recording time (default: the current time): every
	// event's business time is before it. A Now later than HistoryEnd (the
	// normal case) does not change the history; an earlier one cuts it, and
	// then a re-run must give the same Now to resume.
	Now time.Time
	// Chunk is the number of facilities per written piece (default
	// DefaultChunk). It is part of the history's identity: resuming an
	// interrupted run needs the same value.
	Chunk int
	// PseudonymKey keys the HMAC that turns national IDs into applicant
	// references, as in ledger.Service; at least 32 bytes. The applicants'
	// streams are named after those references.
	PseudonymKey []byte
}

// withDefaults fills in the defaults.
func (c Config) withDefaults() Config {
	if c.Facilities == 0 {
		c.Facilities = DefaultFacilities
	}
	if c.Chunk == 0 {
		c.Chunk = DefaultChunk
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	return c
}

// Validate reports every problem with the configuration (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Facilities < 1 || c.Facilities > MaxFacilities {
		errs = append(errs, fmt.Errorf("seed: facilities must be from 1 to %d, got %d", MaxFacilities, c.Facilities))
	}
	if c.Chunk < 1 || c.Chunk > 100_000 {
		errs = append(errs, fmt.Errorf("seed: chunk must be from 1 to 100000, got %d", c.Chunk))
	}
	if earliest := calendar.FiscalYear(FirstFiscalYear).Start().AddDate(0, 2, 0); c.Now.Before(earliest) {
		errs = append(errs, fmt.Errorf("seed: now must be after %s, when the history has begun, got %s",
			earliest.Format(time.DateOnly), c.Now.Format(time.RFC3339)))
	}
	if err := applicant.CheckPseudonymKey(c.PseudonymKey); err != nil {
		errs = append(errs, fmt.Errorf("seed: %w", err))
	}
	return errors.Join(errs...)
}

// cutoff is the moment the history stops: HistoryEnd, or an hour before Now
// if that is earlier, to the second.
func (c Config) cutoff() time.Time {
	end := HistoryEnd()
	if n := c.Now.Add(-time.Hour); n.Before(end) {
		end = n
	}
	return end.UTC().Truncate(time.Second)
}

// historyKey identifies the history for event IDs: everything that changes
// the events or their grouping is in it.
func (c Config) historyKey() [32]byte {
	h := sha256.New()
	h.Write([]byte("payesh seed history v1"))
	var b [8]byte
	for _, v := range []uint64{c.Seed, uint64(c.Facilities), uint64(c.Chunk), uint64(c.cutoff().Unix())} {
		binary.BigEndian.PutUint64(b[:], v)
		h.Write(b[:])
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// BackdateReason is the reason every seeded event carries for its business
// time lying in the past.
func (c Config) BackdateReason() string {
	c = c.withDefaults()
	return fmt.Sprintf("seeded demo history (payesh seed --seed %d --facilities %d)", c.Seed, c.Facilities)
}
