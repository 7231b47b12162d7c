package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// Fingerprint prefixes (case-sensitive).
const (
	PrefixEd25519 = "ed25519:"
	PrefixSHA256  = "SHA256:"
)

// ErrInvalidFingerprint reports a string outside the fingerprint grammar.
var ErrInvalidFingerprint = errors.New("identity: invalid fingerprint")

// FingerprintKey returns "ed25519:" + lowercase hex of the 32-byte public key.
func FingerprintKey(pub ed25519.PublicKey) string {
	return PrefixEd25519 + hex.EncodeToString(pub)
}

// FingerprintCert returns the ed25519 form iff the leaf's public key is Ed25519 (any mode),
// else "SHA256:" + lowercase hex SHA-256 of the certificate's DER.
func FingerprintCert(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	if pub, ok := c.PublicKey.(ed25519.PublicKey); ok && len(pub) == ed25519.PublicKeySize {
		return FingerprintKey(pub)
	}
	return fingerprintSHA256(c.Raw)
}

// FingerprintDER parses der as a certificate and fingerprints it; bytes that do not parse
// get the SHA256 form of the bytes themselves.
func FingerprintDER(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fingerprintSHA256(der)
	}
	return FingerprintCert(c)
}

func fingerprintSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return PrefixSHA256 + hex.EncodeToString(sum[:])
}

// CheckFingerprint reports whether s is a fingerprint: exactly "ed25519:" or "SHA256:" followed
// by 64 lowercase hex digits. Nothing is normalised; fingerprints stay strings.
func CheckFingerprint(s string) error {
	var rest string
	switch {
	case len(s) > len(PrefixEd25519) && s[:len(PrefixEd25519)] == PrefixEd25519:
		rest = s[len(PrefixEd25519):]
	case len(s) > len(PrefixSHA256) && s[:len(PrefixSHA256)] == PrefixSHA256:
		rest = s[len(PrefixSHA256):]
	default:
		return fmt.Errorf("%w: want prefix %q or %q", ErrInvalidFingerprint, PrefixEd25519, PrefixSHA256)
	}
	if len(rest) != 64 {
		return fmt.Errorf("%w: want 64 hex digits, got %d characters", ErrInvalidFingerprint, len(rest))
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: character %d is not a lowercase hex digit", ErrInvalidFingerprint, len(s)-64+i)
		}
	}
	return nil
}

// fingerprintBytes returns the 32 bytes behind a valid fingerprint and whether it is a key.
func fingerprintBytes(fp string) (raw []byte, isKey bool, err error) {
	if err := CheckFingerprint(fp); err != nil {
		return nil, false, err
	}
	isKey = fp[0] == 'e'
	raw, _ = hex.DecodeString(fp[len(fp)-64:])
	return raw, isKey, nil
}
