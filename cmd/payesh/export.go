package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/export"
)

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: payesh export --out FILE [--store URL] [--from TIME] [--until TIME] [--stream-prefix P]\n\n"+
			"Writes the log, as it stands when the export starts, to FILE as NDJSON (format "+export.Format+",\n"+
			"see the eventstore/export package): a header with the head, one line per event with every\n"+
			"envelope field and both hashes, and an end line. --from and --until select by recorded-at\n"+
			"(system time; RFC 3339, 2024-12-05, or a Solar Hijri date such as 1403/09/15, Tehran time\n"+
			"when no zone is given): from <= recorded-at < until. Only a complete export (no filter)\n"+
			"can be imported. The file appears only when the export is complete, and is never\n"+
			"overwritten; --out - writes to standard output. Exit status 1 if the log turned out to be\n"+
			"tampered with (the file is still written: it is evidence).\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := storeFlag(fs)
	out := fs.String("out", "", "file to write (required; - for standard output)")
	from := fs.String("from", "", "export events recorded at or after TIME")
	until := fs.String("until", "", "export events recorded before TIME")
	prefix := fs.String("stream-prefix", "", "export only streams starting with P (e.g. facility-)")
	batch := fs.Int("batch", 5_000, "events read per round trip")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *out == "" {
		fs.Usage()
		return errors.New("--out is required")
	}
	if *batch < 1 {
		return errors.New("--batch must be at least 1")
	}
	var filter export.Filter
	filter.StreamPrefix = *prefix
	for _, t := range []struct {
		flag, value string
		dst         *time.Time
	}{{"--from", *from, &filter.RecordedFrom}, {"--until", *until, &filter.RecordedUntil}} {
		if t.value == "" {
			continue
		}
		v, err := calendar.ParseDate(t.value)
		if err != nil {
			return fmt.Errorf("%s %q: not a time: use RFC 3339 (2024-12-05T14:30:00Z), a date (2024-12-05) or a Solar Hijri date (1403/09/15)", t.flag, t.value)
		}
		*t.dst = v
	}
	if !filter.RecordedFrom.IsZero() && !filter.RecordedUntil.IsZero() && !filter.RecordedFrom.Before(filter.RecordedUntil) {
		return errors.New("--from must be before --until")
	}
	if *out != "-" {
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists: an export is never overwritten", *out)
		}
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

	// Write to a temporary file beside the target and move it into place
	// only when complete, so a file at --out is never a partial export.
	var (
		w    io.Writer
		tmp  *os.File
		done bool
	)
	if *out == "-" {
		bw := bufio.NewWriter(stdout)
		defer bw.Flush()
		w = bw
	} else {
		tmp, err = os.CreateTemp(filepath.Dir(*out), ".payesh-export-*")
		if err != nil {
			return err
		}
		defer func() {
			if !done {
				_ = tmp.Close()
				_ = os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	cw := &countingWriter{w: w}
	ew, err := export.NewWriter(cw, export.Header{Head: head, Filter: filter})
	if err != nil {
		return err
	}

	bar := progress.New(stderr, "export", "events", head.Position)
	tamper, err := exportEvents(ctx, store, ew, head, filter, *batch, bar.Set)
	bar.Finish()
	if err != nil {
		return err
	}
	if err := ew.Close(); err != nil {
		return err
	}
	where := "standard output"
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		// Link fails if the target appeared meanwhile: still no overwrite.
		if err := os.Link(tmp.Name(), *out); err != nil {
			return err
		}
		_ = os.Remove(tmp.Name())
		done = true
		where = *out
	}
	fmt.Fprintf(stderr, "exported %d events of the log's %d (head hash %s) to %s: %d bytes\n",
		ew.Events(), head.Position, head.Hash, where, cw.n)
	if tamper != nil {
		printTamper(stderr, tamper)
		return &exitError{code: 1, err: errors.New("the log is tampered with; the export holds it as it is (details above)")}
	}
	return nil
}

// exportEvents writes the events of the log up to head that pass filter,
// reading page by page, so memory holds one page whatever the log's size.
// It checks what it exports as it goes, in constant memory: every event's
// own hash, the link between consecutive positions, and, for a complete
// export, that no position is missing and that the events end at the
// head (stream versions, which need a map of every stream, are payesh
// verify's; the reader of the file checks them too). It reports the first
// problem after writing everything: an export of a tampered log is
// evidence, and is written in full.
func exportEvents(ctx context.Context, store eventstore.Store, ew *export.Writer, head eventstore.Head,
	filter export.Filter, batch int, progress func(uint64)) (*eventstore.TamperError, error) {
	var (
		complete   = filter.Complete()
		first      *eventstore.TamperError
		prev       eventstore.Head // the last event exported
		storeWhere eventstore.Filter
		after      uint64
		buf        []byte
	)
	if filter.StreamPrefix != "" {
		storeWhere.StreamPrefixes = []string{filter.StreamPrefix}
	}
	for after < head.Position {
		page, err := store.ReadPage(ctx, after, batch, storeWhere)
		if err != nil {
			return nil, err
		}
		if page.Through <= after {
			return nil, fmt.Errorf("the log ends at position %d, before the head %d read at the start", page.Through, head.Position)
		}
		for i := range page.Events {
			e := &page.Events[i]
			if e.Position > head.Position {
				break
			}
			if !filter.Matches(e) {
				continue
			}
			if first == nil {
				first, buf = checkExported(prev, complete, e, buf)
			}
			if err := ew.Write(e); err != nil {
				return nil, err
			}
			prev = eventstore.Head{Position: e.Position, Hash: e.Hash}
		}
		after = min(page.Through, head.Position)
		progress(after)
	}
	if first == nil && complete && prev != head {
		first = &eventstore.TamperError{Position: prev.Position + 1,
			Problem: fmt.Sprintf("the log's head row says position %d, hash %s; its events end at position %d, hash %s",
				head.Position, head.Hash, prev.Position, prev.Hash)}
	}
	return first, nil
}

// checkExported checks e against the event exported before it, prev.
func checkExported(prev eventstore.Head, complete bool, e *eventstore.Event, buf []byte) (*eventstore.TamperError, []byte) {
	bad := func(problem string) *eventstore.TamperError {
		return &eventstore.TamperError{Position: e.Position, EventID: e.ID, Stream: e.Stream, Version: e.Version, Problem: problem}
	}
	if complete && e.Position != prev.Position+1 {
		return &eventstore.TamperError{Position: prev.Position + 1,
			Problem: fmt.Sprintf("event missing: the next stored event is at position %d", e.Position)}, buf
	}
	if e.Position == prev.Position+1 && e.PrevHash != prev.Hash {
		return bad("previous-hash link broken (an earlier event was removed, replaced or reordered)"), buf
	}
	var h eventstore.Hash
	if h, buf = eventstore.Chain(e.PrevHash, e, buf); h != e.Hash {
		return bad("content does not match its hash (the event was altered)"), buf
	}
	return nil, buf
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
