// Package vault is the node's root of trust: a BIP39 mnemonic from which every key is derived
// on demand (SLIP-0010 Ed25519, BIP-32 secp256k1) and AES-256-GCM blobs for secrets. It has no
// network surface and imports no other alknet module. (Built by the vault issue.)
package vault
