package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

const (
	ivLen   = 12
	saltLen = 32
	tagLen  = 16
)

// EncryptedData is the frozen JSON format of a sealed secret.
type EncryptedData struct {
	KeyVersion uint32 `json:"key_version"`
	Salt       string `json:"salt"` // base64 of 32 random bytes; stored, never read
	IV         string `json:"iv"`   // base64 of the 12-byte GCM nonce
	Data       string `json:"data"` // base64 of ciphertext ‖ 16-byte tag
}

// UnmarshalJSON requires all four fields, non-null and of the right JSON type; unknown fields
// are ignored.
func (e *EncryptedData) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: not a JSON object", ErrMalformedData)
	}
	var out EncryptedData
	fields := []struct {
		name string
		dst  any
	}{{"key_version", &out.KeyVersion}, {"salt", &out.Salt}, {"iv", &out.IV}, {"data", &out.Data}}
	for _, f := range fields {
		v, ok := raw[f.name]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return fmt.Errorf("%w: missing or null %q", ErrMalformedData, f.name)
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return fmt.Errorf("%w: %q has the wrong type", ErrMalformedData, f.name)
		}
	}
	*e = out
	return nil
}

// gcmFor builds AES-256-GCM for a derived key; the key buffer is wiped.
func gcmFor(k *DerivedKey) (cipher.AEAD, error) {
	key := k.PrivateKey()
	defer clear(key)
	k.Wipe()
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return g, nil
}

// Encrypt seals a UTF-8 plaintext under key version N with a fresh IV and salt.
func (v *Vault) Encrypt(plaintext []byte, version uint32) (*EncryptedData, error) {
	if !v.IsUnlocked() {
		return nil, ErrLocked
	}
	if version < MinKeyVersion || version > MaxKeyVersion {
		return nil, ErrInvalidKeyVersion
	}
	if !utf8.Valid(plaintext) {
		return nil, ErrInvalidPlaintext
	}
	k, err := v.DeriveEncryptionKeyForVersion(version)
	if err != nil {
		return nil, err
	}
	g, err := gcmFor(k)
	if err != nil {
		return nil, err
	}
	var iv [ivLen]byte
	var salt [saltLen]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return nil, fmt.Errorf("vault: random IV: %w", err)
	}
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("vault: random salt: %w", err)
	}
	var sealed []byte
	var sealErr error
	runSecret(func() { sealed, sealErr = seal(g, iv[:], plaintext) })
	if sealErr != nil {
		return nil, sealErr
	}
	return &EncryptedData{
		KeyVersion: version,
		Salt:       base64.StdEncoding.EncodeToString(salt[:]),
		IV:         base64.StdEncoding.EncodeToString(iv[:]),
		Data:       base64.StdEncoding.EncodeToString(sealed),
	}, nil
}

// seal runs GCM Seal, turning a panic (e.g. FIPS-only mode refusing caller nonces) into an error.
func seal(g cipher.AEAD, iv, pt []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: AES-GCM refused the operation", ErrInvalidKey)
		}
	}()
	return g.Seal(nil, iv, pt, nil), nil
}

// canonicalBase64 decodes s and requires that re-encoding reproduces it exactly.
func canonicalBase64(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// Decrypt opens a blob; the caller wipes the plaintext. Checks in order: locked, key version,
// encoding and lengths, then authentication (ErrDecryption with no detail).
func (v *Vault) Decrypt(ed *EncryptedData) ([]byte, error) {
	if !v.IsUnlocked() {
		return nil, ErrLocked
	}
	if ed == nil {
		return nil, ErrMalformedData
	}
	if ed.KeyVersion < MinKeyVersion || ed.KeyVersion > MaxKeyVersion {
		return nil, ErrInvalidKeyVersion
	}
	iv, ok := canonicalBase64(ed.IV)
	if !ok || len(iv) != ivLen {
		return nil, fmt.Errorf("%w: iv must be canonical base64 of 12 bytes", ErrMalformedData)
	}
	data, ok := canonicalBase64(ed.Data)
	if !ok || len(data) < tagLen {
		return nil, fmt.Errorf("%w: data must be canonical base64 of at least 16 bytes", ErrMalformedData)
	}
	k, err := v.DeriveEncryptionKeyForVersion(ed.KeyVersion)
	if err != nil {
		return nil, err
	}
	g, err := gcmFor(k)
	if err != nil {
		return nil, err
	}
	var pt []byte
	runSecret(func() { pt, err = open(g, iv, data) })
	if err != nil {
		return nil, ErrDecryption
	}
	if !utf8.Valid(pt) {
		clear(pt)
		return nil, ErrDecryption
	}
	return pt, nil
}

func open(g cipher.AEAD, iv, data []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, ErrDecryption
		}
	}()
	return g.Open(nil, iv, data, nil)
}

// Rotate re-encrypts a blob under another key version; the input is not modified.
func (v *Vault) Rotate(ed *EncryptedData, toVersion uint32) (*EncryptedData, error) {
	if !v.IsUnlocked() {
		return nil, ErrLocked
	}
	if toVersion < MinKeyVersion || toVersion > MaxKeyVersion {
		return nil, ErrInvalidKeyVersion
	}
	pt, err := v.Decrypt(ed)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return v.Encrypt(pt, toVersion)
}
