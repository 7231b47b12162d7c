package vault

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
)

// KeyType says what a derived key is for.
type KeyType int

// Key types.
const (
	KeyEd25519 KeyType = iota + 1
	KeyAES256GCM
	KeySecp256k1
)

func (t KeyType) String() string {
	switch t {
	case KeyEd25519:
		return "Ed25519"
	case KeyAES256GCM:
		return "Aes256Gcm"
	case KeySecp256k1:
		return "Secp256k1"
	}
	return "KeyType(" + itoa(int(t)) + ")"
}

const redacted = "[REDACTED]"

// secretBytes holds key material behind two pointers: printing an enclosing struct by
// reflection (%+v, %#v, or fmt's bad-verb path, which dereferences one level) shows only an
// address, never the bytes.
type secretBytes struct{ b *[]byte }

func (s *secretBytes) String() string               { return redacted }
func (s *secretBytes) GoString() string             { return redacted }
func (s *secretBytes) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (s *secretBytes) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }
func (s *secretBytes) LogValue() slog.Value         { return slog.StringValue(redacted) }

func newSecret(b []byte) *secretBytes {
	c := append([]byte(nil), b...)
	return &secretBytes{b: &c}
}

func (s *secretBytes) bytes() []byte {
	if s == nil || s.b == nil {
		return nil
	}
	return *s.b
}

func (s *secretBytes) copy() []byte {
	if b := s.bytes(); b != nil {
		return append([]byte(nil), b...)
	}
	return nil
}

func (s *secretBytes) wipe() {
	if s != nil && s.b != nil {
		clear(*s.b)
		s.b = nil
	}
}

// DerivedKey is a key returned by the vault: an independent copy the caller wipes.
type DerivedKey struct {
	keyType KeyType
	path    string
	public  []byte
	private *secretBytes
}

// Type is the key type.
func (k DerivedKey) Type() KeyType { return k.keyType }

// Path is the canonical derivation path.
func (k DerivedKey) Path() string { return k.path }

// PublicKey returns a copy: 32 bytes (Ed25519), 33 (secp256k1, compressed) or nil (AES).
func (k DerivedKey) PublicKey() []byte {
	if k.public == nil {
		return nil
	}
	return append([]byte(nil), k.public...)
}

// PrivateKey returns a fresh copy of the private key (an RFC 8032 seed for Ed25519, the AES
// key, or the secp256k1 scalar); nil after Wipe. The caller wipes it.
func (k DerivedKey) PrivateKey() []byte { return k.private.copy() }

// Wipe clears the private key held by this copy.
func (k *DerivedKey) Wipe() { k.private.wipe() }

// Ed25519PrivateKey returns the key as an ed25519.PrivateKey (the caller wipes it).
func (k DerivedKey) Ed25519PrivateKey() (ed25519.PrivateKey, error) {
	if k.keyType != KeyEd25519 {
		return nil, ErrUnsupportedKeyType
	}
	seed := k.private.bytes()
	if len(seed) != ed25519.SeedSize {
		return nil, ErrInvalidKey
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func (k DerivedKey) text(extra string) string {
	return "DerivedKey{type=" + k.keyType.String() + " path=" + k.path + " public_key=" + hex.EncodeToString(k.public) + " private_key=" + redacted + extra + "}"
}

// String redacts the private key.
func (k DerivedKey) String() string { return k.text("") }

// GoString redacts the private key.
func (k DerivedKey) GoString() string { return k.text("") }

// Format redacts for every verb.
func (k DerivedKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.text(""))) }

// LogValue redacts the private key.
func (k DerivedKey) LogValue() slog.Value { return slog.StringValue(k.text("")) }

type keyJSON struct {
	KeyType   string `json:"key_type"`
	Path      string `json:"path"`
	PublicKey string `json:"public_key"`
	Private   string `json:"private_key"`
	ChainCode string `json:"chain_code,omitempty"`
}

// MarshalJSON writes {"key_type","path","public_key","private_key":"[REDACTED]"}.
func (k DerivedKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(keyJSON{KeyType: k.keyType.String(), Path: k.path, PublicKey: hex.EncodeToString(k.public), Private: redacted})
}

// UnmarshalJSON always fails: redacted key material cannot be restored.
func (k *DerivedKey) UnmarshalJSON([]byte) error { return ErrRedacted }

// ExtendedKey is a key with its chain code, from the seed-level functions.
type ExtendedKey struct {
	DerivedKey
	chain *secretBytes
}

// ChainCode returns a copy of the chain code (secret like the private key).
func (k ExtendedKey) ChainCode() []byte { return k.chain.copy() }

// Wipe clears the private key and chain code of this copy.
func (k *ExtendedKey) Wipe() {
	k.DerivedKey.Wipe()
	k.chain.wipe()
}

func (k ExtendedKey) etext() string {
	return "Extended" + k.DerivedKey.text(" chain_code="+redacted)
}

// String redacts key and chain code.
func (k ExtendedKey) String() string { return k.etext() }

// GoString redacts key and chain code.
func (k ExtendedKey) GoString() string { return k.etext() }

// Format redacts for every verb.
func (k ExtendedKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.etext())) }

// LogValue redacts key and chain code.
func (k ExtendedKey) LogValue() slog.Value { return slog.StringValue(k.etext()) }

// MarshalJSON adds "chain_code":"[REDACTED]".
func (k ExtendedKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(keyJSON{KeyType: k.keyType.String(), Path: k.path, PublicKey: hex.EncodeToString(k.public), Private: redacted, ChainCode: redacted})
}

// UnmarshalJSON always fails.
func (k *ExtendedKey) UnmarshalJSON([]byte) error { return ErrRedacted }
