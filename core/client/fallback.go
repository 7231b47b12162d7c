package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/identity"
	"github.com/alkdev/alknet/core/tlsconf"
)

// IsKind reports whether err is a *DialError of kind k.
func IsKind(err error, k DialKind) bool {
	var de *DialError
	return errors.As(err, &de) && de.Kind == k
}

// DialFallback tries QUIC and, only after a DialConnect error (e.g. UDP blocked), TCP+TLS.
// A wrong server identity is no reason to try another path: config and handshake errors are
// returned as they are. If both fail, both errors are returned.
func DialFallback(ctx context.Context, d *Dialer, quicAddr, tcpAddr, alpn string, c tlsconf.ConnectionCredentials) (conn.Connection, error) {
	qc, qerr := d.DialQUIC(ctx, quicAddr, alpn, c)
	if qerr == nil {
		return qc, nil
	}
	if !IsKind(qerr, DialConnect) || tcpAddr == "" {
		return nil, qerr
	}
	tc, terr := d.DialTCP(ctx, tcpAddr, alpn, c)
	if terr == nil {
		return tc, nil
	}
	return nil, errors.Join(qerr, terr)
}

// DialTicket pins the ticket's fingerprint, uses its server name, and tries its QUIC then TCP
// addresses in order, then its iroh records through Dialer.Iroh, moving on only after
// DialConnect.
func DialTicket(ctx context.Context, d *Dialer, t identity.Ticket, alpn string, c tlsconf.ConnectionCredentials) (conn.Connection, error) {
	if c.RemotePin != "" && c.RemotePin != t.Fingerprint {
		return nil, &DialError{Kind: DialConfig, Err: fmt.Errorf("pin %s conflicts with the ticket's fingerprint %s", c.RemotePin, t.Fingerprint)}
	}
	c.RemotePin = t.Fingerprint
	if c.ServerName == "" {
		c.ServerName = t.ServerName
	}
	type attempt struct {
		dial func(context.Context, string, string, tlsconf.ConnectionCredentials) (conn.Connection, error)
		addr string
	}
	var attempts []attempt
	for _, a := range t.QUIC {
		attempts = append(attempts, attempt{d.DialQUIC, a})
	}
	for _, a := range t.TCP {
		attempts = append(attempts, attempt{d.DialTCP, a})
	}
	if t.Iroh != nil && (d.Iroh != nil || len(attempts) == 0) {
		// iroh comes last (after QUIC and TCP fail to connect): it may go through a relay.
		// An iroh-only ticket without Dialer.Iroh is DialIroh's DialConfig.
		iroh := *t.Iroh
		attempts = append(attempts, attempt{func(ctx context.Context, fp, alpn string, c tlsconf.ConnectionCredentials) (conn.Connection, error) {
			return d.DialIroh(ctx, fp, iroh, alpn, c)
		}, t.Fingerprint})
	}
	if len(attempts) == 0 {
		return nil, &DialError{Kind: DialConfig, Err: errors.New("ticket has no address")}
	}
	var errs []error
	for _, at := range attempts {
		cn, err := at.dial(ctx, at.addr, alpn, c)
		if err == nil {
			return cn, nil
		}
		errs = append(errs, err)
		if !IsKind(err, DialConnect) {
			break
		}
	}
	return nil, errors.Join(errs...)
}
