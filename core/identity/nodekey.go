package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
)

// ErrInvalidKey reports key material of the wrong length or type.
var ErrInvalidKey = errors.New("identity: invalid key")

// NodeKey is a node's Ed25519 key pair. Every text form shows only the fingerprint.
type NodeKey struct {
	priv ed25519.PrivateKey
	fp   string
}

// Generate returns a fresh random node key (development: the fingerprint changes every run).
func Generate() (*NodeKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return fromPrivate(priv), nil
}

// NewNodeKey builds a node key from a 32-byte RFC 8032 seed (for example the vault's
// IDENTITY key). The seed is copied; the caller may wipe its own copy.
func NewNodeKey(seed []byte) (*NodeKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrInvalidKey, len(seed), ed25519.SeedSize)
	}
	return fromPrivate(ed25519.NewKeyFromSeed(seed)), nil
}

func fromPrivate(priv ed25519.PrivateKey) *NodeKey {
	pub, _ := priv.Public().(ed25519.PublicKey)
	return &NodeKey{priv: priv, fp: FingerprintKey(pub)}
}

// Public returns the Ed25519 public key.
func (k *NodeKey) Public() ed25519.PublicKey {
	pub, _ := k.priv.Public().(ed25519.PublicKey)
	return pub
}

// PrivateKey returns the private key. Callers must not log or persist it except through WriteKeyFile.
func (k *NodeKey) PrivateKey() ed25519.PrivateKey { return k.priv }

// Fingerprint returns "ed25519:<hex public key>".
func (k *NodeKey) Fingerprint() string { return k.fp }

// String renders only the fingerprint.
func (k *NodeKey) String() string {
	if k == nil {
		return "NodeKey(nil)"
	}
	return "NodeKey(" + k.fp + ")"
}

// GoString renders only the fingerprint, so %#v never shows key bytes.
func (k *NodeKey) GoString() string { return k.String() }

// Format makes every verb (%v, %+v, %x, %s, ...) render the fingerprint only.
func (k *NodeKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue renders the fingerprint in slog records.
func (k *NodeKey) LogValue() slog.Value { return slog.StringValue(k.String()) }
