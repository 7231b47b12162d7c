package vault

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Checklist 25-29.
func TestLifecycle(t *testing.T) {
	v := New(CacheConfig{})
	blob := &EncryptedData{KeyVersion: 2, Salt: "", IV: "AAAAAAAAAAAAAAAA", Data: "AAAAAAAAAAAAAAAAAAAAAA=="}
	for name, err := range map[string]error{
		"DeriveEd25519":       second(v.DeriveEd25519("not a path")),
		"DeriveEncryptionKey": second(v.DeriveEncryptionKey(PathEncryption)),
		"ForVersion":          second(v.DeriveEncryptionKeyForVersion(0)),
		"DeriveEthereumKey":   second(v.DeriveEthereumKey(PathEthereum)),
		"Encrypt":             second(v.Encrypt([]byte("\xff"), 0)),
		"Decrypt":             second(v.Decrypt(blob)),
		"Rotate":              second(v.Rotate(blob, 0)),
	} {
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("%s on a locked vault: %v", name, err)
		}
	}
	v.Lock()
	_ = v.Close()
	if v.IsUnlocked() || v.String() != "Vault{locked}" {
		t.Fatal("locked state")
	}
	phrase := []byte(loadVectors(t).BIP39.Abandon.Mnemonic)
	pass := []byte("")
	orig := append([]byte(nil), phrase...)
	if err := v.Unlock(phrase, pass); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(phrase, orig) {
		t.Fatal("Unlock modified the caller's phrase")
	}
	if err := v.Unlock([]byte("bad"), nil); !errors.Is(err, ErrAlreadyUnlocked) {
		t.Fatal(err)
	}
	if _, err := v.UnlockNew(12); !errors.Is(err, ErrAlreadyUnlocked) {
		t.Fatal(err)
	}
	k1, _ := v.DeriveEd25519(PathIdentity)
	first := k1.PrivateKey()
	k1.Wipe()
	if k1.PrivateKey() != nil {
		t.Fatal("Wipe left the key")
	}
	k2, _ := v.DeriveEd25519(PathIdentity)
	if !bytes.Equal(k2.PrivateKey(), first) {
		t.Fatal("wiping a returned key changed the cached one")
	}
	// 28: Lock wipes the seed and cached buffers (white-box).
	seedBuf := v.seed
	var cached [][]byte
	v.cache.mu.Lock()
	for el := v.cache.lru.Front(); el != nil; el = el.Next() {
		cached = append(cached, el.Value.(*cacheEntry).value.private.bytes())
	}
	v.cache.mu.Unlock()
	v.Lock()
	if v.IsUnlocked() || v.cache.len() != 0 {
		t.Fatal("Lock left state")
	}
	for _, b := range append(cached, seedBuf) {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Fatal("a buffer was not wiped by Lock")
		}
	}
	if !bytes.Equal(k2.PrivateKey(), first) {
		t.Fatal("Lock changed a key already returned")
	}
	_ = v.Unlock(phrase, nil)
	k3, _ := v.DeriveEd25519(PathIdentity)
	if !bytes.Equal(k3.PrivateKey(), first) {
		t.Fatal("unlocking again gave another key")
	}
	// 27: UnlockNew.
	n := New(CacheConfig{})
	p, err := n.UnlockNew(12)
	if err != nil {
		t.Fatal(err)
	}
	kn, _ := n.DeriveEd25519(PathIdentity)
	m := New(CacheConfig{})
	_ = m.Unlock(p, nil)
	km, _ := m.DeriveEd25519(PathIdentity)
	if !bytes.Equal(kn.PublicKey(), km.PublicKey()) {
		t.Fatal("UnlockNew phrase gives another identity")
	}
}

func second[T any](_ T, err error) error { return err }

// Checklist 30, 32.
func TestCache(t *testing.T) {
	v := abandonVault(t)
	count := func() int64 { v.dmu.Lock(); defer v.dmu.Unlock(); return v.derivations }
	_, _ = v.DeriveEncryptionKey(PathEncryption)
	before := count()
	k, _ := v.DeriveEncryptionKey("m/74h/2h/0h/0h")
	if count() != before {
		t.Fatal("a hit derived again")
	}
	if k.Type() != KeyAES256GCM {
		t.Fatal("type")
	}
	e, _ := v.DeriveEd25519(PathEncryption)
	a, _ := v.DeriveEncryptionKey(PathEncryption)
	if e.Type() != KeyEd25519 || a.Type() != KeyAES256GCM {
		t.Fatal("cache key must include the key type")
	}
	small := New(CacheConfig{MaxEntries: 2})
	_ = small.Unlock([]byte(loadVectors(t).BIP39.Abandon.Mnemonic), nil)
	_, _ = small.DeriveEd25519("m/1'")
	_, _ = small.DeriveEd25519("m/2'")
	small.cache.mu.Lock()
	bBuf := small.cache.entries[cacheKey{"m/2'", KeyEd25519}].Value.(*cacheEntry).value.private.bytes()
	small.cache.mu.Unlock()
	_, _ = small.DeriveEd25519("m/1'")
	_, _ = small.DeriveEd25519("m/3'")
	if _, ok := small.cache.entries[cacheKey{"m/2'", KeyEd25519}]; ok || !bytes.Equal(bBuf, make([]byte, len(bBuf))) {
		t.Fatal("B not evicted and wiped")
	}
	if _, ok := small.cache.entries[cacheKey{"m/1'", KeyEd25519}]; !ok {
		t.Fatal("A evicted")
	}
	small.cache.put(cacheKey{"m/1'", KeyEd25519}, &ExtendedKey{DerivedKey: DerivedKey{private: newSecret([]byte{1})}, chain: newSecret(nil)})
	if small.cache.len() != 2 {
		t.Fatal("re-inserting evicted another entry")
	}
	if c := newCache(CacheConfig{}); c.max != 64 || c.ttl != time.Hour || c.off {
		t.Fatal("defaults")
	}
	off := New(CacheConfig{MaxEntries: -1})
	_ = off.Unlock([]byte(loadVectors(t).BIP39.Abandon.Mnemonic), nil)
	_, _ = off.DeriveEd25519(PathIdentity)
	if off.cache.len() != 0 {
		t.Fatal("a negative MaxEntries cached")
	}
}

// Checklist 31: TTL counted from insertion, in a synctest bubble.
func TestCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(CacheConfig{TTL: time.Minute})
		k := cacheKey{"m", KeyEd25519}
		c.put(k, &ExtendedKey{DerivedKey: DerivedKey{private: newSecret([]byte{1})}, chain: newSecret(nil)})
		time.Sleep(30 * time.Second)
		if _, ok := c.get(k); !ok {
			t.Fatal("miss before the TTL")
		}
		time.Sleep(30 * time.Second) // exactly insertion + TTL
		if _, ok := c.get(k); !ok {
			t.Fatal("miss at insertion + TTL")
		}
		time.Sleep(time.Nanosecond)
		if _, ok := c.get(k); ok {
			t.Fatal("hit after the TTL (a hit must not extend it)")
		}
	})
}

// Checklist 33, 34.
func TestConcurrency(t *testing.T) {
	vec := loadVectors(t)
	phrase := []byte(vec.BIP39.Abandon.Mnemonic)
	want := map[string][]byte{}
	ref := abandonVault(t)
	for _, p := range []string{PathIdentity, PathSSHHost} {
		k, _ := ref.DeriveEd25519(p)
		want[p] = k.PrivateKey()
	}
	v := abandonVault(t)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				var err error
				switch (i + j) % 5 {
				case 0, 1:
					p := PathIdentity
					if j%2 == 0 {
						p = PathSSHHost
					}
					var k *DerivedKey
					if k, err = v.DeriveEd25519(p); err == nil && !bytes.Equal(k.PrivateKey(), want[p]) {
						t.Error("wrong key under concurrency")
					}
				case 2:
					var ed *EncryptedData
					if ed, err = v.Encrypt([]byte("x"), 2); err == nil {
						var pt []byte
						if pt, err = v.Decrypt(ed); err == nil && string(pt) != "x" {
							t.Error("wrong plaintext")
						}
					}
				case 3:
					v.Lock()
				case 4:
					err = v.Unlock(phrase, nil)
				}
				if err != nil && !errors.Is(err, ErrLocked) && !errors.Is(err, ErrAlreadyUnlocked) {
					t.Errorf("unexpected error %v", err)
				}
			}
		}()
	}
	wg.Wait()
	// 34: a derivation blocked inside HMAC does not hold up another path.
	w := abandonVault(t)
	block, release := make(chan struct{}), make(chan struct{})
	w.hook = func(p Path) {
		if p.String() == "m/9'" {
			close(block)
			<-release
		}
	}
	done := make(chan struct{})
	go func() { _, _ = w.DeriveEd25519("m/9'"); close(done) }()
	<-block
	if _, err := w.DeriveEd25519("m/8'"); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
}
