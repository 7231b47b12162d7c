package vault

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// vectors mirrors testdata/vault-vectors.json (the parts the tests read).
type vectors struct {
	BIP39 struct {
		Trezor struct {
			Cases []struct{ Entropy, Mnemonic, Passphrase, Seed string } `json:"cases"`
		} `json:"trezor_vectors"`
		Abandon struct{ Mnemonic, Passphrase, Seed string } `json:"abandon_about"`
		NFKD    struct {
			Mnemonic string
			Cases    []struct {
				Hex  string `json:"passphrase_utf8_hex"`
				Seed string
			}
		} `json:"nfkd_passphrase"`
		Canonicalisation []struct {
			Input, Canonical string
			Seed             string `json:"seed_empty_passphrase"`
		} `json:"canonicalisation"`
		Invalid []struct{ Phrase string } `json:"invalid_mnemonics"`
	} `json:"bip39"`
	Paths struct {
		Valid []struct {
			Path      string
			Indices   []string
			Canonical string
		}
		Invalid    []struct{ Path string }
		Unhardened []struct{ Path string } `json:"ed25519_unhardened_rejected"`
		Versions   struct {
			Valid []struct {
				KeyVersion uint32 `json:"key_version"`
				Path       string
			}
			Invalid []struct {
				KeyVersion uint32 `json:"key_version"`
			}
		} `json:"encryption_key_versions"`
	}
	SLIP10 map[string]struct {
		Seed  string
		Chain []struct {
			Path, ChainCode, PrivateKey, PublicKey, PublicKeySLIP10 string
		}
	} `json:"slip10_ed25519"`
	Alknet struct {
		Keys []struct{ Name, Path, ChainCode, PrivateKey, PublicKey string }
	} `json:"alknet_ed25519"`
	BIP32 struct {
		Master struct{ Seed, Path, ChainCode, PrivateKey, PublicKey string } `json:"vector1_master"`
		Eth    struct {
			Path, PrivateKey, PublicKey, Address string
			Uncompressed                         string `json:"public_key_uncompressed"`
		} `json:"ethereum"`
	} `json:"bip32_secp256k1"`
	AES       struct{ Key, IV, Plaintext, CiphertextAndTag string } `json:"aes_256_gcm_kat"`
	Encrypted struct {
		Reference struct {
			Data      EncryptedData `json:"encrypted_data"`
			Plaintext string        `json:"expected_plaintext"`
			AESKey    string        `json:"aes_key"`
		} `json:"reference_blob"`
		Cases []struct {
			Name, JSON  string
			Plaintext   *string `json:"expect_plaintext"`
			ExpectError string  `json:"expect_error"`
		}
	} `json:"encrypted_data"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/vault-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	// The copy must match the shared original when it is there (a clean clone has it beside).
	if shared, err := os.ReadFile("../../shared/testdata/vault-vectors.json"); err == nil && !bytes.Equal(shared, data) {
		t.Fatal("testdata/vault-vectors.json differs from ../../shared/testdata/vault-vectors.json")
	}
	// The JSON uses snake_case; map it onto the Go field names the struct tags leave implicit.
	var v vectors
	if err := json.Unmarshal(snakeToCamel(data), &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// snakeToCamel rewrites keys like "chain_code" to "ChainCode" for untagged fields.
func snakeToCamel(data []byte) []byte {
	for _, k := range []string{"chain_code", "private_key", "public_key_slip10", "public_key", "ciphertext_and_tag"} {
		parts := strings.Split(k, "_")
		for i := range parts {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
		camel := strings.Join(parts, "")
		if k == "public_key_slip10" {
			camel = "PublicKeySLIP10"
		}
		data = bytes.ReplaceAll(data, []byte(`"`+k+`"`), []byte(`"`+camel+`"`))
	}
	return data
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func indexOf(t testing.TB, s string) uint32 {
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}
