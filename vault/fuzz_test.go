package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/tyler-smith/go-bip39"
)

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"m", "m/0'", "m/44'/60'/0'/0/0", "m/0h/1H", "m/2147483648'", "M/0", "m//0", "m/01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("error %v is not ErrInvalidPath", err)
			}
			return
		}
		back, err := ParsePath(p.String())
		if err != nil || back.String() != p.String() {
			t.Fatalf("canonical form %q does not round-trip", p.String())
		}
	})
}

func FuzzCanonicalMnemonic(f *testing.F) {
	f.Add([]byte("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"))
	f.Add([]byte("  zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong "))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, phrase []byte) {
		c, err := CanonicalMnemonic(phrase)
		if err != nil {
			if !errors.Is(err, ErrInvalidMnemonic) {
				t.Fatalf("error %v", err)
			}
			if isASCII(phrase) && bip39.IsMnemonicValid(string(phrase)) {
				t.Fatalf("go-bip39 accepts %q, we do not: %v", phrase, err)
			}
			return
		}
		again, err := CanonicalMnemonic(c)
		if err != nil || string(again) != string(c) {
			t.Fatal("canonical form is not stable")
		}
		// Agreement with go-bip39 (which does no NFKD: ASCII phrases only), seed included.
		if isASCII(phrase) {
			if !bip39.IsMnemonicValid(string(phrase)) {
				t.Fatalf("we accept %q, go-bip39 does not", c)
			}
			seed, err := SeedFromMnemonic(c, nil)
			if err != nil || !bytes.Equal(seed, bip39.NewSeed(string(c), "")) {
				t.Fatalf("seed differs from go-bip39's: %v", err)
			}
		}
	})
}

func FuzzDecryptEncryptedData(f *testing.F) {
	f.Add([]byte(`{"key_version":2,"salt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","iv":"AAAAAAAAAAAAAAAA","data":"if879HNYQW3taJ6Uy20TufQtgxLilKo/3Uwx"}`))
	f.Add([]byte(`{"key_version":1,"salt":"","iv":"","data":""}`))
	f.Add([]byte(`{"key_version":"2"}`))
	v := abandonVault(f)
	f.Fuzz(func(t *testing.T, blob []byte) {
		// Round trip: any UTF-8 text encrypts and decrypts back to itself; other bytes are
		// refused with ErrInvalidPlaintext.
		enc, err := v.Encrypt(blob, 2)
		switch {
		case !utf8.Valid(blob):
			if !errors.Is(err, ErrInvalidPlaintext) {
				t.Fatalf("non-UTF-8 plaintext: %v", err)
			}
		case err != nil:
			t.Fatal(err)
		default:
			back, err := v.Decrypt(enc)
			if err != nil || !bytes.Equal(back, blob) {
				t.Fatalf("round trip: %v", err)
			}
			clear(back)
		}
		var ed EncryptedData
		if err := json.Unmarshal(blob, &ed); err != nil {
			return
		}
		pt, err := v.Decrypt(&ed)
		if err == nil {
			clear(pt)
			return
		}
		for _, s := range []error{ErrInvalidKeyVersion, ErrMalformedData, ErrDecryption} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("unexpected error %v", err)
	})
}

func FuzzEthereumAddress(f *testing.F) {
	f.Add(make([]byte, 33))
	f.Add(append([]byte{2}, make([]byte, 32)...))
	f.Add(append([]byte{4}, make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, pub []byte) {
		a, err := EthereumAddress(pub)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatal(err)
			}
			return
		}
		if len(a) != 42 || a[:2] != "0x" {
			t.Fatalf("address %q", a)
		}
		// The same key, compressed or not, has the same address.
		pk, err := secp256k1.ParsePubKey(pub)
		if err != nil {
			t.Fatalf("EthereumAddress accepted a key secp256k1 rejects: %v", err)
		}
		for _, form := range [][]byte{pk.SerializeCompressed(), pk.SerializeUncompressed()} {
			if b, err := EthereumAddress(form); err != nil || b != a {
				t.Fatalf("address of the other encoding: %q %v, want %q", b, err, a)
			}
		}
	})
}
