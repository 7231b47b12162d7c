package vault

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/tyler-smith/go-bip39"
)

// The BIP39 library serves as an independent cross-check of the vault's own encoding and
// checksum (BIP39, as go-bip39 and the Trezor vectors have it): same words for every Trezor entropy, same verdict on a bad checksum.
func TestBIP39CrossCheck(t *testing.T) {
	for _, c := range loadVectors(t).BIP39.Trezor.Cases {
		want, err := bip39.NewMnemonic(unhex(t, c.Entropy))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := MnemonicFromEntropy(unhex(t, c.Entropy))
		if string(got) != want {
			t.Fatalf("entropy %s: vault %q, library %q", c.Entropy, got, want)
		}
	}
	twelve := strings.TrimSpace(strings.Repeat("abandon ", 12))
	if _, err := bip39.EntropyFromMnemonic(twelve); err == nil || !strings.Contains(err.Error(), "Checksum incorrect") {
		t.Fatalf("library accepted twelve abandon: %v", err)
	}
	if _, err := CanonicalMnemonic([]byte(twelve)); err == nil {
		t.Fatal("vault accepted twelve abandon")
	}
}

// No secret (mnemonic words, seed, private key, plaintext) appears in any text or
// JSON form or error of the vault's types.
func TestNoSecretsInAnyForm(t *testing.T) {
	vec := loadVectors(t)
	v := abandonVault(t)
	seed := hex.EncodeToString(mustSeed(t))
	k, _ := v.DeriveEd25519(PathIdentity)
	priv := hex.EncodeToString(k.PrivateKey())
	blob, _ := v.Encrypt([]byte("sk-plaintext-secret"), 2)
	tampered := *blob
	tampered.KeyVersion = 3
	_, decErr := v.Decrypt(&tampered)
	_, mnErr := CanonicalMnemonic([]byte("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon zebraa"))
	unlockErr := New(CacheConfig{}).Unlock([]byte(vec.BIP39.Abandon.Mnemonic), []byte("\xff"))
	texts := []string{
		fmt.Sprintf("%v %+v %#v %s", v, v, v, v), fmt.Sprintf("%v %+v %#v", k, k, k),
		decErr.Error(), mnErr.Error(), fmt.Sprint(unlockErr), fmt.Sprintf("%+v", blob),
	}
	for _, s := range texts {
		for _, secret := range []string{"abandon", "zebraa", seed[:16], priv[:16], "sk-plaintext"} {
			if strings.Contains(s, secret) {
				t.Fatalf("%q appears in %q", secret, s)
			}
		}
	}
}
