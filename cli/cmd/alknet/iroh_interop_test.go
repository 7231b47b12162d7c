//go:build cgo && !noiroh

package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// irohInterop is iroh/interop with its npm packages installed (make test runs npm ci there);
// without node it skips loudly, and fails under ALKNET_IROH_TESTS=require.
func irohInterop(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../iroh/interop")
	if err != nil {
		t.Fatal(err)
	}
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node not found on PATH"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "@number0", "iroh")); err != nil {
		why = "iroh/interop/node_modules missing (make test runs npm ci)"
	}
	if why != "" {
		if os.Getenv("ALKNET_IROH_TESTS") == "require" {
			t.Fatalf("%s under ALKNET_IROH_TESTS=require", why)
		}
		t.Skipf("*** %s: iroh interop test SKIPPED ***", why)
	}
	return dir
}

// The official build dials alknet (spec iroh.md §10.5): peer.mjs, on @number0/iroh 1.1.0 and no
// code of ours, calls demo/echo, an unknown operation, demo/ticker, services/list, an aborted
// demo/sleep and node/info on serve --dev --iroh.
func TestIrohInteropPeer(t *testing.T) {
	dir := irohInterop(t)
	state := t.TempDir()
	cmd, lines, stderr := startServe(t, false, "--state-dir", state, "serve", "--dev", "--iroh", "--listen", "127.0.0.1:0")
	key := strings.TrimPrefix(lines["fingerprint"], "ed25519:")
	peer := exec.Command("node", "--no-deprecation", "peer.mjs", key, lines["iroh"])
	peer.Dir = dir
	out, err := peer.CombinedOutput()
	want := "ok connect\nok echo\nok not_found\nok subscription\nok services_list\nok abort_fresh_stream\nok node_info\n"
	if err != nil || string(out) != want {
		t.Fatalf("peer.mjs: %v\n%s\nnode's log:\n%s", err, out, stderr.String())
	}
	stop(t, cmd)
}

// alknet calls the official build: demo/echo and demo/ticker on responder.mjs, over iroh by
// address and pin.
func TestIrohInteropResponder(t *testing.T) {
	dir := irohInterop(t)
	resp := exec.Command("node", "--no-deprecation", "responder.mjs")
	resp.Dir = dir
	stdin, _ := resp.StdinPipe()
	stdout, _ := resp.StdoutPipe()
	var errBuf syncBuffer
	resp.Stderr = &errBuf
	if err := resp.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = resp.Process.Kill()
			<-exited
		}
	})
	sc := bufio.NewScanner(stdout)
	got := map[string]string{}
	for len(got) < 2 && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		got[k] = v
	}
	go func() { _, _ = io.Copy(io.Discard, stdout); exited <- resp.Wait() }()
	if got["id"] == "" || got["addr"] == "" {
		t.Fatalf("responder.mjs printed %v\n%s", got, errBuf.String())
	}
	state := t.TempDir()
	pin := "ed25519:" + got["id"]
	out, errOut, code := run(t, "--state-dir", state, "call", "--transport", "iroh", "--to", got["addr"], "--pin", pin, "demo/echo", `{"text":"hi js"}`)
	if code != 0 || out != "{\"text\":\"hi js\"}\n" {
		t.Fatalf("call on responder.mjs: %d %q %q\n%s", code, out, errOut, errBuf.String())
	}
	out, errOut, code = run(t, "--state-dir", state, "sub", "--transport", "iroh", "--to", got["addr"], "--pin", pin, "demo/ticker", `{"count":3}`)
	if code != 0 || out != "{\"tick\":0}\n{\"tick\":1}\n{\"tick\":2}\n" {
		t.Fatalf("sub on responder.mjs: %d %q %q\n%s", code, out, errOut, errBuf.String())
	}
}
