//go:build cgo && !noiroh

package iroh

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The archive's exported alk_* symbols are exactly the functions the header declares
// (spec iroh.md §2), and the linked archive's ABI version is the header's.
func TestHeaderMatchesArchive(t *testing.T) {
	if ABIVersion() != abiVersion {
		t.Fatalf("archive ABI %d, header %d", ABIVersion(), abiVersion)
	}
	if runtime.GOOS != "linux" {
		t.Skip("nm check runs on linux")
	}
	nm, err := exec.LookPath("nm")
	if err != nil {
		t.Skip("nm not found")
	}
	header, err := os.ReadFile(filepath.Join("ffi", "include", "alknet_iroh.h"))
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, m := range regexp.MustCompile(`(?m)^(?:int32_t|uint32_t|const char \*)\s*(alk_[a-z0-9_]+)\(`).FindAllStringSubmatch(string(header), -1) {
		declared = append(declared, m[1])
	}
	out, err := exec.Command(nm, "-g", "--defined-only", filepath.Join("ffi", "lib", runtime.GOOS+"_"+runtime.GOARCH, "libalknet_iroh.a")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && strings.HasPrefix(f[2], "alk_") && !slices.Contains(exported, f[2]) {
			exported = append(exported, f[2])
		}
	}
	slices.Sort(declared)
	slices.Sort(exported)
	if !slices.Equal(declared, exported) || len(declared) < 30 {
		t.Fatalf("header declares %v\narchive exports %v", declared, exported)
	}
}
