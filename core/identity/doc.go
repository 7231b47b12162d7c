// Package identity holds a node's Ed25519 key, its key file, fingerprints and tickets.
//
// A node's identity is its key: the same key yields the same fingerprint on every
// transport and across restarts. Tickets tell a client where a node is and which
// fingerprint to pin; they are public and never carry secrets.
//
// See also: tlsconf (how the key becomes a TLS identity), client (dialing a ticket), host (a node built on a key).
package identity
