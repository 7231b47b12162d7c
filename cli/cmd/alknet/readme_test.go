package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeTwoNodes runs the README's walkthrough "From nothing to two nodes calling each
// other" as written, with bash, with two changes only: the binary under test instead of
// `make build`, and free ports (127.0.0.1:0) instead of 7443 and 7444.
func TestReadmeTwoNodes(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## From nothing to two nodes calling each other")
	if !ok {
		t.Fatal("README has no walkthrough section")
	}
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	first, rest, _ := strings.Cut(block, "\n")
	if !strings.HasPrefix(first, "make build") {
		t.Fatalf("the walkthrough starts with %q, not make build", first)
	}
	script := "set -euo pipefail\nexport PATH=" + filepath.Dir(binary) + ":$PATH\n" +
		strings.NewReplacer("127.0.0.1:7443", "127.0.0.1:0", "127.0.0.1:7444", "127.0.0.1:0").Replace(rest)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		`"fingerprint":"ed25519:`, // node/info both ways
		`{"changed":[`,            // node/reload with the ops key, then with the API key
		`error: FORBIDDEN: unknown or revoked API key`,
		"exit 4",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count("\n"+string(out), "\nmnemonic "); n != 2 {
		t.Errorf("%d mnemonics printed, want one per init:\n%s", n, out)
	}
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadmeHTTPAndMCP runs the README's "HTTP and MCP" commands as written, against a dev node
// on free ports (the only change: its HTTP address for 127.0.0.1:7480).
func TestReadmeHTTPAndMCP(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## HTTP and MCP")
	if !ok {
		t.Fatal(`README has no "HTTP and MCP" section`)
	}
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	state := t.TempDir()
	cmd, lines, stderr := startServe(t, false, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	defer stop(t, cmd)
	_ = stderr
	httpAddr := ""
	for k, v := range lines {
		if k == "http" && strings.HasPrefix(v, "http://") {
			httpAddr = strings.TrimPrefix(v, "http://")
		}
	}
	if httpAddr == "" {
		t.Fatalf("no loopback http line: %v", lines)
	}
	script := "set -uo pipefail\nexport PATH=" + filepath.Dir(binary) + ":$PATH\nexport ALKNET_STATE_DIR=" + state + "\n" +
		strings.ReplaceAll(block, "127.0.0.1:7480", httpAddr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script)
	sh.Dir = t.TempDir()
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("the HTTP and MCP commands failed: %v\n%s", err, out)
	}
	for _, want := range []string{`{"sum":3}`, "event: done", `"openapi":"3.1.0"`, `"code":"TIMEOUT"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(sh.Dir, "api.json")); err != nil || !strings.Contains(string(b), `"operationId":"demo_add"`) {
		t.Errorf("alknet openapi --out api.json: %v", err)
	}
}
