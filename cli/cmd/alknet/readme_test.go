package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadmeTwoNodes runs the README's walkthrough "From nothing to two nodes calling each
// other", command by command (with files for the passphrases a person would type, and free
// ports instead of 7443/7444).
func TestReadmeTwoNodes(t *testing.T) {
	work := t.TempDir()
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b")
	pp := writeFile(t, work, "passphrase", "pw\n")
	for _, dir := range []string{a, b} {
		out, errOut, code := run(t, "--state-dir", dir, "init", "--yes", "--passphrase-file", pp)
		if code != 0 || !strings.HasPrefix(out, "mnemonic ") {
			t.Fatalf("init %s: %d %s %s", dir, code, out, errOut)
		}
	}
	cmdA, _, _ := startServe(t, false, "--state-dir", a, "serve", "--passphrase-file", pp, "--listen", "127.0.0.1:0")
	cmdB, _, errB := startServe(t, false, "--state-dir", b, "serve", "--passphrase-file", pp, "--listen", "127.0.0.1:0")
	ticket := func(dir string) string {
		data, err := os.ReadFile(filepath.Join(dir, "node.ticket"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	for _, dir := range []string{b, a} {
		if out, errOut, code := run(t, "call", "node/info", "--to", ticket(dir)); code != 0 || !strings.Contains(out, `"fingerprint":"ed25519:`) {
			t.Fatalf("node/info of %s: %d %s %s", dir, code, out, errOut)
		}
	}
	ops := filepath.Join(work, "ops.key")
	out, _, code := run(t, "key", "gen", "--out", ops)
	fp := strings.TrimPrefix(strings.TrimSpace(out), "fingerprint ")
	if code != 0 {
		t.Fatal(out)
	}
	if _, errOut, code := run(t, "--state-dir", b, "peer", "add", "ops", "--fingerprint", fp, "--scope", "admin"); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := run(t, "--state-dir", b, "reload"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, func() bool {
		_, _, code := run(t, "call", "node/reload", "--to", ticket(b), "--key-file", ops)
		return code == 0
	}, "the ops key to be admitted after reload\n"+errB.String())
	token, _, code := run(t, "--state-dir", b, "apikey", "create", "--scope", "admin")
	if code != 0 {
		t.Fatal(token)
	}
	tokenFile := writeFile(t, work, "ci.token", token)
	if _, errOut, code := run(t, "--state-dir", b, "reload"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, func() bool {
		_, _, code := run(t, "call", "node/reload", "--to", ticket(b), "--token-file", tokenFile)
		return code == 0
	}, "the API key to be admitted after reload")
	if _, errOut, code := run(t, "--state-dir", b, "apikey", "revoke", strings.TrimSpace(token)[:8]); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := run(t, "--state-dir", b, "reload"); code != 0 {
		t.Fatal(errOut)
	}
	eventually(t, func() bool {
		_, _, code := run(t, "call", "node/reload", "--to", ticket(b), "--token-file", tokenFile)
		return code == 4
	}, "the revoked API key to be refused")
	// key show and secret seal, as the README mentions them.
	if out, _, code := run(t, "--state-dir", a, "key", "show", "--passphrase-file", pp); code != 0 || !strings.Contains(out, "ticket alk1") {
		t.Fatalf("key show: %s", out)
	}
	stop(t, cmdA)
	stop(t, cmdB)
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
