package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/tyler-smith/go-bip39"
	"golang.org/x/text/unicode/norm"
)

const (
	seedLen          = 64
	pbkdf2Iterations = 2048
)

// englishWords is the BIP39 English list as bytes, sorted (as published), built once.
var englishWords = sync.OnceValue(func() [][]byte {
	list := bip39.GetWordList()
	out := make([][]byte, len(list))
	for i, w := range list {
		out[i] = []byte(w)
	}
	return out
})

// wordIndex finds w in the list by binary search over bytes (no string is built from it).
func wordIndex(w []byte) (int, bool) {
	list := englishWords()
	i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i], w) >= 0 })
	if i < len(list) && bytes.Equal(list[i], w) {
		return i, true
	}
	return 0, false
}

func wordsForCount(n int) (entropyBytes int, ok bool) {
	switch n {
	case 12, 15, 18, 21, 24:
		return n * 11 * 32 / 33 / 8, true
	}
	return 0, false
}

// NewMnemonic returns a fresh canonical phrase of 12, 15, 18, 21 or 24 words; the caller wipes it.
func NewMnemonic(words int) ([]byte, error) {
	n, ok := wordsForCount(words)
	if !ok {
		return nil, ErrInvalidWordCount
	}
	entropy := make([]byte, n)
	defer clear(entropy)
	if _, err := rand.Read(entropy); err != nil {
		return nil, fmt.Errorf("vault: random entropy: %w", err)
	}
	return MnemonicFromEntropy(entropy)
}

// MnemonicFromEntropy encodes 16, 20, 24, 28 or 32 bytes of entropy as a canonical phrase.
func MnemonicFromEntropy(entropy []byte) ([]byte, error) {
	switch len(entropy) {
	case 16, 20, 24, 28, 32:
	default:
		return nil, ErrInvalidEntropy
	}
	sum := sha256.Sum256(entropy)
	defer clear(sum[:])
	// entropy ‖ checksum bits, read 11 bits at a time.
	bits := make([]byte, len(entropy)+1)
	defer clear(bits)
	copy(bits, entropy)
	bits[len(entropy)] = sum[0]
	nWords := len(entropy) * 8 * 33 / 32 / 11
	list := englishWords()
	out := make([]byte, 0, nWords*9)
	for i := range nWords {
		idx := 0
		for b := range 11 {
			pos := i*11 + b
			idx = idx<<1 | int(bits[pos/8]>>(7-pos%8)&1)
		}
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, list[idx]...)
	}
	return out, nil
}

// CanonicalMnemonic validates a phrase (UTF-8, NFKD, white space, word count, words, checksum)
// and returns it with single spaces; the caller wipes the result.
func CanonicalMnemonic(phrase []byte) ([]byte, error) {
	if !utf8.Valid(phrase) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrInvalidMnemonic)
	}
	owned := append([]byte(nil), phrase...)
	defer clear(owned)
	normalized := norm.NFKD.Bytes(owned)
	defer clear(normalized)
	words := bytes.Fields(normalized)
	n, ok := wordsForCount(len(words))
	if !ok {
		return nil, fmt.Errorf("%w: %d words; want 12, 15, 18, 21 or 24", ErrInvalidMnemonic, len(words))
	}
	bits := make([]byte, n+1)
	defer clear(bits)
	for i, w := range words {
		idx, ok := wordIndex(w)
		if !ok {
			return nil, fmt.Errorf("%w: word %d is not in the BIP39 English list", ErrInvalidMnemonic, i+1)
		}
		for b := range 11 {
			if idx>>(10-b)&1 == 1 {
				pos := i*11 + b
				bits[pos/8] |= 1 << (7 - pos%8)
			}
		}
	}
	sum := sha256.Sum256(bits[:n])
	defer clear(sum[:])
	csBits := n * 8 / 32
	mask := byte(0xff) << (8 - csBits)
	if bits[n]&mask != sum[0]&mask {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrInvalidMnemonic)
	}
	return bytes.Join(words, []byte{' '}), nil
}

// SeedFromMnemonic validates phrase and returns the 64-byte BIP39 seed
// PBKDF2-HMAC-SHA512(canonical phrase, "mnemonic" ‖ NFKD(passphrase), 2048); the caller wipes it.
func SeedFromMnemonic(phrase, passphrase []byte) ([]byte, error) {
	if !utf8.Valid(passphrase) {
		return nil, ErrInvalidPassphrase
	}
	canonical, err := CanonicalMnemonic(phrase)
	if err != nil {
		return nil, err
	}
	defer clear(canonical)
	pass := append([]byte(nil), passphrase...)
	defer clear(pass)
	normPass := norm.NFKD.Bytes(pass)
	defer clear(normPass)
	salt := append([]byte("mnemonic"), normPass...)
	defer clear(salt)
	seed := make([]byte, seedLen)
	runSecret(func() { pbkdf2SHA512(seed, canonical, salt, pbkdf2Iterations) })
	return seed, nil
}

// pbkdf2SHA512 computes one 64-byte PBKDF2-HMAC-SHA512 block into out, over []byte only, so
// the password never becomes an unwipeable string (crypto/pbkdf2 takes a string).
func pbkdf2SHA512(out, password, salt []byte, iterations int) {
	mac := hmac.New(sha512.New, password)
	block := append(append([]byte(nil), salt...), 0, 0, 0, 1)
	defer clear(block)
	mac.Write(block)
	u := mac.Sum(nil)
	defer clear(u)
	copy(out, u)
	for i := 1; i < iterations; i++ {
		mac.Reset()
		mac.Write(u)
		next := mac.Sum(u[:0])
		for j := range out {
			out[j] ^= next[j]
		}
		u = next
	}
}
