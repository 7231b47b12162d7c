package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/identity"
)

// devNode starts `serve --dev` on free ports with its own state directory.
func devNode(t *testing.T) (state string, lines map[string]string) {
	t.Helper()
	state = t.TempDir()
	_, lines, _ = startServe(t, false, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0")
	return state, lines
}

func mustJSON(t *testing.T, what, out string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: not one JSON object: %v\n%q", what, err, out)
	}
	return v
}

// Item 1: --transport auto races; a TCP-only target and a refused port answer fast; --listen
// with port 0 gives QUIC and TCP the same port.
func TestDialRaceFromCLI(t *testing.T) {
	_, lines := devNode(t)
	if lines["quic"] != lines["tcp"] {
		t.Fatalf("--listen 127.0.0.1:0 bound QUIC %s and TCP %s", lines["quic"], lines["tcp"])
	}
	// A target that serves only TCP: its UDP port swallows every packet (a firewall would).
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tcpOnly, err := identity.Ticket{Fingerprint: lines["fingerprint"], QUIC: []string{silent.LocalAddr().String()}, TCP: []string{lines["tcp"]}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Correctness bounds, not speed claims: the QUIC handshake timeout alone is 10 s.
	const fast = time.Second
	start := time.Now()
	out, errOut, code := run(t, "call", "--to", tcpOnly, "-v", "node/health")
	if took := time.Since(start); code != 0 || took > fast {
		t.Fatalf("TCP-only target: code %d in %v\n%s%s", code, took, out, errOut)
	}
	if !strings.Contains(errOut, "tcp+tls "+lines["tcp"]+" won") || !strings.Contains(errOut, "connected over tcp+tls") {
		t.Fatalf("-v does not show TCP winning:\n%s", errOut)
	}
	// --timeout below the handshake timeout still reaches TCP.
	if _, errOut, code := run(t, "call", "--to", tcpOnly, "--timeout", "2s", "node/health"); code != 0 {
		t.Fatalf("TCP-only target with --timeout 2s: %d %s", code, errOut)
	}
	closed := freePort(t)
	start = time.Now()
	_, errOut, code = run(t, "call", "--to", closed, "--pin", lines["fingerprint"], "node/health")
	if took := time.Since(start); code != 2 || took > fast || !strings.Contains(errOut, "UNREACHABLE") {
		t.Fatalf("refused port: code %d in %v: %s", code, took, errOut)
	}
}

// Items 2 and 4: status of a running and of a stopped node; ticket inspect; ping; key show --key-file.
func TestStatusPingTicket(t *testing.T) {
	state := t.TempDir()
	cmd, lines, _ := startServe(t, false, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0")
	out, errOut, code := run(t, "--state-dir", state, "status")
	for _, want := range []string{"status       running", "fingerprint  " + lines["fingerprint"], "quic         " + lines["quic"], "tcp          " + lines["tcp"], "connections  1", "in_flight    0", "config       none (a --dev node)", "last_reload  none since start"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status: %d, no %q in\n%s%s", code, want, out, errOut)
		}
	}
	out, _, code = run(t, "--state-dir", state, "status", "--json")
	st := mustJSON(t, "status --json", out)
	if code != 0 || st["status"] != "ok" || st["fingerprint"] != lines["fingerprint"] || st["pid"] != float64(cmd.Process.Pid) || st["dev"] != true {
		t.Fatalf("status --json: %v", st)
	}
	// Another client, without the local admin key, sees no details.
	out, _, code = run(t, "status", "--to", lines["ticket"], "--json")
	if st := mustJSON(t, "status --to", out); code != 0 || st["status"] != "ok" || st["pid"] != nil {
		t.Fatalf("anonymous status shows details: %v", st)
	}

	out, _, code = run(t, "ticket", "inspect", lines["ticket"])
	if code != 0 || !strings.Contains(out, "fingerprint  "+lines["fingerprint"]) || !strings.Contains(out, "0x10 quic "+lines["quic"]) {
		t.Fatalf("ticket inspect: %d\n%s", code, out)
	}
	out, _, code = run(t, "--state-dir", state, "ticket", "inspect", "--json")
	if tk := mustJSON(t, "ticket inspect --json", out); code != 0 || tk["fingerprint"] != lines["fingerprint"] || len(tk["records"].([]any)) != 3 {
		t.Fatalf("ticket inspect --json: %v", tk)
	}
	if _, errOut, code := run(t, "ticket", "inspect", "alk1nope"); code != 1 || !strings.Contains(errOut, "invalid ticket") {
		t.Fatalf("ticket inspect of garbage: %d %s", code, errOut)
	}

	out, _, code = run(t, "--state-dir", state, "ping", "--count", "2")
	if code != 0 || !strings.Contains(out, "quic       "+lines["quic"]) || !strings.Contains(out, "tcp+tls    "+lines["tcp"]) || !strings.Contains(out, "won the race") {
		t.Fatalf("ping: %d\n%s", code, out)
	}
	out, _, code = run(t, "ping", "--json", lines["ticket"])
	p := mustJSON(t, "ping --json", out)
	race, _ := p["race"].(map[string]any)
	if code != 0 || len(p["transports"].([]any)) != 2 || race == nil || (race["winner"] != "quic" && race["winner"] != "tcp+tls") {
		t.Fatalf("ping --json: %v", p)
	}
	if _, errOut, code := run(t, "ping", "--to", freePort(t), "--pin", lines["fingerprint"], "--transport", "tcp"); code != 2 || errOut != "" {
		t.Fatalf("ping of a closed port: %d %q", code, errOut)
	}

	keyFile := filepath.Join(t.TempDir(), "k.pem")
	out, _, _ = run(t, "key", "gen", "--out", keyFile, "--json")
	fp := mustJSON(t, "key gen --json", out)["fingerprint"]
	out, errOut, code = run(t, "--state-dir", t.TempDir(), "key", "show", "--key-file", keyFile, "--json")
	ks := mustJSON(t, "key show --key-file --json", out)
	if code != 0 || ks["fingerprint"] != fp || !strings.Contains(errOut, "no address") {
		t.Fatalf("key show --key-file: %d %v %s", code, ks, errOut)
	}
	out, errOut, code = run(t, "--state-dir", t.TempDir(), "key", "show", "--key-file", keyFile, "--advertise", "node.example:7443")
	if code != 0 || !strings.Contains(out, "fingerprint "+fp.(string)) || errOut != "" {
		t.Fatalf("key show --advertise: %d %s %s", code, out, errOut)
	}

	stop(t, cmd)
	out, _, code = run(t, "--state-dir", state, "status")
	if code != 2 || !strings.Contains(out, "status     stopped") {
		t.Fatalf("status of a stopped node: %d\n%s", code, out)
	}
	out, _, code = run(t, "--state-dir", state, "status", "--json")
	if st := mustJSON(t, "stopped status --json", out); code != 2 || st["status"] != "stopped" {
		t.Fatalf("stopped status --json: %d %v", code, st)
	}
	if _, err := os.Stat(filepath.Join(state, "node.admin.key")); !os.IsNotExist(err) {
		t.Fatal("the local admin key outlived its node")
	}
	if _, errOut, code := run(t, "--state-dir", state, "reload"); code != 2 || !strings.Contains(errOut, "no running node") {
		t.Fatalf("reload without a node: %d %s", code, errOut)
	}
}

// Items 3, 5, 6, 7: the operation type is checked, unknown names get suggestions, ls filters and
// describes, completion offers names, -v shows the exchange, and the framework behaves.
func TestClientBehaviour(t *testing.T) {
	state, _ := devNode(t)
	cases := []struct {
		name string
		args []string
		code int
		out  string // substring of stdout
		err  string // substring of stderr
	}{
		{"call on a subscription", []string{"call", "demo/ticker"}, 1, "", "error: USAGE: demo/ticker is a subscription: use alknet sub\nrun 'alknet call --help' for usage\n"},
		{"sub on a query", []string{"sub", "demo/echo", `{"text":"x"}`}, 1, "", "USAGE: demo/echo is a query: use alknet call"},
		{"did you mean", []string{"call", "demo/ech"}, 3, "", "did you mean demo/echo?"},
		{"schema did you mean", []string{"schema", "demo/tiker"}, 3, "", "did you mean demo/ticker?"},
		{"ls prefix and descriptions", []string{"ls", "demo/"}, 0, "demo/echo     query         Return the text it is given.", ""},
		{"verbose call", []string{"call", "-v", "demo/echo", `{"text":"v"}`}, 0, `{"text":"v"}`, "< call.responded id="},
		{"verbose sub", []string{"sub", "--verbose", "demo/ticker", `{"count":1}`}, 0, `{"tick":0}`, "< call.completed id="},
		{"unknown command", []string{"foo"}, 1, "", "error: USAGE: unknown command \"foo\"\nrun 'alknet --help' for usage\n"},
		{"unknown subcommand", []string{"peer", "frob"}, 1, "", "error: USAGE: unknown command \"frob\"\nrun 'alknet peer --help' for usage\n"},
		{"unknown flag", []string{"call", "--frob", "x"}, 1, "", "run 'alknet call --help' for usage"},
		{"version flag", []string{"--version"}, 0, "alknet ", ""},
		{"json error", []string{"call", "--json", "demo/ech"}, 3, "", `{"error":{"code":"NOT_FOUND","hint":"did you mean demo/echo? ('alknet ls' lists what you may call)","message":"operation not found: demo/ech"}}`},
		{"json usage error", []string{"call", "--json", "--frob"}, 1, "", `{"error":{"code":"USAGE","hint":"run 'alknet call --help' for usage","message":"flag provided but not defined: -frob"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, append([]string{"--state-dir", state}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
				t.Fatalf("code %d, want %d\nstdout %q (want %q)\nstderr %q (want %q)", code, tc.code, out, tc.out, errOut, tc.err)
			}
			if tc.code == 1 && strings.Contains(errOut, "USAGE:\n") {
				t.Fatalf("a usage error printed the whole help:\n%s", errOut)
			}
		})
	}
	// The request id shown by -v is the one on the wire: the verbose lines agree.
	_, errOut, _ := run(t, "--state-dir", state, "call", "-v", "node/health")
	_, sent, _ := strings.Cut(errOut, "> call.requested id=")
	id, _, _ := strings.Cut(sent, " ")
	if id == "" || !strings.Contains(errOut, "< call.responded id="+id) || !strings.Contains(errOut, "pin ") {
		t.Fatalf("-v output:\n%s", errOut)
	}
	// Completion of operation names, from the target's catalogue (then from the cache).
	for range 2 {
		out, _, code := run(t, "--state-dir", state, "call", "--generate-shell-completion")
		if code != 0 || !strings.Contains(out, "demo/echo\n") || !strings.Contains(out, "node/status\n") {
			t.Fatalf("completion: %d %q", code, out)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "completion.json")); err != nil {
		t.Fatalf("no completion cache: %v", err)
	}
	// Flags that do not apply are not listed; defaults print once.
	out, _, _ := run(t, "sub", "--help")
	if strings.Contains(out, "--timeout") {
		t.Fatalf("sub --help lists --timeout:\n%s", out)
	}
	for _, cmd := range allCommands {
		out, _, _ := run(t, append(cmd, "--help")...)
		for _, line := range strings.Split(out, "\n") {
			if strings.Count(line, "default") > 1 {
				t.Errorf("%v --help prints a default twice: %q", cmd, line)
			}
		}
	}
}

// Item 8: every --json command prints one JSON value, snake_case.
func TestJSONEverywhere(t *testing.T) {
	state, lines := devNode(t)
	cfgDir := t.TempDir()
	cfg := filepath.Join(cfgDir, "node.toml")
	keyFile := filepath.Join(cfgDir, "k.pem")
	outFile := filepath.Join(cfgDir, "token")
	for _, args := range [][]string{
		{"version", "--json"},
		{"call", "--json", "demo/add", `{"a":1,"b":2}`},
		{"ls", "--json"},
		{"ls", "--json", "demo/"},
		{"schema", "--json", "demo/echo"},
		{"status", "--json"},
		{"ping", "--json", "--count", "1"},
		{"ticket", "inspect", "--json", lines["ticket"]},
		{"key", "gen", "--json", "--out", keyFile},
		{"key", "show", "--json", "--key-file", keyFile},
		{"peer", "add", "--json", "--config", cfg, "alice", "--fingerprint", lines["fingerprint"], "--scope", "read"},
		{"peer", "ls", "--json", "--config", cfg},
		{"apikey", "create", "--json", "--config", cfg, "--scope", "read", "--out", outFile},
		{"apikey", "ls", "--json", "--config", cfg},
		{"peer", "rm", "--json", "--config", cfg, "alice"},
		{"serve", "--check", "--json", "--config", cfg},
	} {
		out, errOut, code := run(t, append([]string{"--state-dir", state}, args...)...)
		var v any
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Fatalf("%v: code %d, not one JSON line: %q %s", args, code, out, errOut)
		}
		if strings.ContainsAny(keysOf(v), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("%v: keys not snake_case: %s", args, out)
		}
	}
	// sub --json prints NDJSON: one object per item.
	out, _, code := run(t, "--state-dir", state, "sub", "--json", "demo/ticker", `{"count":2,"interval_ms":0}`)
	if code != 0 || out != "{\"tick\":0}\n{\"tick\":1}\n" {
		t.Fatalf("sub --json: %d %q", code, out)
	}
	// serve --json: the start-up facts as one object.
	cmd := exec.Command(binary, "--state-dir", t.TempDir(), "serve", "--dev", "--json", "--listen", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatal("serve --json printed nothing")
	}
	started := mustJSON(t, "serve --json", sc.Text())
	tk, err := identity.ParseTicket(started["ticket"].(string))
	if err != nil || tk.Fingerprint != started["fingerprint"] || len(started["quic"].([]any)) != 1 || tk.TCP[0] != started["tcp"].([]any)[0] {
		t.Fatalf("serve --json: %v (%v)", started, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	stop(t, cmd)
}

// keysOf lists every object key in v (the API keys' values may legitimately hold capitals).
func keysOf(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if strings.Contains(k, "/") || strings.HasPrefix(k, "golang.org") { // module paths under version's deps
					continue
				}
				b.WriteString(k + " ")
				if !strings.HasSuffix(k, "schema") { // JSON Schemas are data (additionalProperties)
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}
