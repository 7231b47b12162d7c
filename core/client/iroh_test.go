package client_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// fakeIroh records its dials and answers with a pipe connection (or err).
type fakeIroh struct {
	key   *identity.NodeKey
	err   error
	dials []string
}

func (f *fakeIroh) Fingerprint() string { return f.key.Fingerprint() }

func (f *fakeIroh) DialEndpoint(ctx context.Context, fp string, a identity.IrohAddr, alpn string) (conn.Connection, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("no handshake deadline")
	}
	f.dials = append(f.dials, fp+" "+a.RelayURL+" "+alpn)
	if f.err != nil {
		return nil, f.err
	}
	c, other := conn.Pipe(alpn)
	_ = other.Close(conn.CodeNormal, "")
	return c, nil
}

// iroh spec §7 (client): DialIroh's DialConfig checks before any I/O.
func TestDialIrohRefusals(t *testing.T) {
	own, _ := identity.Generate()
	other, _ := identity.Generate()
	target, _ := identity.Generate()
	fp := target.Fingerprint()
	f := &fakeIroh{key: own}
	d := &client.Dialer{Iroh: f}
	addr := identity.IrohAddr{RelayURL: "https://relay.example.net/"}
	for name, tc := range map[string]struct {
		d  *client.Dialer
		fp string
		c  tlsconf.ConnectionCredentials
	}{
		"no iroh dialer":       {&client.Dialer{}, fp, tlsconf.ConnectionCredentials{}},
		"a SHA256 fingerprint": {d, "SHA256:" + fp[len("ed25519:"):], tlsconf.ConnectionCredentials{}},
		"a pin that differs":   {d, fp, tlsconf.ConnectionCredentials{RemotePin: other.Fingerprint()}},
		"another client key":   {d, fp, tlsconf.ConnectionCredentials{LocalKey: other}},
		"x509 roots":           {d, fp, tlsconf.ConnectionCredentials{RootCAs: x509.NewCertPool()}},
	} {
		_, err := tc.d.DialIroh(ctxT(t), tc.fp, addr, alpn, tc.c)
		if !client.IsKind(err, client.DialConfig) {
			t.Errorf("%s: %v, want DialConfig", name, err)
		}
	}
	if len(f.dials) != 0 {
		t.Fatalf("a refused dial reached the iroh dialer: %v", f.dials)
	}
	// The endpoint's own key and the matching pin are fine.
	c, err := d.DialIroh(ctxT(t), fp, addr, alpn, tlsconf.ConnectionCredentials{LocalKey: own, RemotePin: fp})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(conn.CodeNormal, "")
	if len(f.dials) != 1 || f.dials[0] != fp+" https://relay.example.net/ "+alpn {
		t.Fatalf("dials %v", f.dials)
	}
}

// DialTicket tries iroh after QUIC and TCP fail to connect; an iroh-only ticket without an
// iroh dialer is DialConfig.
func TestDialTicketIrohLast(t *testing.T) {
	own, _ := identity.Generate()
	target, _ := identity.Generate()
	// A refused TCP port and UDP port: both fail with DialConnect at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	tk := identity.Ticket{Fingerprint: target.Fingerprint(), QUIC: []string{dead}, TCP: []string{dead}, Iroh: &identity.IrohAddr{}}
	f := &fakeIroh{key: own}
	c, err := client.DialTicket(ctxT(t), &client.Dialer{Iroh: f}, tk, alpn, tlsconf.ConnectionCredentials{})
	if err != nil {
		t.Fatalf("iroh after QUIC and TCP: %v", err)
	}
	_ = c.Close(conn.CodeNormal, "")
	if len(f.dials) != 1 {
		t.Fatalf("dials %v", f.dials)
	}
	// Without an iroh dialer a mixed ticket still fails on QUIC and TCP only.
	if _, err := client.DialTicket(ctxT(t), &client.Dialer{}, tk, alpn, tlsconf.ConnectionCredentials{}); !client.IsKind(err, client.DialConnect) {
		t.Fatalf("without iroh: %v", err)
	}
	irohOnly := identity.Ticket{Fingerprint: target.Fingerprint(), Iroh: &identity.IrohAddr{Addrs: []string{"127.0.0.1:4242"}}}
	if _, err := client.DialTicket(ctxT(t), &client.Dialer{}, irohOnly, alpn, tlsconf.ConnectionCredentials{}); !client.IsKind(err, client.DialConfig) || !errors.Is(err, client.ErrNoIroh) {
		t.Fatalf("iroh-only without an iroh dialer: %v", err)
	}
	// An iroh failure joins the others.
	f.err = &client.DialError{Kind: client.DialConnect, Transport: conn.TransportIroh, Err: errors.New("no path")}
	if _, err := client.DialTicket(ctxT(t), &client.Dialer{Iroh: f}, tk, alpn, tlsconf.ConnectionCredentials{}); err == nil || !client.IsKind(err, client.DialConnect) {
		t.Fatalf("all three failing: %v", err)
	}
}
