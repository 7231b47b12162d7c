package main

import (
	"bufio"
	"bytes"
	"errors"
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
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
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
	cmd := exec.Command(binary, "--state-dir", state, "serve", "--dev", "--listen", "127.0.0.1:0", "--drain-timeout", "1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
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
	for _, tr := range []string{"auto", "quic", "tcp"} {
		out, errOut, code := run(t, "--state-dir", state, "ping", "--transport", tr)
		if code != 0 || !strings.Contains(out, "pong from "+lines["fingerprint"]) {
			t.Fatalf("ping %s: code %d\n%s%s", tr, code, out, errOut)
		}
	}
	out, _, code := run(t, "ping", "--to", lines["ticket"])
	if code != 0 || !strings.Contains(out, "pong") {
		t.Fatalf("ping --to: %d %s", code, out)
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
		{"no ticket", []string{"--state-dir", t.TempDir(), "ping"}, 2, "error: NO_TARGET: no --to and no node ticket in "},
		{"bad ticket", []string{"ping", "--to", "alk1zzzz"}, 1, "error: USAGE: --to: identity: invalid ticket"},
		{"dev on a public address", []string{"--state-dir", t.TempDir(), "serve", "--dev", "--listen", "0.0.0.0:0"}, 1, "loopback only"},
		{"serve without --dev", []string{"--state-dir", t.TempDir(), "serve"}, 1, "serve needs --dev"},
		{"bad transport", []string{"ping", "--to", "alk1aeqnowuyagblccvx2vf75u6jmqdtudxbolz5vjrdewxqegti64dvcgqqcazdamzogaxdcmjtfy3tunbugmzrcdzsgazs4mbogeytglrxhi2dim5yjqhau", "--transport", "udp"}, 1, "--transport"},
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
