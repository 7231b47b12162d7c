package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// API keys: --out writes the token with mode 0600 (and refuses to overwrite); revoke accepts the
// whole token, checks it against the stored hash, and never echoes a secret.
func TestAPIKeySecrets(t *testing.T) {
	state := t.TempDir()
	tokenFile := filepath.Join(t.TempDir(), "ci.token")
	stdout, stderr, code := run(t, "--state-dir", state, "apikey", "create", "--scope", "admin", "--out", tokenFile)
	if code != 0 || stdout != "" {
		t.Fatalf("create --out: %d %q %s", code, stdout, stderr)
	}
	info, err := os.Stat(tokenFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", info.Mode(), err)
	}
	b, _ := os.ReadFile(tokenFile)
	token := strings.TrimSpace(string(b))
	if !strings.HasPrefix(token, "alk_") || len(token) < 40 {
		t.Fatalf("token file holds %q", token)
	}
	if _, _, code := run(t, "--state-dir", state, "apikey", "create", "--scope", "admin", "--out", tokenFile); code != 1 {
		t.Fatalf("create --out over an existing file: exit %d", code)
	}
	// A wrong whole token with the right prefix: NOT_FOUND, and the secret part is not echoed.
	wrong := token[:8] + strings.Repeat("Z", len(token)-8)
	stdout, stderr, code = run(t, "--state-dir", state, "apikey", "revoke", wrong)
	if code != 3 || strings.Contains(stdout+stderr, wrong[8:]) {
		t.Fatalf("revoke with a wrong token: %d %q %q", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, "--state-dir", state, "apikey", "revoke", token)
	if code != 0 || strings.Contains(stdout+stderr, token[8:]) || !strings.Contains(stdout, token[:8]) {
		t.Fatalf("revoke with the whole token: %d %q %q", code, stdout, stderr)
	}
	cfg, _ := os.ReadFile(filepath.Join(state, "config.toml"))
	if strings.Contains(string(cfg), fmt.Sprintf("%q", token[:8])) {
		t.Fatalf("the key is still in the config:\n%s", cfg)
	}
	if _, stderr, code := run(t, "--state-dir", state, "apikey", "revoke", token); code != 3 || strings.Contains(stderr, token[8:]) {
		t.Fatalf("second revoke: %d %s", code, stderr)
	}
}

// One node per state directory: a second serve exits 1 naming the first one's pid, and leaves
// the first one's ticket and pid files in place.
func TestStateDirectoryLock(t *testing.T) {
	state := t.TempDir()
	first, lines, _ := startServe(t, false, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0")
	_, stderr, code := run(t, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0")
	want := fmt.Sprintf("CONFIG: state directory in use by pid %d", first.Process.Pid)
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("second serve: exit %d, stderr %q (want %q)", code, stderr, want)
	}
	ticket, err := os.ReadFile(filepath.Join(state, "node.ticket"))
	if err != nil || strings.TrimSpace(string(ticket)) != lines["ticket"] {
		t.Fatalf("the first node's ticket after the second serve: %q %v", ticket, err)
	}
	pid, err := os.ReadFile(filepath.Join(state, "node.pid"))
	if err != nil || strings.TrimSpace(string(pid)) != fmt.Sprint(first.Process.Pid) {
		t.Fatalf("node.pid: %q %v", pid, err)
	}
	stop(t, first)
	// Stopped, the directory is free again; README: --metrics-addr serves Prometheus metrics.
	second, lines, _ := startServe(t, true, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	resp, err := http.Get(lines["metrics"])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "alknet_connections_active") || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	stop(t, second)
}

// Signals are caught before the node announces itself: a reload (SIGHUP) sent the moment
// node.pid appears never kills a starting node.
func TestSignalDuringStartup(t *testing.T) {
	for range 3 {
		state := t.TempDir()
		cmd := exec.Command(binary, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, out) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(state, "node.pid")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatal("node.pid never appeared")
			}
			time.Sleep(200 * time.Microsecond)
		}
		_ = cmd.Process.Signal(syscall.SIGHUP) // what 'alknet reload' sends
		if _, errOut, code := run(t, "--state-dir", state, "call", "node/health"); code != 0 {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("node after an early SIGHUP: exit %d %s", code, errOut)
		}
		stop(t, cmd)
	}
}
