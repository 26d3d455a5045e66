package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrKeyFormat is returned for key material that is not an Ed25519 key in
// the expected PEM encoding.
var ErrKeyFormat = errors.New("auth: not an Ed25519 key in PEM form")

// PEM block types: PKCS#8 for private keys, PKIX (SubjectPublicKeyInfo) for
// public keys, as openssl genpkey -algorithm ed25519 writes them.
const (
	pemPrivate = "PRIVATE KEY"
	pemPublic  = "PUBLIC KEY"
)

// GenerateKey returns a new Ed25519 key pair read from random (crypto/rand
// when random is nil).
func GenerateKey(random io.Reader) (ed25519.PublicKey, ed25519.PrivateKey, error) {
	if random == nil {
		random = rand.Reader
	}
	pub, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: generate key: %w", err)
	}
	return pub, priv, nil
}

// KeyID returns the ID that tokens signed by the key's private half carry
// in their "kid" claim: the first 12 bytes of the SHA-256 of the raw public
// key, base64url without padding (16 characters). It is derived, never
// configured, so a verifier needs nothing but the public key file.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// MarshalPrivateKeyPEM encodes a private key as a PKCS#8 "PRIVATE KEY" PEM
// block.
func MarshalPrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key has %d bytes, want %d", ErrKeyFormat, len(priv), ed25519.PrivateKeySize)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("auth: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key has %d bytes, want %d", ErrKeyFormat, len(pub), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("auth: encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// ParsePrivateKeyPEM decodes the first PEM block of data, which must be a
// PKCS#8 "PRIVATE KEY" holding an Ed25519 key.
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%w: no PEM block found", ErrKeyFormat)
	case block.Type != pemPrivate:
		return nil, fmt.Errorf("%w: PEM block is %q, want %q (PKCS#8)", ErrKeyFormat, block.Type, pemPrivate)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFormat, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is %T, not Ed25519", ErrKeyFormat, k)
	}
	return priv, nil
}

// ParsePublicKeysPEM decodes every PEM block of data; each must be a PKIX
// "PUBLIC KEY" holding an Ed25519 key. A file with several blocks is how a
// verifier accepts tokens of the old and the new key during a rotation.
func ParsePublicKeysPEM(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != pemPublic {
			return nil, fmt.Errorf("%w: PEM block %d is %q, want %q (PKIX)", ErrKeyFormat, n, block.Type, pemPublic)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM block %d: %v", ErrKeyFormat, n, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: PEM block %d holds a %T, not an Ed25519 key", ErrKeyFormat, n, k)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no PEM block found", ErrKeyFormat)
	}
	return keys, nil
}

// ReadPrivateKeyFile reads a private key written by WriteKeyFiles or by
// openssl genpkey -algorithm ed25519.
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read private key: %w", err)
	}
	k, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ReadPublicKeysFile reads one or more public keys from a PEM file.
func ReadPublicKeysFile(path string) ([]ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read public keys: %w", err)
	}
	keys, err := ParsePublicKeysPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// KeyFileNames returns the paths WriteKeyFiles writes for a key pair called
// name in dir: NAME.key (private) and NAME.pub (public).
func KeyFileNames(dir, name string) (private, public string) {
	return filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
}

// WriteKeyFiles writes priv as NAME.key (mode 0600) and its public half as
// NAME.pub (mode 0644) in dir, which must exist. It never overwrites: if
// either file exists it writes nothing and returns an error matching
// fs.ErrExist, and if writing the public key fails it removes the private
// key it wrote.
func WriteKeyFiles(dir, name string, priv ed25519.PrivateKey) (private, public string, err error) {
	privPEM, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		return "", "", err
	}
	pubPEM, err := MarshalPublicKeyPEM(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return "", "", err
	}
	private, public = KeyFileNames(dir, name)
	for _, p := range []string{private, public} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("auth: %s: %w; refusing to overwrite a key", p, os.ErrExist)
		}
	}
	if err := writeNew(private, privPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(public, pubPEM, 0o644); err != nil {
		_ = os.Remove(private)
		return "", "", err
	}
	return private, public, nil
}

// writeNew creates path exclusively with perm and writes data to it; a
// partial file is removed.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	return nil
}
