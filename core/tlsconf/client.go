package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/alkdev/alknet/core/identity"
)

// ErrPinMismatch reports a server whose certificate fingerprint differs from the pin.
var ErrPinMismatch = errors.New("tlsconf: fingerprint pin mismatch")

// ConnectionCredentials says how a client proves itself and verifies the server.
type ConnectionCredentials struct {
	LocalKey   *identity.NodeKey // presented as key-mode client certificate; nil = none
	LocalCert  *tls.Certificate  // x509 client certificate; exclusive with LocalKey
	RemotePin  string            // fingerprint to pin; "" = CA verification
	RootCAs    *x509.CertPool    // CA mode; nil = system roots
	ServerName string            // SNI; in CA mode the verified name (default: dialed host)
}

// Verdict records why the client rejected a server, so dialers can report ErrPinMismatch
// without parsing transport error text (QUIC wraps TLS errors in transport errors).
type Verdict struct {
	mu  sync.Mutex
	err error
}

// Err returns the verification failure, if any.
func (v *Verdict) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

func (v *Verdict) set(err error) error {
	v.mu.Lock()
	v.err = err
	v.mu.Unlock()
	return err
}

// NewClient returns a client config offering exactly alpn. Errors come before any I/O.
func NewClient(c ConnectionCredentials, alpn string) (*tls.Config, error) {
	tc, _, err := NewClientVerdict(c, alpn)
	return tc, err
}

// NewClientVerdict is NewClient plus the Verdict its verifier writes.
func NewClientVerdict(c ConnectionCredentials, alpn string) (*tls.Config, *Verdict, error) {
	if err := ValidateALPN(alpn); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.LocalKey != nil && c.LocalCert != nil {
		return nil, nil, fmt.Errorf("%w: LocalKey and LocalCert are exclusive", ErrConfig)
	}
	if c.RemotePin != "" {
		if err := identity.CheckFingerprint(c.RemotePin); err != nil {
			return nil, nil, fmt.Errorf("%w: pin: %w", ErrConfig, err)
		}
	}
	v := &Verdict{}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
		NextProtos: []string{alpn},
		ServerName: c.ServerName,
		RootCAs:    c.RootCAs,
	}
	switch {
	case c.LocalKey != nil:
		cert, err := SelfSigned(c.LocalKey)
		if err != nil {
			return nil, nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	case c.LocalCert != nil:
		cert := *c.LocalCert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	if pin := c.RemotePin; pin != "" {
		// Trust comes only from the pinned key: no CA, name or date checks. The server's
		// handshake signature is still verified by crypto/tls.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return v.set(fmt.Errorf("%w: expected %s got no certificate", ErrPinMismatch, pin))
			}
			if got := identity.FingerprintCert(cs.PeerCertificates[0]); got != pin {
				return v.set(fmt.Errorf("%w: expected %s got %s", ErrPinMismatch, pin, got))
			}
			return nil
		}
	}
	return tc, v, nil
}
