package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alkdev/alknet/core/identity"
)

// Checklist 8, 9, 17.
func TestServerConfigs(t *testing.T) {
	k, _ := identity.Generate()
	alpns := []string{"alknet/call", "h2", "http/1.1"}
	for _, mode := range []string{"", ModeKey, ModeACME} {
		o := ServerOptions{Mode: mode}
		if mode == ModeACME {
			o = ServerOptions{Mode: mode, ACMEDomains: []string{"node.test"}, ACMECacheDir: t.TempDir(), ACMEAcceptTOS: true}
		}
		s, err := NewServer(o, k, alpns)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*tls.Config{"quic": s.QUIC(), "tcp": s.TCP()} {
			if c.MinVersion != tls.VersionTLS13 || c.MaxVersion != tls.VersionTLS13 {
				t.Errorf("%s/%s: not TLS 1.3 only", mode, name)
			}
			if c.ClientAuth != tls.RequestClientCert {
				t.Errorf("%s/%s: ClientAuth %v", mode, name, c.ClientAuth)
			}
			want := alpns
			if name == "quic" {
				want = []string{"alknet/call"} // HTTP is TCP only (docs/http.md §3.1.3)
			}
			if mode == ModeACME && name == "tcp" {
				want = append(slices.Clone(alpns), ACMEALPN)
			}
			if !slices.Equal(c.NextProtos, want) {
				t.Errorf("%s/%s: NextProtos %v, want %v", mode, name, c.NextProtos, want)
			}
			if c.ClientSessionCache != nil || c.SessionTicketsDisabled {
				// Servers do not use early data: quic-go's Listen (not ListenEarly) and no 0-RTT.
				t.Errorf("%s/%s: unexpected session settings", mode, name)
			}
		}
		if s.QUIC() == s.QUIC() {
			t.Fatal("configs must be fresh per call")
		}
		if mode == ModeACME {
			if s.Fingerprint() != "" {
				t.Fatal("acme fingerprint before a certificate exists")
			}
			_ = s.Close()
			if _, err := s.getACMECertificate(&tls.ClientHelloInfo{ServerName: "node.test"}); !errors.Is(err, ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
		} else if s.Fingerprint() != k.Fingerprint() {
			t.Fatalf("key mode fingerprint %s", s.Fingerprint())
		}
	}
}

func TestSelfSignedCertificate(t *testing.T) {
	k, _ := identity.Generate()
	c, err := SelfSigned(k)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if leaf.Subject.CommonName != "alknet node" || leaf.IsCA || leaf.SerialNumber.BitLen() > 128 ||
		leaf.KeyUsage != x509.KeyUsageDigitalSignature || !leaf.NotAfter.Equal(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)) ||
		time.Until(leaf.NotBefore) > -59*time.Minute ||
		!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("certificate fields: %+v", leaf)
	}
	if identity.FingerprintCert(leaf) != k.Fingerprint() {
		t.Fatal("fingerprint")
	}
}

func TestClientConfig(t *testing.T) {
	k, _ := identity.Generate()
	c, err := NewClient(ConnectionCredentials{LocalKey: k, RemotePin: k.Fingerprint()}, "alknet/call")
	if err != nil {
		t.Fatal(err)
	}
	if c.MinVersion != tls.VersionTLS13 || c.MaxVersion != tls.VersionTLS13 || c.ClientSessionCache != nil ||
		!slices.Equal(c.NextProtos, []string{"alknet/call"}) || !c.InsecureSkipVerify || c.VerifyConnection == nil || c.GetClientCertificate == nil {
		t.Fatalf("pinned client config: %+v", c)
	}
	ca, err := NewClient(ConnectionCredentials{}, "alknet/call")
	if err != nil || ca.InsecureSkipVerify {
		t.Fatal("CA mode must verify")
	}
	cert, _ := SelfSigned(k)
	for name, cr := range map[string]ConnectionCredentials{
		"malformed pin": {RemotePin: "ed25519:00"},
		"both locals":   {LocalKey: k, LocalCert: &cert},
	} {
		if _, err := NewClient(cr, "alknet/call"); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewClient(ConnectionCredentials{}, "acme-tls/1"); !errors.Is(err, ErrInvalidALPN) {
		t.Fatalf("acme ALPN: %v", err)
	}
	// The verifier's verdict names both fingerprints.
	_, v, _ := NewClientVerdict(ConnectionCredentials{RemotePin: k.Fingerprint()}, "alknet/call")
	other, _ := identity.Generate()
	oc, _ := SelfSigned(other)
	vc, vv, _ := NewClientVerdict(ConnectionCredentials{RemotePin: k.Fingerprint()}, "alknet/call")
	err = vc.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{oc.Leaf}})
	if !errors.Is(err, ErrPinMismatch) || !errors.Is(vv.Err(), ErrPinMismatch) ||
		!strings.Contains(err.Error(), "tlsconf: fingerprint pin mismatch: expected "+k.Fingerprint()+" got "+other.Fingerprint()) {
		t.Fatalf("verdict %v", err)
	}
	if v.Err() != nil {
		t.Fatal("an unused verdict holds an error")
	}
}

func TestServerOptionsValidate(t *testing.T) {
	k, _ := identity.Generate()
	err := ServerOptions{Mode: ModeACME}.Validate()
	for _, want := range []string{"acme_accept_tos", "acme_domains", "acme_cache_dir"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("acme validation lacks %s: %v", want, err)
		}
	}
	if err := (ServerOptions{Mode: "magic"}).Validate(); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	_, err = NewServer(ServerOptions{Mode: ModeX509, CertFile: "missing.pem", KeyFile: "missing.key"}, k, []string{"alknet/call"})
	if err == nil || !strings.Contains(err.Error(), `"missing.pem"`) {
		t.Fatalf("x509 error must name the file: %v", err)
	}
	if _, err := NewServer(ServerOptions{}, nil, []string{"alknet/call"}); !errors.Is(err, ErrConfig) {
		t.Fatal("nil key accepted")
	}
}
