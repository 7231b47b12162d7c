package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func abandonVault(t testing.TB) *Vault {
	t.Helper()
	v := New(CacheConfig{})
	if err := v.Unlock([]byte(loadVectors(t).BIP39.Abandon.Mnemonic), nil); err != nil {
		t.Fatal(err)
	}
	return v
}

// Checklist 1-7.
func TestBIP39(t *testing.T) {
	vec := loadVectors(t)
	for _, c := range vec.BIP39.Trezor.Cases {
		m, err := MnemonicFromEntropy(unhex(t, c.Entropy))
		if err != nil || string(m) != c.Mnemonic {
			t.Fatalf("MnemonicFromEntropy(%s) = %q %v", c.Entropy, m, err)
		}
		seed, err := SeedFromMnemonic([]byte(c.Mnemonic), []byte(c.Passphrase))
		if err != nil || hex.EncodeToString(seed) != c.Seed {
			t.Fatalf("seed of %q: %v", c.Mnemonic[:20], err)
		}
	}
	ab := vec.BIP39.Abandon
	for _, pass := range [][]byte{nil, {}} {
		seed, err := SeedFromMnemonic([]byte(ab.Mnemonic), pass)
		if err != nil || hex.EncodeToString(seed) != ab.Seed {
			t.Fatalf("abandon seed with %#v passphrase: %v", pass, err)
		}
	}
	for _, c := range vec.BIP39.NFKD.Cases {
		seed, err := SeedFromMnemonic([]byte(vec.BIP39.NFKD.Mnemonic), unhex(t, c.Hex))
		if err != nil || hex.EncodeToString(seed) != c.Seed {
			t.Fatalf("NFKD passphrase %s: %v", c.Hex, err)
		}
	}
	for _, c := range vec.BIP39.Canonicalisation {
		got, err := CanonicalMnemonic([]byte(c.Input))
		if err != nil || string(got) != c.Canonical {
			t.Fatalf("canonical of %q = %q %v", c.Input, got, err)
		}
		seed, _ := SeedFromMnemonic([]byte(c.Input), nil)
		if hex.EncodeToString(seed) != c.Seed {
			t.Fatalf("seed of %q", c.Input)
		}
	}
	for _, c := range vec.BIP39.Invalid {
		_, err1 := CanonicalMnemonic([]byte(c.Phrase))
		_, err2 := SeedFromMnemonic([]byte(c.Phrase), nil)
		v := New(CacheConfig{})
		err3 := v.Unlock([]byte(c.Phrase), nil)
		for _, err := range []error{err1, err2, err3} {
			if !errors.Is(err, ErrInvalidMnemonic) || strings.Contains(err.Error(), "abandonn") {
				t.Fatalf("%q: %v", c.Phrase, err)
			}
		}
		if v.IsUnlocked() {
			t.Fatal("a failed Unlock left the vault unlocked")
		}
	}
	for _, n := range []int{12, 15, 18, 21, 24} {
		m, err := NewMnemonic(n)
		if err != nil || len(strings.Fields(string(m))) != n {
			t.Fatalf("NewMnemonic(%d): %v", n, err)
		}
		if _, err := CanonicalMnemonic(m); err != nil {
			t.Fatalf("generated phrase invalid: %v", err)
		}
	}
	for _, n := range []int{0, 11, 13, 25} {
		if _, err := NewMnemonic(n); !errors.Is(err, ErrInvalidWordCount) {
			t.Fatalf("NewMnemonic(%d): %v", n, err)
		}
	}
	for _, n := range []int{15, 17, 33} {
		if _, err := MnemonicFromEntropy(make([]byte, n)); !errors.Is(err, ErrInvalidEntropy) {
			t.Fatalf("entropy %d: %v", n, err)
		}
	}
	if _, err := CanonicalMnemonic([]byte("abandon \xff")); !errors.Is(err, ErrInvalidMnemonic) {
		t.Fatal(err)
	}
	if _, err := SeedFromMnemonic([]byte(ab.Mnemonic), []byte("\xff")); !errors.Is(err, ErrInvalidPassphrase) {
		t.Fatal(err)
	}
	// TREZOR passphrase changes the identity key.
	v1, v2 := abandonVault(t), New(CacheConfig{})
	_ = v2.Unlock([]byte(ab.Mnemonic), []byte("TREZOR"))
	k1, _ := v1.DeriveEd25519(PathIdentity)
	k2, _ := v2.DeriveEd25519(PathIdentity)
	if bytes.Equal(k1.PublicKey(), k2.PublicKey()) {
		t.Fatal("the BIP39 passphrase did not change the identity key")
	}
}

// Checklist 8-11.
func TestPaths(t *testing.T) {
	vec := loadVectors(t)
	for _, c := range vec.Paths.Valid {
		p, err := ParsePath(c.Path)
		if err != nil || p.String() != c.Canonical || len(p) != len(c.Indices) {
			t.Fatalf("%s: %v %v", c.Path, p, err)
		}
		for i, s := range c.Indices {
			if p[i] != indexOf(t, s) {
				t.Fatalf("%s index %d", c.Path, i)
			}
		}
	}
	for _, c := range vec.Paths.Invalid {
		if _, err := ParsePath(c.Path); !errors.Is(err, ErrInvalidPath) {
			t.Fatalf("%q accepted: %v", c.Path, err)
		}
	}
	if _, err := ParsePath("m/2147483648'"); !errors.Is(err, ErrInvalidPath) {
		t.Fatal("2^31 wrapped")
	}
	if _, err := ParsePath("m" + strings.Repeat("/0'", 255)); err != nil {
		t.Fatalf("depth 255: %v", err)
	}
	if _, err := ParsePath("m" + strings.Repeat("/0'", 256)); !errors.Is(err, ErrInvalidPath) {
		t.Fatal("depth 256 accepted")
	}
	if p, _ := DevicePath(0); p != PathIdentity {
		t.Fatal(p)
	}
	if p, _ := DevicePath(1); p != "m/74'/0'/0'/1'" {
		t.Fatal(p)
	}
	if _, err := DevicePath(1 << 31); !errors.Is(err, ErrInvalidPath) {
		t.Fatal(err)
	}
	v := abandonVault(t)
	for _, c := range vec.Paths.Versions.Valid {
		if p, err := EncryptionPath(c.KeyVersion); err != nil || p != c.Path {
			t.Fatalf("EncryptionPath(%d) = %s %v", c.KeyVersion, p, err)
		}
	}
	for _, c := range vec.Paths.Versions.Invalid {
		_, e1 := EncryptionPath(c.KeyVersion)
		_, e2 := v.DeriveEncryptionKeyForVersion(c.KeyVersion)
		_, e3 := v.Encrypt([]byte("x"), c.KeyVersion)
		blob, _ := v.Encrypt([]byte("x"), 2)
		_, e4 := v.Rotate(blob, c.KeyVersion)
		for _, err := range []error{e1, e2, e3, e4} {
			if !errors.Is(err, ErrInvalidKeyVersion) {
				t.Fatalf("version %d: %v", c.KeyVersion, err)
			}
		}
	}
}

// Checklist 12-19.
func TestDerivation(t *testing.T) {
	vec := loadVectors(t)
	for name, sv := range vec.SLIP10 {
		seed := unhex(t, sv.Seed)
		for _, e := range sv.Chain {
			k, err := DeriveEd25519FromSeed(seed, e.Path)
			if err != nil {
				t.Fatalf("%s %s: %v", name, e.Path, err)
			}
			if hex.EncodeToString(k.ChainCode()) != e.ChainCode || hex.EncodeToString(k.PrivateKey()) != e.PrivateKey ||
				hex.EncodeToString(k.PublicKey()) != e.PublicKey || "00"+hex.EncodeToString(k.PublicKey()) != e.PublicKeySLIP10 {
				t.Fatalf("%s %s mismatch", name, e.Path)
			}
			priv, _ := k.Ed25519PrivateKey()
			if !bytes.Equal(ed25519.NewKeyFromSeed(unhex(t, e.PrivateKey)).Public().(ed25519.PublicKey), unhex(t, e.PublicKey)) ||
				!ed25519.Verify(k.PublicKey(), []byte("msg"), ed25519.Sign(priv, []byte("msg"))) {
				t.Fatalf("%s %s: signature", name, e.Path)
			}
		}
	}
	v := abandonVault(t)
	for _, e := range vec.Alknet.Keys {
		var k *DerivedKey
		var err error
		if strings.HasPrefix(e.Name, "ENCRYPTION") || strings.Contains(e.Path, "74'/2'") {
			k, err = v.DeriveEncryptionKey(e.Path)
		} else {
			k, err = v.DeriveEd25519(e.Path)
		}
		if err != nil || hex.EncodeToString(k.PrivateKey()) != e.PrivateKey {
			t.Fatalf("%s: %v", e.Name, err)
		}
		if k.Type() == KeyEd25519 && hex.EncodeToString(k.PublicKey()) != e.PublicKey {
			t.Fatalf("%s public key", e.Name)
		}
	}
	for _, ver := range []uint32{2, 3} {
		k, _ := v.DeriveEncryptionKeyForVersion(ver)
		p, _ := EncryptionPath(ver)
		ed, _ := DeriveEd25519FromSeed(mustSeed(t), p)
		if !bytes.Equal(k.PrivateKey(), ed.PrivateKey()) || k.Type() != KeyAES256GCM || k.PublicKey() != nil {
			t.Fatalf("key version %d", ver)
		}
	}
	for _, c := range vec.Paths.Unhardened {
		_, e1 := v.DeriveEd25519(c.Path)
		_, e2 := v.DeriveEncryptionKey(c.Path)
		_, e3 := DeriveEd25519FromSeed(mustSeed(t), c.Path)
		for _, err := range []error{e1, e2, e3} {
			if !errors.Is(err, ErrHardenedOnly) || !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("%s: %v", c.Path, err)
			}
		}
	}
	m := vec.BIP32.Master
	mk, err := DeriveSecp256k1FromSeed(unhex(t, m.Seed), m.Path)
	if err != nil || hex.EncodeToString(mk.ChainCode()) != m.ChainCode || hex.EncodeToString(mk.PrivateKey()) != m.PrivateKey || hex.EncodeToString(mk.PublicKey()) != m.PublicKey {
		t.Fatalf("BIP-32 master: %v", err)
	}
	eth := vec.BIP32.Eth
	ek, err := v.DeriveEthereumKey(PathEthereum)
	if err != nil || hex.EncodeToString(ek.PrivateKey()) != eth.PrivateKey || hex.EncodeToString(ek.PublicKey()) != eth.PublicKey {
		t.Fatalf("ethereum key: %v", err)
	}
	for _, pub := range [][]byte{ek.PublicKey(), unhex(t, eth.Uncompressed)} {
		if a, err := EthereumAddress(pub); err != nil || a != eth.Address {
			t.Fatalf("address %s %v", a, err)
		}
	}
	offCurve := append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...)
	for _, bad := range [][]byte{nil, make([]byte, 32), make([]byte, 64), offCurve} {
		if _, err := EthereumAddress(bad); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("EthereumAddress(%d bytes): %v", len(bad), err)
		}
	}
	for _, n := range []int{15, 65} {
		if _, err := DeriveEd25519FromSeed(make([]byte, n), "m"); !errors.Is(err, ErrInvalidSeed) {
			t.Fatal(err)
		}
		if _, err := DeriveSecp256k1FromSeed(make([]byte, n), "m"); !errors.Is(err, ErrInvalidSeed) {
			t.Fatal(err)
		}
	}
	for _, n := range []int{16, 64} {
		if _, err := DeriveEd25519FromSeed(bytes.Repeat([]byte{1}, n), "m"); err != nil {
			t.Fatal(err)
		}
	}
	// 19: determinism and separation.
	w := abandonVault(t)
	names := map[string]string{}
	for _, p := range []string{PathIdentity, PathSSHHost, PathEncryption} {
		a, _ := v.DeriveEd25519(p)
		b, _ := w.DeriveEd25519(p)
		if !bytes.Equal(a.PrivateKey(), b.PrivateKey()) {
			t.Fatal("two vaults disagree")
		}
		if prev, dup := names[hex.EncodeToString(a.PrivateKey())]; dup {
			t.Fatalf("%s equals %s", p, prev)
		}
		names[hex.EncodeToString(a.PrivateKey())] = p
	}
}

func mustSeed(t testing.TB) []byte {
	seed, err := SeedFromMnemonic([]byte(loadVectors(t).BIP39.Abandon.Mnemonic), nil)
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

// Checklist 20-24.
func TestEncryption(t *testing.T) {
	vec := loadVectors(t)
	a := vec.AES
	block, _ := aes.NewCipher(unhex(t, a.Key))
	g, _ := cipher.NewGCM(block)
	if out, _ := seal(g, unhex(t, a.IV), []byte(a.Plaintext)); hex.EncodeToString(out) != a.CiphertextAndTag {
		t.Fatal("AES-GCM known answer")
	}
	v := abandonVault(t)
	ref := vec.Encrypted.Reference
	pt, err := v.Decrypt(&ref.Data)
	if err != nil || string(pt) != ref.Plaintext {
		t.Fatalf("reference blob: %q %v", pt, err)
	}
	block, _ = aes.NewCipher(unhex(t, ref.AESKey))
	g, _ = cipher.NewGCM(block)
	if out, _ := seal(g, make([]byte, 12), []byte(ref.Plaintext)); base64.StdEncoding.EncodeToString(out) != ref.Data.Data {
		t.Fatal("reference blob does not reseal byte for byte")
	}
	for _, c := range vec.Encrypted.Cases {
		var ed EncryptedData
		err := json.Unmarshal([]byte(c.JSON), &ed)
		var out []byte
		if err == nil {
			out, err = v.Decrypt(&ed)
		}
		if c.ExpectError != "" {
			if !errors.Is(err, sentinels[c.ExpectError]) {
				t.Fatalf("%s: %v, want %s", c.Name, err, c.ExpectError)
			}
			continue
		}
		if err != nil || c.Plaintext == nil || string(out) != *c.Plaintext {
			t.Fatalf("%s: %q %v", c.Name, out, err)
		}
	}
	for _, pt := range []string{"", "sk-test", "clé🔑"} {
		ed, err := v.Encrypt([]byte(pt), 2)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(ed)
		if !strings.HasPrefix(string(js), `{"key_version":2,"salt":"`) || len(ed.Salt) != 44 || len(ed.IV) != 16 {
			t.Fatalf("blob %s", js)
		}
		data, _ := base64.StdEncoding.DecodeString(ed.Data)
		if len(data) != len(pt)+16 {
			t.Fatal("data length")
		}
		var back EncryptedData
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		if got, err := v.Decrypt(&back); err != nil || string(got) != pt {
			t.Fatalf("round trip %q: %q %v", pt, got, err)
		}
		again, _ := v.Encrypt([]byte(pt), 2)
		if again.IV == ed.IV || again.Salt == ed.Salt || again.Data == ed.Data {
			t.Fatal("IV, salt or data repeated")
		}
		rot, err := v.Rotate(ed, 3)
		if err != nil || rot.KeyVersion != 3 || rot.IV == ed.IV || ed.KeyVersion != 2 {
			t.Fatalf("rotate: %+v %v", rot, err)
		}
		if got, _ := v.Decrypt(rot); string(got) != pt {
			t.Fatal("rotated plaintext")
		}
		if got, _ := v.Decrypt(ed); string(got) != pt {
			t.Fatal("input of Rotate changed")
		}
	}
	if _, err := v.Encrypt([]byte("\xff"), 2); !errors.Is(err, ErrInvalidPlaintext) {
		t.Fatal(err)
	}
}

// sentinels maps the vector file's error names to the package's sentinels.
var sentinels = map[string]error{
	"ErrLocked": ErrLocked, "ErrAlreadyUnlocked": ErrAlreadyUnlocked, "ErrInvalidMnemonic": ErrInvalidMnemonic,
	"ErrInvalidPassphrase": ErrInvalidPassphrase, "ErrInvalidWordCount": ErrInvalidWordCount,
	"ErrInvalidEntropy": ErrInvalidEntropy, "ErrInvalidSeed": ErrInvalidSeed, "ErrInvalidPath": ErrInvalidPath,
	"ErrHardenedOnly": ErrHardenedOnly, "ErrInvalidKeyVersion": ErrInvalidKeyVersion, "ErrInvalidKey": ErrInvalidKey,
	"ErrUnsupportedKeyType": ErrUnsupportedKeyType, "ErrMalformedData": ErrMalformedData,
	"ErrDecryption": ErrDecryption, "ErrInvalidPlaintext": ErrInvalidPlaintext, "ErrRedacted": ErrRedacted,
}
