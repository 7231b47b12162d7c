package vault

import (
	"fmt"
	"log/slog"
	"sync"
)

// Vault holds one BIP39 seed while unlocked and derives keys on demand. Safe for concurrent use.
type Vault struct {
	mu    sync.RWMutex // seed: shared for derivations, exclusive for Unlock and Lock
	seed  []byte       // nil while locked
	cache *cache
	// derivations counts key derivations (not cache hits), for white-box tests.
	derivations int64
	dmu         sync.Mutex
	// hook, set only by white-box tests before use, runs inside every HMAC step.
	hook func(Path)
}

// New returns a locked vault.
func New(cfg CacheConfig) *Vault { return &Vault{cache: newCache(cfg)} }

// Unlock validates the phrase and holds only the resulting seed; the caller's slices are not modified.
func (v *Vault) Unlock(phrase, passphrase []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seed != nil {
		return ErrAlreadyUnlocked
	}
	p := append([]byte(nil), phrase...)
	defer clear(p)
	pp := append([]byte(nil), passphrase...)
	defer clear(pp)
	seed, err := SeedFromMnemonic(p, pp)
	if err != nil {
		return err
	}
	v.seed = seed
	return nil
}

// UnlockNew generates a phrase of the given word count, unlocks with the empty passphrase and
// returns the canonical phrase (shown to the user once; the caller wipes it).
func (v *Vault) UnlockNew(words int) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seed != nil {
		return nil, ErrAlreadyUnlocked
	}
	phrase, err := NewMnemonic(words)
	if err != nil {
		return nil, err
	}
	seed, err := SeedFromMnemonic(phrase, nil)
	if err != nil {
		clear(phrase)
		return nil, err
	}
	v.seed = seed
	return phrase, nil
}

// Lock wipes the seed and every cached key; idempotent.
func (v *Vault) Lock() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.seed)
	v.seed = nil
	v.cache.clear()
}

// Close is Lock; it always returns nil and leaves the vault usable.
func (v *Vault) Close() error {
	v.Lock()
	return nil
}

// IsUnlocked reports whether the vault holds a seed.
func (v *Vault) IsUnlocked() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.seed != nil
}

// derive returns a fresh copy of the key at path of type kt, from the cache or derived under
// the shared seed lock (the cache mutex is never held during HMAC work).
func (v *Vault) derive(path string, kt KeyType) (*ExtendedKey, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.seed == nil {
		return nil, ErrLocked
	}
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	ck := cacheKey{path: p.String(), kt: kt}
	if k, ok := v.cache.get(ck); ok {
		return k, nil
	}
	v.dmu.Lock()
	v.derivations++
	v.dmu.Unlock()
	var key *ExtendedKey
	switch kt {
	case KeySecp256k1:
		var k, c, pub []byte
		runSecret(func() { k, c, pub, err = bip32Secp256k1(v.seed, p, v.hook) })
		if err != nil {
			return nil, err
		}
		key = &ExtendedKey{DerivedKey: DerivedKey{keyType: kt, path: ck.path, public: pub, private: newSecret(k)}, chain: newSecret(c)}
		clear(k)
		clear(c)
	default:
		var k, c []byte
		runSecret(func() { k, c, err = slip10Ed25519(v.seed, p, v.hook) })
		if err != nil {
			return nil, err
		}
		key = newEd25519Key(p, k, c, kt)
		clear(k)
		clear(c)
	}
	v.cache.put(ck, key)
	return key, nil
}

func derived(k *ExtendedKey) *DerivedKey {
	dk := k.DerivedKey
	k.chain.wipe()
	return &dk
}

// DeriveEd25519 derives the SLIP-0010 Ed25519 key at path (hardened indices only).
func (v *Vault) DeriveEd25519(path string) (*DerivedKey, error) {
	k, err := v.derive(path, KeyEd25519)
	if err != nil {
		return nil, err
	}
	return derived(k), nil
}

// DeriveEncryptionKey derives the AES-256-GCM key at path (SLIP-0010, hardened only).
func (v *Vault) DeriveEncryptionKey(path string) (*DerivedKey, error) {
	k, err := v.derive(path, KeyAES256GCM)
	if err != nil {
		return nil, err
	}
	return derived(k), nil
}

// DeriveEncryptionKeyForVersion derives the AES key of an EncryptedData key version.
func (v *Vault) DeriveEncryptionKeyForVersion(version uint32) (*DerivedKey, error) {
	if !v.IsUnlocked() {
		return nil, ErrLocked
	}
	path, err := EncryptionPath(version)
	if err != nil {
		return nil, err
	}
	return v.DeriveEncryptionKey(path)
}

// DeriveEthereumKey derives the BIP-32 secp256k1 key at path (e.g. PathEthereum).
func (v *Vault) DeriveEthereumKey(path string) (*DerivedKey, error) {
	k, err := v.derive(path, KeySecp256k1)
	if err != nil {
		return nil, err
	}
	return derived(k), nil
}

func (v *Vault) state() string {
	if v.IsUnlocked() {
		return "Vault{unlocked}"
	}
	return "Vault{locked}"
}

// String renders Vault{locked} or Vault{unlocked}.
func (v *Vault) String() string { return v.state() }

// GoString renders Vault{locked} or Vault{unlocked}.
func (v *Vault) GoString() string { return v.state() }

// Format renders the state for every verb.
func (v *Vault) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(v.state())) }

// LogValue renders the state.
func (v *Vault) LogValue() slog.Value { return slog.StringValue(v.state()) }
