package seed

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
)

// ErrOtherHistory is returned when the store's streams hold events that are
// not this history's: another seed, facility count, chunk size or cut-off,
// or data written by other means.
var ErrOtherHistory = errors.New("seed: the store already holds a different history in the same streams " +
	"(another --seed, --facilities or --chunk, or other data); use an empty store or the original flags")

// Options tunes Run without changing the history.
type Options struct {
	// Workers bounds concurrent vault calls while sealing (default 8).
	Workers int
	// Progress, if set, is called after each piece with the number of
	// facilities done (written or found already written) and the total.
	Progress func(done, total int)
}

// Result is what Run did.
type Result struct {
	Stats      Stats
	Pieces     int // pieces of the history
	Skipped    int // pieces found complete in the store and not sent again
	Appended   int // events written by this run
	Duplicates int // events sent again and found already stored
}

// prepared is a piece ready to be written, or found already stored.
type prepared struct {
	piece   *Piece
	appends []eventstore.StreamAppend
	stored  bool
}

// Run writes the history cfg describes to store, sealing applicants' data
// with keys from vault. It first makes sure the reference stream holds the
// default reference data (ledger.Service.EnsureReference).
//
// Each piece is written in two steps: every append but the last, then,
// once all of those are stored, the last one. So a stored last append
// proves the whole piece stored, and a re-run with the same cfg skips such
// pieces (it still generates them: the quota ledgers carry over) and sends
// the rest again, where appends already stored come back as duplicates.
// Interrupting Run (cancelling ctx) therefore never leaves the store in a
// state a re-run cannot complete.
func Run(ctx context.Context, store eventstore.Store, vault applicant.Vault, cfg Config, opts Options) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	svc, err := ledger.NewService(ledger.New(store, schema.Registry()), vault, cfg.PseudonymKey)
	if err != nil {
		return Result{}, err
	}
	if err := svc.EnsureReference(ctx, ledger.Meta{Actor: systemActor}); err != nil {
		return Result{}, fmt.Errorf("seed: reference data: %w", err)
	}
	if v, err := store.StreamVersion(ctx, reference.Stream); err != nil {
		return Result{}, err
	} else if v == 0 {
		return Result{}, errors.New("seed: the reference stream is empty")
	}
	g, err := NewGenerator(cfg)
	if err != nil {
		return Result{}, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var genErr, prepErr error
	pieces := make(chan *Piece, 2)
	ready := make(chan prepared, 2)

	wg.Add(2)
	go func() { // generate
		defer wg.Done()
		defer close(pieces)
		for {
			p, err := g.Next()
			if err != nil {
				genErr = err
				cancel()
				return
			}
			if p == nil {
				return
			}
			select {
			case pieces <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { // probe, seal, encode
		defer wg.Done()
		defer close(ready)
		probing := true
		for p := range pieces {
			pr := prepared{piece: p}
			if probing {
				stored, err := p.stored(ctx, store)
				if err != nil {
					prepErr = err
					cancel()
					return
				}
				pr.stored, probing = stored, stored
			}
			if !pr.stored && len(p.appends) > 0 {
				if err := p.Seal(ctx, vault, opts.Workers); err != nil {
					prepErr = err
					cancel()
					return
				}
				appends, err := p.StreamAppends()
				if err != nil {
					prepErr = err
					cancel()
					return
				}
				pr.appends = appends
				p.appends, p.seals = nil, nil // only the encoded form is needed now
			}
			select {
			case ready <- pr:
			case <-ctx.Done():
				return
			}
		}
	}()

	var res Result
	writeErr := func() error {
		_, many := store.(eventstore.ManyAppender)
		for pr := range ready {
			res.Pieces++
			if pr.stored {
				res.Skipped++
			} else if len(pr.appends) > 0 {
				n, dup, err := writePiece(ctx, store, pr.appends, many)
				res.Appended += n
				res.Duplicates += dup
				if err != nil {
					return err
				}
			}
			if opts.Progress != nil {
				opts.Progress(pr.piece.First+pr.piece.Count, cfg.Facilities)
			}
		}
		return nil
	}()
	if writeErr != nil {
		cancel()
	}
	for range ready { // let the producers finish
	}
	wg.Wait()
	switch {
	case writeErr != nil:
		return res, writeErr
	case genErr != nil:
		return res, genErr
	case prepErr != nil:
		return res, prepErr
	case ctx.Err() != nil:
		return res, ctx.Err()
	}
	res.Stats = g.Stats()
	return res, nil
}

// stored reports whether the piece's last append is in the store, which
// (see Run) means the whole piece is.
func (p *Piece) stored(ctx context.Context, store eventstore.Store) (bool, error) {
	if len(p.appends) == 0 {
		return true, nil
	}
	last := p.appends[len(p.appends)-1]
	v, _ := last.expected.Version()
	got, err := store.ReadStream(ctx, last.stream, v+1, eventstore.Forwards, 1)
	if err != nil {
		return false, err
	}
	return len(got) == 1 && got[0].ID == last.events[0].id, nil
}

// writePiece appends a piece: all appends but the last, in order, then the
// last. It returns the events written and those found already stored.
func writePiece(ctx context.Context, store eventstore.Store, appends []eventstore.StreamAppend, many bool) (written, dup int, err error) {
	step := func(part []eventstore.StreamAppend) error {
		if len(part) == 0 {
			return nil
		}
		var results []eventstore.AppendResult
		var errs []error
		if many {
			results, errs = eventstore.AppendMany(ctx, store, part)
		} else {
			// eventstore.AppendMany would run these concurrently, and the
			// quota ledgers' appends must keep their order.
			results, errs = make([]eventstore.AppendResult, len(part)), make([]error, len(part))
			for i, a := range part {
				results[i], errs[i] = store.Append(ctx, a.Stream, a.Expected, a.Events)
				if errs[i] != nil {
					break
				}
			}
		}
		for i, a := range part {
			if errs[i] == nil && results[i].LastVersion == 0 {
				continue // not attempted after an earlier failure
			}
			if errs[i] != nil {
				continue
			}
			if results[i].Duplicate {
				dup += len(a.Events)
			} else {
				written += len(a.Events)
			}
		}
		for i, e := range errs {
			if e == nil {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(e, eventstore.ErrWrongExpectedVersion) || errors.Is(e, eventstore.ErrDuplicateEventID) {
				return fmt.Errorf("%w: %s: %v", ErrOtherHistory, part[i].Stream, e)
			}
			return fmt.Errorf("seed: append to %s: %w", part[i].Stream, e)
		}
		return nil
	}
	if err := step(appends[:len(appends)-1]); err != nil {
		return written, dup, err
	}
	return written, dup, step(appends[len(appends)-1:])
}
