package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startServe runs 'alknet serve' and returns the start-up lines once the ticket is printed.
func startServe(t *testing.T, wantMetrics bool, args ...string) (*exec.Cmd, map[string]string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stdout, _ := cmd.StdoutPipe()
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		lines[k] = v
		if k == "metrics" || (k == "ticket" && !wantMetrics) {
			break
		}
	}
	if lines["ticket"] == "" {
		t.Fatalf("no ticket line: %v\n%s", lines, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return cmd, lines, stderr
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
			return
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not drain and exit")
	}
}

// The scripted scenario: a peer with the admin scope and an admin API key may call
// node/reload; without credentials it is FORBIDDEN; after 'apikey revoke' and 'alknet reload'
// the token is FORBIDDEN without a restart; SIGTERM drains and exits 0.
func TestOperatorFlow(t *testing.T) {
	state, secrets := t.TempDir(), t.TempDir()
	pp := writeFile(t, secrets, "passphrase", "pw\n")
	mn := writeFile(t, secrets, "mnemonic", abandon+"\n")
	if _, errOut, code := run(t, "--state-dir", state, "init", "--recover", "--mnemonic-file", mn, "--passphrase-file", pp); code != 0 {
		t.Fatal(errOut)
	}
	keyFile := filepath.Join(secrets, "admin.key")
	out, _, code := run(t, "key", "gen", "--out", keyFile)
	adminFP := strings.TrimPrefix(strings.TrimSpace(out), "fingerprint ")
	if code != 0 || !strings.HasPrefix(adminFP, "ed25519:") {
		t.Fatalf("key gen: %d %q", code, out)
	}
	cfg := filepath.Join(state, "config.toml")
	if err := os.WriteFile(cfg, []byte("# operator test\n[node]\nlisten = [\"127.0.0.1:0\"]\nmetrics_addr = \"127.0.0.1:0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, "--state-dir", state, "peer", "add", "admin", "--fingerprint", adminFP, "--scope", "admin"); code != 0 {
		t.Fatalf("peer add: %s %s", out, errOut)
	}
	token, errOut, code := run(t, "--state-dir", state, "apikey", "create", "--scope", "admin", "--description", "ci")
	token = strings.TrimSpace(token)
	if code != 0 || !strings.HasPrefix(token, "alk_") {
		t.Fatalf("apikey create: %d %q %s", code, token, errOut)
	}
	text, _ := os.ReadFile(cfg)
	if strings.Contains(string(text), token) || !strings.Contains(string(text), "# operator test") {
		t.Fatalf("config after edits:\n%s", text)
	}
	tokenFile := writeFile(t, secrets, "token", token+"\n")
	if out, _, code := run(t, "--state-dir", state, "serve", "--check", "--passphrase-file", pp); code != 0 || !strings.HasPrefix(out, "config ok") {
		t.Fatalf("--check: %d %s", code, out)
	}

	cmd, lines, stderr := startServe(t, true, "--state-dir", state, "serve", "--passphrase-file", pp)
	// key show takes the running node's addresses when neither --advertise nor the config has any.
	out, errOut, code = run(t, "--state-dir", state, "key", "show", "--passphrase-file", pp, "--json")
	if ks := mustJSON(t, "key show --json", out); code != 0 || ks["ticket"] != lines["ticket"] || ks["addresses_from"] != "running node" || errOut != "" {
		t.Fatalf("key show with a running node: %d %v %s", code, ks, errOut)
	}
	for name, args := range map[string][]string{
		"as the admin peer": {"call", "--key-file", keyFile, "node/reload"},
		"with the API key":  {"call", "--token-file", tokenFile, "node/reload"},
	} {
		if out, errOut, code := run(t, append([]string{"--state-dir", state}, args...)...); code != 0 || !strings.Contains(out, `"changed":[]`) {
			t.Fatalf("node/reload %s: %d %s %s", name, code, out, errOut)
		}
	}
	if _, errOut, code := run(t, "--state-dir", state, "call", "node/reload"); code != 4 || !strings.Contains(errOut, "FORBIDDEN") {
		t.Fatalf("anonymous node/reload: %d %s", code, errOut)
	}
	prefix := token[:8]
	if out, errOut, code := run(t, "--state-dir", state, "apikey", "revoke", "--json", prefix); code != 0 || out != `{"config":"`+cfg+`","prefix":"`+prefix+`"}`+"\n" {
		t.Fatalf("revoke: %s %s", out, errOut)
	}
	if out, errOut, code := run(t, "--state-dir", state, "reload"); code != 0 {
		t.Fatalf("reload: %s %s", out, errOut)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, errOut, code := run(t, "--state-dir", state, "call", "--token-file", tokenFile, "node/reload")
		if code == 4 && strings.Contains(errOut, "FORBIDDEN") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still works: %d %s\n%s", code, errOut, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "apikey removed: "+prefix) {
		t.Fatalf("the reload did not log what changed:\n%s", stderr.String())
	}
	// An invalid reload keeps the old config: the admin peer still works.
	good, _ := os.ReadFile(cfg)
	_ = os.WriteFile(cfg, append(good, []byte("\n[[peer]]\npeer_id = \"admin\"\nfingerprints = []\nscopes = [\"x\"]\n")...), 0o600)
	if _, errOut, code := run(t, "--state-dir", state, "call", "--key-file", keyFile, "node/reload"); code != 5 || !strings.Contains(errOut, "duplicate peer_id: admin") {
		t.Fatalf("invalid reload: %d %s", code, errOut)
	}
	if _, _, code := run(t, "--state-dir", state, "call", "--key-file", keyFile, "node/info"); code != 0 {
		t.Fatal("the old config was not kept")
	}
	// A change to core connection limits needs a restart.
	_ = os.WriteFile(cfg, append(good, []byte("\n[node.limits]\nmax_connections = 5\n")...), 0o600)
	if _, errOut, code := run(t, "--state-dir", state, "call", "--key-file", keyFile, "node/reload"); code != 5 || !strings.Contains(errOut, "need a restart") {
		t.Fatalf("limits reload: %d %s", code, errOut)
	}
	// `alknet reload` (local, through the node's admin key) reports the node's verdict.
	_ = os.WriteFile(cfg, append(good, []byte("\n[[peer]]\npeer_id = \"admin\"\nfingerprints = []\nscopes = [\"x\"]\n")...), 0o600)
	if _, errOut, code := run(t, "--state-dir", state, "reload"); code != 5 || !strings.Contains(errOut, "error: INVALID_INPUT: ") || !strings.Contains(errOut, "duplicate peer_id: admin") {
		t.Fatalf("rejected local reload: %d %s", code, errOut)
	}
	out, _, _ = run(t, "--state-dir", state, "status")
	if !strings.Contains(out, "last_reload  rejected at ") || !strings.Contains(out, "duplicate peer_id: admin") {
		t.Fatalf("status after a rejected reload:\n%s", out)
	}
	moved := strings.Replace(string(good), "metrics_addr", "advertise = [\"node.example:7443\"]\nmetrics_addr", 1)
	_ = os.WriteFile(cfg, []byte(moved), 0o600)
	out, errOut, code = run(t, "--state-dir", state, "reload")
	if code != 0 || out != "reloaded\nrestart_required node.advertise\n" || !strings.Contains(errOut, "next start") {
		t.Fatalf("reload that needs a restart: %d %q %s", code, out, errOut)
	}
	out, _, code = run(t, "--state-dir", state, "reload", "--json")
	if code != 0 || out != `{"changed":[],"restart_required":["node.advertise"]}`+"\n" {
		t.Fatalf("reload --json: %d %q", code, out)
	}
	out, _, _ = run(t, "--state-dir", state, "status")
	if !strings.Contains(out, "needs a restart: node.advertise") || !strings.Contains(out, "config       "+cfg) {
		t.Fatalf("status after reload:\n%s", out)
	}
	// A config may not name the local admin peer.
	_ = os.WriteFile(cfg, append(good, []byte("\n[[peer]]\npeer_id = \"@local-admin\"\nfingerprints = []\nscopes = [\"admin\"]\n")...), 0o600)
	if _, errOut, code := run(t, "--state-dir", state, "reload"); code != 5 || !strings.Contains(errOut, "reserved") {
		t.Fatalf("reserved peer id: %d %s", code, errOut)
	}
	_ = os.WriteFile(cfg, good, 0o600)
	// /metrics exposes the listed series.
	resp, err := http.Get(lines["metrics"])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, series := range []string{
		`alknet_calls_total{code="OK",op="node/reload"}`, `alknet_calls_total{code="FORBIDDEN",op="node/reload"}`,
		`alknet_call_duration_seconds_bucket{op="node/reload",le="+Inf"}`, "go_goroutines", "process_resident_memory_bytes", `alknet_connections_active{transport="quic"}`,
		"alknet_streams_active", `alknet_auth_attempts_total{result="accept"}`, "alknet_auth_failures_total",
	} {
		if !strings.Contains(string(body), series) {
			t.Fatalf("/metrics lacks %s:\n%s", series, body)
		}
	}
	stop(t, cmd)
}

// Metrics tell a caller's abort apart from a node error, and count connections per peer.
func TestMetricsCauses(t *testing.T) {
	state := t.TempDir()
	cmd, lines, _ := startServe(t, true, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	scrape := func() string {
		resp, err := http.Get(lines["metrics"])
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	// A caller whose own timeout is shorter than the node's sends it (timeout_ms): the node
	// times the call out as TIMEOUT (or, by a hair, sees the abort first: ABORTED), never INTERNAL.
	if _, _, code := run(t, "--state-dir", state, "call", "--timeout", "100ms", "demo/sleep"); code != 6 {
		t.Fatalf("client timeout: exit %d", code)
	}
	// An open subscription is a live anonymous connection; Ctrl-C aborts it.
	sub := exec.Command(binary, "--state-dir", state, "sub", "demo/ticker", `{"count":0,"interval_ms":10}`)
	subOut, _ := sub.StdoutPipe()
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	if !bufio.NewScanner(subOut).Scan() {
		t.Fatal("no first item")
	}
	eventually(t, func() bool { return strings.Contains(scrape(), `alknet_peer_connections{peer="anonymous"} 1`) }, "a per-peer connection count")
	_ = sub.Process.Signal(os.Interrupt)
	go func() { _, _ = io.Copy(io.Discard, subOut) }()
	_ = sub.Wait()
	eventually(t, func() bool {
		m := scrape()
		sleep := strings.Contains(m, `alknet_calls_total{code="TIMEOUT",op="demo/sleep"} 1`) || strings.Contains(m, `alknet_calls_total{code="ABORTED",op="demo/sleep"} 1`)
		return sleep && strings.Contains(m, `alknet_calls_total{code="ABORTED",op="demo/ticker"} 1`)
	}, "TIMEOUT and ABORTED counts")
	if m := scrape(); strings.Contains(m, `code="INTERNAL"`) {
		t.Fatalf("aborts counted as INTERNAL:\n%s", m)
	}
	stop(t, cmd)
}

// Checklist: a typo'd key fails --check with file:line; the shipped example config is valid.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.toml", "[node]\nlisten = [\"127.0.0.1:0\"]\n\n[[peer]]\npeer_id = \"a\"\nfingerprint = [\"x\"]\n")
	_, errOut, code := run(t, "--state-dir", dir, "serve", "--config", bad, "--check")
	if code != 1 || !strings.Contains(errOut, bad+":6: unknown key peer.fingerprint") {
		t.Fatalf("typo: %d %s", code, errOut)
	}
	invalid := writeFile(t, dir, "invalid.toml", "[node.limits]\nkeep_alive_period = \"40s\"\n[call]\nmax_frame_size = 100\n")
	_, errOut, code = run(t, "--state-dir", dir, "serve", "--config", invalid, "--check")
	if code != 1 || !strings.Contains(errOut, "keep_alive_period") || !strings.Contains(errOut, "max_frame_size") {
		t.Fatalf("invalid: %d %s", code, errOut)
	}
	example, _ := filepath.Abs("../../../docs/config.example.toml")
	if out, errOut, code := run(t, "--state-dir", dir, "serve", "--config", example, "--check"); code != 0 {
		t.Fatalf("example config: %d %s %s", code, out, errOut)
	}
}

// syncBuffer is a strings.Builder safe for a writer process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
