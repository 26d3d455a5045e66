package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/eventstore"
)

// errTampered is verify's summary when it found tampering; the details are
// already on stdout.
var errTampered = errors.New("the log has been tampered with (details above)")

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeURL := storeFlag(fs)
	batch := fs.Int("batch", 10_000, "events read per round trip")
	if err := fs.Parse(args); err != nil {
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
	bar := progress.New(stderr, "verify", "events", head.Position)
	rep, err := eventstore.Verify(ctx, store, eventstore.VerifyOptions{BatchSize: *batch, Progress: bar.Set})
	bar.Finish()
	var te *eventstore.TamperError
	switch {
	case errors.As(err, &te):
		tampered = true
		fmt.Fprintf(stdout, "TAMPERED at position %d", te.Position)
		if te.EventID != "" {
			fmt.Fprintf(stdout, ": event %s (stream %s, version %d)", te.EventID, te.Stream, te.Version)
		}
		fmt.Fprintf(stdout, "\n  %s\n", te.Problem)
	case err != nil:
		return err
	default:
		fmt.Fprintf(stdout, "chain intact: %d events in %d streams; head position %d, hash %s\n",
			rep.Events, rep.Streams, rep.Head.Position, rep.Head.Hash)
	}
	if tampered {
		return &exitError{code: 1, err: errTampered}
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}
