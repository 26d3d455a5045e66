package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
)

const eraseUsage = `usage: payesh erase-applicant [--store URL] (--ref REF | --national-id ID|-) --reason TEXT [--dry-run]

Erases an applicant's personal data (national ID, name, phone) by crypto-shredding:
appends the erasure of the applicant's current data key to the applicant's stream,
with the reason, then destroys the key in the store's vault. Every sealed copy of the
data — in the facility registrations, the events endpoint, exports and backups of the
log — can no longer be opened. The log is not rewritten: verify still passes, and no
report changes (no read model holds personal data). Erasing again appends nothing,
and finishes a destruction that failed.

The applicant is named by REF, the pseudonym in their facility registrations
(applicant.ref: 64 hex digits), or by a national ID, from which the ref is computed
with the pseudonymisation key (HMAC-SHA256, the same key payeshd runs with:
--pseudonym-key FILE or $PAYESH_PSEUDONYM_KEY). "--national-id -" reads it from
standard input, so that it stays out of the shell's history and the process list.
--dry-run shows the ref and the applicant's keys and claims, and changes nothing.

Exit status: 0 on success, 1 when the applicant is unknown, 2 on a usage or
connection error.`

func runEraseApplicant(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("erase-applicant", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, eraseUsage+"\n\nflags:"); fs.PrintDefaults() }
	storeURL := storeFlag(fs)
	rmURL := readModelsFlag(fs)
	ref := fs.String("ref", "", "the applicant's reference (pseudonym), 64 hex digits")
	nid := fs.String("national-id", "", "the applicant's national ID (- reads it from standard input)")
	reason := fs.String("reason", "", "the legal basis or the request's reference, recorded in the log (no personal data)")
	keyFile := fs.String("pseudonym-key", "", "file holding the pseudonymisation key (hex or 32+ raw bytes); default $"+backend.PseudonymKeyEnv)
	actor := fs.String("actor", "", "who erases, recorded as the event's actor (default the login name)")
	dryRun := fs.Bool("dry-run", false, "show the applicant's ref, keys and claims; change nothing")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2, err: err}
	}
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case (*ref == "") == (*nid == ""):
		return usageError("name the applicant with --ref or --national-id (one of them)")
	case *reason == "" && !*dryRun:
		return usageError("--reason is required: the legal basis or the request's reference")
	}
	key, dev, err := backend.PseudonymKey(*keyFile)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *nid != "" && dev {
		fmt.Fprintf(stderr, "payesh erase-applicant: WARNING: no pseudonymisation key given (--pseudonym-key or $%s); "+
			"using the public DEVELOPMENT key: the ref is only right for a store written with it\n", backend.PseudonymKeyEnv)
	}
	if *nid == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		*nid = strings.TrimSpace(line)
	}

	st, err := backend.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	rm, release, err := backend.Beside(ctx, st, *rmURL)
	if err != nil {
		return err
	}
	defer release()
	vault, err := backend.Vault(rm)
	if err != nil {
		return err
	}
	svc, err := ledger.NewService(ledger.New(st, schema.Registry()), vault, key)
	if err != nil {
		return err
	}
	if *nid != "" {
		if *ref, err = svc.ApplicantRef(*nid); err != nil {
			return usageError("--national-id: not a valid national ID (10 digits with a correct check digit)")
		}
	}
	*ref = strings.ToLower(strings.TrimSpace(*ref))
	if !applicant.ValidRef(*ref) {
		return usageError("--ref %q: an applicant's ref is 64 hex digits", *ref)
	}

	if *dryRun {
		return describeApplicant(ctx, svc, vault, *ref, stdout)
	}
	who := *actor
	if who == "" {
		who = "payesh-cli"
		if u, err := user.Current(); err == nil && u.Username != "" {
			who = u.Username
		}
	}
	meta := ledger.Meta{Actor: eventstore.Actor{ID: who, Role: "admin", Org: "payesh"}, CorrelationID: "payesh erase-applicant"}
	er, err := svc.EraseApplicant(ctx, *ref, *reason, meta)
	var (
		nf *domain.NotFoundError
		ve *domain.ValidationError
	)
	switch {
	case errors.As(err, &nf):
		return &exitError{code: 1, err: fmt.Errorf("no applicant has the ref %s in this store", *ref)}
	case errors.As(err, &ve):
		return usageError("%v", err)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "applicant %s\n", *ref)
	if len(er.EventIDs) == 0 {
		fmt.Fprintln(stdout, "  already erased: nothing is sealed under a live key; no event appended")
	} else {
		fmt.Fprintf(stdout, "  erasure recorded: event %s at position %d (stream %s, version %d)\n", er.EventIDs[0], er.Position, er.Stream, er.Version)
	}
	fmt.Fprintf(stdout, "  data keys destroyed: %s\n", strings.Join(er.Destroyed, ", "))
	fmt.Fprintln(stdout, "OK: the applicant's personal data can no longer be opened")
	return nil
}

// describeApplicant prints what an erasure would act on.
func describeApplicant(ctx context.Context, svc *ledger.Service, vault applicant.Vault, ref string, w io.Writer) error {
	state, version, err := ledger.State(ctx, svc.Ledger(), applicant.StreamFor(ref), applicant.Decider(), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "applicant %s\n", ref)
	if version == 0 {
		return &exitError{code: 1, err: fmt.Errorf("no applicant has the ref %s in this store", ref)}
	}
	fmt.Fprintf(w, "  stream %s at version %d\n", applicant.StreamFor(ref), version)
	for _, c := range state.OpenClaims() {
		fmt.Fprintf(w, "  open claim: facility %s (%s, %d)\n", c.FacilityID, c.Program, int(c.FiscalYear))
	}
	for _, id := range state.Erased() {
		fmt.Fprintf(w, "  erased key: %s\n", id)
	}
	current := state.KeyID(ref)
	key, err := vault.Key(ctx, current, false)
	clear(key)
	switch {
	case err == nil:
		fmt.Fprintf(w, "  live key: %s (an erasure destroys it)\n", current)
	case errors.Is(err, applicant.ErrNoKey):
		fmt.Fprintf(w, "  no live key: nothing is sealed under %s\n", current)
	default:
		return err
	}
	fmt.Fprintln(w, "dry run: nothing changed")
	return nil
}

// runErase is erase-applicant reading --national-id - from standard input.
func runErase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runEraseApplicant(ctx, args, os.Stdin, stdout, stderr)
}
