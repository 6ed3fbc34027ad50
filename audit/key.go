package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// loadOrCreateKey reads the ed25519 signing key at path, creating it with
// mode 0600 when it does not exist. A key that group or others may read or
// write is refused: whoever holds it can forge checkpoints.
func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := createKey(path); err != nil {
			return nil, err
		}
		fi, err = os.Stat(path)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("signing key %q has mode %#o, "+
			"want no access for group or others (chmod 600)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := parsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", path, err)
	}
	return key, nil
}

// createKey writes a new key beside path and links it into place, so a
// crash leaves either no key or a whole one, and two processes racing to
// create it agree on one.
func createKey(path string) error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	data, err := marshalKey(key)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-key-*")
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create signing key: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// marshalKey encodes a key as PKCS#8 PEM, which openssl reads.
func marshalKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ed25519", k)
	}
	return key, nil
}

// LoadPublicKey reads the public key that checkpoints must be signed with
// from a PEM file: either the log's private key file or a public key
// derived from it with `openssl pkey -in audit.key -pubout`.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: load public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk != nil && blk.Type == "PUBLIC KEY" {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("audit: load public key %q: %w", path, err)
		}
		if pub, ok := k.(ed25519.PublicKey); ok {
			return pub, nil
		}
		return nil, fmt.Errorf("audit: load public key %q: key is %T, want ed25519",
			path, k)
	}
	key, err := parsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("audit: load public key %q: %w", path, err)
	}
	return key.Public().(ed25519.PublicKey), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}
