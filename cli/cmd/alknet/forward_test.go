package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/identity"
)

// vaultNode is a node with a vault and a config file in its own state directory.
type vaultNode struct {
	t      *testing.T
	state  string
	pass   string
	fp     string
	cmd    *exec.Cmd
	lines  map[string]string
	stderr *syncBuffer
}

func newVaultNode(t *testing.T) *vaultNode {
	t.Helper()
	v := &vaultNode{t: t, state: t.TempDir()}
	v.pass = writeFile(t, t.TempDir(), "pass", "correct horse battery staple\n")
	out, errOut, code := run(t, "--state-dir", v.state, "init", "--yes", "--words", "12", "--json", "--passphrase-file", v.pass)
	var init struct{ Fingerprint string }
	if code != 0 || json.Unmarshal([]byte(out), &init) != nil {
		t.Fatalf("init: %d %s %s", code, out, errOut)
	}
	v.fp = init.Fingerprint
	return v
}

func (v *vaultNode) config(text string) {
	v.t.Helper()
	if err := os.WriteFile(filepath.Join(v.state, "config.toml"), []byte(text), 0o600); err != nil {
		v.t.Fatal(err)
	}
}

func (v *vaultNode) cli(args ...string) (string, string, int) {
	v.t.Helper()
	return run(v.t, append([]string{"--state-dir", v.state}, args...)...)
}

func (v *vaultNode) serve(extra ...string) {
	v.t.Helper()
	wantMetrics := strings.Contains(strings.Join(extra, " "), "--metrics-addr")
	v.cmd, v.lines, v.stderr = startServe(v.t, wantMetrics, append([]string{"--state-dir", v.state, "serve", "--passphrase-file", v.pass}, extra...)...)
}

func (v *vaultNode) stop() {
	v.t.Helper()
	if v.t.Failed() {
		return
	}
	defer func() {
		if v.t.Failed() {
			v.t.Logf("serve's stderr:\n%s", v.stderr.String())
		}
	}()
	stop(v.t, v.cmd)
}

func (v *vaultNode) metrics() string {
	v.t.Helper()
	resp, err := http.Get(v.lines["metrics"])
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// freePort is a loopback address whose port is free for TCP and UDP now.
func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := l.Addr().String()
		u, err := net.ListenPacket("udp", a)
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return a
		}
	}
	t.Fatal("no free port")
	return ""
}

// The forwarding scenario end to end (a hub and workers, mutual imports), driving only
// bin/alknet: make e2e.
func TestForwardingScenario(t *testing.T) {
	hub, worker := newVaultNode(t), newVaultNode(t)
	adminKey := filepath.Join(t.TempDir(), "admin.key")
	out, _, _ := run(t, "key", "gen", "--out", adminKey, "--json")
	var gen struct{ Fingerprint string }
	_ = json.Unmarshal([]byte(out), &gen)

	// 1. The hub imports inbound links whose identity holds the worker scope, exposed.
	// A 1 s single-stream idle timeout: a TCP link must keep itself alive (checklist 39).
	hub.config("[node]\nlisten = [\"127.0.0.1:0\"]\n[node.limits]\nsingle_stream_idle_timeout = \"1s\"\n\n[hub]\nimport_scope = \"worker\"\nexpose = true\nrefresh = \"1s\"\n")
	for _, args := range [][]string{
		{"peer", "add", "w1", "--fingerprint", worker.fp, "--scope", "worker"},
		{"peer", "add", "admin", "--fingerprint", gen.Fingerprint, "--scope", "admin"},
	} {
		if _, errOut, code := hub.cli(args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	if out, errOut, code := hub.cli("serve", "--check", "--passphrase-file", hub.pass); code != 0 {
		t.Fatalf("hub --check: %s %s", out, errOut)
	}
	hub.serve()
	H := hub.lines["ticket"]
	worker.config("[node]\nlisten = [\"127.0.0.1:0\"]\n\n[[uplink]]\npeer_id = \"hub\"\nticket = \"" + H + "\"\n")
	if _, errOut, code := worker.cli("peer", "add", "hub", "--fingerprint", hub.fp, "--scope", "hub"); code != 0 {
		t.Fatal(errOut)
	}
	worker.serve("--demo", "--metrics-addr", "127.0.0.1:0")

	// 2. Within 5 s the hub lists the worker's operations, with VIA.
	eventually(t, func() bool {
		out, _, _ := run(t, "ls", "--to", H)
		return strings.Contains(out, "w1/demo/echo") && strings.Contains(out, "VIA") && strings.Contains(out, worker.fp[:20])
	}, "w1/demo/echo listed with VIA")

	// 3. Calls and schema through the hub.
	if out, errOut, code := run(t, "call", "w1/demo/echo", `{"text":"hi"}`, "--to", H); code != 0 || out != `{"text":"hi"}`+"\n" {
		t.Fatalf("call through the hub: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := run(t, "call", "w1/demo/echo", `{}`, "--to", H); code != 5 {
		t.Fatalf("invalid input through the hub: %d %s", code, errOut)
	}
	if out, _, code := run(t, "schema", "w1/demo/echo", "--to", H); code != 0 || !strings.Contains(out, `"text"`) {
		t.Fatalf("schema through the hub: %d %s", code, out)
	}
	// 4. A subscription through the hub.
	if out, _, code := run(t, "sub", "w1/demo/ticker", `{"count":3,"interval_ms":0}`, "--to", H); code != 0 || out != "{\"tick\":0}\n{\"tick\":1}\n{\"tick\":2}\n" {
		t.Fatalf("sub through the hub: %d %q", code, out)
	}
	// 5. Ctrl-C on a subscription through the hub aborts it on the worker.
	sub := exec.Command(binary, "sub", "w1/demo/ticker", `{"count":0,"interval_ms":10}`, "--to", H)
	subOut, _ := sub.StdoutPipe()
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	if !bufio.NewScanner(subOut).Scan() {
		t.Fatal("no first item")
	}
	interrupted := time.Now()
	_ = sub.Process.Signal(os.Interrupt)
	go func() { _, _ = io.Copy(io.Discard, subOut) }()
	if err := sub.Wait(); err == nil || sub.ProcessState.ExitCode() != 130 {
		t.Fatalf("sub after SIGINT: %v", err)
	}
	const aborted = `alknet_calls_total{code="ABORTED",op="demo/ticker"} 1`
	eventually(t, func() bool { return strings.Contains(worker.metrics(), aborted) }, aborted)
	took := time.Since(interrupted)
	t.Logf("SIGINT on the client → the worker counts %s: %v", aborted, took)
	if took > 2*time.Second { // the bound is 1 s plus a scrape; the log says how long it took
		t.Fatalf("the abort took %v to reach the worker", took)
	}
	// 6. A deadline through the hub: TIMEOUT, and the worker's call ended.
	if _, errOut, code := run(t, "call", "w1/demo/sleep", `{}`, "--to", H, "--timeout", "1s"); code != 6 {
		t.Fatalf("sleep with --timeout 1s: %d %s", code, errOut)
	}
	eventually(t, func() bool {
		m := worker.metrics()
		return strings.Contains(m, `alknet_calls_total{code="TIMEOUT",op="demo/sleep"} 1`) || strings.Contains(m, `alknet_calls_total{code="ABORTED",op="demo/sleep"} 1`)
	}, "the worker's demo/sleep ended")
	// 7. list-peers needs the admin scope.
	if out, errOut, code := run(t, "ls", "--peers", "--to", H, "--key-file", adminKey); code != 0 || !hasRow(out, "w1", "w1/demo/echo", "query") {
		t.Fatalf("ls --peers as admin: %d\n%s%s", code, out, errOut)
	}
	if _, _, code := run(t, "ls", "--peers", "--to", H); code != 4 {
		t.Fatalf("ls --peers without admin: %d", code)
	}
	// 8. The worker stops: its names are NOT_FOUND within 2 s; restarted, they work within 5 s.
	worker.stop()
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, _, code := run(t, "call", "w1/demo/echo", `{"text":"x"}`, "--to", H)
		if code == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the worker stopped: exit %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	worker.serve("--demo", "--metrics-addr", "127.0.0.1:0")
	eventually(t, func() bool {
		_, _, code := run(t, "call", "w1/demo/echo", `{"text":"x"}`, "--to", H)
		return code == 0
	}, "calls through the restarted worker")

	// Checklist 37: a refresh adds an operation that became visible to the hub and removes one
	// that vanished (the worker grants the hub the admin scope: node/reload appears).
	workerCfg, _ := os.ReadFile(filepath.Join(worker.state, "config.toml"))
	grant := strings.Replace(string(workerCfg), `scopes = ["hub"]`, `scopes = ["hub", "admin"]`, 1)
	_ = os.WriteFile(filepath.Join(worker.state, "config.toml"), []byte(grant), 0o600)
	if _, errOut, code := worker.cli("reload"); code != 0 {
		t.Fatalf("worker reload: %s", errOut)
	}
	// (Listed for an admin: the import keeps the worker's access control.)
	eventually(t, func() bool {
		out, _, _ := run(t, "ls", "--to", H, "--key-file", adminKey)
		return strings.Contains(out, "w1/node/reload")
	}, "a refresh adds w1/node/reload")
	_ = os.WriteFile(filepath.Join(worker.state, "config.toml"), workerCfg, 0o600)
	if _, errOut, code := worker.cli("reload"); code != 0 {
		t.Fatalf("worker reload: %s", errOut)
	}
	eventually(t, func() bool {
		out, _, _ := run(t, "ls", "--to", H, "--key-file", adminKey)
		return strings.Contains(out, "w1/demo/echo") && !strings.Contains(out, "w1/node/reload")
	}, "a refresh removes w1/node/reload")

	// Checklist 40: a reload that changes a link section applies the rest, keeps the links, and
	// lists the section under restart_required (exit 0).
	hubCfg, _ := os.ReadFile(filepath.Join(hub.state, "config.toml"))
	_ = os.WriteFile(filepath.Join(hub.state, "config.toml"), []byte(strings.Replace(string(hubCfg), `refresh = "1s"`, `refresh = "2s"`, 1)), 0o600)
	if out, errOut, code := hub.cli("reload"); code != 0 || !strings.Contains(out, "restart_required hub") {
		t.Fatalf("reload of a link section: %d %q %s", code, out, errOut)
	}
	if _, errOut, code := run(t, "call", "w1/demo/echo", `{"text":"x"}`, "--to", H); code != 0 {
		t.Fatalf("the link after a reload: %s", errOut)
	}
	_ = os.WriteFile(filepath.Join(hub.state, "config.toml"), hubCfg, 0o600)

	// Checklist 39: a worker linked over TCP+TLS stays linked past 3 × the hub's 1 s
	// single-stream idle timeout, on one link.
	w2 := newVaultNode(t)
	if _, errOut, code := hub.cli("peer", "add", "w2", "--fingerprint", w2.fp, "--scope", "worker"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := hub.cli("reload"); code != 0 {
		t.Fatal(errOut)
	}
	w2.config("[node]\nlisten = [\"127.0.0.1:0\"]\n\n[[uplink]]\npeer_id = \"hub\"\nticket = \"" + H + "\"\ntransport = \"tcp\"\n")
	w2.serve("--demo")
	eventually(t, func() bool { _, _, code := run(t, "call", "w2/demo/echo", `{"text":"x"}`, "--to", H); return code == 0 }, "w2 through its TCP link")
	time.Sleep(3500 * time.Millisecond)
	if _, errOut, code := run(t, "call", "w2/demo/echo", `{"text":"x"}`, "--to", H); code != 0 {
		t.Fatalf("after 3.5 s idle: %s", errOut)
	}
	if n := strings.Count(w2.stderr.String(), `msg="link up"`); n != 1 {
		t.Fatalf("the TCP link came up %d times:\n%s", n, w2.stderr.String())
	}
	// Checklist 38: removing the worker's [[peer]] on the hub and reloading closes its link and
	// detaches its layer (its redials are anonymous: nothing is imported).
	if _, errOut, code := hub.cli("peer", "rm", "w2"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := hub.cli("reload"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, func() bool { _, _, code := run(t, "call", "w2/demo/echo", `{"text":"x"}`, "--to", H); return code == 3 }, "w2's names gone after its peer was removed")
	w2.stop()

	// 9. Two nodes importing each other converge: no b/a/… on A.
	a, b := newVaultNode(t), newVaultNode(t)
	aAddr, bAddr := freePort(t), freePort(t)
	ticketOf := func(fp, addr string) string {
		s, err := identity.Ticket{Fingerprint: fp, QUIC: []string{addr}, TCP: []string{addr}}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a.config("[node]\nlisten = [\"" + aAddr + "\"]\n\n[[import]]\npeer_id = \"b\"\nticket = \"" + ticketOf(b.fp, bAddr) + "\"\nexpose = true\nrefresh = \"1s\"\n")
	b.config("[node]\nlisten = [\"" + bAddr + "\"]\n\n[[import]]\npeer_id = \"a\"\nticket = \"" + ticketOf(a.fp, aAddr) + "\"\nexpose = true\nrefresh = \"1s\"\n")
	a.serve("--demo")
	b.serve("--demo")
	eventually(t, func() bool {
		out, _, _ := a.cli("ls", "b/")
		return strings.Contains(out, "b/demo/echo")
	}, "A lists b/demo/echo")
	time.Sleep(3 * time.Second) // three refreshes: the catalogues have settled
	out, _, _ = a.cli("ls")
	if !strings.Contains(out, "b/demo/echo") || strings.Contains(out, "b/a/") {
		t.Fatalf("A after mutual imports:\n%s", out)
	}
	// 10. SIGTERM on every node: each exits 0.
	for _, n := range []*vaultNode{a, b, worker, hub} {
		n.stop()
	}
}

// hasRow reports whether a table has a line of exactly these fields.
func hasRow(table string, fields ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		if strings.Join(strings.Fields(line), " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
