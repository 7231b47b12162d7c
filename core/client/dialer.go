// Package client dials nodes over QUIC and TCP+TLS with pinned or CA-verified identities,
// and offers explicit fallback, ticket dialing and a reconnect-with-backoff supervisor.
//
// See also: identity (tickets), tlsconf (client credentials), conn (what a dial returns).
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/alkdev/alknet/core/config"
	"github.com/alkdev/alknet/core/conn"
	"github.com/alkdev/alknet/core/tlsconf"
)

// DialKind classifies a dial failure.
type DialKind int

// Dial failure kinds.
const (
	DialConfig    DialKind = iota + 1 // bad credentials, ALPN or address; before any I/O
	DialConnect                       // unreachable, refused, no QUIC answer
	DialHandshake                     // pin mismatch, CA or name failure, ALPN not negotiated
	DialCanceled                      // ctx ended
)

func (k DialKind) String() string {
	switch k {
	case DialConfig:
		return "config"
	case DialConnect:
		return "connect"
	case DialHandshake:
		return "handshake"
	case DialCanceled:
		return "canceled"
	}
	return fmt.Sprintf("DialKind(%d)", int(k))
}

// DialError is every error a Dialer returns.
type DialError struct {
	Kind      DialKind
	Transport conn.Transport // "" for an error about a whole ticket
	Addr      string
	Err       error
}

func (e *DialError) Error() string {
	if e.Transport == "" && e.Addr == "" { // a ticket that cannot be dialled at all
		return fmt.Sprintf("client: dial ticket: %s: %v", e.Kind, e.Err)
	}
	return fmt.Sprintf("client: dial %s %s: %s: %v", e.Transport, e.Addr, e.Kind, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// ErrALPNNotNegotiated reports a server that completed the handshake without the requested ALPN.
var ErrALPNNotNegotiated = errors.New("client: ALPN not negotiated")

// Dialer dials one connection at a time; the zero value is ready to use.
type Dialer struct {
	Transport        *quic.Transport // optional shared UDP socket; nil = one per dial
	QUICConfig       *quic.Config    // nil = config.Limits defaults
	HandshakeTimeout time.Duration   // 0 → 10 s
	Logger           *slog.Logger
	// Iroh dials by key over iroh (DialIroh; DialTicket's last resort); nil: no iroh.
	Iroh IrohDialer
}

const defaultHandshakeTimeout = 10 * time.Second

func (d *Dialer) timeout() time.Duration {
	if d.HandshakeTimeout > 0 {
		return d.HandshakeTimeout
	}
	return defaultHandshakeTimeout
}

func (d *Dialer) quicConfig() *quic.Config {
	if d.QUICConfig != nil {
		return d.QUICConfig.Clone()
	}
	l := config.Limits{}.WithDefaults()
	return &quic.Config{
		HandshakeIdleTimeout:  d.timeout(),
		MaxIdleTimeout:        l.IdleTimeout,
		KeepAlivePeriod:       l.KeepAlivePeriod,
		MaxIncomingStreams:    l.MaxIncomingStreams,
		MaxIncomingUniStreams: -1,
	}
}

func prepare(transport conn.Transport, addr, alpn string, c tlsconf.ConnectionCredentials) (*tls.Config, *tlsconf.Verdict, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, &DialError{Kind: DialConfig, Transport: transport, Addr: addr, Err: err}
	}
	tc, v, err := tlsconf.NewClientVerdict(c, alpn)
	if err != nil {
		return nil, nil, &DialError{Kind: DialConfig, Transport: transport, Addr: addr, Err: err}
	}
	if tc.ServerName == "" && c.RemotePin == "" {
		tc.ServerName = host
	}
	return tc, v, nil
}

// DialQUIC dials addr over QUIC. It never retries.
func (d *Dialer) DialQUIC(ctx context.Context, addr, alpn string, c tlsconf.ConnectionCredentials) (conn.Connection, error) {
	const tr = conn.TransportQUIC
	tc, v, err := prepare(tr, addr, alpn, c)
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, classify(ctx, tr, addr, v, err)
	}
	qc := d.quicConfig()
	dctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	var qconn *quic.Conn
	if d.Transport != nil {
		qconn, err = d.Transport.Dial(dctx, ua, tc, qc)
	} else {
		qconn, err = dialOwnSocket(dctx, ua, tc, qc)
	}
	if err != nil {
		return nil, classify(ctx, tr, addr, v, err)
	}
	cn := conn.FromQUIC(qconn)
	if cn.ALPN() != alpn {
		_ = cn.Close(conn.CodeNormal, "")
		return nil, &DialError{Kind: DialHandshake, Transport: tr, Addr: addr, Err: ErrALPNNotNegotiated}
	}
	return cn, nil
}

// dialOwnSocket dials with a UDP socket of its own that closes with the connection. The
// socket is connected to the server, so an ICMP "port unreachable" reaches quic-go as
// ECONNREFUSED and a closed port fails at once instead of after the handshake timeout.
func dialOwnSocket(ctx context.Context, ua *net.UDPAddr, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
	network := "udp4"
	if ua.IP.To4() == nil {
		network = "udp6"
	}
	udp, err := net.DialUDP(network, nil, ua)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: connectedUDP{udp}}
	qconn, err := tr.Dial(ctx, ua, tc, qc)
	if err != nil {
		_ = tr.Close()
		_ = udp.Close()
		return nil, err
	}
	context.AfterFunc(qconn.Context(), func() {
		_ = tr.Close()
		_ = udp.Close()
	})
	return qconn, nil
}

// connectedUDP lets quic-go use a connected UDP socket: the kernel rejects an explicit
// destination on one, so writes go without it (the socket has exactly one peer). Reads,
// batching, ECN and GSO stay quic-go's own (the embedded *net.UDPConn).
type connectedUDP struct{ *net.UDPConn }

func (c connectedUDP) WriteTo(b []byte, _ net.Addr) (int, error) { return c.Write(b) }

func (c connectedUDP) WriteMsgUDP(b, oob []byte, _ *net.UDPAddr) (n, oobn int, err error) {
	return c.UDPConn.WriteMsgUDP(b, oob, nil)
}

// DialTCP dials addr over TCP+TLS. It never retries.
func (d *Dialer) DialTCP(ctx context.Context, addr, alpn string, c tlsconf.ConnectionCredentials) (conn.Connection, error) {
	const tr = conn.TransportTCPTLS
	tc, v, err := prepare(tr, addr, alpn, c)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	nd := &net.Dialer{KeepAlive: config.DefaultKeepAlivePeriod}
	raw, err := nd.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, classify(ctx, tr, addr, v, err)
	}
	tlsConn := tls.Client(raw, tc)
	if err := tlsConn.HandshakeContext(dctx); err != nil {
		_ = raw.Close()
		return nil, classifyHandshake(ctx, tr, addr, v, err)
	}
	cn := conn.FromTLS(tlsConn)
	if cn.ALPN() != alpn {
		_ = cn.Close(conn.CodeNormal, "")
		return nil, &DialError{Kind: DialHandshake, Transport: tr, Addr: addr, Err: ErrALPNNotNegotiated}
	}
	return cn, nil
}

// classify maps a pre-handshake or QUIC dial error.
func classify(ctx context.Context, tr conn.Transport, addr string, v *tlsconf.Verdict, err error) error {
	if ctx.Err() != nil {
		return &DialError{Kind: DialCanceled, Transport: tr, Addr: addr, Err: errors.Join(ctx.Err(), err)}
	}
	if v != nil && v.Err() != nil {
		return &DialError{Kind: DialHandshake, Transport: tr, Addr: addr, Err: errors.Join(v.Err(), err)}
	}
	var (
		transportErr *quic.TransportError
		idleErr      *quic.IdleTimeoutError
		hsErr        *quic.HandshakeTimeoutError
	)
	switch {
	case errors.As(err, &idleErr), errors.As(err, &hsErr), errors.Is(err, context.DeadlineExceeded):
		return &DialError{Kind: DialConnect, Transport: tr, Addr: addr, Err: err}
	case errors.As(err, &transportErr):
		// CRYPTO_ERROR (0x100-0x1ff) is a TLS alert: a handshake failure, not unreachability.
		if transportErr.ErrorCode >= 0x100 && transportErr.ErrorCode <= 0x1ff {
			return &DialError{Kind: DialHandshake, Transport: tr, Addr: addr, Err: err}
		}
		if transportErr.ErrorCode == quic.ConnectionRefused {
			return &DialError{Kind: DialConnect, Transport: tr, Addr: addr, Err: err}
		}
		return &DialError{Kind: DialHandshake, Transport: tr, Addr: addr, Err: err}
	}
	return &DialError{Kind: DialConnect, Transport: tr, Addr: addr, Err: err}
}

// classifyHandshake maps a TLS handshake error over TCP.
func classifyHandshake(ctx context.Context, tr conn.Transport, addr string, v *tlsconf.Verdict, err error) error {
	if ctx.Err() != nil {
		return &DialError{Kind: DialCanceled, Transport: tr, Addr: addr, Err: errors.Join(ctx.Err(), err)}
	}
	if v.Err() != nil {
		return &DialError{Kind: DialHandshake, Transport: tr, Addr: addr, Err: errors.Join(v.Err(), err)}
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) {
		return &DialError{Kind: DialConnect, Transport: tr, Addr: addr, Err: err}
	}
	return &DialError{Kind: DialHandshake, Transport: tr, Addr: addr, Err: err}
}
