//go:build cgo && !noiroh

package iroh

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	sigsAtStart = sigHandlers() // before any bind: Go's own
	initFaults = true           // alk_test_fault works in this process (TestNativeFaults)
	goleak.VerifyTestMain(m)
}
