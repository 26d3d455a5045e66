package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payesh/payesh/domain/applicant"
)

// Vault keeps applicants' data keys in the store's file, in a table outside
// the log. Destroying a key overwrites it: the vault's connection runs with
// secure_delete, so freed pages are zeroed, and the write-ahead log is
// checkpointed and truncated afterwards, so no copy of the key survives in
// the WAL either. Backups taken before the destruction still hold the key;
// the operator's backup retention decides how long erasure takes to be
// complete.
type Vault struct {
	s *Store
}

var _ applicant.Vault = (*Vault)(nil)

// Vault returns the store's applicant-key vault.
func (s *Store) Vault() *Vault { return &Vault{s: s} }

// Key implements applicant.Vault.
func (v *Vault) Key(ctx context.Context, keyID string, create bool) ([]byte, error) {
	if err := applicant.CheckKeyID(keyID); err != nil {
		return nil, err
	}
	key, erased, found, err := v.lookup(ctx, v.s.read, keyID)
	switch {
	case err != nil:
		return nil, err
	case erased:
		return nil, applicant.ErrErased
	case found:
		return key, nil
	case !create:
		return nil, applicant.ErrNoKey
	}
	fresh := make([]byte, applicant.KeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("sqlite: vault: %w", err)
	}
	// INSERT OR IGNORE then read back: of concurrent creators, the first
	// insert wins and every one of them returns its key.
	if _, err := v.s.write.ExecContext(ctx,
		`INSERT OR IGNORE INTO applicant_keys (key_id, key, created_at) VALUES (?, ?, ?)`,
		keyID, fresh, time.Now().UnixMicro()); err != nil {
		return nil, v.s.readError(err)
	}
	clear(fresh)
	key, erased, found, err = v.lookup(ctx, v.s.write, keyID)
	switch {
	case err != nil:
		return nil, err
	case erased:
		return nil, applicant.ErrErased
	case !found:
		return nil, errors.New("sqlite: vault: key vanished after insert")
	}
	return key, nil
}

func (v *Vault) lookup(ctx context.Context, db *sql.DB, keyID string) (key []byte, erased, found bool, err error) {
	var erasedAt sql.NullInt64
	// Not cancellable mid-query, for the reason given at Store.readCtx.
	err = db.QueryRowContext(context.WithoutCancel(ctx), `SELECT key, erased_at FROM applicant_keys WHERE key_id = ?`, keyID).Scan(&key, &erasedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, v.s.readError(err)
	}
	return key, erasedAt.Valid, true, nil
}

// Destroy implements applicant.Vault.
func (v *Vault) Destroy(ctx context.Context, keyID string) error {
	if err := applicant.CheckKeyID(keyID); err != nil {
		return err
	}
	conn, err := v.s.write.Conn(ctx)
	if err != nil {
		return v.s.readError(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return v.s.readError(err)
	}
	now := time.Now().UnixMicro()
	if _, err := conn.ExecContext(ctx, `
INSERT INTO applicant_keys (key_id, key, created_at, erased_at) VALUES (?, NULL, ?, ?)
ON CONFLICT (key_id) DO UPDATE SET key = NULL, erased_at = coalesce(erased_at, excluded.erased_at)`,
		keyID, now, now); err != nil {
		return v.s.readError(err)
	}
	// Move the page with the zeroed key into the database file and drop
	// the WAL frames that still hold the old page.
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return v.s.readError(err)
	}
	return nil
}
