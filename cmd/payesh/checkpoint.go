package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/cmd/internal/progress"
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/checkpoint"
	"github.com/payesh/payesh/eventstore"
)

func runCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: payesh checkpoint --key FILE [--store URL] [--out FILE]\n\n"+
			"Verifies the log, signs its head (position, hash, the first event's hash as the log's\n"+
			"identity, and the time) with an Ed25519 key, writes the signed checkpoint to a file to\n"+
			"keep outside the database, and appends it to the log (stream "+checkpoint.Stream+").\n"+
			"Later, payesh verify --checkpoint FILE --pubkey FILE proves the log still extends it.\n"+
			"Make a key pair with: payesh token keygen --out DIR --name checkpoint\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := storeFlag(fs)
	keyFile := fs.String("key", "", "PEM file of the Ed25519 private key to sign with (PKCS#8, as payesh token keygen writes)")
	out := fs.String("out", "", "file to write the checkpoint to, never overwritten (default checkpoint-POSITION.json)")
	actor := fs.String("actor", "payesh-checkpoint", "actor ID recorded on the checkpoint event")
	skipVerify := fs.Bool("skip-verify", false, "sign the head without walking the chain first (the signature then vouches for a log nobody checked)")
	batch := fs.Int("batch", 10_000, "events read per round trip while verifying")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *keyFile == "" {
		fs.Usage()
		return errors.New("--key is required")
	}
	priv, err := auth.ReadPrivateKeyFile(*keyFile)
	if err != nil {
		return err
	}
	store, err := backend.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	defer store.Close()

	// The signature vouches for the head, so the chain under it is
	// verified first: a checkpoint must not enshrine a tampered log.
	var head eventstore.Head
	if *skipVerify {
		if head, err = store.Head(ctx); err != nil {
			return err
		}
	} else {
		start, err := store.Head(ctx)
		if err != nil {
			return err
		}
		bar := progress.New(stderr, "verify", "events", start.Position)
		rep, err := eventstore.Verify(ctx, store, eventstore.VerifyOptions{BatchSize: *batch, Progress: bar.Set})
		bar.Finish()
		var te *eventstore.TamperError
		if errors.As(err, &te) {
			printTamper(stdout, te)
			return &exitError{code: 1, err: errors.New("the log is tampered with: no checkpoint signed (details above)")}
		}
		if err != nil {
			return err
		}
		head = rep.Head
	}
	if head.Position == 0 {
		return errors.New("the log is empty: there is no head to sign")
	}
	first, err := store.ReadAll(ctx, 0, 1, eventstore.Filter{})
	if err != nil {
		return err
	}
	if len(first) != 1 || first[0].Position != 1 {
		return errors.New("the log has no event at position 1")
	}
	cp, err := checkpoint.New(head.Position, head.Hash.String(), first[0].Hash.String(), time.Now()).
		Sign(priv, auth.KeyID(priv.Public().(ed25519.PublicKey)))
	if err != nil {
		return err
	}
	file, err := cp.Marshal()
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = fmt.Sprintf("checkpoint-%d.json", head.Position)
	}
	// The file is what matters, so it is written first; recording the
	// checkpoint in the log is its copy inside the database.
	if err := writeNewFile(path, file); err != nil {
		return err
	}
	data, err := domain.Encode(cp)
	if err != nil {
		return err
	}
	res, err := store.Append(ctx, checkpoint.Stream, eventstore.Any, []eventstore.Proposed{{
		ID: uuid.Must(uuid.NewV7()).String(), Type: cp.EventType(), Data: data,
		Actor: eventstore.Actor{ID: *actor, Role: string(auth.RoleAuditor)},
	}})
	if err != nil {
		return fmt.Errorf("the checkpoint is in %s, but appending it to the log failed: %w", path, err)
	}
	fmt.Fprintf(stdout, "signed checkpoint: position %d, hash %s, log %s, key %s, at %s\n",
		cp.Position, cp.Hash, cp.LogID, cp.KeyID, cp.SignedAt.Format(time.RFC3339))
	fmt.Fprintf(stdout, "written to %s (keep it outside the database); recorded in the log at position %d\n", path, res.LastPosition)
	return nil
}

// writeNewFile writes data to a file that must not exist yet: a checkpoint
// or an export is evidence, never silently replaced.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}
