package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Runner runs scenarios, each side in its own child process, one after the
// other: Payesh, then its baseline, then the next scenario.
type Runner struct {
	Env Env
	// Child returns the command that runs one side of a scenario in a
	// fresh process with the same Env and prints what RunSide writes on
	// its standard output. Nil runs the sides in this process; their
	// whole-process peak memory is then unknown.
	Child func(ctx context.Context, scenario, side string) *exec.Cmd
	// Out receives each scenario's table as soon as both sides are done.
	Out io.Writer
}

// SideResult is what one side of a scenario produced.
type SideResult struct {
	Label  string
	Points []Point
	// MaxRSS is the side's process's peak resident set in KiB (ru_maxrss),
	// setup included; 0 when unknown.
	MaxRSS int64
	// Wall is the side's whole run in seconds, setup included.
	Wall float64
	Err  string
}

// Point returns the side's point with key, if any.
func (s SideResult) Point(key string) (Point, bool) {
	for _, p := range s.Points {
		if p.Key == key {
			return p, true
		}
	}
	return Point{}, false
}

// Result is one scenario's outcome.
type Result struct {
	Scenario         Scenario
	Payesh, Baseline SideResult
}

// Failed reports whether either side failed.
func (r Result) Failed() bool { return r.Payesh.Err != "" || r.Baseline.Err != "" }

// childOutput is what a child prints.
type childOutput struct {
	Points []Point `json:"points"`
}

// RunSide runs one side of the named scenario in this process and writes
// its points to w as JSON: a child's whole job.
func RunSide(ctx context.Context, env *Env, scenario, side string, w io.Writer) error {
	found, err := Find(scenario)
	if err != nil {
		return err
	}
	if len(found) != 1 {
		return fmt.Errorf("bench: name one scenario to run a side of, not %q", scenario)
	}
	s, err := found[0].Side(side)
	if err != nil {
		return err
	}
	points, err := s.Run(ctx, env)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(childOutput{Points: points})
}

// Run measures every scenario, prints each table to Out as it completes,
// and returns the results. A failing side is recorded in its result and
// the run goes on; only a cancelled ctx stops it early.
func (r *Runner) Run(ctx context.Context, scenarios []Scenario) []Result {
	var results []Result
	for _, s := range scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(r.log(), "== %s (%s, %s)\n", s.Name, s.Section, s.Backend)
		res := Result{Scenario: s}
		res.Payesh = r.side(ctx, s, SidePayesh)
		res.Baseline = r.side(ctx, s, SideBaseline)
		results = append(results, res)
		if r.Out != nil {
			fmt.Fprintf(r.Out, "\n%s — %s\n\n", s.Section, s.Backend)
			writeTable(r.Out, res, r.Env.Sizes)
		}
	}
	return results
}

func (r *Runner) log() io.Writer {
	if r.Env.Log == nil {
		return io.Discard
	}
	return r.Env.Log
}

func (r *Runner) side(ctx context.Context, s Scenario, name string) (res SideResult) {
	side, _ := s.Side(name)
	res.Label = side.Label
	fmt.Fprintf(r.log(), "-- %s: %s\n", s.Name, side.Label)
	start := time.Now()
	defer func() { res.Wall = time.Since(start).Seconds() }()
	if r.Child == nil {
		env := r.Env
		points, err := side.Run(ctx, &env)
		res.Points = points
		if err != nil {
			res.Err = err.Error()
		}
		return res
	}
	cmd := r.Child(ctx, s.Name, name)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = r.log()
	err := cmd.Run()
	if cmd.ProcessState != nil {
		res.MaxRSS = maxRSS(cmd.ProcessState)
	}
	if err != nil {
		res.Err = fmt.Sprintf("%s side failed: %v", name, err)
		if ctx.Err() != nil {
			res.Err = fmt.Sprintf("%s side interrupted: %v", name, ctx.Err())
		}
		return res
	}
	var out childOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		res.Err = fmt.Sprintf("%s side printed no result: %v (%q)", name, err, truncate(stdout.String(), 200))
		return res
	}
	res.Points = out.Points
	return res
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Line is one evaluated row of a scenario's table.
type Line struct {
	Row              Row
	Payesh, Baseline *Point
	// Ratio is Payesh's rate over the baseline's (0 when either is missing).
	Ratio float64
	// Target renders the row's target ("" when none); Met says whether it
	// was met and is nil when there is no target or nothing to judge.
	Target string
	Met    *bool
}

// Lines evaluates a result's rows.
func (r Result) Lines(s Sizes) []Line {
	rows := r.Scenario.Rows(s)
	labels := map[string]string{}
	for _, row := range rows {
		labels[row.Key] = row.Label
	}
	var lines []Line
	for _, row := range rows {
		l := Line{Row: row}
		if p, ok := r.Payesh.Point(row.Key); ok {
			l.Payesh = &p
		}
		if p, ok := r.Baseline.Point(row.Key); ok {
			l.Baseline = &p
		}
		if l.Payesh != nil && l.Baseline != nil && l.Baseline.Rate() > 0 && l.Payesh.Latency == nil && l.Baseline.Latency == nil {
			l.Ratio = l.Payesh.Rate() / l.Baseline.Rate()
		}
		t := row.Target
		if !t.IsZero() {
			l.Target = t.String(labels[t.FlatWith])
			// Each part of the target that can be judged must be met.
			var verdicts []bool
			switch {
			case t.Ratio > 0 && l.Ratio > 0:
				verdicts = append(verdicts, l.Ratio >= t.Ratio)
			case t.Rate > 0 && l.Payesh != nil:
				verdicts = append(verdicts, l.Payesh.Rate() >= t.Rate)
			case t.FlatWith != "" && l.Payesh != nil:
				if ref, ok := r.Payesh.Point(t.FlatWith); ok && ref.Rate() > 0 {
					verdicts = append(verdicts, l.Payesh.Rate() >= (1-t.Within)*ref.Rate())
				}
			}
			if t.MaxRSS > 0 && l.Payesh != nil && l.Payesh.PeakRSS > 0 {
				verdicts = append(verdicts, l.Payesh.PeakRSS < t.MaxRSS)
			}
			if len(verdicts) > 0 {
				met := !slices.Contains(verdicts, false)
				l.Met = &met
			}
		}
		lines = append(lines, l)
	}
	return lines
}
