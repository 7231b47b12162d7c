//go:build cgo && !noiroh

package main

// buildTags are the tags the binary under test is built with: the tests' own.
var buildTags []string
