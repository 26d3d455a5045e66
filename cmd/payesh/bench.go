package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/payesh/payesh/bench"
)

const defaultBenchPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// errBenchFailed says some benchmark could not run; the report names it.
var errBenchFailed = errors.New("some benchmarks failed (see the report)")

// runBench runs the benchmarks beside their baselines, prints a table per
// benchmark and writes the Markdown report. With --side it is instead one
// side of one benchmark, run as a child of a parent payesh bench: it prints
// that side's measurements as JSON.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pg := fs.String("pg", envOr("PAYESH_BENCH_PG", defaultBenchPG), "PostgreSQL server URL; each benchmark gets its own schema there (env PAYESH_BENCH_PG)")
	quick := fs.Bool("quick", false, "smoke-test sizes: a minute, figures meaningless")
	out := fs.String("out", "", "write the Markdown report here (default docs/BENCHMARKS.md for a full run of every benchmark, none otherwise)")
	scenario := fs.String("scenario", "all", "benchmarks to run, comma-separated (see --list)")
	list := fs.Bool("list", false, "list the benchmarks and exit")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of tables")
	side := fs.String("side", "", "run only this side (payesh or baseline) of one benchmark, in this process, and print its points as JSON (what the parent runs in each child)")
	work := fs.String("work", "", "directory for SQLite files (default: a new temporary directory)")
	runID := fs.String("run-id", "", "names this run's PostgreSQL schemas (default: random)")
	peerCap := fs.Duration("peer-cap", 0, "time cap for each watermill-sql consumption (default 3m, quick 20s)")
	merge := fs.Bool("merge", false, "merge this run's results into the report at --out (default docs/BENCHMARKS.md), replacing its results of the benchmarks run and keeping the others")
	rerender := fs.Bool("rerender", false, "rewrite the report (--out, default docs/BENCHMARKS.md) from the measurements it holds, with the current prose, without measuring")
	keep := fs.Bool("keep", false, "keep the seeded logs (schemas, SQLite files in --work) when done, so that a later run with the same --work and --run-id reuses them instead of seeding again")
	profiles := fs.String("cpuprofile", "", "write a CPU profile of each side's process to this directory (SCENARIO-SIDE.pprof)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *list {
		for _, s := range bench.Scenarios() {
			fmt.Fprintf(stdout, "%-14s %s, %s: %s vs %s\n", s.Name, s.Section, s.Backend, s.Payesh.Label, s.Baseline.Label)
		}
		return nil
	}
	if *rerender {
		path := *out
		if path == "" {
			path = filepath.Join("docs", "BENCHMARKS.md")
		}
		return rerenderReport(path, stderr)
	}
	scenarios, err := bench.Find(*scenario)
	if err != nil {
		return err
	}
	sizes := bench.FullSizes()
	if *quick {
		sizes = bench.QuickSizes()
	}
	if *peerCap > 0 {
		sizes.PeerCap = *peerCap
	}
	// Every process of the run (this one and each side's child) rebuilds
	// and runs the read models payesh and payeshd run.
	env := bench.Env{Sizes: sizes, PG: *pg, Work: *work, RunID: *runID, Keep: *keep, Log: stderr, Projectors: readModels()}
	if *keep && (*work == "" || *runID == "") {
		return &exitError{code: 2, err: errors.New("--keep needs --work and --run-id: a later run finds the logs by them")}
	}

	if *side != "" {
		if env.Work == "" || env.RunID == "" {
			return errors.New("--side needs --work and --run-id (it is run by a parent payesh bench)")
		}
		if *profiles != "" {
			stop, err := startCPUProfile(filepath.Join(*profiles, *scenario+"-"+*side+".pprof"))
			if err != nil {
				return err
			}
			defer stop()
		}
		return bench.RunSide(ctx, &env, *scenario, *side, stdout)
	}

	// The parent: it owns the run's work directory and schemas and cleans
	// them up whatever happens.
	if env.RunID == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		env.RunID = hex.EncodeToString(b[:])
	}
	if env.Work == "" {
		dir, err := os.MkdirTemp("", "payesh-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		env.Work = dir
	}
	defer func() {
		if env.Keep {
			fmt.Fprintf(stderr, "payesh bench: kept the seeded logs (schemas bench_*_%s, files in %s)\n", env.RunID, env.Work)
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		names, err := bench.RunSchemas(cctx, env.PG, env.RunID)
		if err == nil {
			err = bench.DropSchemas(cctx, env.PG, names)
		}
		if err != nil {
			fmt.Fprintf(stderr, "payesh bench: cleaning up schemas bench_*_%s: %v\n", env.RunID, err)
		}
	}()

	report := *out
	if report == "" && ((*scenario == "all" && !*quick && !*asJSON) || *merge) {
		report = filepath.Join("docs", "BENCHMARKS.md")
	}
	var base *bench.Report
	if *merge {
		if *quick {
			return &exitError{code: 2, err: errors.New("--merge takes full-size runs only: quick figures would replace real ones")}
		}
		old, err := os.ReadFile(report)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--merge: %w", err)}
		}
		rep, err := bench.ParseReport(old)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--merge: %w", err)}
		}
		base = &rep
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	childArgs := []string{"bench", "--pg", env.PG, "--work", env.Work, "--run-id", env.RunID}
	if env.Keep {
		childArgs = append(childArgs, "--keep")
	}
	if *quick {
		childArgs = append(childArgs, "--quick")
	}
	if *peerCap > 0 {
		childArgs = append(childArgs, "--peer-cap", peerCap.String())
	}
	if *profiles != "" {
		abs, err := filepath.Abs(*profiles)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return err
		}
		childArgs = append(childArgs, "--cpuprofile", abs)
	}
	runner := bench.Runner{
		Env: env,
		Child: func(ctx context.Context, scenario, side string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, exe, append(childArgs, "--scenario", scenario, "--side", side, "--json")...)
			// Interrupted children get a chance to close their stores.
			cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
			cmd.WaitDelay = 30 * time.Second
			return cmd
		},
	}
	if !*asJSON {
		runner.Out = stdout
	}
	started := time.Now()
	fmt.Fprintf(stderr, "payesh bench: run %s, work directory %s\n", env.RunID, env.Work)
	results := runner.Run(ctx, scenarios)
	if err := ctx.Err(); err != nil {
		return err
	}

	failed := false
	for _, r := range results {
		failed = failed || r.Failed()
	}
	if *asJSON {
		if err := writeJSON(stdout, results, sizes); err != nil {
			return err
		}
	}
	if report != "" {
		rep := bench.Report{
			Command:  "payesh bench " + strings.Join(args, " "),
			Started:  started,
			Duration: time.Since(started),
			Machine:  bench.DescribeMachine(ctx, env.PG),
			PG:       env.PG,
			Sizes:    sizes,
			Results:  results,
		}
		rep.Command = strings.TrimSpace(rep.Command)
		if base != nil {
			base.Merge(rep)
			rep = *base
		}
		var buf bytes.Buffer
		if err := bench.WriteMarkdown(&buf, rep); err != nil {
			return err
		}
		if err := os.WriteFile(report, buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "payesh bench: report written to %s\n", report)
	}
	if failed {
		return &exitError{code: 1, err: errBenchFailed}
	}
	return nil
}

// writeJSON prints the results: per benchmark, each side's points and
// peak memory, and each row's ratio and verdict.
func writeJSON(w io.Writer, results []bench.Result, sizes bench.Sizes) error {
	type row struct {
		Key      string       `json:"key"`
		Label    string       `json:"label"`
		Payesh   *bench.Point `json:"payesh,omitempty"`
		Baseline *bench.Point `json:"baseline,omitempty"`
		Ratio    float64      `json:"ratio,omitempty"`
		Target   string       `json:"target,omitempty"`
		Met      *bool        `json:"met,omitempty"`
	}
	type side struct {
		Label     string  `json:"label"`
		MaxRSSKiB int64   `json:"max_rss_kib"`
		Seconds   float64 `json:"seconds"`
		Error     string  `json:"error,omitempty"`
	}
	type scenario struct {
		Name     string `json:"name"`
		Section  string `json:"section"`
		Backend  string `json:"backend"`
		Payesh   side   `json:"payesh"`
		Baseline side   `json:"baseline"`
		Rows     []row  `json:"rows"`
	}
	var out []scenario
	for _, r := range results {
		s := scenario{
			Name: r.Scenario.Name, Section: r.Scenario.Section, Backend: r.Scenario.Backend,
			Payesh:   side{r.Payesh.Label, r.Payesh.MaxRSS, r.Payesh.Wall, r.Payesh.Err},
			Baseline: side{r.Baseline.Label, r.Baseline.MaxRSS, r.Baseline.Wall, r.Baseline.Err},
		}
		for _, l := range r.Lines(sizes) {
			s.Rows = append(s.Rows, row{l.Row.Key, l.Row.Label, l.Payesh, l.Baseline, l.Ratio, l.Target, l.Met})
		}
		out = append(out, s)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// rerenderReport rewrites a report from the measurements it holds.
func rerenderReport(path string, stderr io.Writer) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rep, err := bench.ParseReport(old)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := bench.WriteMarkdown(&buf, rep); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "payesh bench: %s rewritten from its measurements of %s\n", path, rep.Started.UTC().Format("2006-01-02 15:04"))
	return nil
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
