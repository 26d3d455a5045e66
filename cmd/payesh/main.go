// Command payesh is Payesh's command-line tool for operators and auditors.
//
//	payesh verify --store URL     check the whole log's hash chain
//	payesh checkpoint --key FILE  sign the head; verify --checkpoint checks it later
//	payesh export --out FILE      write the log as NDJSON; import loads it
//	payesh replay --report NAME   recompute a read model from the log as of a point
//	payesh erase-applicant --ref REF --reason TEXT   erase an applicant's personal data
//
// Exit status: 0 on success, 1 when a check fails (for verify: the log was
// tampered with), 2 on a usage or connection error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: it parses its own flags from args and writes
// its report to stdout and progress to stderr.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"verify":          {"check every hash link and stream version in the log", runVerify},
		"seed":            {"generate a deterministic, calibrated national history", runSeed},
		"bench":           {"run the benchmarks beside their baselines and write docs/BENCHMARKS.md", runBench},
		"projections":     {"rebuild read models (blue/green) and show their positions", runProjections},
		"token":           {"make signing keys, mint and inspect API tokens, make API keys", runToken},
		"checkpoint":      {"sign the log's head (Ed25519) into a file kept outside the database", runCheckpoint},
		"export":          {"write the log (or a filtered part) as NDJSON with every envelope and hash", runExport},
		"import":          {"load a complete export into an empty store, checking every line", runImport},
		"replay":          {"recompute a read model from the log alone, as of a position or time, and write a report", runReplay},
		"erase-applicant": {"destroy an applicant's data key (crypto-shredding) and record the erasure", runErase},
	}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "payesh: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "payesh %s: %v\n", args[0], err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: payesh COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'payesh COMMAND -h' for a command's flags.")
}

// storeFlag registers the --store flag shared by most commands.
func storeFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("PAYESH_STORE")
	if def == "" {
		def = "sqlite://./data/payesh.db"
	}
	return fs.String("store", def, "event store URL: sqlite://PATH, postgres://USER@HOST:PORT/DB[?schema=NAME] or kurrentdb://HOST:PORT[?tls=false] (env PAYESH_STORE)")
}

// readModelsFlag adds --readmodels: the SQL database of the read models
// and the applicant vault when it is not the store's own (a KurrentDB
// store's), as payeshd takes it.
func readModelsFlag(fs *flag.FlagSet) *string {
	return fs.String("readmodels", os.Getenv("PAYESH_READMODELS"), "SQL database of the read models and the applicant vault, when not the store's own (required with a KurrentDB store) (env PAYESH_READMODELS)")
}
