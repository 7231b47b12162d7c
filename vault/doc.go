// Package vault is the node's root of trust: one BIP39 mnemonic from which every key is
// derived on demand (SLIP-0010 Ed25519, BIP-32 secp256k1) and AES-256-GCM blobs for secrets
// such as provider API keys.
//
// It is a local library with no network surface, no files, no environment and no logging;
// only the assembly layer (the CLI) uses it. Secrets are []byte end to end and wiped when the
// package drops them; every text form of a key redacts it.
package vault
