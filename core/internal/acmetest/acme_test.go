package acmetest

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/host"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/alkdev/alknet/core/client"
	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/internal/testnode"
	"github.com/alkdev/alknet/core/tlsconf"
)

func TestMain(m *testing.M) {
	// Pebble's VA runs a task loop for the life of the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"))
}

const (
	domain = "node.alknet.test"
	alpn   = "alknet/test"
)

// dnsServer answers A queries for domain with 127.0.0.1 over TCP, as Pebble's VA asks a
// custom resolver; no other name resolves.
func dnsServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA && strings.EqualFold(q.Name, domain+".") {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func TestACMEWithPebble(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	pebbleLog := log.New(io.Discard, "", 0)

	// The ACME directory is served over TLS by an httptest server whose handler is set once
	// the VA knows the node's TLS port.
	var wfeHandler atomic.Pointer[http.Handler]
	acmeSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*wfeHandler.Load()).ServeHTTP(w, r)
	}))
	acmeSrv.StartTLS()
	defer acmeSrv.Close()

	var logs testnode.Logs
	hst, err := host.New(host.Options{
		TLS: tlsconf.ServerOptions{
			Mode: tlsconf.ModeACME, ACMEDomains: []string{domain}, ACMECacheDir: t.TempDir(), ACMEAcceptTOS: true,
			ACMEEmail: "ops@alknet.test", ACMEDirectoryURL: acmeSrv.URL + wfe.DirectoryPath, ACMEHTTPClient: acmeSrv.Client(),
		},
		NoQUIC: true, Limits: config.Limits{HandshakeTimeout: 30 * time.Second},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := hst.Start(testnode.NewEcho(alpn)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hst.Shutdown(context.Background()) }()
	tcpAddr := hst.TCPAddrs()[0]

	memdb := db.NewMemoryStore()
	authority := ca.New(pebbleLog, memdb, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(pebbleLog, 0, tcpAddr.(*net.TCPAddr).Port, false, dnsServer(t), memdb)
	front := wfe.New(pebbleLog, memdb, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 3, 5)
	h := front.Handler()
	wfeHandler.Store(&h)

	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := &client.Dialer{HandshakeTimeout: 45 * time.Second}
	// The first handshake makes autocert order a certificate; Pebble validates it by
	// connecting to the node with acme-tls/1, which the endpoint closes with "acme done".
	c, err := d.DialTCP(ctx, tcpAddr.String(), alpn, tlsconf.ConnectionCredentials{RootCAs: roots, ServerName: domain})
	if err != nil {
		t.Fatalf("dial verifying against Pebble's root: %v\nnode log:\n%s", err, logs.String())
	}
	defer c.Close(0, "")
	if got, err := testnode.RoundTrip(ctx, c, "acme"); err != nil || got != "acme" {
		t.Fatalf("echo over the ACME certificate: %q %v", got, err)
	}
	if fp := hst.Fingerprint(); !strings.HasPrefix(fp, identity.PrefixSHA256) || fp != c.RemoteFingerprint() {
		t.Fatalf("server fingerprint %q, client saw %q", fp, c.RemoteFingerprint())
	}
	l := logs.String()
	if !strings.Contains(l, "acme challenge answered") || strings.Contains(l, "no handler") {
		t.Fatalf("node log:\n%s", l)
	}
	// A second client reuses the cached certificate.
	c2, err := d.DialTCP(ctx, tcpAddr.String(), alpn, tlsconf.ConnectionCredentials{RootCAs: roots, ServerName: domain})
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.Close(0, "")
}
