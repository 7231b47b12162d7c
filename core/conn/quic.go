package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/alkdev/alknet/core/identity"
)

// quicConn adapts a *quic.Conn: many independent bidirectional streams.
type quicConn struct {
	idSlot
	c         *quic.Conn
	alpn, fp  string
	closeOnce sync.Once
	timeouts  Timeouts
}

// FromQUIC wraps an established QUIC connection (handshake complete).
func FromQUIC(c *quic.Conn) Connection {
	st := c.ConnectionState().TLS
	return &quicConn{c: c, alpn: st.NegotiatedProtocol, fp: peerFingerprint(st)}
}

func peerFingerprint(st tls.ConnectionState) string {
	if len(st.PeerCertificates) == 0 {
		return ""
	}
	return identity.FingerprintCert(st.PeerCertificates[0])
}

func (q *quicConn) AcceptStream(ctx context.Context) (Stream, error) {
	s, err := q.c.AcceptStream(ctx)
	if err != nil {
		return nil, mapQUICError(ctx, err, false)
	}
	return &quicStream{s: s, writeTimeout: q.timeouts.Write, remote: q.c.RemoteAddr()}, nil
}

func (q *quicConn) OpenStream(ctx context.Context) (Stream, error) {
	s, err := q.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, mapQUICError(ctx, err, false)
	}
	return &quicStream{s: s, writeTimeout: q.timeouts.Write, remote: q.c.RemoteAddr()}, nil
}

func (q *quicConn) ALPN() string              { return q.alpn }
func (q *quicConn) Transport() Transport      { return TransportQUIC }
func (q *quicConn) MultiStream() bool         { return true }
func (q *quicConn) RemoteAddr() net.Addr      { return q.c.RemoteAddr() }
func (q *quicConn) RemoteFingerprint() string { return q.fp }
func (q *quicConn) Done() <-chan struct{}     { return q.c.Context().Done() }

func (q *quicConn) AfterClose(f func()) func() bool { return context.AfterFunc(q.c.Context(), f) }

func (q *quicConn) setTimeouts(t Timeouts) { q.timeouts = t }

// Timeouts returns the connection's inactivity limits (WithTimeouts).
func (q *quicConn) Timeouts() Timeouts { return q.timeouts }

func (q *quicConn) Close(code uint64, reason string) error {
	var err error
	q.closeOnce.Do(func() {
		err = q.c.CloseWithError(quic.ApplicationErrorCode(code), truncateReason(reason))
	})
	return err
}

// quicStream adapts a *quic.Stream.
type quicStream struct {
	s            *quic.Stream
	eof          atomic.Bool // EOF read: Close need not stop receiving
	writeClosed  atomic.Bool
	writeTimeout time.Duration
	wd           deadlineWriter
	remote       net.Addr // the connection's peer, for logs that attribute a stream
}

// RemoteAddr returns the address of the connection's peer.
func (s *quicStream) RemoteAddr() net.Addr { return s.remote }

func (s *quicStream) Read(p []byte) (int, error) {
	n, err := s.s.Read(p)
	if err == io.EOF {
		s.eof.Store(true)
		return n, io.EOF
	}
	if err != nil {
		return n, mapQUICError(nil, err, false)
	}
	return n, nil
}

func (s *quicStream) Write(p []byte) (int, error) {
	if s.writeClosed.Load() {
		return 0, ErrStreamClosed
	}
	n, err := s.wd.write(p, s.writeTimeout, s.s.SetWriteDeadline, s.s)
	if err != nil {
		if isTimeout(err) {
			// Part of a frame may be out: the sending side is reset (code 0), never resumed.
			s.writeClosed.Store(true)
			s.s.CancelWrite(0)
		}
		return n, mapQUICError(nil, err, true)
	}
	return n, nil
}

func (s *quicStream) CloseWrite() error {
	s.writeClosed.Store(true)
	if err := s.s.Close(); err != nil {
		return mapQUICError(nil, err, true)
	}
	return nil
}

func (s *quicStream) Cancel(code uint64) {
	s.writeClosed.Store(true)
	s.s.CancelWrite(quic.StreamErrorCode(code))
	s.s.CancelRead(quic.StreamErrorCode(code))
}

func (s *quicStream) Close() error {
	err := s.CloseWrite()
	if !s.eof.Load() {
		s.s.CancelRead(0)
	}
	return err
}

func (s *quicStream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s *quicStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// mapQUICError maps quic-go errors to the categories of errors.go. ctx is the context
// of an Accept/Open call (its own end is returned unchanged), or nil.
func mapQUICError(ctx context.Context, err error, writing bool) error {
	if ctx != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return ctx.Err()
	}
	var (
		appErr    *quic.ApplicationError
		idleErr   *quic.IdleTimeoutError
		hsErr     *quic.HandshakeTimeoutError
		streamErr *quic.StreamError
	)
	switch {
	case errors.As(err, &appErr):
		return mapped(err, &CloseError{Code: uint64(appErr.ErrorCode), Reason: appErr.ErrorMessage, Remote: appErr.Remote}, ErrConnectionClosed)
	case errors.As(err, &idleErr), errors.As(err, &hsErr):
		return mapped(err, nil, ErrTimeout, ErrConnectionClosed)
	case errors.As(err, &streamErr):
		return mapped(err, &StreamCancelError{Code: uint64(streamErr.ErrorCode), Remote: streamErr.Remote}, ErrStreamClosed)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return mapped(err, nil, ErrTimeout)
	case writing && errors.Is(err, quic.ErrStreamClosed):
		return mapped(err, nil, ErrStreamClosed)
	}
	return mapped(err, nil, ErrConnectionClosed)
}
