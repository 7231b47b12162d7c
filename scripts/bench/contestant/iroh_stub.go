//go:build !cgo || noiroh

package contestant

// IrohBuilt: this build has the iroh contestants (alknet-iroh, iroh-raw).
const IrohBuilt = false

// IsIroh: the iroh contestants run the iroh rows only (spec iroh.md §11).
func IsIroh(string) bool { return false }
