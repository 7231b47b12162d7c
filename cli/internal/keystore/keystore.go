// Package keystore keeps the node's mnemonic at rest, only ever encrypted: argon2id over the
// keystore passphrase gives an AES-256-GCM key; the KDF parameters are bound to the
// ciphertext as additional data (ADR 0008).
package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
)

// Version is the keystore format version.
const Version = 1

// KDF parameters: the minimums of ADR 0008 and bounds that keep a hostile file from
// asking for absurd work.
const (
	DefaultMemoryKiB = 64 * 1024
	DefaultTime      = 3
	DefaultThreads   = 1
	maxMemoryKiB     = 4 * 1024 * 1024
	maxTime          = 100
	saltLen          = 16
	maxFileSize      = 64 << 10
)

// Errors.
var (
	ErrWrongPassphrase = errors.New("keystore: wrong passphrase or damaged keystore")
	ErrFormat          = errors.New("keystore: malformed keystore file")
	ErrPermissions     = errors.New("keystore: file is readable by group or others")
)

// Params are the argon2id parameters.
type Params struct {
	MemoryKiB uint32 `json:"memory_kib"`
	Time      uint32 `json:"time"`
	Threads   uint8  `json:"threads"`
}

// File is the on-disk JSON.
type File struct {
	Version         int    `json:"version"`
	KDF             string `json:"kdf"`
	KDFParams       Params `json:"kdf_params"`
	Salt            string `json:"salt"`
	IV              string `json:"iv"`
	Data            string `json:"data"`
	Fingerprint     string `json:"fingerprint"`      // node identity, public: detects a wrong BIP39 passphrase
	BIP39Passphrase bool   `json:"bip39_passphrase"` // keys were derived with a BIP39 passphrase (never stored)
}

// aad binds everything but the ciphertext to it.
func (f *File) aad() []byte {
	b, _ := json.Marshal(struct {
		Version     int    `json:"version"`
		KDF         string `json:"kdf"`
		KDFParams   Params `json:"kdf_params"`
		Fingerprint string `json:"fingerprint"`
		BIP39       bool   `json:"bip39_passphrase"`
	}{f.Version, f.KDF, f.KDFParams, f.Fingerprint, f.BIP39Passphrase})
	return b
}

func gcm(passphrase, salt []byte, p Params) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, 32)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts phrase under passphrase with fresh salt and nonce.
func Seal(phrase, passphrase []byte, fingerprint string, bip39Passphrase bool, p Params) (*File, error) {
	if p == (Params{}) {
		p = Params{MemoryKiB: DefaultMemoryKiB, Time: DefaultTime, Threads: DefaultThreads}
	}
	salt := make([]byte, saltLen)
	iv := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	f := &File{Version: Version, KDF: "argon2id", KDFParams: p, Fingerprint: fingerprint, BIP39Passphrase: bip39Passphrase,
		Salt: base64.StdEncoding.EncodeToString(salt), IV: base64.StdEncoding.EncodeToString(iv)}
	g, err := gcm(passphrase, salt, p)
	if err != nil {
		return nil, err
	}
	f.Data = base64.StdEncoding.EncodeToString(g.Seal(nil, iv, phrase, f.aad()))
	return f, nil
}

// Open decrypts the phrase; the caller wipes it.
func (f *File) Open(passphrase []byte) ([]byte, error) {
	if f.Version != Version || f.KDF != "argon2id" {
		return nil, fmt.Errorf("%w: unsupported version %d or kdf %q", ErrFormat, f.Version, f.KDF)
	}
	p := f.KDFParams
	if p.MemoryKiB < DefaultMemoryKiB || p.MemoryKiB > maxMemoryKiB || p.Time < DefaultTime || p.Time > maxTime || p.Threads == 0 {
		return nil, fmt.Errorf("%w: kdf parameters out of range", ErrFormat)
	}
	salt, err1 := base64.StdEncoding.DecodeString(f.Salt)
	iv, err2 := base64.StdEncoding.DecodeString(f.IV)
	data, err3 := base64.StdEncoding.DecodeString(f.Data)
	if err := errors.Join(err1, err2, err3); err != nil || len(salt) < saltLen || len(iv) != 12 || len(data) < 16 {
		return nil, fmt.Errorf("%w: bad salt, iv or data", ErrFormat)
	}
	g, err := gcm(passphrase, salt, p)
	if err != nil {
		return nil, err
	}
	phrase, err := g.Open(nil, iv, data, f.aad())
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return phrase, nil
}

// Write stores f at path with mode 0600: temp file in the same directory, synced, renamed.
// It refuses to replace an existing file unless overwrite is set.
func Write(path string, f *File, overwrite bool) error {
	if !overwrite {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("keystore: %s already exists", path)
		}
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keystore.*")
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keystore: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("keystore: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// Read loads the keystore at path, refusing one readable by group or others.
func Read(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; run chmod 600 %s", ErrPermissions, path, st.Mode().Perm(), path)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFormat, maxFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return &f, nil
}
