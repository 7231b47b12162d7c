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
)

// byteStream is what a single-stream connection runs on: a TLS connection, a pipe end, or
// any ReadWriteCloser given to FromStream.
type byteStream interface {
	io.ReadWriteCloser
	closeWrite() error
	abort() // close abortively (TCP linger 0 where possible)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// single carries exactly one stream: the first AcceptStream returns it on either side; later
// calls block until the connection closes. OpenStream fails at once with ErrStreamClosed.
type single struct {
	idSlot
	bs        byteStream
	transport Transport
	alpn, fp  string
	remote    net.Addr
	accepted  atomic.Bool
	closedCtx context.Context // done once closed; AfterClose hangs off it
	markDone  context.CancelFunc
	done      <-chan struct{}
	closeOnce sync.Once
	stream    *singleStream
	timeouts  Timeouts
	wd        deadlineWriter
	// peerDone, for pipes, closes the other end's done channel too.
	peerDone func()
}

func newSingle(bs byteStream, tr Transport, alpn, fp string, remote net.Addr) *single {
	s := &single{bs: bs, transport: tr, alpn: alpn, fp: fp, remote: remote}
	s.closedCtx, s.markDone = context.WithCancel(context.Background())
	s.done = s.closedCtx.Done()
	s.stream = &singleStream{c: s}
	return s
}

// FromTLS wraps a TCP+TLS connection whose handshake is complete; ALPN and fingerprint
// come from the TLS state.
func FromTLS(tc *tls.Conn) Connection {
	st := tc.ConnectionState()
	return newSingle(tlsStream{tc}, TransportTCPTLS, st.NegotiatedProtocol, peerFingerprint(st), tc.RemoteAddr())
}

// FromStream wraps any byte stream as a single-stream connection (Transport "pipe").
// Deadlines and CloseWrite work when rwc supports them.
func FromStream(rwc io.ReadWriteCloser, alpn, fingerprint string, remote net.Addr) Connection {
	return newSingle(genericStream{rwc}, TransportPipe, alpn, fingerprint, remote)
}

// Pipe returns two in-memory connections joined back to back (single-stream, Transport "pipe").
// Each direction is its own synchronous pipe, so CloseWrite half-closes as on TCP.
func Pipe(alpn string) (a, b Connection) {
	aToB, bFromA := net.Pipe()
	bToA, aFromB := net.Pipe()
	ca := newSingle(&pipeEnd{r: aFromB, w: aToB}, TransportPipe, alpn, "", nil)
	cb := newSingle(&pipeEnd{r: bFromA, w: bToA}, TransportPipe, alpn, "", nil)
	ca.peerDone, cb.peerDone = cb.markClosed, ca.markClosed
	return ca, cb
}

func (s *single) AcceptStream(ctx context.Context) (Stream, error) {
	if s.accepted.CompareAndSwap(false, true) {
		select {
		case <-s.done:
			return nil, mapped(nil, nil, ErrConnectionClosed)
		default:
			return s.stream, nil
		}
	}
	select {
	case <-s.done:
		return nil, mapped(nil, nil, ErrConnectionClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *single) OpenStream(context.Context) (Stream, error) { return nil, ErrStreamClosed }
func (s *single) ALPN() string                               { return s.alpn }
func (s *single) Transport() Transport                       { return s.transport }
func (s *single) MultiStream() bool                          { return false }
func (s *single) RemoteAddr() net.Addr                       { return s.remote }
func (s *single) RemoteFingerprint() string                  { return s.fp }
func (s *single) Done() <-chan struct{}                      { return s.done }

func (s *single) AfterClose(f func()) func() bool { return context.AfterFunc(s.closedCtx, f) }

func (s *single) setTimeouts(t Timeouts) { s.timeouts = t }

// Timeouts returns the connection's inactivity limits (WithTimeouts).
func (s *single) Timeouts() Timeouts { return s.timeouts }

// Close closes the connection; TCP+TLS carries no close code or reason.
func (s *single) Close(uint64, string) error {
	var err error
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.markDone()
		err = s.bs.Close()
	})
	// Outside our Once: the peer may be closing at the same time and tell us in turn.
	if first && s.peerDone != nil {
		s.peerDone()
	}
	if err != nil && errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// markClosed records that the connection ended without closing the byte stream again.
func (s *single) markClosed() {
	s.closeOnce.Do(func() {
		s.markDone()
		_ = s.bs.Close()
	})
}

func (s *single) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// singleStream is the one stream of a single-stream connection.
type singleStream struct {
	c           *single
	writeClosed atomic.Bool
	eof         atomic.Bool
}

func (s *singleStream) Read(p []byte) (int, error) {
	n, err := s.c.bs.Read(p)
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		if s.c.transport == TransportPipe && s.c.closed() {
			return n, mapped(err, nil, ErrConnectionClosed, ErrStreamClosed)
		}
		s.eof.Store(true)
		s.finishedBothWays()
		return n, io.EOF
	}
	return n, s.fail(err)
}

func (s *singleStream) Write(p []byte) (int, error) {
	if s.writeClosed.Load() {
		return 0, ErrStreamClosed
	}
	n, err := s.c.wd.write(p, s.c.timeouts.Write, s.c.bs.SetWriteDeadline, s.c.bs)
	if err != nil {
		if isTimeout(err) {
			// A timed-out write leaves a TLS connection's state corrupt: it is closed.
			_ = s.c.Close(CodeNormal, "")
			return n, mapped(err, nil, ErrTimeout, ErrConnectionClosed, ErrStreamClosed)
		}
		return n, s.fail(err)
	}
	return n, nil
}

// fail maps a read or write error, marking the connection closed unless it was a read deadline.
func (s *singleStream) fail(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return mapped(err, nil, ErrTimeout)
	}
	s.c.markClosed()
	return mapped(err, nil, ErrConnectionClosed, ErrStreamClosed)
}

func (s *singleStream) CloseWrite() error {
	if s.writeClosed.Swap(true) {
		return nil
	}
	if err := s.c.bs.closeWrite(); err != nil {
		return s.fail(err)
	}
	s.finishedBothWays()
	return nil
}

// finishedBothWays ends the connection once its only stream is done in both directions:
// nothing more can be sent or received on it.
func (s *singleStream) finishedBothWays() {
	if s.eof.Load() && s.writeClosed.Load() {
		s.c.markClosed()
	}
}

func (s *singleStream) Cancel(uint64) {
	s.writeClosed.Store(true)
	first := false
	s.c.closeOnce.Do(func() {
		first = true
		s.c.markDone()
		s.c.bs.abort()
	})
	if first && s.c.peerDone != nil {
		s.c.peerDone()
	}
}

func (s *singleStream) Close() error { return s.c.Close(CodeNormal, "") }

func (s *singleStream) SetReadDeadline(t time.Time) error  { return s.c.bs.SetReadDeadline(t) }
func (s *singleStream) SetWriteDeadline(t time.Time) error { return s.c.bs.SetWriteDeadline(t) }

// LocalAddr, RemoteAddr and SetDeadline make the TCP+TLS stream a net.Conn (HTTP gateway).
func (s *singleStream) LocalAddr() net.Addr {
	if t, ok := s.c.bs.(tlsStream); ok {
		return t.LocalAddr()
	}
	return nil
}
func (s *singleStream) RemoteAddr() net.Addr { return s.c.remote }
func (s *singleStream) SetDeadline(t time.Time) error {
	return errors.Join(s.SetReadDeadline(t), s.SetWriteDeadline(t))
}

// tlsStream is a *tls.Conn as a byteStream.
type tlsStream struct{ *tls.Conn }

func (t tlsStream) closeWrite() error { return t.Conn.CloseWrite() }
func (t tlsStream) abort() {
	if tc, ok := t.NetConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = t.Conn.NetConn().Close()
}

// pipeEnd is one side of Pipe: it reads one net.Pipe and writes the other.
type pipeEnd struct{ r, w net.Conn }

func (p *pipeEnd) Read(b []byte) (int, error)         { return p.r.Read(b) }
func (p *pipeEnd) Write(b []byte) (int, error)        { return p.w.Write(b) }
func (p *pipeEnd) Close() error                       { return errors.Join(p.w.Close(), p.r.Close()) }
func (p *pipeEnd) closeWrite() error                  { return p.w.Close() }
func (p *pipeEnd) abort()                             { _ = p.Close() }
func (p *pipeEnd) SetReadDeadline(t time.Time) error  { return p.r.SetReadDeadline(t) }
func (p *pipeEnd) SetWriteDeadline(t time.Time) error { return p.w.SetWriteDeadline(t) }

// genericStream adapts an arbitrary ReadWriteCloser, using optional methods when present.
type genericStream struct{ io.ReadWriteCloser }

var errNoDeadline = errors.New("conn: stream does not support deadlines")

func (g genericStream) closeWrite() error {
	if cw, ok := g.ReadWriteCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return g.Close()
}
func (g genericStream) abort() { _ = g.Close() }
func (g genericStream) SetReadDeadline(t time.Time) error {
	if d, ok := g.ReadWriteCloser.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return errNoDeadline
}
func (g genericStream) SetWriteDeadline(t time.Time) error {
	if d, ok := g.ReadWriteCloser.(interface{ SetWriteDeadline(time.Time) error }); ok {
		return d.SetWriteDeadline(t)
	}
	return errNoDeadline
}
