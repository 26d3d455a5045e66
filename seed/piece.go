package seed

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
)

// Piece is the part of the history that belongs to Count consecutive
// facilities from First: their applicant claims, quota charges, facility
// histories, releases, and the quota allocations and transfers that fall
// due among them, in the order they must be appended.
type Piece struct {
	Index        int // 0-based
	First, Count int
	appends      []appendPlan
	seals        []sealRef
	sealed       bool
	events       int
}

// appendPlan is one atomic append of decided events.
type appendPlan struct {
	stream   string
	expected eventstore.ExpectedVersion
	events   []pending
}

// pending is a decided event with its ID and envelope.
type pending struct {
	id    string
	event domain.Event
	meta  ledger.Meta
}

// sealRef names a registration whose applicant data is still to be sealed.
type sealRef struct {
	append, event int
	personal      applicant.Personal
	ref, keyID    string
}

// placeholderCiphertext stands in for the sealed applicant data until Seal
// fills it in; the decider only requires it to be non-empty.
var placeholderCiphertext = []byte{0}

// add appends a at the end of the piece and returns its index.
func (p *Piece) add(a appendPlan) int {
	p.appends = append(p.appends, a)
	return len(p.appends) - 1
}

// Events returns the number of events in the piece.
func (p *Piece) Events() int { return p.events }

// Appends returns the number of appends in the piece.
func (p *Piece) Appends() int { return len(p.appends) }

// KeyBatcher is an optional extension of applicant.Vault for bulk work:
// Keys answers like Key(ctx, id, true) for every id at once, creating the
// missing keys, and fails with applicant.ErrErased if one was erased.
type KeyBatcher interface {
	Keys(ctx context.Context, keyIDs []string) (map[string][]byte, error)
}

// Seal encrypts each registered applicant's personal data under the
// applicant's own key from vault (created if missing), as
// ledger.Service.Register does. A vault that is a KeyBatcher is asked for
// all the piece's keys at once; otherwise up to workers vault calls run
// concurrently.
func (p *Piece) Seal(ctx context.Context, vault applicant.Vault, workers int) error {
	if len(p.seals) == 0 {
		p.sealed = true
		return nil
	}
	var keys map[string][]byte
	if b, ok := vault.(KeyBatcher); ok {
		ids := make([]string, len(p.seals))
		for i, s := range p.seals {
			ids[i] = s.keyID
		}
		var err error
		if keys, err = b.Keys(ctx, ids); err != nil {
			return fmt.Errorf("seed: applicant keys: %w", err)
		}
		defer func() {
			for _, k := range keys {
				clear(k)
			}
		}()
	}
	workers = max(1, min(workers, len(p.seals)))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(p.seals); i += workers {
				if err := p.seal(ctx, vault, keys, &p.seals[i]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.sealed = true
	return nil
}

func (p *Piece) seal(ctx context.Context, vault applicant.Vault, keys map[string][]byte, s *sealRef) error {
	key, ok := keys[s.keyID]
	if !ok {
		if keys != nil {
			return fmt.Errorf("seed: the vault returned no key %s", s.keyID)
		}
		var err error
		if key, err = vault.Key(ctx, s.keyID, true); err != nil {
			return fmt.Errorf("seed: applicant key: %w", err)
		}
		defer clear(key)
	}
	sealed, err := applicant.Seal(key, s.personal, s.ref, s.keyID)
	if err != nil {
		return err
	}
	ev := &p.appends[s.append].events[s.event]
	reg := ev.event.(facility.RegisteredV1)
	reg.Applicant = facility.Applicant{Ref: sealed.Ref, KeyID: sealed.KeyID, Ciphertext: sealed.Ciphertext}
	ev.event = reg
	return nil
}

// StreamAppends encodes the piece for eventstore.AppendMany, each event with
// the envelope ledger.Append gives it. The piece must be sealed first.
func (p *Piece) StreamAppends() ([]eventstore.StreamAppend, error) {
	if !p.sealed && len(p.seals) > 0 {
		return nil, errors.New("seed: the piece's applicant data is not sealed yet (call Seal first)")
	}
	out := make([]eventstore.StreamAppend, len(p.appends))
	for i, a := range p.appends {
		events := make([]eventstore.Proposed, len(a.events))
		for j, e := range a.events {
			prop, err := Proposed(e.id, e.event, e.meta)
			if err != nil {
				return nil, err
			}
			events[j] = prop
		}
		out[i] = eventstore.StreamAppend{Stream: a.stream, Expected: a.expected, Events: events}
	}
	return out, nil
}

// Proposed turns a decided event and its command's envelope into what the
// store is offered, exactly as ledger.Ledger.Append does.
func Proposed(id string, ev domain.Event, meta ledger.Meta) (eventstore.Proposed, error) {
	data, err := domain.Encode(ev)
	if err != nil {
		return eventstore.Proposed{}, err
	}
	return eventstore.Proposed{
		ID: id, Type: ev.EventType(), Data: data,
		OccurredAt: meta.OccurredAt, BackdateReason: meta.BackdateReason,
		Actor: meta.Actor, IdempotencyKey: meta.IdempotencyKey,
		CorrelationID: meta.CorrelationID, CausationID: meta.CausationID,
	}, nil
}
