// Package tlsconf builds the TLS 1.3 configurations of nodes and clients.
//
// Go's crypto/tls has no RFC 7250 raw public keys, so in key mode a node wraps its Ed25519
// key in a self-signed certificate and clients pin the key's fingerprint instead of
// verifying a chain (ADR 0002). x509 mode serves a certificate from files, acme mode one
// obtained through autocert (TLS-ALPN-01).
//
// See also: identity (keys and fingerprints), endpoint (serving with these configs), client (dialing with them).
package tlsconf
