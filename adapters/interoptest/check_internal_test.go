package interoptest

import (
	"errors"
	"strings"
	"testing"
)

// docs/http.md §10.3 (checklist 33): no node → skip with the reason; no packages → fail.
func TestNeedNodeRule(t *testing.T) {
	noNode := func(string) (string, error) { return "", errors.New("not found") }
	hasNode := func(string) (string, error) { return "/usr/bin/node", nil }
	if _, skip, fail := check(noNode, Dir()); skip != "node not found on PATH: interop test skipped" || fail != "" {
		t.Fatalf("without node: skip %q fail %q", skip, fail)
	}
	if _, skip, fail := check(hasNode, t.TempDir()); skip != "" || !strings.Contains(fail, "run make interop-deps") {
		t.Fatalf("without packages: skip %q fail %q", skip, fail)
	}
}
