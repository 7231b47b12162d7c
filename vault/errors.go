package vault

import "errors"

// Sentinel errors. Returned errors wrap them with context and never contain a
// phrase word, passphrase, seed, key, chain code or plaintext.
var (
	ErrLocked             = errors.New("vault: locked; call Unlock first")
	ErrAlreadyUnlocked    = errors.New("vault: already unlocked")
	ErrInvalidMnemonic    = errors.New("vault: invalid mnemonic")
	ErrInvalidPassphrase  = errors.New("vault: passphrase is not valid UTF-8")
	ErrInvalidWordCount   = errors.New("vault: word count must be 12, 15, 18, 21 or 24")
	ErrInvalidEntropy     = errors.New("vault: entropy must be 16, 20, 24, 28 or 32 bytes")
	ErrInvalidSeed        = errors.New("vault: seed must be 16 to 64 bytes")
	ErrInvalidPath        = errors.New("vault: invalid derivation path")
	ErrHardenedOnly       = errors.New("vault: ed25519 derivation supports hardened indices only")
	ErrInvalidKeyVersion  = errors.New("vault: key version must be between 2 and 2147483649")
	ErrInvalidKey         = errors.New("vault: invalid key")
	ErrUnsupportedKeyType = errors.New("vault: unsupported key type")
	ErrMalformedData      = errors.New("vault: malformed encrypted data")
	ErrDecryption         = errors.New("vault: decryption failed")
	ErrInvalidPlaintext   = errors.New("vault: plaintext is not valid UTF-8")
	ErrRedacted           = errors.New("vault: redacted key material cannot be unmarshalled")
)

// hardenedOnlyError satisfies errors.Is for both ErrHardenedOnly and ErrInvalidPath.
type hardenedOnlyError struct{ position int }

func (e hardenedOnlyError) Error() string {
	return ErrHardenedOnly.Error() + ": segment " + itoa(e.position) + " is not hardened"
}

func (e hardenedOnlyError) Is(target error) bool {
	return target == ErrHardenedOnly || target == ErrInvalidPath
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
