package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const abandon = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The end-to-end flow: init --recover → key show → serve; the served fingerprint is
// the one key show printed, and the vectors' phrase gives the documented fingerprint.
func TestInitKeyShowServe(t *testing.T) {
	const wantFP = "ed25519:e78c2766a792f09bfccb51493968ac322283e8d021a30063784d806929762ecc"
	state, secrets := t.TempDir(), t.TempDir()
	mn := writeFile(t, secrets, "mnemonic", abandon+"\n")
	pp := writeFile(t, secrets, "passphrase", "correct horse battery\r\n")
	out, errOut, code := run(t, "--state-dir", state, "init", "--recover", "--mnemonic-file", mn, "--passphrase-file", pp)
	if code != 0 || out != "fingerprint "+wantFP+"\n" || strings.Contains(errOut, "short") {
		t.Fatalf("init: %d %q %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "abandon") {
		t.Fatal("init --recover echoed the mnemonic")
	}
	st, err := os.Stat(filepath.Join(state, "keystore.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keystore mode: %v %v", st.Mode(), err)
	}
	ks, _ := os.ReadFile(filepath.Join(state, "keystore.json"))
	if strings.Contains(string(ks), "abandon") || strings.Contains(string(ks), "correct horse") {
		t.Fatal("the keystore holds the mnemonic or passphrase in clear")
	}
	out, _, code = run(t, "--state-dir", state, "key", "show", "--passphrase-file", pp)
	if code != 0 || !strings.HasPrefix(out, "fingerprint "+wantFP+"\npublic_key e78c2766") || !strings.Contains(out, "\nticket alk1") {
		t.Fatalf("key show: %d %q", code, out)
	}
	out, _, code = run(t, "--state-dir", state, "key", "show", "--passphrase-file", pp, "--json")
	var js struct{ Fingerprint, PublicKey, Ticket string }
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || js.Fingerprint != wantFP {
		t.Fatalf("key show --json: %d %q", code, out)
	}
	// Wrong passphrase, wrong BIP39 passphrase, refusing to overwrite.
	wrong := writeFile(t, secrets, "wrong", "nope\n")
	if _, errOut, code := run(t, "--state-dir", state, "key", "show", "--passphrase-file", wrong); code != 1 || !strings.Contains(errOut, "wrong passphrase") {
		t.Fatalf("wrong passphrase: %d %s", code, errOut)
	}
	if _, errOut, code := run(t, "--state-dir", state, "key", "show", "--passphrase-file", pp, "--bip39-passphrase-file", wrong); code != 1 || !strings.Contains(errOut, "drop --bip39-passphrase-file") {
		t.Fatalf("unexpected BIP39 passphrase: %d %s", code, errOut)
	}
	if _, _, code := run(t, "--state-dir", state, "init", "--recover", "--mnemonic-file", mn, "--passphrase-file", pp); code != 1 {
		t.Fatal("init overwrote a keystore")
	}
	_ = os.Chmod(filepath.Join(state, "keystore.json"), 0o644)
	if _, errOut, code := run(t, "--state-dir", state, "key", "show", "--passphrase-file", pp); code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("group-readable keystore: %d %s", code, errOut)
	}
	_ = os.Chmod(filepath.Join(state, "keystore.json"), 0o600)

	// serve with the vault's identity.
	cmd := exec.Command(binary, "--state-dir", state, "serve", "--passphrase-file", pp, "--listen", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	served := ""
	for sc.Scan() {
		if k, v, _ := strings.Cut(sc.Text(), " "); k == "fingerprint" {
			served = v
		} else if k == "ticket" {
			break
		}
	}
	if served != wantFP {
		t.Fatalf("served fingerprint %q, want %s\n%s", served, wantFP, stderr.String())
	}
	out, errOut, code = run(t, "--state-dir", state, "call", "node/info")
	if code != 0 || !strings.Contains(out, wantFP) {
		t.Fatalf("node/info: %d %s %s", code, out, errOut)
	}
	if _, _, code := run(t, "--state-dir", state, "call", "demo/echo", `{"text":"x"}`); code != 3 {
		t.Fatal("a non-dev node serves demo operations")
	}
	stop(t, cmd) // SIGTERM, then a clean exit within 10 s
	if strings.Contains(stderr.String(), "ephemeral") {
		t.Fatal("a vault node warned about an ephemeral key")
	}
}

func TestInitNewMnemonicAndSecrets(t *testing.T) {
	state, secrets := t.TempDir(), t.TempDir()
	pp := writeFile(t, secrets, "passphrase", "pw\n")
	// Without a terminal a new mnemonic is printed only with --yes; nothing is written otherwise.
	if _, errOut, code := run(t, "--state-dir", state, "init", "--passphrase-file", pp); code != 1 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("init without --yes: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(state, "keystore.json")); !os.IsNotExist(err) {
		t.Fatal("a keystore was written although init refused")
	}
	out, errOut, code := run(t, "--state-dir", state, "init", "--yes", "--words", "12", "--passphrase-file", pp)
	if !strings.Contains(errOut, "warning: the keystore passphrase is short (2 characters)") {
		t.Fatalf("no warning about a 2-character passphrase: %q", errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || len(strings.Fields(strings.TrimPrefix(lines[0], "mnemonic "))) != 12 || !strings.HasPrefix(lines[1], "fingerprint ed25519:") {
		t.Fatalf("init --yes: %d %q", code, out)
	}
	// --json: one object, the mnemonic in it; with --recover, none.
	out, _, code = run(t, "--state-dir", t.TempDir(), "init", "--json", "--yes", "--words", "12", "--passphrase-file", pp)
	var created map[string]string
	if err := json.Unmarshal([]byte(out), &created); code != 0 || err != nil || len(strings.Fields(created["mnemonic"])) != 12 || !strings.HasPrefix(created["fingerprint"], "ed25519:") {
		t.Fatalf("init --json: %d %q", code, out)
	}
	// The printed mnemonic recovers the same identity elsewhere.
	other := t.TempDir()
	mn := writeFile(t, secrets, "mn", strings.TrimPrefix(lines[0], "mnemonic ")+"\n")
	out2, _, _ := run(t, "--state-dir", other, "init", "--recover", "--mnemonic-file", mn, "--passphrase-file", pp)
	if strings.TrimSpace(out2) != lines[1] {
		t.Fatalf("recovered %q, want %q", out2, lines[1])
	}
	out2, _, _ = run(t, "--state-dir", t.TempDir(), "init", "--json", "--recover", "--mnemonic-file", mn, "--passphrase-file", pp)
	var recovered map[string]string
	if err := json.Unmarshal([]byte(out2), &recovered); err != nil || "fingerprint "+recovered["fingerprint"] != lines[1] || recovered["mnemonic"] != "" {
		t.Fatalf("init --recover --json: %q", out2)
	}
	// secret seal / open.
	sec := writeFile(t, secrets, "secret", "sk-live-abc\n")
	blob, errOut, code := run(t, "--state-dir", state, "secret", "seal", "--passphrase-file", pp, "--secret-file", sec)
	if code != 0 || !strings.HasPrefix(blob, `{"key_version":2,"salt":"`) || strings.Contains(blob, "sk-live") {
		t.Fatalf("seal: %d %q %s", code, blob, errOut)
	}
	bf := writeFile(t, secrets, "blob", blob)
	if _, _, code := run(t, "--state-dir", state, "secret", "open", "--passphrase-file", pp, "@"+bf); code != 1 {
		t.Fatal("open printed without confirmation or --yes")
	}
	out, _, code = run(t, "--state-dir", state, "secret", "open", "--yes", "--passphrase-file", pp, "@"+bf)
	if code != 0 || out != "sk-live-abc\n" {
		t.Fatalf("open: %d %q", code, out)
	}
	empty := writeFile(t, secrets, "empty", "\n")
	if _, errOut, code := run(t, "--state-dir", state, "secret", "seal", "--passphrase-file", pp, "--secret-file", empty); code != 1 || !strings.Contains(errOut, "empty") {
		t.Fatalf("empty secret: %d %s", code, errOut)
	}
}
