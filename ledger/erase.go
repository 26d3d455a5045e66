package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/nationalid"
)

// ApplicantRef returns the applicant reference (pseudonym) of a national
// ID under the service's pseudonymisation key: how an administrator finds
// the applicant a person's erasure request is about. An invalid national
// ID is a *domain.ValidationError on field national_id.
func (s *Service) ApplicantRef(nationalID string) (string, error) {
	nid, err := nationalid.Validate(nationalID)
	if err != nil {
		var v domain.Validator
		v.Add("national_id", "invalid_national_id", "is not a valid national ID (10 digits with a correct check digit)",
			"کد ملی معتبر نیست (ده رقم با رقم کنترل درست)")
		return "", v.Err()
	}
	return applicant.RefOf(s.pseudonymKey, nid), nil
}

// Erasure is what EraseApplicant did.
type Erasure struct {
	// Result is the erasure event's append; it has no event IDs when the
	// applicant's personal data was already erased (nothing is sealed
	// under a key that is not yet destroyed).
	Result
	// Destroyed are the data keys destroyed (or found destroyed) in the
	// vault: every key the applicant's erasure events name.
	Destroyed []string
}

// EraseApplicant erases an applicant's personal data by crypto-shredding:
// it appends the erasure of the applicant's current data key to the
// applicant's stream (applicant.Erase, with the reason as its legal basis)
// and then destroys the key in the vault, so that every sealed copy of the
// personal data — in the facility registrations, the events endpoint,
// exports and backups of the log — can no longer be opened. The log is not
// rewritten: its hash chain, and so verify, are unaffected, and no read
// model holds personal data, so no report changes.
//
// The event is recorded first and the key destroyed after: if the
// destruction fails, the error says so and calling EraseApplicant again
// (with any reason) destroys every key the applicant's erasure events
// name. When the applicant's current key was never created (nothing was
// sealed under it since the last erasure), nothing is appended. An
// applicant without a stream is a *domain.NotFoundError; a malformed ref
// or an empty reason a *domain.ValidationError. meta.Check runs on the
// applicant's stream (its state is an applicant.State).
func (s *Service) EraseApplicant(ctx context.Context, ref, reason string, meta Meta) (Erasure, error) {
	if !applicant.ValidRef(ref) {
		var v domain.Validator
		v.Add("ref", "format", "must be an applicant reference: 64 lowercase hex digits",
			"شناسهٔ مستعار باید ۶۴ رقم شانزده‌دهی با حروف کوچک باشد")
		return Erasure{}, v.Err()
	}
	stream := applicant.StreamFor(ref)
	if res, ok, err := s.ledger.Replayed(ctx, stream, meta.IdempotencyKey); err != nil || ok {
		if err != nil {
			return Erasure{}, err
		}
		return s.destroyErased(ctx, ref, res)
	}
	state, version, err := State(ctx, s.ledger, stream, applicant.Decider(), nil)
	if err != nil {
		return Erasure{}, err
	}
	if version == 0 {
		return Erasure{}, &domain.NotFoundError{Kind: "applicant", ID: ref}
	}
	keyID := state.KeyID(ref)
	if len(state.Erased()) > 0 {
		key, err := s.vault.Key(ctx, keyID, false)
		clear(key)
		switch {
		case errors.Is(err, applicant.ErrNoKey):
			// Erased before, and nothing sealed since: the reason is
			// still checked, so that a malformed request is refused.
			if _, err := applicant.Decider().Decide(state, applicant.Erase{Ref: ref, KeyID: state.Erased()[0], Reason: reason}); err != nil {
				return Erasure{}, err
			}
			return s.destroyErased(ctx, ref, Result{Stream: stream, Version: version})
		case err != nil && !errors.Is(err, applicant.ErrErased):
			return Erasure{}, fmt.Errorf("ledger: applicant key: %w", err)
		}
	}
	res, err := Execute(ctx, s.ledger, stream, applicant.Decider(),
		applicant.Command(applicant.Erase{Ref: ref, KeyID: keyID, Reason: reason}), meta)
	if err != nil {
		return Erasure{}, err
	}
	return s.destroyErased(ctx, ref, res)
}

// destroyErased destroys every key the applicant's erasure events name.
func (s *Service) destroyErased(ctx context.Context, ref string, res Result) (Erasure, error) {
	state, _, err := State(ctx, s.ledger, applicant.StreamFor(ref), applicant.Decider(), nil)
	if err != nil {
		return Erasure{}, err
	}
	out := Erasure{Result: res, Destroyed: state.Erased()}
	for _, id := range out.Destroyed {
		if err := s.vault.Destroy(ctx, id); err != nil {
			return out, fmt.Errorf("ledger: the erasure is recorded, but data key %s was not destroyed (erase again to finish): %w", id, err)
		}
	}
	slices.Sort(out.Destroyed)
	return out, nil
}
