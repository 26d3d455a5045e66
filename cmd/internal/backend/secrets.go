package backend

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
)

// DevPseudonymKey keys applicant pseudonyms when no key is configured, so
// that the demo runs with zero setup. It is public, so pseudonyms made
// with it protect nothing: the tools say so loudly, and payeshd accepts it
// only in --dev mode.
const DevPseudonymKey = "payesh DEVELOPMENT pseudonym key - public, never use in production"

// PseudonymKeyEnv names the environment variable holding the key in hex.
const PseudonymKeyEnv = "PAYESH_PSEUDONYM_KEY"

// PseudonymKey reads the applicant pseudonymisation key from file (hex, or
// 32+ raw bytes), else from $PAYESH_PSEUDONYM_KEY (hex), else returns the
// development key with dev true.
func PseudonymKey(file string) (key []byte, dev bool, err error) {
	switch {
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, false, fmt.Errorf("pseudonymisation key: %w", err)
		}
		text := bytes.TrimSpace(raw)
		if k, err := hex.DecodeString(string(text)); err == nil && len(k) > 0 {
			key = k
		} else {
			key = raw
		}
	case os.Getenv(PseudonymKeyEnv) != "":
		k, err := hex.DecodeString(strings.TrimSpace(os.Getenv(PseudonymKeyEnv)))
		if err != nil {
			return nil, false, fmt.Errorf("$%s is not hex: %w", PseudonymKeyEnv, err)
		}
		key = k
	default:
		return []byte(DevPseudonymKey), true, nil
	}
	if err := applicant.CheckPseudonymKey(key); err != nil {
		return nil, false, err
	}
	return key, false, nil
}

// Vault returns the applicant key vault kept beside the store's log.
func Vault(st eventstore.Store) (applicant.Vault, error) {
	switch s := st.(type) {
	case *sqlite.Store:
		return s.Vault(), nil
	case *postgres.Store:
		return s.Vault(), nil
	}
	return nil, fmt.Errorf("the %T store keeps no applicant vault: it is kept in the read-model database (--readmodels)", st)
}
