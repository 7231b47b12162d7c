// Package iroh connects alknet nodes over iroh (dial by key, relays, hole punching) through
// the project's Rust crate ffi/ (alknet-iroh over the published iroh crate), linked with cgo.
// iroh connections are ordinary conn.Connections: inbound through Transport.Source and
// endpoint.Endpoint.Dispatch, outbound through client.Dialer.Iroh. The node's Ed25519 key is
// the iroh key, so one fingerprint names the node on every transport.
//
// Builds with the noiroh tag (or without cgo) leave this package empty; the CLI then answers
// every iroh use with "iroh: this binary was built without iroh". Spec: iroh.md; the ADR
// docs/adr/0017-iroh-through-cgo.md records the decisions.
package iroh
