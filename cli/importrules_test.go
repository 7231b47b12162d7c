package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportRules fails when this module, its tests included, depends on an alknet module
// that ../shared/spec/README.md does not allow it to import.
func TestImportRules(t *testing.T) {
	const self = "cli"
	allowed := []string{"core", "call", "vault", "agent"}
	out, err := exec.Command("go", "list", "-deps", "-test", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const prefix = "github.com/alkdev/alknet/"
	for _, pkg := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(strings.Trim(pkg, "[]"), prefix)
		if !ok {
			continue
		}
		mod, _, _ := strings.Cut(strings.TrimSuffix(rest, ".test"), "/")
		mod = strings.TrimSuffix(mod, "_test") // external test packages
		if strings.HasPrefix(rest, "scripts/bench") {
			mod = "scripts/bench"
		}
		if mod != self && !slices.Contains(allowed, mod) {
			t.Errorf("%s depends on %s: module %q may import only %v", self, pkg, mod, allowed)
		}
	}
}
