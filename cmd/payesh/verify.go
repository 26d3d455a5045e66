package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/domain/checkpoint"
	"github.com/payesh/payesh/eventstore"
)

// errTampered is verify's summary when it found tampering; the details are
// already on stdout.
var errTampered = errors.New("the log has been tampered with (details above)")

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: payesh verify [--store URL] [--checkpoint FILE --pubkey FILE]\n\n"+
			"Walks the whole log and checks every hash link, every event's hash and every stream's\n"+
			"version sequence, and that the database's guards against edits are in place; names the\n"+
			"first bad event. With --checkpoint (a file written by payesh checkpoint) it also proves\n"+
			"that the log still extends the signed head: the event at the checkpoint's position has\n"+
			"its hash, which catches cutting events off the end and rewriting history with the chain\n"+
			"recomputed. Exit status 0 only when everything holds.\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := storeFlag(fs)
	batch := fs.Int("batch", 10_000, "events read per round trip")
	cpFile := fs.String("checkpoint", "", "a signed checkpoint file the log must still extend")
	pubFile := fs.String("pubkey", "", "PEM file of the public key(s) the checkpoint must be signed with (required with --checkpoint)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cp, err := readCheckpoint(*cpFile, *pubFile)
	var refused *checkpointRefused
	if errors.As(err, &refused) {
		// Not evidence about the log, but a failed check: the file cannot
		// be relied on.
		fmt.Fprintf(stdout, "CHECKPOINT REFUSED: %s: %v\n", *cpFile, refused.err)
		return &exitError{code: 1, err: errors.New("the checkpoint does not verify (details above)")}
	}
	if err != nil {
		return err
	}
	store, err := backend.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer store.Close()

	tampered := false
	// A guard removed from the database is tampering even if no event was
	// touched yet. Report it, then still walk the chain: the auditor needs
	// to know whether the events themselves survived.
	if g, ok := store.(eventstore.Guarded); ok {
		err := g.CheckGuards(ctx)
		var ge *eventstore.GuardError
		switch {
		case errors.As(err, &ge):
			tampered = true
			fmt.Fprintf(stdout, "TAMPERED: guard triggers missing from the database: %s\n", strings.Join(ge.Missing, ", "))
		case err != nil:
			return err
		}
	}

	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	opts := eventstore.VerifyOptions{BatchSize: *batch}
	if cp != nil {
		opts.Anchors = cp.anchors
	}
	bar := progress.New(stderr, "verify", "events", head.Position)
	opts.Progress = bar.Set
	rep, err := eventstore.Verify(ctx, store, opts)
	bar.Finish()
	var te *eventstore.TamperError
	switch {
	case errors.As(err, &te):
		tampered = true
		printTamper(stdout, te)
		if cp != nil && te.Position == 1 && te.EventID != "" {
			fmt.Fprintf(stdout, "  (or the checkpoint is of another log: its log_id, the first event's hash, is %s)\n", cp.LogID)
		}
	case err != nil:
		return err
	default:
		fmt.Fprintf(stdout, "chain intact: %d events in %d streams; head position %d, hash %s\n",
			rep.Events, rep.Streams, rep.Head.Position, rep.Head.Hash)
		if cp != nil {
			fmt.Fprintf(stdout, "checkpoint holds: the log extends position %d, hash %s, signed by key %s at %s\n",
				cp.Position, cp.Hash, cp.KeyID, cp.SignedAt.Format("2006-01-02T15:04:05Z07:00"))
		}
	}
	if tampered {
		return &exitError{code: 1, err: errTampered}
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}

// printTamper reports a *TamperError the way verify, export and import do.
func printTamper(w io.Writer, te *eventstore.TamperError) {
	fmt.Fprintf(w, "TAMPERED at position %d", te.Position)
	if te.EventID != "" {
		fmt.Fprintf(w, ": event %s (stream %s, version %d)", te.EventID, te.Stream, te.Version)
	}
	fmt.Fprintf(w, "\n  %s\n", te.Problem)
}

// signedCheckpoint is a checkpoint file whose signature verified, with the
// heads the log must extend: the signed head, and the first event (the
// log's identity).
type signedCheckpoint struct {
	checkpoint.Checkpoint
	anchors []eventstore.Head
}

// checkpointRefused is a checkpoint file that does not verify: malformed,
// or not signed by the keys given.
type checkpointRefused struct{ err error }

func (e *checkpointRefused) Error() string { return e.err.Error() }

// readCheckpoint reads --checkpoint and --pubkey (both or neither) and
// checks the signature. A checkpoint is never used unsigned: without its
// key it proves nothing.
func readCheckpoint(cpFile, pubFile string) (*signedCheckpoint, error) {
	switch {
	case cpFile == "" && pubFile == "":
		return nil, nil
	case cpFile == "":
		return nil, errors.New("--pubkey is given without --checkpoint")
	case pubFile == "":
		return nil, errors.New("--checkpoint needs --pubkey: a checkpoint proves nothing unless its signature is checked")
	}
	raw, err := os.ReadFile(cpFile)
	if err != nil {
		return nil, err
	}
	keys, err := auth.ReadPublicKeysFile(pubFile)
	if err != nil {
		return nil, err
	}
	cp, err := checkpoint.Parse(raw)
	if err != nil {
		return nil, &checkpointRefused{err}
	}
	if err := cp.Verify(keys); err != nil {
		return nil, &checkpointRefused{err}
	}
	s := &signedCheckpoint{Checkpoint: cp}
	for _, a := range []struct {
		pos  uint64
		hash string
	}{{1, cp.LogID}, {cp.Position, cp.Hash}} {
		h, err := eventstore.ParseHash(a.hash)
		if err != nil {
			return nil, &checkpointRefused{err} // unreachable: Verify checked the format
		}
		s.anchors = append(s.anchors, eventstore.Head{Position: a.pos, Hash: h})
	}
	return s, nil
}
