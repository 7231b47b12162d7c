package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/alkdev/alknet/core/identity"
)

// Identity modes.
const (
	ModeKey  = "key"
	ModeX509 = "x509"
	ModeACME = "acme"
)

// ServerOptions selects how a node proves its identity.
type ServerOptions struct {
	Mode                    string // "key" (default) | "x509" | "acme"
	CertFile, KeyFile       string // x509
	ACMEDomains             []string
	ACMECacheDir, ACMEEmail string
	ACMEAcceptTOS           bool
	ACMEDirectoryURL        string       // "" = Let's Encrypt production
	ACMEHTTPClient          *http.Client // nil = default; tests trust Pebble's CA here
}

// ErrConfig matches every configuration error of this package.
var ErrConfig = errors.New("tlsconf: invalid configuration")

// Validate checks the options without touching files or the network.
func (o ServerOptions) Validate() error {
	var errs []error
	switch o.Mode {
	case "", ModeKey:
	case ModeX509:
		if o.CertFile == "" {
			errs = append(errs, errors.New("cert_file: required in x509 mode"))
		}
		if o.KeyFile == "" {
			errs = append(errs, errors.New("key_file: required in x509 mode"))
		}
	case ModeACME:
		if !o.ACMEAcceptTOS {
			errs = append(errs, errors.New("acme_accept_tos: must be true to use ACME"))
		}
		if len(o.ACMEDomains) == 0 {
			errs = append(errs, errors.New("acme_domains: at least one domain required"))
		}
		if o.ACMECacheDir == "" {
			errs = append(errs, errors.New("acme_cache_dir: required in acme mode"))
		}
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not one of key, x509, acme", o.Mode))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// Server holds a node's server-side TLS material.
type Server struct {
	mode   string
	alpns  []string
	cert   *tls.Certificate  // key and x509 modes
	mgr    *autocert.Manager // acme mode
	acmeFP atomic.Pointer[string]
	closed atomic.Bool
}

// NewServer builds the TLS identity of a node. key is required in every mode: it is the node
// key (client certificate, later the iroh NodeId) even where the server certificate is not.
func NewServer(o ServerOptions, key *identity.NodeKey, alpns []string) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: node key is required", ErrConfig)
	}
	if len(alpns) == 0 {
		return nil, fmt.Errorf("%w: no ALPN registered", ErrConfig)
	}
	for _, a := range alpns {
		if err := ValidateALPN(a); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	s := &Server{mode: o.Mode, alpns: slices.Clone(alpns)}
	switch o.Mode {
	case "", ModeKey:
		s.mode = ModeKey
		c, err := SelfSigned(key)
		if err != nil {
			return nil, err
		}
		s.cert = &c
	case ModeX509:
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: load certificate %q with key %q: %w", o.CertFile, o.KeyFile, err)
		}
		s.cert = &c
	case ModeACME:
		s.mgr = &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(o.ACMEDomains...),
			Cache:      autocert.DirCache(o.ACMECacheDir),
			Email:      o.ACMEEmail,
			Client:     &acme.Client{DirectoryURL: o.ACMEDirectoryURL, HTTPClient: o.ACMEHTTPClient},
		}
	}
	return s, nil
}

// Mode returns "key", "x509" or "acme".
func (s *Server) Mode() string { return s.mode }

// Fingerprint is what clients pin: the node key's in key mode, the leaf certificate's in x509
// mode, and in acme mode the last served certificate's ("" until one exists).
func (s *Server) Fingerprint() string {
	if s.cert != nil {
		return identity.FingerprintDER(s.cert.Certificate[0])
	}
	if fp := s.acmeFP.Load(); fp != nil {
		return *fp
	}
	return ""
}

// QUIC returns a fresh server config for QUIC listeners. It never offers h2 or http/1.1:
// those are TCP protocols (HTTP over QUIC would be h3), so a QUIC client asking only for them
// fails the handshake instead of reaching an HTTP server through a stream.
func (s *Server) QUIC() *tls.Config {
	c := s.config(false)
	c.NextProtos = slices.DeleteFunc(c.NextProtos, IsHTTPOverTCP)
	return c
}

// IsHTTPOverTCP reports the HTTP ALPNs of a TCP+TLS connection (h2, http/1.1), which QUIC
// listeners do not offer and whose connections have no single-stream idle timer.
func IsHTTPOverTCP(alpn string) bool { return alpn == "h2" || alpn == "http/1.1" }

// TCP returns a fresh server config for TCP+TLS listeners; in acme mode it also offers acme-tls/1.
func (s *Server) TCP() *tls.Config { return s.config(s.mgr != nil) }

func (s *Server) config(acmeALPN bool) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		ClientAuth: tls.RequestClientCert,
		NextProtos: slices.Clone(s.alpns),
	}
	if acmeALPN {
		c.NextProtos = append(c.NextProtos, ACMEALPN)
	}
	if s.cert != nil {
		c.Certificates = []tls.Certificate{*s.cert}
	} else {
		c.GetCertificate = s.getACMECertificate
	}
	return c
}

func (s *Server) getACMECertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	c, err := s.mgr.GetCertificate(hello)
	if err != nil {
		return nil, err
	}
	if len(c.Certificate) > 0 && !slices.Contains(hello.SupportedProtos, ACMEALPN) {
		fp := identity.FingerprintDER(c.Certificate[0])
		s.acmeFP.Store(&fp)
	}
	return c, nil
}

// ErrClosed is returned for ACME certificate requests after Close.
var ErrClosed = errors.New("tlsconf: server closed")

// Close stops ACME work: no certificate is requested or renewed on demand afterwards
// (autocert's renewal timers fire into a closed server and do nothing harmful).
func (s *Server) Close() error {
	s.closed.Store(true)
	return nil
}
