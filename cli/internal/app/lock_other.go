//go:build !unix

package app

// lockStateDir is a no-op where flock is not available.
func lockStateDir(string) (func(), error) { return func() {}, nil }
