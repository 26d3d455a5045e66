package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/cmd/internal/readmodels"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// readModels are the projectors payesh knows, in the order they are
// rebuilt. payeshd runs the same list.
func readModels() []projections.Projector { return readmodels.Projectors() }

const projectionsUsage = `usage: payesh projections status  [--store URL]
       payesh projections rebuild [--store URL] [--batch N] [NAME ...]

status   shows each read model's version, position, lag behind the log,
         status (running, rebuilding, failed) and last error.
rebuild  rebuilds the named projections (all when none is named; a read
         model's table names its projection too) from the whole log,
         blue/green: the new tables are built beside the live ones and
         swapped in when caught up, so queries and a running payeshd keep
         working meanwhile. The log is read once for all of them, which
         are applied side by side. An interrupted rebuild resumes where it
         stopped; one read model that fails does not stop the others.`

func runProjections(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, projectionsUsage)
		if len(args) == 0 {
			return &exitError{code: 2, err: errors.New("missing subcommand: status or rebuild")}
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("projections "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, projectionsUsage); fs.PrintDefaults() }
	storeURL := storeFlag(fs)
	rmURL := readModelsFlag(fs)
	batch := fs.Int("batch", 0, "events per rebuild transaction (default 10000 on PostgreSQL, 2000 on SQLite)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch sub {
	case "status":
		if fs.NArg() > 0 {
			return fmt.Errorf("status takes no arguments, got %s", strings.Join(fs.Args(), " "))
		}
	case "rebuild":
	default:
		return fmt.Errorf("unknown subcommand %q: use status or rebuild", sub)
	}

	store, err := backend.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer store.Close()
	rm, release, err := backend.Beside(ctx, store, *rmURL)
	if err != nil {
		return err
	}
	defer release()
	db, err := projections.OpenDB(rm)
	if err != nil {
		return err
	}
	defer db.Close()
	engine, err := projections.New(projections.Config{Store: store, DB: db, Projectors: readModels(), BatchSize: *batch})
	if err != nil {
		return err
	}
	if sub == "status" {
		return projectionStatus(ctx, store.Head, projections.NewReader(db, readModels()...), stdout)
	}
	return rebuildProjections(ctx, store.Head, engine, projections.NewReader(db, readModels()...), fs.Args(), stdout, stderr)
}

// rebuildProjections rebuilds the named read models (all when names is
// empty) in one Engine.RebuildAll, which reads the log once for all of
// them, under one progress bar, and says which were swapped in.
func rebuildProjections(ctx context.Context, head func(context.Context) (eventstore.Head, error), engine *projections.Engine,
	r *projections.Reader, names []string, stdout, stderr io.Writer) error {
	var chosen []string // projector names, in the order of readModels
	for _, p := range readModels() {
		for _, n := range append([]string{p.Name()}, p.Tables()...) {
			if len(names) == 0 || slices.Contains(names, n) {
				chosen = append(chosen, p.Name())
				break
			}
		}
	}
	generations := func() (map[string]int64, error) {
		states, err := r.States(ctx)
		out := map[string]int64{}
		for _, s := range states {
			if s.NextGeneration == 0 {
				out[s.Name] = s.Generation
			}
		}
		return out, err
	}
	before, err := generations()
	if err != nil {
		return err
	}
	h, err := head(ctx)
	if err != nil {
		return err
	}
	bar := progress.New(stderr, "rebuild "+strings.Join(chosen, ", "), "events", h.Position)
	start := time.Now()
	err = engine.RebuildAll(ctx, names, func(pos, head uint64) {
		bar.SetTotal(head)
		bar.Set(pos)
	})
	bar.Finish()
	if errors.Is(err, projections.ErrUnknownProjection) {
		return err // nothing was started
	}
	// Some may be swapped in even if others failed: say which.
	after, gerr := generations()
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	swapped := 0
	for _, name := range chosen {
		if g, ok := after[name]; ok && g > before[name] {
			pos, perr := r.Position(ctx, name)
			if perr != nil {
				return errors.Join(err, perr)
			}
			fmt.Fprintf(stdout, "%s: rebuilt and swapped in at position %d\n", name, pos)
			swapped++
		}
	}
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	models := "read models"
	if swapped == 1 {
		models = "read model"
	}
	fmt.Fprintf(stdout, "%d %s rebuilt in %s, reading the log once\n", swapped, models, time.Since(start).Round(time.Millisecond))
	return nil
}

// projectionStatus prints the stored state of every read model.
func projectionStatus(ctx context.Context, head func(context.Context) (eventstore.Head, error), r *projections.Reader, w io.Writer) error {
	h, err := head(ctx)
	if err != nil {
		return err
	}
	states, err := r.States(ctx)
	if err != nil {
		return err
	}
	stored := map[string]projections.StoredState{}
	for _, s := range states {
		stored[s.Name] = s
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTABLES\tVERSION\tPOSITION\tBEHIND\tSTATUS\tUPDATED\tNOTE")
	for _, p := range readModels() {
		s, ok := stored[p.Name()]
		if !ok {
			fmt.Fprintf(tw, "%s\t%s\t-/%d\t-\t%d\tnever run\t-\t\n", p.Name(), strings.Join(p.Tables(), ","), p.Version(), h.Position)
			continue
		}
		var note []string
		if s.Version != p.Version() {
			note = append(note, fmt.Sprintf("stored version %d, this binary's %d: payeshd rebuilds it on start", s.Version, p.Version()))
		}
		if s.NextGeneration != 0 {
			note = append(note, fmt.Sprintf("rebuild of version %d at position %d/%d", s.NextVersion, s.NextPosition, h.Position))
		}
		if s.LastError != "" {
			note = append(note, "last error: "+s.LastError)
		}
		var behind uint64
		if h.Position > s.Position {
			behind = h.Position - s.Position
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", p.Name(), strings.Join(p.Tables(), ","), s.Version, s.Position, behind,
			s.Status, s.UpdatedAt.Format(time.RFC3339), strings.Join(note, "; "))
	}
	return tw.Flush()
}
