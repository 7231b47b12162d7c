//go:build cgo && !noiroh

package main

import (
	"strings"
	"testing"

	"github.com/alkdev/alknet/core/identity"
)

// Spec iroh.md §10.6 (in part): serve --dev --iroh prints an iroh address and an iroh ticket;
// call and sub over --transport iroh reach the node through the real crate on loopback; a
// ticket without iroh records is a usage error; the version names the linked iroh.
func TestServeIroh(t *testing.T) {
	state := t.TempDir()
	cmd, lines, _ := startServe(t, false, "--state-dir", state, "serve", "--dev", "--iroh", "--listen", "127.0.0.1:0")
	if !strings.HasPrefix(lines["iroh"], "127.0.0.1:") {
		t.Fatalf("no iroh line: %v", lines)
	}
	tk, err := identity.ParseTicket(lines["ticket"])
	if err != nil || tk.Iroh == nil || len(tk.Iroh.Addrs) == 0 || tk.Iroh.Addrs[0] != lines["iroh"] || tk.Iroh.RelayURL != "" {
		t.Fatalf("ticket %+v (%v): want the iroh address and no relay", tk, err)
	}
	out, errOut, code := run(t, "--state-dir", state, "call", "--transport", "iroh", "--to", lines["ticket"], "demo/echo", `{"text":"hi"}`)
	if code != 0 || out != "{\"text\":\"hi\"}\n" {
		t.Fatalf("call over iroh: %d %q %q", code, out, errOut)
	}
	out, errOut, code = run(t, "--state-dir", state, "sub", "--transport", "iroh", "--to", lines["ticket"], "demo/ticker", `{"count":3,"interval_ms":5}`)
	if code != 0 || out != "{\"tick\":0}\n{\"tick\":1}\n{\"tick\":2}\n" {
		t.Fatalf("sub over iroh: %d %q %q", code, out, errOut)
	}
	_, errOut, code = run(t, "--state-dir", state, "call", "--transport", "iroh", "--to", lines["ticket"], "demo/nope")
	if code != 3 || !strings.Contains(errOut, "NOT_FOUND") {
		t.Fatalf("unknown op over iroh: %d %q", code, errOut)
	}
	// A ticket without iroh records: exit 1, USAGE.
	plain := identity.Ticket{Fingerprint: tk.Fingerprint, QUIC: tk.QUIC}
	s, err := plain.Encode()
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(t, "--state-dir", state, "call", "--transport", "iroh", "--to", s, "demo/echo", `{}`)
	if code != 1 || !strings.Contains(errOut, "no iroh address") {
		t.Fatalf("iroh-less ticket: %d %q", code, errOut)
	}
	out, _, _ = run(t, "version")
	if !strings.Contains(out, "\niroh 1.0.3 abi 1\n") {
		t.Fatalf("version: %q", out)
	}
	stop(t, cmd)
}
