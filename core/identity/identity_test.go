package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RFC 8032 §7.1 TEST 1.
const (
	rfc8032Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfc8032FP   = "ed25519:d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)

func rfcKey(t testing.TB) *NodeKey {
	t.Helper()
	seed, _ := hex.DecodeString(rfc8032Seed)
	k, err := NewNodeKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFingerprintKeyVector(t *testing.T) {
	k := rfcKey(t)
	if got := FingerprintKey(k.Public()); got != rfc8032FP {
		t.Fatalf("FingerprintKey = %s, want %s", got, rfc8032FP)
	}
	if k.Fingerprint() != rfc8032FP {
		t.Fatalf("NodeKey.Fingerprint = %s", k.Fingerprint())
	}
}

func TestNewNodeKeyRejectsWrongLength(t *testing.T) {
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := NewNodeKey(make([]byte, n)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("len %d: err = %v, want ErrInvalidKey", n, err)
		}
	}
}

func TestNewNodeKeyCopiesSeed(t *testing.T) {
	seed, _ := hex.DecodeString(rfc8032Seed)
	k, err := NewNodeKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	clear(seed)
	if k.Fingerprint() != rfc8032FP {
		t.Fatal("wiping the caller's seed changed the key")
	}
}

func selfSigned(t testing.TB, pub any, signer any, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFingerprintCert(t *testing.T) {
	k := rfcKey(t)
	a := selfSigned(t, k.Public(), k.PrivateKey(), "alknet node")
	b := selfSigned(t, k.Public(), k.PrivateKey(), "some x509 name")
	if FingerprintCert(a) != rfc8032FP || FingerprintCert(b) != rfc8032FP {
		t.Fatalf("two certificates for one key: %s, %s; want %s", FingerprintCert(a), FingerprintCert(b), rfc8032FP)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := selfSigned(t, &ec.PublicKey, ec, "ecdsa")
	got := FingerprintCert(c)
	want := fingerprintSHA256(c.Raw)
	if got != want || !strings.HasPrefix(got, PrefixSHA256) {
		t.Fatalf("ECDSA leaf: %s, want %s", got, want)
	}
	if err := CheckFingerprint(got); err != nil {
		t.Fatalf("ECDSA fingerprint does not parse: %v", err)
	}
	if FingerprintDER(c.Raw) != want || FingerprintDER(a.Raw) != rfc8032FP {
		t.Fatal("FingerprintDER disagrees with FingerprintCert")
	}
	if got := FingerprintDER([]byte("not a certificate")); got != fingerprintSHA256([]byte("not a certificate")) {
		t.Fatalf("FingerprintDER of garbage = %s", got)
	}
	if FingerprintCert(nil) != "" {
		t.Fatal("FingerprintCert(nil) should be empty")
	}
}

func TestParseFingerprint(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	tests := []struct {
		in string
		ok bool
	}{
		{rfc8032FP, true},
		{"SHA256:" + hex64, true},
		{"ed25519:" + strings.ToUpper(hex64), false},
		{"sha256:" + hex64, false},
		{"ED25519:" + hex64, false},
		{"ed25519:" + hex64[:63], false},
		{"ed25519:" + hex64 + "a", false},
		{"ed25519:" + hex64[:63] + "g", false},
		{"", false},
		{"ed25519:", false},
		{" " + rfc8032FP, false},
	}
	for _, tt := range tests {
		err := CheckFingerprint(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseFingerprint(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidFingerprint) {
			t.Errorf("ParseFingerprint(%q) error %v does not match ErrInvalidFingerprint", tt.in, err)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	k := rfcKey(t)
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	if err := WriteKeyFile(path, k); err == nil {
		t.Fatal("WriteKeyFile overwrote an existing file")
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	got, err := LoadKeyFile(path, log)
	if err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint() != k.Fingerprint() || !bytes.Equal(got.PrivateKey(), k.PrivateKey()) {
		t.Fatal("round trip changed the key")
	}
	if logs.Len() != 0 {
		t.Fatalf("unexpected log for a 0600 file: %s", logs.String())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "readable by group or others") {
		t.Fatalf("no warning for a 0644 key file: %q", logs.String())
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPath := filepath.Join(dir, "ec.key")
	if err := os.WriteFile(ecPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(ecPath, log); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("ECDSA key file: err = %v, want ErrInvalidKey", err)
	}
	for name, data := range map[string][]byte{
		"empty":    nil,
		"garbage":  []byte("hello"),
		"wrongpem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}),
		"badpkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}),
	} {
		if _, err := ParseKeyPEM(data); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: err = %v, want ErrInvalidKey", name, err)
		}
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing"), log); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestNodeKeyPrintsNoKeyMaterial(t *testing.T) {
	k := rfcKey(t)
	privHex := hex.EncodeToString(k.PrivateKey())
	seedHex := rfc8032Seed
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "key", k)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", k)
	forms := []string{
		k.String(), k.GoString(), logs.String(),
		fmt.Sprintf("%v %+v %#v %s %x %X %q %d", k, k, k, k, k, k, k, k),
		fmt.Sprint(struct{ K *NodeKey }{k}),
	}
	for _, s := range forms {
		low := strings.ToLower(s)
		if strings.Contains(low, privHex[:16]) || strings.Contains(low, seedHex[:16]) {
			t.Fatalf("key material in %q", s)
		}
		if !strings.Contains(s, rfc8032FP) {
			t.Fatalf("form %q lacks the fingerprint", s)
		}
	}
}
