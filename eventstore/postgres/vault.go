package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/payesh/payesh/domain/applicant"
)

// Vault keeps applicants' data keys in the store's schema, in a table outside
// the log, so that destroying a key erases the personal data sealed under it
// while the log stays intact. A destroyed key's row stays, with key NULL, so
// the ID is never issued again.
//
// PostgreSQL has no secure delete: the old row version holding the key stays
// on disk until VACUUM reclaims it and the space is reused, and it stays in
// WAL archives and backups for their retention. Destroy runs VACUUM on the
// table as a best effort; the operator's retention of WAL and backups bounds
// how long a destroyed key can still be recovered from them.
type Vault struct {
	s     *Store
	table string
	once  sync.Once
	err   error
}

var _ applicant.Vault = (*Vault)(nil)

// Vault returns the store's applicant-key vault. Its table is created on
// first use.
func (s *Store) Vault() *Vault {
	return &Vault{s: s, table: pgx.Identifier{s.cfg.Schema, "applicant_keys"}.Sanitize()}
}

func (v *Vault) ensure(ctx context.Context) error {
	v.once.Do(func() {
		_, err := v.s.pool.Exec(ctx, `
CREATE TABLE IF NOT EXISTS `+v.table+` (
	key_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	key        BYTEA CHECK (key IS NULL OR length(key) = 32),
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	erased_at  TIMESTAMPTZ
)`)
		if err != nil {
			v.err = fmt.Errorf("postgres: vault table: %w", interpretError(err))
		}
	})
	return v.err
}

// Key implements applicant.Vault.
func (v *Vault) Key(ctx context.Context, keyID string, create bool) ([]byte, error) {
	if err := applicant.CheckKeyID(keyID); err != nil {
		return nil, err
	}
	if err := v.s.usable(ctx); err != nil {
		return nil, err
	}
	if err := v.ensure(ctx); err != nil {
		return nil, err
	}
	if create {
		fresh := make([]byte, applicant.KeySize)
		if _, err := rand.Read(fresh); err != nil {
			return nil, fmt.Errorf("postgres: vault: %w", err)
		}
		// Of concurrent creators the first insert wins; everyone reads
		// back the winner's key below.
		_, err := v.s.pool.Exec(ctx, `INSERT INTO `+v.table+` (key_id, key) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING`, keyID, fresh)
		clear(fresh)
		if err != nil {
			return nil, v.s.fail(err)
		}
	}
	var key []byte
	var erased bool
	err := v.s.pool.QueryRow(ctx, `SELECT key, erased_at IS NOT NULL FROM `+v.table+` WHERE key_id = $1`, keyID).Scan(&key, &erased)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, applicant.ErrNoKey
	case err != nil:
		return nil, v.s.fail(err)
	case erased:
		return nil, applicant.ErrErased
	}
	return key, nil
}

// Destroy implements applicant.Vault.
func (v *Vault) Destroy(ctx context.Context, keyID string) error {
	if err := applicant.CheckKeyID(keyID); err != nil {
		return err
	}
	if err := v.s.usable(ctx); err != nil {
		return err
	}
	if err := v.ensure(ctx); err != nil {
		return err
	}
	_, err := v.s.pool.Exec(ctx, `
INSERT INTO `+v.table+` (key_id, key, erased_at) VALUES ($1, NULL, now())
ON CONFLICT (key_id) DO UPDATE SET key = NULL, erased_at = coalesce(`+v.table+`.erased_at, excluded.erased_at)`, keyID)
	if err != nil {
		return v.s.fail(err)
	}
	// Best effort (see the type's doc): reclaim the dead row version that
	// still holds the key. VACUUM cannot run in a transaction; failing it
	// does not undo the erasure.
	_, _ = v.s.pool.Exec(ctx, `VACUUM `+v.table)
	return nil
}
