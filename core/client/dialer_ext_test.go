package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/endpoint"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/internal/testnode"
	"github.com/alkdev/alknet/core/tlsconf"
)

const alpn = "alknet/test"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func echoNode(t *testing.T, o testnode.Options) *testnode.Node {
	o.Handlers = []endpoint.ProtocolHandler{testnode.NewEcho(alpn)}
	return testnode.Start(t, o)
}

// writeCert writes a certificate for names (signed by ca, or self-signed) and returns file paths.
func writeCert(t *testing.T, dir, name string, names []string, notAfter time.Time, ca *x509.Certificate, caKey *ecdsa.PrivateKey, isCA bool) (certFile, keyFile string, cert *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter, DNSNames: names,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: isCA,
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile, cert, key
}

// Checklist 14, 15, 2 (x509 with an Ed25519 key is covered in identity), 3.
func TestX509Modes(t *testing.T) {
	dir := t.TempDir()
	_, _, caCert, caKey := writeCert(t, dir, "ca", nil, time.Now().Add(time.Hour), nil, nil, true)
	cf, kf, leaf, _ := writeCert(t, dir, "leaf", []string{"node.test"}, time.Now().Add(time.Hour), caCert, caKey, false)
	n := echoNode(t, testnode.Options{TLS: tlsconf.ServerOptions{Mode: tlsconf.ModeX509, CertFile: cf, KeyFile: kf}})
	if n.Host.Fingerprint() != identity.FingerprintCert(leaf) || n.Host.Fingerprint()[:7] != "SHA256:" {
		t.Fatalf("x509 fingerprint %s", n.Host.Fingerprint())
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	ctx := ctxT(t)
	d := &client.Dialer{}
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			dial := d.DialTCP
			if tr == "quic" {
				dial = d.DialQUIC
			}
			c, err := dial(ctx, n.Addr(tr), alpn, tlsconf.ConnectionCredentials{RootCAs: pool, ServerName: "node.test"})
			if err != nil {
				t.Fatalf("%s CA mode: %v", tr, err)
			}
			if got, err := testnode.RoundTrip(ctx, c, "ca"); err != nil || got != "ca" {
				t.Fatalf("%s: %q %v", tr, got, err)
			}
			_ = c.Close(0, "")
			_, err = dial(ctx, n.Addr(tr), alpn, tlsconf.ConnectionCredentials{RootCAs: pool, ServerName: "other.test"})
			if !client.IsKind(err, client.DialHandshake) {
				t.Fatalf("%s wrong ServerName: %v", tr, err)
			}
		})
	}
	// An expired self-signed certificate with unrelated names is accepted when pinned.
	ecf, ekf, expired, _ := writeCert(t, dir, "expired", []string{"unrelated.example"}, time.Now().Add(-time.Hour), nil, nil, false)
	n2 := echoNode(t, testnode.Options{TLS: tlsconf.ServerOptions{Mode: tlsconf.ModeX509, CertFile: ecf, KeyFile: ekf}})
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			dial := d.DialTCP
			if tr == "quic" {
				dial = d.DialQUIC
			}
			c, err := dial(ctx, n2.Addr(tr), alpn, tlsconf.ConnectionCredentials{RemotePin: identity.FingerprintCert(expired)})
			if err != nil {
				t.Fatalf("%s pinned expired certificate: %v", tr, err)
			}
			_ = c.Close(0, "")
		})
	}
}

// Checklist 16, 59.
func TestDialErrors(t *testing.T) {
	ctx := ctxT(t)
	d := &client.Dialer{HandshakeTimeout: time.Second}
	k, _ := identity.Generate()
	cert, _ := tlsconf.SelfSigned(k)
	// A UDP socket that would notice any packet.
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for name, c := range map[string]tlsconf.ConnectionCredentials{
		"malformed pin": {RemotePin: "ed25519:XYZ"},
		"both locals":   {LocalKey: k, LocalCert: &cert, RemotePin: k.Fingerprint()},
	} {
		_, err := d.DialQUIC(ctx, udp.LocalAddr().String(), alpn, c)
		if !client.IsKind(err, client.DialConfig) {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := d.DialTCP(ctx, "127.0.0.1:1", alpn, c); !client.IsKind(err, client.DialConfig) {
			t.Fatalf("%s tcp: %v", name, err)
		}
	}
	if _, err := d.DialTCP(ctx, "127.0.0.1:1", "bad alpn", tlsconf.ConnectionCredentials{RemotePin: k.Fingerprint()}); !client.IsKind(err, client.DialConfig) {
		t.Fatalf("bad ALPN: %v", err)
	}
	_ = udp.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := udp.ReadFrom(make([]byte, 2048)); err == nil {
		t.Fatalf("a config error sent a %d-byte packet", n)
	}
	closed := testnode.LoopbackAddr(t)
	if _, err := d.DialTCP(ctx, closed, alpn, tlsconf.ConnectionCredentials{RemotePin: k.Fingerprint()}); !client.IsKind(err, client.DialConnect) {
		t.Fatalf("closed port: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, dial := range []func(context.Context, string, string, tlsconf.ConnectionCredentials) (any, error){
		func(c context.Context, a, p string, cr tlsconf.ConnectionCredentials) (any, error) {
			return d.DialTCP(c, a, p, cr)
		},
		func(c context.Context, a, p string, cr tlsconf.ConnectionCredentials) (any, error) {
			return d.DialQUIC(c, a, p, cr)
		},
	} {
		_, err := dial(cctx, closed, alpn, tlsconf.ConnectionCredentials{RemotePin: k.Fingerprint()})
		if !client.IsKind(err, client.DialCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
	}
}

// Checklist 55, 56.
func TestFallbackAndTicket(t *testing.T) {
	n := echoNode(t, testnode.Options{})
	ctx := ctxT(t)
	d := &client.Dialer{HandshakeTimeout: 500 * time.Millisecond}
	// UDP unreachable (nothing answers on this port): TCP+TLS is used.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := client.DialFallback(ctx, d, silent.LocalAddr().String(), n.TCP, alpn, n.Pin(nil))
	if err != nil {
		t.Fatalf("fallback: %v", err)
	}
	if c.Transport() != "tcp+tls" {
		t.Fatalf("fallback used %s", c.Transport())
	}
	_ = c.Close(0, "")
	// A QUIC handshake error is returned without trying TCP.
	var accepts atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			_ = c.Close()
		}
	}()
	wrong, _ := identity.Generate()
	_, err = client.DialFallback(ctx, d, n.QUIC, ln.Addr().String(), alpn, tlsconf.ConnectionCredentials{RemotePin: wrong.Fingerprint()})
	if !client.IsKind(err, client.DialHandshake) || !errors.Is(err, tlsconf.ErrPinMismatch) {
		t.Fatalf("wrong pin through fallback: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if accepts.Load() != 0 {
		t.Fatal("fallback tried TCP after a QUIC handshake error")
	}
	// Tickets: pinned by the ticket; a conflicting pin is a config error.
	tk := identity.Ticket{Fingerprint: n.Key.Fingerprint(), QUIC: []string{silent.LocalAddr().String(), n.QUIC}, TCP: []string{n.TCP}}
	c, err = client.DialTicket(ctx, d, tk, alpn, tlsconf.ConnectionCredentials{})
	if err != nil {
		t.Fatalf("ticket: %v", err)
	}
	if c.RemoteFingerprint() != n.Key.Fingerprint() || c.Transport() != "quic" {
		t.Fatalf("ticket dial reached %s over %s", c.RemoteFingerprint(), c.Transport())
	}
	_ = c.Close(0, "")
	if _, err := client.DialTicket(ctx, d, tk, alpn, tlsconf.ConnectionCredentials{RemotePin: wrong.Fingerprint()}); !client.IsKind(err, client.DialConfig) {
		t.Fatalf("conflicting pin: %v", err)
	}
	bad := identity.Ticket{Fingerprint: wrong.Fingerprint(), QUIC: []string{n.QUIC}, TCP: []string{n.TCP}}
	if _, err := client.DialTicket(ctx, d, bad, alpn, tlsconf.ConnectionCredentials{}); !errors.Is(err, tlsconf.ErrPinMismatch) {
		t.Fatalf("ticket with another node's fingerprint: %v", err)
	}
}
