package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Token format constants.
const (
	TokenPrefix     = "alk_"
	APIKeyPrefixLen = 8   // "alk_" + 4 characters; not secret
	MaxTokenLen     = 512 // longer tokens never resolve
	hashPrefix      = "sha256:"
	tokenRandBytes  = 32
)

// HashToken returns "sha256:" + lowercase hex SHA-256 of the token, the only form core stores.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewToken draws a fresh "alk_" token (32 random bytes, base64url) and returns it with its hash.
// The token is shown once and never stored.
func NewToken() (token, hash string, err error) {
	var b [tokenRandBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("auth: draw token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	clear(b[:])
	return token, HashToken(token), nil
}

// ErrPrefixSpace reports that no unused API-key prefix was found after many draws.
var ErrPrefixSpace = errors.New("auth: no free API key prefix")

// NewAPIKey draws a token whose prefix is not used by existing and returns the token (shown
// once) and the entry to store.
func NewAPIKey(scopes []string, description string, expiresAt time.Time, existing []APIKeyEntry) (string, APIKeyEntry, error) {
	used := make(map[string]bool, len(existing))
	for _, e := range existing {
		used[e.Prefix] = true
	}
	// 64^4 prefixes: a collision is rare, 64 redraws in a row practically impossible.
	for range 64 {
		tok, hash, err := NewToken()
		if err != nil {
			return "", APIKeyEntry{}, err
		}
		if used[tok[:APIKeyPrefixLen]] {
			continue
		}
		return tok, APIKeyEntry{
			Prefix: tok[:APIKeyPrefixLen], Hash: hash, Scopes: slices.Clone(scopes),
			Description: description, ExpiresAt: expiresAt,
		}, nil
	}
	return "", APIKeyEntry{}, ErrPrefixSpace
}

func validHash(h string) bool {
	if len(h) != len(hashPrefix)+64 || h[:len(hashPrefix)] != hashPrefix {
		return false
	}
	for i := len(hashPrefix); i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
