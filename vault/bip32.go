package vault

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/sha3"
)

// bip32Secp256k1 derives a BIP-32 secp256k1 key along p; returns key, chain code and the
// compressed public key. IL ≥ n, a zero master key or a zero child key fail (no skipping).
func bip32Secp256k1(seed []byte, p Path, hook func(Path)) (k, c, pub []byte, err error) {
	I := hmacSHA512([]byte("Bitcoin seed"), seed)
	defer clear(I)
	var key secp256k1.ModNScalar
	defer key.Zero()
	if overflow := key.SetByteSlice(I[:32]); overflow || key.IsZero() {
		return nil, nil, nil, fmt.Errorf("%w: master key out of range", ErrInvalidKey)
	}
	chain := append([]byte(nil), I[32:]...)
	defer func() { clear(chain) }()
	var data [37]byte
	defer clear(data[:])
	for i, idx := range p {
		if hook != nil {
			hook(p)
		}
		if idx >= hardenedOffset {
			data[0] = 0
			kb := key.Bytes()
			copy(data[1:33], kb[:])
			clear(kb[:])
		} else {
			priv := secp256k1.NewPrivateKey(&key)
			copy(data[:33], priv.PubKey().SerializeCompressed())
			priv.Zero()
		}
		binary.BigEndian.PutUint32(data[33:], idx)
		J := hmacSHA512(chain, data[:])
		var il secp256k1.ModNScalar
		overflow := il.SetByteSlice(J[:32])
		key.Add(&il)
		il.Zero()
		clear(chain)
		chain = append(chain[:0], J[32:]...)
		clear(J)
		if overflow || key.IsZero() {
			return nil, nil, nil, fmt.Errorf("%w: child key at level %d out of range", ErrInvalidKey, i+1)
		}
	}
	kb := key.Bytes()
	k = append([]byte(nil), kb[:]...)
	clear(kb[:])
	priv := secp256k1.NewPrivateKey(&key)
	pub = priv.PubKey().SerializeCompressed()
	priv.Zero()
	return k, append([]byte(nil), chain...), pub, nil
}

// DeriveSecp256k1FromSeed derives a BIP-32 secp256k1 key (hardened and normal indices), uncached.
func DeriveSecp256k1FromSeed(seed []byte, path string) (*ExtendedKey, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	if err := checkSeed(seed); err != nil {
		return nil, err
	}
	var k, c, pub []byte
	runSecret(func() { k, c, pub, err = bip32Secp256k1(seed, p, nil) })
	if err != nil {
		return nil, err
	}
	defer clear(k)
	defer clear(c)
	return &ExtendedKey{
		DerivedKey: DerivedKey{keyType: KeySecp256k1, path: p.String(), public: pub, private: newSecret(k)},
		chain:      newSecret(c),
	}, nil
}

// EthereumAddress returns the EIP-55 checksummed address of a 33-byte compressed or 65-byte
// uncompressed secp256k1 public key on the curve.
func EthereumAddress(publicKey []byte) (string, error) {
	switch {
	case len(publicKey) == 33 && (publicKey[0] == 2 || publicKey[0] == 3):
	case len(publicKey) == 65 && publicKey[0] == 4:
	default:
		return "", fmt.Errorf("%w: want a 33-byte compressed or 65-byte uncompressed public key", ErrInvalidKey)
	}
	pk, err := secp256k1.ParsePubKey(publicKey)
	if err != nil {
		return "", fmt.Errorf("%w: not a point on secp256k1", ErrInvalidKey)
	}
	un := pk.SerializeUncompressed()
	h := sha3.NewLegacyKeccak256()
	h.Write(un[1:])
	sum := h.Sum(nil)
	lower := hex.EncodeToString(sum[12:])
	h = sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	check := h.Sum(nil)
	out := []byte("0x" + lower)
	for i := range 40 {
		c := out[2+i]
		nibble := check[i/2]
		if i%2 == 0 {
			nibble >>= 4
		}
		if c >= 'a' && c <= 'f' && nibble&0x0f >= 8 {
			out[2+i] = c - 'a' + 'A'
		}
	}
	return string(out), nil
}
