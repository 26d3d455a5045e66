package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/reference"
)

const tokenUsage = `usage:
  payesh token keygen --out DIR [--name NAME]
      write a new Ed25519 signing key pair: DIR/NAME.key (private, 0600) and DIR/NAME.pub
  payesh token mint (--key FILE | --dev) --role ROLE [--province|--agency|--bank|--firm ID] --subject ID [--ttl 24h]
      print a signed API token; --dev signs with the public development key (dev-mode servers only)
  payesh token inspect TOKEN [--pubkey FILE]
      show a token's claims and whether its signature verifies
  payesh token apikey --role ROLE [--province|--agency|--bank|--firm ID] --subject ID [--ttl DURATION] [--note TEXT]
      print a new API key and the line to add to the server's key file

roles and their scope flag: ministry, auditor, admin (none); province_office (--province IR-00…IR-30);
agency (--agency ID); bank (--bank ID); inspector (--firm ID)
`

// errTokenRefused is inspect's summary when the token would be refused; the
// details are already on stdout.
var errTokenRefused = errors.New("the token would be refused (details above)")

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return errors.New("missing subcommand: keygen, mint, inspect or apikey")
	}
	switch args[0] {
	case "keygen":
		return tokenKeygen(args[1:], stdout, stderr)
	case "mint":
		return tokenMint(args[1:], stdout, stderr)
	case "inspect":
		return tokenInspect(args[1:], stdout, stderr)
	case "apikey":
		return tokenAPIKey(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stderr, tokenUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, tokenUsage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// tokenFlags returns a flag set for a token subcommand that prints the
// subcommand's usage line.
func tokenFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("token "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// noArgs refuses positional arguments a subcommand does not take.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func tokenKeygen(args []string, stdout, stderr io.Writer) error {
	fs := tokenFlags("keygen", stderr)
	out := fs.String("out", "", "directory to write the key pair to (created, mode 0700, if missing)")
	name := fs.String("name", "payesh-token", "file name of the pair: NAME.key and NAME.pub")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	switch {
	case *out == "":
		return errors.New("--out DIR is required")
	case *name == "" || strings.ContainsAny(*name, `/\`) || strings.HasPrefix(*name, "."):
		return fmt.Errorf("--name %q must be a plain file name", *name)
	}
	_, priv, err := auth.GenerateKey(nil)
	if err != nil {
		return err
	}
	created := false
	if _, err := os.Stat(*out); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(*out, 0o700); err != nil {
			return err
		}
		created = true
	}
	privPath, pubPath, err := auth.WriteKeyFiles(*out, *name, priv)
	if err != nil {
		if created {
			_ = os.Remove(*out)
		}
		return err
	}
	fmt.Fprintf(stdout, "private key: %s (mode 0600; keep it secret: whoever holds it can mint tokens)\n", privPath)
	fmt.Fprintf(stdout, "public key:  %s (give it to every server that verifies tokens)\n", pubPath)
	fmt.Fprintf(stdout, "key ID:      %s\n", auth.KeyID(priv.Public().(ed25519.PublicKey)))
	return nil
}

// principalFlags are the flags that name a principal.
type principalFlags struct {
	role, subject                *string
	province, agency, bank, firm *string
	skipCatalog                  *bool
}

func addPrincipalFlags(fs *flag.FlagSet) principalFlags {
	return principalFlags{
		role:        fs.String("role", "", "ministry, province_office, agency, bank, inspector, auditor or admin"),
		subject:     fs.String("subject", "", "stable ID of the person or system the credential is for"),
		province:    fs.String("province", "", "province code (IR-00 … IR-30), for --role province_office"),
		agency:      fs.String("agency", "", "agency ID, for --role agency"),
		bank:        fs.String("bank", "", "bank ID, for --role bank"),
		firm:        fs.String("firm", "", "inspection firm ID, for --role inspector"),
		skipCatalog: fs.Bool("skip-catalog", false, "do not check the agency, bank or firm against the default reference catalogue (for entities added later; the server still checks)"),
	}
}

// principal builds and validates the principal the flags name. With dev
// set, a missing scope or subject takes the development default.
func (f principalFlags) principal(dev bool) (auth.Principal, error) {
	role := auth.Role(*f.role)
	if *f.role == "" {
		return auth.Principal{}, errors.New("--role is required")
	}
	if !role.Valid() {
		return auth.Principal{}, fmt.Errorf("--role %q is not one of ministry, province_office, agency, bank, inspector, auditor, admin", *f.role)
	}
	given := map[auth.ScopeKind]string{
		auth.ScopeProvince: *f.province, auth.ScopeAgency: *f.agency, auth.ScopeBank: *f.bank, auth.ScopeFirm: *f.firm,
	}
	want := role.ScopeKind()
	for kind, id := range given {
		if id != "" && kind != want {
			if want == auth.ScopeNational {
				return auth.Principal{}, fmt.Errorf("--role %s has national scope and takes no --%s", role, kind)
			}
			return auth.Principal{}, fmt.Errorf("--role %s takes --%s, not --%s", role, want, kind)
		}
	}
	id := given[want]
	if id == "" && dev {
		id = auth.DevScopeID(role)
	}
	if id == "" && want != auth.ScopeNational {
		return auth.Principal{}, fmt.Errorf("--role %s needs --%s ID", role, want)
	}
	subject := *f.subject
	if subject == "" && dev {
		subject = auth.DevPrincipal(role).Subject
	}
	if subject == "" {
		return auth.Principal{}, errors.New("--subject is required")
	}
	var cat auth.Catalog
	if !*f.skipCatalog {
		cat = reference.DefaultCatalog()
	}
	p := auth.Principal{Subject: subject, Role: role, Scope: auth.Scope{Kind: want, ID: id}}
	if err := p.Validate(cat); err != nil {
		var use *auth.UnknownScopeError
		if errors.As(err, &use) && use.Kind != auth.ScopeProvince {
			return auth.Principal{}, fmt.Errorf("%w (use --skip-catalog for one added after the default catalogue)", err)
		}
		return auth.Principal{}, err
	}
	return p, nil
}

func tokenMint(args []string, stdout, stderr io.Writer) error {
	fs := tokenFlags("mint", stderr)
	keyFile := fs.String("key", "", "private key PEM file (PKCS#8) to sign with")
	dev := fs.Bool("dev", false, "sign with the public DEVELOPMENT key; such tokens work only on a server started in dev mode")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token (at most 2160h)")
	pf := addPrincipalFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if (*keyFile == "") == !*dev {
		return errors.New("give exactly one of --key FILE and --dev")
	}
	if *ttl < time.Second || *ttl > auth.DefaultMaxTTL {
		return fmt.Errorf("--ttl %s is outside 1s … %s; use an API key (payesh token apikey) for long-lived access", *ttl, auth.DefaultMaxTTL)
	}
	p, err := pf.principal(*dev)
	if err != nil {
		return err
	}
	var iss *auth.Issuer
	if *dev {
		iss = auth.DevIssuer(time.Now)
	} else {
		priv, err := auth.ReadPrivateKeyFile(*keyFile)
		if err != nil {
			return err
		}
		if iss, err = auth.NewIssuer(auth.IssuerConfig{Key: priv}); err != nil {
			return err
		}
	}
	token, c, err := iss.Issue(p, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "token for %s, key %s, expires %s\n", p, c.KeyID, c.ExpiryTime().Format(time.RFC3339))
	if *dev {
		fmt.Fprintln(stderr, "signed with the DEVELOPMENT key: accepted only by a server started in dev mode")
	}
	return nil
}

// parseInterspersed parses fs's flags wherever they stand among args and
// returns the positional arguments, so that "inspect TOKEN --pubkey F"
// works as well as "inspect --pubkey F TOKEN".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func tokenInspect(args []string, stdout, stderr io.Writer) error {
	fs := tokenFlags("inspect", stderr)
	pubFile := fs.String("pubkey", "", "public key PEM file (PKIX, one or more keys) to check the signature with")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want exactly one TOKEN argument, got %d", len(pos))
	}
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(pos[0]), "Bearer "))
	c, _, _, err := auth.ParseUnverified(token)
	if err != nil {
		return err
	}
	var keys []ed25519.PublicKey
	keySource := ""
	switch {
	case *pubFile != "":
		if keys, err = auth.ReadPublicKeysFile(*pubFile); err != nil {
			return err
		}
		keySource = *pubFile
	case c.KeyID == auth.DevKeyID:
		pub, _ := auth.DevKeys()
		keys, keySource = []ed25519.PublicKey{pub}, "the built-in development key"
	}

	claims, err := json.MarshalIndent(c, "  ", "  ")
	if err != nil {
		return err
	}
	now := time.Now()
	fmt.Fprintf(stdout, "claims:\n  %s\n", claims)
	fmt.Fprintf(stdout, "principal: %s\n", c.Principal())
	fmt.Fprintf(stdout, "issued:    %s\n", c.IssuedTime().Format(time.RFC3339))
	if exp := c.ExpiryTime(); now.Before(exp) {
		fmt.Fprintf(stdout, "expires:   %s (in %s)\n", exp.Format(time.RFC3339), exp.Sub(now).Round(time.Second))
	} else {
		fmt.Fprintf(stdout, "expires:   %s (%s ago)\n", exp.Format(time.RFC3339), now.Sub(exp).Round(time.Second))
	}
	if c.KeyID == auth.DevKeyID {
		fmt.Fprintln(stdout, "key:       "+c.KeyID+" (the public DEVELOPMENT key: dev-mode servers only)")
	} else {
		fmt.Fprintln(stdout, "key:       "+c.KeyID)
	}
	if keys == nil {
		fmt.Fprintln(stdout, "signature: not checked (give --pubkey FILE)")
		return nil
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, DevMode: true, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	_, verr := v.Verify(token)
	switch {
	case errors.Is(verr, auth.ErrUnknownKey):
		fmt.Fprintf(stdout, "signature: NOT CHECKED: no key with ID %s in %s\n", c.KeyID, keySource)
	case errors.Is(verr, auth.ErrBadSignature):
		fmt.Fprintf(stdout, "signature: INVALID with %s (altered or forged)\n", keySource)
	default:
		fmt.Fprintf(stdout, "signature: valid (%s)\n", keySource)
	}
	if verr != nil {
		fmt.Fprintf(stdout, "verdict:   REFUSED: %v\n", verr)
		return &exitError{code: 1, err: errTokenRefused}
	}
	fmt.Fprintln(stdout, "verdict:   valid")
	return nil
}

func tokenAPIKey(args []string, stdout, stderr io.Writer) error {
	fs := tokenFlags("apikey", stderr)
	ttl := fs.Duration("ttl", 0, "lifetime of the key; 0 for no expiry")
	note := fs.String("note", "", "free text stored with the key: who holds it, the ticket")
	pf := addPrincipalFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *ttl < 0 {
		return fmt.Errorf("--ttl %s is negative", *ttl)
	}
	p, err := pf.principal(false)
	if err != nil {
		return err
	}
	key, err := auth.NewAPIKey()
	if err != nil {
		return err
	}
	var expires *time.Time
	if *ttl > 0 {
		t := time.Now().Add(*ttl).UTC().Truncate(time.Second)
		expires = &t
	}
	fmt.Fprintf(stdout, "API key (shown only now; give it to %s): %s\n", p.Subject, key)
	fmt.Fprintln(stdout, "key-file line (append to the server's API key file):")
	fmt.Fprintln(stdout, auth.NewKeyEntry(key, p, expires, *note).Line())
	return nil
}
