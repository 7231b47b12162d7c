package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/alkdev/alknet/core/identity"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "alknet-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "alknet")
	// The binary under test is built like the tests: with -race under -race, and with -cover
	// under -cover (its runs then add to the coverage profile through GOCOVERDIR).
	args := append([]string{"build", "-o", binary}, buildTags...)
	if raceEnabled {
		args = append(args, "-race")
	}
	flag.Parse()
	if f := flag.Lookup("test.gocoverdir"); f != nil && f.Value.String() != "" && testing.CoverMode() != "" {
		args = append(args, "-cover")
		_ = os.Setenv("GOCOVERDIR", f.Value.String())
	}
	// A -race binary sleeps 1 s at exit (GORACE atexit_sleep_ms) to catch late races; every CLI
	// run would take a second more, and timing bounds (a refused port fails "well under one
	// second") could not be checked. Races during the run are still reported.
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		panic("build alknet: " + err.Error() + "\n" + string(out))
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		goleak.VerifyTestMain(exitRecorder{&code, m})
	}()
	os.Exit(code)
}

// exitRecorder lets TestMain clean up before exiting.
type exitRecorder struct {
	code *int
	m    *testing.M
}

func (r exitRecorder) Run() int { *r.code = r.m.Run(); return *r.code }

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// The README's flow: a dev node on free ports, found through its state directory.
func TestServeDevAndPing(t *testing.T) {
	state := t.TempDir()
	cmd := exec.Command(binary, "--state-dir", state, "--log-level", "debug", "serve", "--dev", "--listen", "127.0.0.1:0", "--drain-timeout", "1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		lines[k] = v
		if k == "ticket" {
			break
		}
	}
	for _, k := range []string{"fingerprint", "quic", "tcp", "ticket"} {
		if lines[k] == "" {
			t.Fatalf("start-up line %q missing: %v\nstderr: %s", k, lines, stderr.String())
		}
	}
	if strings.HasSuffix(lines["quic"], ":0") || strings.HasSuffix(lines["tcp"], ":0") {
		t.Fatalf("start-up lines show port 0: %v", lines)
	}
	tk, err := identity.ParseTicket(lines["ticket"])
	if err != nil || tk.Fingerprint != lines["fingerprint"] || tk.QUIC[0] != lines["quic"] || tk.TCP[0] != lines["tcp"] {
		t.Fatalf("ticket %+v (%v) does not match %v", tk, err, lines)
	}
	saved, err := os.ReadFile(filepath.Join(state, "node.ticket"))
	if err != nil || string(saved) != lines["ticket"]+"\n" {
		t.Fatalf("node.ticket = %q, %v", saved, err)
	}
	// The README's first steps, with no flags but the state directory.
	for _, tr := range []string{"auto", "quic", "tcp"} {
		out, errOut, code := run(t, "--state-dir", state, "call", "--transport", tr, "demo/echo", `{"text":"hi"}`)
		if code != 0 || out != `{"text":"hi"}`+"\n" {
			t.Fatalf("call over %s: code %d\n%q%s", tr, code, out, errOut)
		}
	}
	out, errOut, code := run(t, "--state-dir", state, "sub", "demo/ticker")
	if code != 0 || out != "{\"tick\":0}\n{\"tick\":1}\n{\"tick\":2}\n" {
		t.Fatalf("sub: %d %q %s", code, out, errOut)
	}
	out, _, code = run(t, "call", "--to", lines["ticket"], "node/info")
	if code != 0 || !strings.Contains(out, lines["fingerprint"]) {
		t.Fatalf("call --to: %d %s", code, out)
	}
	host := lines["tcp"]
	out, _, code = run(t, "call", "--to", host, "--pin", lines["fingerprint"], "--transport", "tcp", "demo/add", `{"a":1,"b":2.5}`)
	if code != 0 || out != `{"sum":3.5}`+"\n" {
		t.Fatalf("call --to host:port --pin: %d %q", code, out)
	}
	out, _, code = run(t, "--state-dir", state, "ls")
	if code != 0 || !strings.Contains(out, "demo/ticker      subscription") {
		t.Fatalf("ls: %d %s", code, out)
	}
	out, _, code = run(t, "--state-dir", state, "ls", "--json")
	if code != 0 || !strings.HasPrefix(out, `{"operations":[{"name":"demo/add","namespace":"demo","op_type":"query","description":"Add two numbers (as float64)."}`) {
		t.Fatalf("ls --json: %d %s", code, out)
	}
	// --stream-per-call (docs/protocol.md §4.1.2): the same answers on a stream of its own.
	if out, errOut, code := run(t, "--state-dir", state, "call", "--stream-per-call", "-v", "demo/echo", `{"text":"own"}`); code != 0 || out != "{\"text\":\"own\"}\n" {
		t.Fatalf("call --stream-per-call: %d %q %q", code, out, errOut)
	}
	out, _, code = run(t, "--state-dir", state, "schema", "demo/echo")
	if code != 0 || !strings.Contains(out, "access       anyone") {
		t.Fatalf("schema: %d %s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"call", "demo/nope"}, 3, "error: NOT_FOUND: operation not found: demo/nope"},
		{[]string{"call", "demo/echo", `{"bad":1}`}, 5, "error: INVALID_INPUT: invalid input"},
		{[]string{"call", "--timeout", "200ms", "demo/sleep", `{"ms":5000}`}, 6, "error: TIMEOUT: request timed out"},
		{[]string{"schema", "services/nope"}, 3, "NOT_FOUND"},
		{[]string{"call", "demo/echo", "{not json"}, 1, "input is not valid JSON"},
		// README: exit 2 on a pin mismatch.
		{[]string{"call", "--to", lines["tcp"], "--pin", "ed25519:" + strings.Repeat("ab", 32), "--transport", "tcp", "node/health"}, 2, "pin"},
	} {
		_, errOut, code := run(t, append([]string{"--state-dir", state}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Fatalf("%v: code %d, stderr %q; want %d, %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	// Ctrl-C during sub sends call.aborted and exits 130.
	sub := exec.Command(binary, "--state-dir", state, "sub", "demo/ticker", `{"count":0,"interval_ms":10}`)
	subOut, _ := sub.StdoutPipe()
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	first := bufio.NewScanner(subOut)
	if !first.Scan() || first.Text() != `{"tick":0}` {
		t.Fatalf("sub first line %q", first.Text())
	}
	_ = sub.Process.Signal(os.Interrupt)
	go func() { _, _ = io.Copy(io.Discard, subOut) }()
	err = sub.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("sub after SIGINT: %v", err)
	}
	// README: Ctrl-C reaches the node as an abort (not merely as the connection closing).
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), `msg="request aborted by the caller"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the node saw no abort after Ctrl-C on sub:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(state, "node.ticket")); !os.IsNotExist(err) {
		t.Fatal("node.ticket left behind after a clean exit")
	}
	if !strings.Contains(stderr.String(), "ephemeral node key") {
		t.Fatalf("no ephemeral-key warning: %s", stderr.String())
	}
}

func TestCLIErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no ticket", []string{"--state-dir", t.TempDir(), "call", "node/health"}, 2, "error: NO_TARGET: no --to and no node ticket in "},
		{"bad ticket", []string{"call", "--to", "alk1zzzz", "node/health"}, 1, "error: USAGE: --to: identity: invalid ticket"},
		{"host without pin", []string{"call", "--to", "127.0.0.1:1", "node/health"}, 1, "needs --pin"},
		{"unreachable", []string{"call", "--to", "127.0.0.1:1", "--pin", "ed25519:" + strings.Repeat("ab", 32), "--timeout", "2s", "node/health"}, 2, "error: UNREACHABLE"},
		{"dev on a public address", []string{"--state-dir", t.TempDir(), "serve", "--dev", "--listen", "0.0.0.0:0"}, 1, "loopback only"},
		{"serve without a keystore", []string{"--state-dir", t.TempDir(), "serve"}, 1, "run 'alknet init' first"},
		{"bad transport", []string{"call", "--to", "alk1aeqnowuyagblccvx2vf75u6jmqdtudxbolz5vjrdewxqegti64dvcgqqcazdamzogaxdcmjtfy3tunbugmzrcdzsgazs4mbogeytglrxhi2dim5yjqhau", "--transport", "udp", "node/health"}, 1, "--transport"},
		{"bad log level", []string{"--log-level", "loud", "version"}, 1, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("code %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.want)
			}
		})
	}
	out, _, code := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "alknet ") {
		t.Fatalf("version: %d %q", code, out)
	}
	out, _, code = run(t, "serve", "--help")
	if code != 0 || !strings.Contains(out, "--listen") || !strings.Contains(out, "node.ticket") {
		t.Fatalf("serve --help: %d %q", code, out)
	}
}
