package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// allCommands is every leaf command.
var allCommands = [][]string{
	{"init"}, {"key", "show"}, {"key", "gen"}, {"secret", "seal"}, {"secret", "open"}, {"serve"}, {"reload"},
	{"peer", "add"}, {"peer", "rm"}, {"peer", "ls"}, {"apikey", "create"}, {"apikey", "revoke"}, {"apikey", "ls"},
	{"call"}, {"sub"}, {"ls"}, {"schema"}, {"version"}, {"status"}, {"ping"}, {"ticket", "inspect"},
}

// Every command has --help with an example, and shell completion is generated.
func TestHelpAndCompletion(t *testing.T) {
	for _, cmd := range allCommands {
		out, errOut, code := run(t, append(cmd, "--help")...)
		if code != 0 || !strings.Contains(out, "USAGE:") || !strings.Contains(out, "alknet "+strings.Join(cmd, " ")) {
			t.Errorf("%v --help: %d\n%s%s", cmd, code, out, errOut)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, _, code := run(t, "completion", shell)
		if code != 0 || !strings.Contains(out, "alknet") {
			t.Errorf("completion %s: %d", shell, code)
		}
	}
}

// peer ls / rm and apikey ls read and edit the config file; comments survive.
func TestPeerAndKeyListing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	_ = os.WriteFile(cfg, []byte("# my node\n[node]\nlisten = [\"127.0.0.1:0\"]\n"), 0o600)
	fp := "ed25519:" + strings.Repeat("ab", 32)
	for _, args := range [][]string{
		{"peer", "add", "alice", "--fingerprint", fp, "--scope", "read", "--display-name", "Alice"},
		{"peer", "add", "bob", "--fingerprint", "ed25519:" + strings.Repeat("cd", 32), "--scope", "admin"},
		{"apikey", "create", "--scope", "read", "--description", "ci", "--expires-in", "720h"},
	} {
		if _, errOut, code := run(t, append([]string{"--state-dir", dir}, args...)...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	if _, errOut, code := run(t, "--state-dir", dir, "peer", "add", "alice", "--fingerprint", fp); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate peer: %d %s", code, errOut)
	}
	out, _, _ := run(t, "--state-dir", dir, "peer", "ls")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "bob") || !strings.Contains(out, "PEER") {
		t.Fatalf("peer ls:\n%s", out)
	}
	out, _, _ = run(t, "--state-dir", dir, "apikey", "ls")
	if !strings.Contains(out, "alk_") || !strings.Contains(out, "ci") || strings.Contains(out, "never") {
		t.Fatalf("apikey ls:\n%s", out)
	}
	if _, _, code := run(t, "--state-dir", dir, "peer", "rm", "alice"); code != 0 {
		t.Fatal("peer rm")
	}
	if _, _, code := run(t, "--state-dir", dir, "peer", "rm", "alice"); code != 3 {
		t.Fatal("removing a missing peer must be NOT_FOUND (3)")
	}
	text, _ := os.ReadFile(cfg)
	if strings.Contains(string(text), "alice") || !strings.Contains(string(text), "# my node") || !strings.Contains(string(text), `peer_id = "bob"`) {
		t.Fatalf("config after rm:\n%s", text)
	}
	out, _, _ = run(t, "--state-dir", dir, "peer", "ls", "--json")
	var peers []map[string]any
	if err := json.Unmarshal([]byte(out), &peers); err != nil || len(peers) != 1 || peers[0]["peer_id"] != "bob" || peers[0]["has_token"] != false {
		t.Fatalf("peer ls --json: %v %s", err, out)
	}
}

// --log-format json writes JSON log records to stderr.
func TestJSONLogs(t *testing.T) {
	cmd, _, stderr := startServe(t, false, "--log-format", "json", "--state-dir", t.TempDir(), "serve", "--dev", "--listen", "127.0.0.1:0")
	defer stop(t, cmd)
	eventually(t, func() bool { return strings.Contains(stderr.String(), `"msg":"node started"`) }, "a JSON log record")
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !strings.HasPrefix(line, `{"time":`) {
			t.Fatalf("not a JSON record: %q", line)
		}
	}
}
