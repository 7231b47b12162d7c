package identity

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

const pemTypePrivateKey = "PRIVATE KEY"

// maxKeyFileSize bounds what LoadKeyFile reads; an Ed25519 PKCS#8 PEM is about 120 bytes.
const maxKeyFileSize = 64 << 10

// WriteKeyFile writes k as a PKCS#8 PEM file with mode 0600. It never overwrites.
func WriteKeyFile(path string, k *NodeKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return fmt.Errorf("identity: encode key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("identity: create key file %q: %w", path, err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der})
	clear(der)
	_, werr := f.Write(block)
	clear(block)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("identity: write key file %q: %w", path, err)
	}
	return nil
}

// LoadKeyFile reads a PKCS#8 PEM Ed25519 key written by WriteKeyFile (or openssl genpkey
// -algorithm ed25519). Other key types are rejected. A file readable by group or others is
// loaded with a warning on log (nil: slog.Default()).
func LoadKeyFile(path string, log *slog.Logger) (*NodeKey, error) {
	if log == nil {
		log = slog.Default()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: open key file %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: stat key file %q: %w", path, err)
	}
	if st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("%w: key file %q is larger than %d bytes", ErrInvalidKey, path, maxKeyFileSize)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("identity: read key file %q: %w", path, err)
	}
	defer clear(data)
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("key file is readable by group or others", "path", path, "mode", fs.FileMode(st.Mode().Perm()).String())
	}
	k, err := ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("identity: key file %q: %w", path, err)
	}
	return k, nil
}

// ParseKeyPEM decodes one PEM "PRIVATE KEY" block holding a PKCS#8 Ed25519 key.
func ParseKeyPEM(data []byte) (*NodeKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	defer clear(block.Bytes)
	if block.Type != pemTypePrivateKey {
		return nil, fmt.Errorf("%w: PEM block type %q, want %q", ErrInvalidKey, block.Type, pemTypePrivateKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key type %T, want Ed25519", ErrInvalidKey, key)
	}
	return fromPrivate(priv), nil
}
