package tlsconf

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/alkdev/alknet/core/identity"
)

// notAfterForever is RFC 5280's "no well-defined expiration date".
var notAfterForever = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// SelfSigned wraps the node key in the certificate key mode presents as server and client.
// Trust comes from the pinned key, never from this certificate's names or dates.
func SelfSigned(key *identity.NodeKey) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "alknet node"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfterForever,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key.PrivateKey())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key.PrivateKey(), Leaf: leaf}, nil
}
