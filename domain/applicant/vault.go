package applicant

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/payesh/payesh/domain"
)

// ErrErased is returned by Vault.Key for a key that was destroyed. It is
// final: the personal data sealed under that key is gone, and the key ID can
// never be given a key again.
var ErrErased = errors.New("applicant: data key erased")

// CheckKeyID refuses an empty key ID, as the Vault contract requires of
// every implementation.
func CheckKeyID(keyID string) error {
	if keyID == "" {
		return fmt.Errorf("applicant: empty key ID: %w", domain.ErrInvalid)
	}
	return nil
}

// ErrNoKey is returned by Vault.Key when asked, without create, for a key
// that was never created. It matches domain.ErrNotFound.
var ErrNoKey = fmt.Errorf("applicant: data key %w", domain.ErrNotFound)

// Vault stores per-applicant data keys outside the event log, so that
// destroying a key erases the personal data sealed under it.
//
// Implementations are safe for concurrent use. Both methods return
// ctx.Err() (possibly wrapped) when ctx is cancelled before they complete,
// and an error matching domain.ErrInvalid for an empty keyID. The contract
// is checked by vaulttest.Run, which every implementation runs.
type Vault interface {
	// Key returns the KeySize-byte key stored under keyID. When no key
	// exists and create is true, it generates a random key, stores it and
	// returns it; concurrent calls creating the same keyID all get the same
	// key. When no key exists and create is false, it returns ErrNoKey. For
	// a keyID that was destroyed it returns ErrErased, whatever create says.
	// The returned slice is the caller's to keep or zero.
	Key(ctx context.Context, keyID string, create bool) ([]byte, error)
	// Destroy deletes the key stored under keyID and remembers keyID as
	// erased, so that it is never created again. It is idempotent, and
	// destroying a keyID that never had a key succeeds and still blocks it.
	Destroy(ctx context.Context, keyID string) error
}

// MemoryVault is a Vault held in process memory, for tests and single-process
// demos. Its keys are lost when the process ends, which erases everything.
type MemoryVault struct {
	mu        sync.Mutex
	keys      map[string][]byte
	destroyed map[string]bool
}

// NewMemoryVault returns an empty MemoryVault.
func NewMemoryVault() *MemoryVault {
	return &MemoryVault{keys: map[string][]byte{}, destroyed: map[string]bool{}}
}

// Key implements Vault.
func (v *MemoryVault) Key(ctx context.Context, keyID string, create bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckKeyID(keyID); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.destroyed[keyID] {
		return nil, ErrErased
	}
	k, ok := v.keys[keyID]
	if !ok {
		if !create {
			return nil, ErrNoKey
		}
		k = make([]byte, KeySize)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("applicant: generate key: %w", err)
		}
		v.keys[keyID] = k
	}
	return append([]byte(nil), k...), nil
}

// Destroy implements Vault. It overwrites the key bytes before dropping
// them, which is as much as Go memory allows.
func (v *MemoryVault) Destroy(ctx context.Context, keyID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckKeyID(keyID); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[keyID]; ok {
		clear(k)
		delete(v.keys, keyID)
	}
	v.destroyed[keyID] = true
	return nil
}
