package vault

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
)

// hmacSHA512 returns HMAC-SHA512(key, parts...) in a new buffer the caller wipes.
func hmacSHA512(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha512.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

func checkSeed(seed []byte) error {
	if len(seed) < 16 || len(seed) > 64 {
		return ErrInvalidSeed
	}
	return nil
}

// slip10Ed25519 derives (key, chain code) along a hardened-only path; buffers are the caller's to wipe.
func slip10Ed25519(seed []byte, p Path, hook func(Path)) (k, c []byte, err error) {
	for i, idx := range p {
		if idx < hardenedOffset {
			return nil, nil, hardenedOnlyError{position: i + 1}
		}
	}
	I := hmacSHA512([]byte("ed25519 seed"), seed)
	k, c = I[:32:32], I[32:]
	var data [37]byte
	defer clear(data[:])
	for _, idx := range p {
		if hook != nil {
			hook(p)
		}
		data[0] = 0
		copy(data[1:33], k)
		binary.BigEndian.PutUint32(data[33:], idx)
		next := hmacSHA512(c, data[:])
		clear(I)
		I = next
		k, c = I[:32:32], I[32:]
	}
	// Detach the results from I so the caller owns exactly two buffers.
	outK, outC := append([]byte(nil), k...), append([]byte(nil), c...)
	clear(I)
	return outK, outC, nil
}

// DeriveEd25519FromSeed derives a SLIP-0010 Ed25519 key (hardened indices only), uncached.
func DeriveEd25519FromSeed(seed []byte, path string) (*ExtendedKey, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	if err := checkSeed(seed); err != nil {
		return nil, err
	}
	var k, c []byte
	runSecret(func() { k, c, err = slip10Ed25519(seed, p, nil) })
	if err != nil {
		return nil, err
	}
	defer clear(k)
	defer clear(c)
	return newEd25519Key(p, k, c, KeyEd25519), nil
}

func newEd25519Key(p Path, k, c []byte, t KeyType) *ExtendedKey {
	dk := DerivedKey{keyType: t, path: p.String(), private: newSecret(k)}
	if t == KeyEd25519 {
		priv := ed25519.NewKeyFromSeed(k)
		pub, _ := priv.Public().(ed25519.PublicKey)
		dk.public = append([]byte(nil), pub...)
		clear(priv)
	}
	return &ExtendedKey{DerivedKey: dk, chain: newSecret(c)}
}
