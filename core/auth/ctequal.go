package auth

import "crypto/subtle"

// ctEqual is the only comparison of secret-derived values (token hashes) in core.
// A source test checks that no other code compares them.
func ctEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
