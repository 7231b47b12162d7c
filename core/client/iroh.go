package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// IrohDialer dials nodes by key over iroh (the iroh module's Transport implements it). Its
// endpoint's key is the only client identity an iroh connection can present.
type IrohDialer interface {
	// Fingerprint is the dialing endpoint's own key (ed25519:<hex>).
	Fingerprint() string
	// DialEndpoint dials the node whose key fp names at a (relay and direct addresses), with
	// alpn; the connection's remote key is fp. Errors are *DialError.
	DialEndpoint(ctx context.Context, fp string, a identity.IrohAddr, alpn string) (conn.Connection, error)
}

// ErrNoIroh is the DialConfig error of an iroh dial without Dialer.Iroh.
var ErrNoIroh = errors.New("client: no iroh dialer (this node or binary has no iroh)")

// DialIroh dials the node fp names over iroh within the handshake timeout, as DialQUIC does
// over QUIC. Before any I/O it refuses (DialConfig): no Dialer.Iroh, a fingerprint that is not
// an ed25519: key, a RemotePin other than fp, a LocalKey other than the iroh endpoint's own, or
// x509 credentials (LocalCert, RootCAs), which iroh cannot present or check.
func (d *Dialer) DialIroh(ctx context.Context, fp string, a identity.IrohAddr, alpn string, c tlsconf.ConnectionCredentials) (conn.Connection, error) {
	const tr = conn.TransportIroh
	fail := func(err error) (conn.Connection, error) {
		return nil, &DialError{Kind: DialConfig, Transport: tr, Addr: fp, Err: err}
	}
	switch {
	case d.Iroh == nil:
		return fail(ErrNoIroh)
	case !strings.HasPrefix(fp, identity.PrefixEd25519) || identity.CheckFingerprint(fp) != nil:
		return fail(fmt.Errorf("iroh dials a key: %q is not an %s fingerprint", fp, identity.PrefixEd25519))
	case c.RemotePin != "" && c.RemotePin != fp:
		return fail(fmt.Errorf("pin %s differs from the dialed key %s", c.RemotePin, fp))
	case c.LocalKey != nil && c.LocalKey.Fingerprint() != d.Iroh.Fingerprint():
		return fail(errors.New("iroh presents its endpoint's key: another client key cannot be used"))
	case c.LocalCert != nil || c.RootCAs != nil:
		return fail(errors.New("iroh has no x509 credentials: LocalCert and RootCAs are not supported"))
	}
	if err := tlsconf.ValidateALPN(alpn); err != nil {
		return fail(err)
	}
	dctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	cn, err := d.Iroh.DialEndpoint(dctx, fp, a, alpn)
	if err != nil {
		var de *DialError
		if errors.As(err, &de) {
			return nil, de
		}
		return nil, &DialError{Kind: DialConnect, Transport: tr, Addr: fp, Err: err}
	}
	return cn, nil
}
