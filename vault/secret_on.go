//go:build goexperiment.runtimesecret

package vault

import "runtime/secret"

// runSecret runs f inside runtime/secret.Do, which erases the registers and stack f used.
func runSecret(f func()) { secret.Do(f) }
