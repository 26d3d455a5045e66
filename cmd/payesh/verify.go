package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/eventstore"
)

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

	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	bar := progress.New(stderr, "verify", "events", head.Position)
	rep, err := eventstore.Verify(ctx, store, eventstore.VerifyOptions{BatchSize: *batch, Progress: bar.Set})
	bar.Finish()
	var tampered *eventstore.TamperError
	if errors.As(err, &tampered) {
		fmt.Fprintf(stdout, "TAMPERED at position %d", tampered.Position)
		if tampered.EventID != "" {
			fmt.Fprintf(stdout, ": event %s (stream %s, version %d)", tampered.EventID, tampered.Stream, tampered.Version)
		}
		fmt.Fprintf(stdout, "\n  %s\n", tampered.Problem)
		return &exitError{code: 1, err: err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %d events in %d streams verified; head position %d, hash %s\n",
		rep.Events, rep.Streams, rep.Head.Position, rep.Head.Hash)
	return nil
}
