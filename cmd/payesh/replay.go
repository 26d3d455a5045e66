package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/payesh/payesh/api"
	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/quotas"
	"github.com/payesh/payesh/replay"
)

const replayUsage = `usage: payesh replay [--store URL | --in FILE] [--position N | --until TIME] [--as-of TIME]
                    --report NAME [--format csv|json] [--query PARAMS] [--out FILE]

Recomputes a read model from the log alone, independent of the live read-model
tables, as it stood at a point of the log, and writes one of its reports. The
projectors run into a fresh SQLite database in a temporary directory, which is
removed at the end. The source is the event store (--store) or an export file
(--in, written by payesh export: its hash chain is checked as it is read).

The point, on either time axis or both:
  system time    --position N   the log up to global position N
                 --until TIME   the log as it stood at TIME: every event up to
                                the first one recorded after TIME
  business time  --as-of TIME   only the events that occurred at or before
                                TIME (occurred_at), in log order, as the log
                                up to the system-time point (default: its
                                head) knows them
With none of them, the head. TIME is ISO 8601 (2024-12-05, 2024-12-05T14:30:00Z)
or Solar Hijri (1403/09/15, "1403/09/15 14:30"); without a zone, Tehran time.

Reports (the API's rows and columns; --query takes its parameters, such as
"group_by=province&fiscal_year=1403"):
  facilities         GET /v1/facilities
  job-counts         GET /v1/job-counts
  quota-balances     GET /v1/quotas/accounts
  quota-totals       GET /v1/quotas/totals (json only)
  bank-performance   GET /v1/banks/performance (ages counted to the point's
                     time: --as-of, else --until, else when the event at
                     --position was recorded, else now; as_of in --query wins)
  inspections        GET /v1/inspections/stats
  deviations         GET /v1/deviations

A progress line goes to stderr, and a summary with the replay's throughput.
Exit status: 0 on success, 1 when the replay fails (an event the projectors
cannot apply, a broken export), 2 on a usage or connection error.`

// replayReport is a report payesh replay renders: the API route that
// renders it and the projector whose read model it reads.
type replayReport struct {
	path      string
	projector string
	csv       bool
}

var replayReports = map[string]replayReport{
	"facilities":       {"/v1/facilities", facilities.Name, true},
	"job-counts":       {"/v1/job-counts", facilities.Name, true},
	"quota-balances":   {"/v1/quotas/accounts", quotas.Name, true},
	"quota-totals":     {"/v1/quotas/totals", quotas.Name, false},
	"bank-performance": {"/v1/banks/performance", banks.Name, true},
	"inspections":      {"/v1/inspections/stats", inspections.Name, true},
	"deviations":       {"/v1/deviations", deviations.Name, true},
}

func reportNames() string {
	names := make([]string, 0, len(replayReports))
	for n := range replayReports {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// usageError is a mistake on the command line: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func parseWhen(flagName, s string) (time.Time, error) {
	t, err := calendar.ParseDate(s)
	if err != nil {
		return time.Time{}, usageError("--%s %q: not a date or time (2024-12-05, 2024-12-05T14:30:00Z, 1403/09/15, \"1403/09/15 14:30\")", flagName, s)
	}
	return t, nil
}

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, replayUsage+"\n\nflags:"); fs.PrintDefaults() }
	storeURL := storeFlag(fs)
	in := fs.String("in", "", "read the log from an export file (payesh export) instead of a store")
	position := fs.Uint64("position", 0, "system time: replay the log up to this global position")
	until := fs.String("until", "", "system time: replay the log as it stood at this time (recorded_at)")
	asOf := fs.String("as-of", "", "business time: keep only the events that occurred at or before this time")
	reportName := fs.String("report", "", "the report: "+reportNames())
	format := fs.String("format", "csv", "csv or json")
	query := fs.String("query", "", "the report's API query parameters, e.g. \"group_by=province&fiscal_year=1403\"")
	out := fs.String("out", "", "write the report to this file (default stdout)")
	tempDir := fs.String("temp-dir", "", "where the temporary read-model database is made (default the system's)")
	batch := fs.Int("batch", 0, "events per transaction of the replay (default 10000)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	storeGiven := false
	fs.Visit(func(f *flag.Flag) { storeGiven = storeGiven || f.Name == "store" })

	// Check everything before any work.
	rep, ok := replayReports[*reportName]
	switch {
	case *reportName == "":
		return usageError("--report is required: %s", reportNames())
	case !ok:
		return usageError("--report %q: not a report; choose one of %s", *reportName, reportNames())
	case *format != "csv" && *format != "json":
		return usageError("--format %q: csv or json", *format)
	case *format == "csv" && !rep.csv:
		return usageError("--report %s is JSON only: add --format json", *reportName)
	case *in != "" && storeGiven:
		return usageError("give --store or --in, not both")
	case *position > 0 && *until != "":
		return usageError("give --position or --until, not both: both are system time")
	}
	var cut replay.Cut
	cut.Position = *position
	var err error
	if *until != "" {
		if cut.RecordedAt, err = parseWhen("until", *until); err != nil {
			return err
		}
	}
	if *asOf != "" {
		if cut.OccurredAt, err = parseWhen("as-of", *asOf); err != nil {
			return err
		}
	}
	params, err := url.ParseQuery(*query)
	if err != nil {
		return usageError("--query %q: %v", *query, err)
	}
	for _, k := range []string{"cursor", "limit", "min_position", "max_wait", "as_of_position"} {
		if params.Has(k) {
			return usageError("--query: %s is not taken here (the report is whole, and the point is --position, --until or --as-of)", k)
		}
	}
	if params.Has("as_of") && rep.projector != banks.Name {
		return usageError("--query: as_of is --as-of here")
	}
	var projector projections.Projector
	for _, p := range readModels() {
		if p.Name() == rep.projector {
			projector = p
		}
	}
	if projector == nil {
		return fmt.Errorf("no projector %s among the read models", rep.projector)
	}

	// The report's parameters are checked before the replay, against a
	// database without read models: a query the API refuses is refused
	// now, one it accepts gets as far as "not built yet".
	if err := checkQuery(ctx, rep, params, *format); err != nil {
		return err
	}

	// The source.
	var log replay.Log
	if *in != "" {
		check := progress.New(stderr, "check "+*in, "events", 0)
		f, err := replay.OpenFile(ctx, *in, check.Set)
		check.Finish()
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		defer f.Close()
		log = f
	} else {
		st, err := backend.Open(ctx, *storeURL)
		if err != nil {
			return err
		}
		defer st.Close()
		log = st
	}

	// A reader that goes away (payesh replay ... | head) must not kill the
	// process before it removes its temporary database: with SIGPIPE
	// caught, a write to a closed stdout fails instead, and the deferred
	// clean-up runs.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)

	bar := progress.New(stderr, "replay", "events", 0)
	start := time.Now()
	snap, err := replay.Run(ctx, replay.Config{
		Log: log, Projectors: []projections.Projector{projector}, Cut: cut, TempDir: *tempDir, BatchSize: *batch,
		Progress: func(pos, end uint64) {
			bar.SetTotal(end)
			bar.Set(pos)
		},
	})
	bar.Finish()
	switch {
	case errors.Is(err, replay.ErrBeyondHead):
		return usageError("%v", err)
	case err != nil && ctx.Err() == nil && !isConnError(err):
		return &exitError{code: 1, err: err}
	case err != nil:
		return err
	}
	defer snap.Close()
	elapsed := time.Since(start)

	if rep.projector == banks.Name && !params.Has("as_of") {
		switch {
		case !cut.OccurredAt.IsZero():
			params.Set("as_of", cut.OccurredAt.UTC().Format(time.RFC3339Nano))
		case !cut.RecordedAt.IsZero():
			params.Set("as_of", cut.RecordedAt.UTC().Format(time.RFC3339Nano))
		case cut.Position > 0:
			last, err := log.ReadAll(ctx, cut.Position-1, 1, eventstore.Filter{})
			if err != nil {
				return err
			}
			params.Set("as_of", last[0].RecordedAt.Format(time.RFC3339Nano))
		}
	}

	// A file appears only complete: the report goes to a temporary file
	// beside it, renamed when done.
	w := stdout
	var tmp *os.File
	if *out != "" {
		tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
		defer tmp.Close()
		w = tmp
	}
	rd := api.NewRenderer(snap.DB, nil)
	meta := replayMeta{Report: *reportName, Cut: cutJSON(cut), Head: snap.Head, Position: snap.Position}
	if *format == "csv" {
		err = renderCSV(ctx, rd, rep.path, params, w)
	} else {
		err = renderJSON(ctx, rd, rep.path, params, meta, w)
	}
	if err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return err
		}
	}
	rate := float64(snap.Position) / elapsed.Seconds()
	fmt.Fprintf(stderr, "replayed %d events (%s; the log's head is %d) in %s: %.0f events/s; %s written as of position %d\n",
		snap.Position, cut, snap.Head, elapsed.Round(time.Millisecond), rate, *reportName, snap.Position)
	return nil
}

// checkQuery renders the report over an empty database, where every
// query the API accepts fails with 503 (the read model is not built).
func checkQuery(ctx context.Context, rep replayReport, params url.Values, format string) error {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rd := api.NewRenderer(&projections.DB{Write: db, Read: db, Dialect: projections.SQLite}, nil)
	accept := "application/json"
	if format == "csv" {
		accept = "text/csv"
	}
	_, err = serve(ctx, rd, rep.path, params, accept, io.Discard)
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return nil
}

// isConnError tells a store that went away from a replay that failed on
// the data: the first is exit status 2.
func isConnError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, eventstore.ErrClosed)
}

// replayMeta heads a JSON report.
type replayMeta struct {
	Report   string         `json:"report"`
	Cut      map[string]any `json:"cut"`
	Head     uint64         `json:"head"`
	Position uint64         `json:"position"`
}

func cutJSON(c replay.Cut) map[string]any {
	m := map[string]any{}
	if c.Position > 0 {
		m["position"] = c.Position
	}
	if !c.RecordedAt.IsZero() {
		m["until"] = c.RecordedAt.UTC().Format(time.RFC3339Nano)
	}
	if !c.OccurredAt.IsZero() {
		m["as_of"] = c.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	return m
}

// streamWriter is an http.ResponseWriter that streams a 200 answer's body
// to out and keeps any other answer's body for the error message.
type streamWriter struct {
	header http.Header
	code   int
	out    io.Writer
	err    error
	other  bytes.Buffer
}

func (s *streamWriter) Header() http.Header { return s.header }

func (s *streamWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

func (s *streamWriter) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	if s.code != http.StatusOK {
		return s.other.Write(b)
	}
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.out.Write(b)
	s.err = err
	return n, err
}

// problem turns a refused query into an error naming what was wrong.
func (s *streamWriter) problem(path string) error {
	var p api.Problem
	if err := json.Unmarshal(s.other.Bytes(), &p); err != nil || p.Title == "" {
		return fmt.Errorf("%s answered %d: %s", path, s.code, strings.TrimSpace(s.other.String()))
	}
	msg := p.Title
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	for _, f := range p.Errors {
		msg += fmt.Sprintf("\n  %s: %s", f.Field, f.Message)
	}
	if s.code == http.StatusUnprocessableEntity || s.code == http.StatusBadRequest {
		return usageError("--query: %s", msg)
	}
	return errors.New(msg)
}

func serve(ctx context.Context, rd *api.Renderer, path string, params url.Values, accept string, out io.Writer) (*streamWriter, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, path+"?"+params.Encode(), nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Accept", accept)
	sw := &streamWriter{header: http.Header{}, out: out}
	if err := rd.Serve(sw, r); err != nil {
		return nil, err
	}
	if sw.err != nil {
		return nil, sw.err
	}
	if sw.code != http.StatusOK {
		return nil, sw.problem(path)
	}
	return sw, nil
}

// renderCSV writes the API's CSV export of the report: every row.
func renderCSV(ctx context.Context, rd *api.Renderer, path string, params url.Values, w io.Writer) error {
	_, err := serve(ctx, rd, path, params, "text/csv", w)
	return err
}

// renderJSON writes the report as one JSON object: meta, the API answer's
// own fields (such as bank performance's as_of) and every item of every
// page, streamed page by page.
func renderJSON(ctx context.Context, rd *api.Renderer, path string, params url.Values, meta replayMeta, w io.Writer) error {
	head, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if path != "/v1/quotas/totals" {
		params.Set("limit", "1000")
	}
	first := true
	for {
		var buf bytes.Buffer
		if _, err := serve(ctx, rd, path, params, "application/json", &buf); err != nil {
			return err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(buf.Bytes(), &page); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(page["items"], &items); err != nil {
			return fmt.Errorf("%s: items: %w", path, err)
		}
		if first {
			// The answer's own fields, after the replay's.
			b := bytes.TrimSuffix(head, []byte("}"))
			keys := make([]string, 0, len(page))
			for k := range page {
				switch k {
				case "items", "next", "next_cursor", "position", "report", "cut", "head":
				default:
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				b = append(b, ',')
				b = strconv.AppendQuote(b, k)
				b = append(b, ':')
				b = append(b, page[k]...)
			}
			b = append(b, `,"items":[`...)
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		for i, it := range items {
			sep := ",\n"
			if first && i == 0 {
				sep = "\n"
			}
			if _, err := io.WriteString(w, sep); err != nil {
				return err
			}
			if _, err := w.Write(it); err != nil {
				return err
			}
		}
		first = false
		var next string
		if raw, ok := page["next_cursor"]; ok {
			if err := json.Unmarshal(raw, &next); err != nil {
				return err
			}
		}
		if next == "" {
			break
		}
		params.Set("cursor", next)
	}
	_, err = io.WriteString(w, "\n]}\n")
	return err
}
