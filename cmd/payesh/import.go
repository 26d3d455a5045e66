package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/export"
)

// errImportRefused is import's summary when the file was refused; the
// details are already on stdout.
var errImportRefused = errors.New("import refused; nothing was written (details above)")

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: payesh import --in FILE [--store URL]\n\n"+
			"Loads a complete export (payesh export without filters) into an empty store, keeping\n"+
			"every event's id, position, version, times, actor and hashes. Every line is checked as\n"+
			"it is read: its own hash, its link to the line before, positions from 1 without a gap,\n"+
			"every stream's versions, unique ids, and the end line. The first bad line is named and\n"+
			"refused, and then nothing is written: the import is one transaction, committed only\n"+
			"after the last line checked out. A store that holds any event is refused. --in - reads\n"+
			"standard input. Exit status 1 when the file or the store is refused.\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := storeFlag(fs)
	in := fs.String("in", "", "export file to load (required; - for standard input)")
	batch := fs.Int("batch", 2_000, "events written per round trip")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *in == "" {
		fs.Usage()
		return errors.New("--in is required")
	}
	var src io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	refused := func(format string, a ...any) error {
		fmt.Fprintf(stdout, "REFUSED: "+format+"\n", a...)
		return &exitError{code: 1, err: errImportRefused}
	}
	rd, err := export.NewReader(src)
	var le *export.LineError
	if errors.As(err, &le) {
		return refused("%s: %v", *in, le)
	}
	if err != nil {
		return err
	}
	h := rd.Header()
	if !h.Filter.Complete() {
		return refused("%s is a filtered export (%s): only a complete export is a log a store can hold", *in, describeFilter(h.Filter))
	}

	store, err := backend.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer store.Close()
	im, ok := store.(eventstore.Importer)
	if !ok {
		return fmt.Errorf("the store at %s cannot import", backend.Redact(*storeURL))
	}
	bar := progress.New(stderr, "import", "events", h.Head.Position)
	head, err := im.Import(ctx, rd.Next, eventstore.ImportOptions{BatchSize: *batch, Progress: bar.Set})
	bar.Finish()
	var ie *eventstore.ImportError
	switch {
	case errors.Is(err, eventstore.ErrNotEmpty):
		cur, herr := store.Head(ctx)
		if herr != nil {
			return refused("the store is not empty: import only into a new store")
		}
		return refused("the store is not empty (its head is at position %d): import only into a new store", cur.Position)
	case errors.As(err, &le):
		// The reader's own checks: hashes, links, the end line.
		var te *eventstore.TamperError
		if errors.As(err, &te) {
			fmt.Fprintf(stdout, "REFUSED: %s line %d:\n", *in, le.Line)
			printTamper(stdout, te)
			return &exitError{code: 1, err: errImportRefused}
		}
		return refused("%s line %d: %v", *in, le.Line, le.Err)
	case errors.As(err, &ie):
		// The store's checks name the event by its ordinal; the header is
		// line 1, so event n is on line n+1.
		return refused("%s line %d: event %s at position %d: %v", *in, ie.Ordinal+1, ie.EventID, ie.Position, ie.Err)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "imported %d events from %s; head position %d, hash %s\n", rd.Events(), *in, head.Position, head.Hash)
	return nil
}

func describeFilter(f export.Filter) string {
	var parts []string
	if !f.RecordedFrom.IsZero() {
		parts = append(parts, "recorded from "+f.RecordedFrom.Format("2006-01-02T15:04:05Z07:00"))
	}
	if !f.RecordedUntil.IsZero() {
		parts = append(parts, "recorded until "+f.RecordedUntil.Format("2006-01-02T15:04:05Z07:00"))
	}
	if f.StreamPrefix != "" {
		parts = append(parts, "streams "+f.StreamPrefix+"…")
	}
	return strings.Join(parts, ", ")
}
