package keystore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	phrase := []byte("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")
	f, err := Seal(phrase, []byte("pw"), "ed25519:x", false, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if f.KDFParams.MemoryKiB < 64*1024 || f.KDFParams.Time < 3 {
		t.Fatal("weaker than the spec's minimum")
	}
	got, err := f.Open([]byte("pw"))
	if err != nil || string(got) != string(phrase) {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := f.Open([]byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatal(err)
	}
	// The parameters and fingerprint are bound to the ciphertext.
	tampered := *f
	tampered.Fingerprint = "ed25519:y"
	if _, err := tampered.Open([]byte("pw")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatal("tampering went unnoticed")
	}
	weak := *f
	weak.KDFParams.MemoryKiB = 1024
	if _, err := weak.Open([]byte("pw")); !errors.Is(err, ErrFormat) {
		t.Fatal("weak parameters accepted")
	}
	path := filepath.Join(t.TempDir(), "keystore.json")
	if err := Write(path, f, false); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, f, false); err == nil {
		t.Fatal("overwrote")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatal(st.Mode())
	}
	back, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := back.Open([]byte("pw")); err != nil || string(got) != string(phrase) {
		t.Fatal(err)
	}
	_ = os.Chmod(path, 0o640)
	if _, err := Read(path); !errors.Is(err, ErrPermissions) {
		t.Fatal(err)
	}
}
