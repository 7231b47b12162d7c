// Package acmetest holds the ACME integration test: a node obtains its certificate from
// Pebble (Let's Encrypt's test CA, run in-process) through TLS-ALPN-01 on its own TCP+TLS
// listener. It is a package of its own so Pebble's background goroutines stay out of the
// other packages' leak checks.
package acmetest
