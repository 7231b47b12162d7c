package vault_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/alkdev/alknet/vault"
)

// From a mnemonic to a node key and an encrypted secret: the vault derives keys along
// SLIP-0010 paths and encrypts with AES-256-GCM under a derived, versioned key.
func Example() {
	v := vault.New(vault.CacheConfig{})
	defer v.Close()
	mnemonic := []byte("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")
	if err := v.Unlock(mnemonic, nil); err != nil {
		fmt.Println(err)
		return
	}
	key, _ := v.DeriveEd25519("m/74'/0'/0'/0'") // the node key's path
	defer key.Wipe()
	fmt.Println(len(key.PublicKey()) == ed25519.PublicKeySize, key.Path())

	blob, _ := v.Encrypt([]byte("sk-provider-api-key"), 2)
	plain, _ := v.Decrypt(blob)
	defer clear(plain)
	fmt.Println(string(plain))
	fmt.Println(fmt.Sprint(key) != "" && fmt.Sprint(v) != "") // both render without secrets
	// Output:
	// true m/74'/0'/0'/0'
	// sk-provider-api-key
	// true
}
