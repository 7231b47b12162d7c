//go:build cgo && !noiroh

package iroh

import (
	"io"
	"sync"
	"time"

	"github.com/alkdev/alknet/core/conn"
)

// stream adapts one bidirectional iroh stream to conn.Stream (spec iroh.md §6.5). A read
// chunk is Rust memory: it is copied out under the read mutex and released by the next read
// (or by Close / the connection's end when no read is in progress).
type stream struct {
	c *connection
	h uint64

	rmu     sync.Mutex
	chunkH  uint64
	chunk   []byte
	eof     bool
	rerr    error // sticky: reset, stop, connection end
	wmu     sync.Mutex
	werr    error
	wclosed bool

	mu       sync.Mutex // state below
	inflight int
	closed   bool // Close called, or the connection is gone
	released bool
	canceled bool // Cancel or Close stopped our receiving: a pending read is a local cancel
	cancelC  uint64
	rd, wd   deadline
}

// deadline is one direction's deadline and the token of the operation it may cancel.
type deadline struct {
	at       time.Time
	token    uint64
	timer    *time.Timer
	timedOut bool
}

var _ conn.Stream = (*stream)(nil)

func (s *stream) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return false
	}
	s.inflight++
	return true
}

func (s *stream) leave() {
	s.mu.Lock()
	s.inflight--
	release := s.inflight == 0 && s.closed && !s.released
	if release {
		s.released = true
	}
	s.mu.Unlock()
	if release {
		s.releaseHandles()
	}
}

// releaseHandles frees the chunk (if no read holds the mutex, else that read does) and the
// stream handle. Runs once, with nothing in flight.
func (s *stream) releaseHandles() {
	if s.rmu.TryLock() {
		if s.chunkH != 0 {
			cRelease(s.chunkH)
			s.chunkH, s.chunk = 0, nil
		}
		s.rmu.Unlock()
	}
	cRelease(s.h)
	s.c.dropStream(s)
}

// connGone is called once the connection's handles are being released.
func (s *stream) connGone() {
	s.mu.Lock()
	s.closed = true
	release := s.inflight == 0 && !s.released
	if release {
		s.released = true
	}
	s.mu.Unlock()
	if release {
		s.releaseHandles()
	}
}

// arm registers a pending operation's token with its direction's deadline.
func (s *stream) arm(d *deadline, token uint64) (expired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.token, d.timedOut = token, false
	if d.at.IsZero() {
		return false
	}
	if !time.Now().Before(d.at) {
		d.timedOut = true
		cCancel(token)
		return true
	}
	d.timer = time.AfterFunc(time.Until(d.at), func() { s.expire(d, token) })
	return false
}

func (s *stream) expire(d *deadline, token uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.token == token {
		d.timedOut = true
		cCancel(token)
	}
}

// disarm ends a pending operation's deadline watch; it reports whether the deadline fired.
func (s *stream) disarm(d *deadline) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.token = 0
	return d.timedOut
}

func (s *stream) setDeadline(d *deadline, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.at = t
	if d.token == 0 {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() {
		return
	}
	token := d.token
	if !time.Now().Before(t) {
		d.timedOut = true
		cCancel(token)
		return
	}
	d.timer = time.AfterFunc(time.Until(t), func() { s.expire(d, token) })
}

func (s *stream) SetReadDeadline(t time.Time) error  { s.setDeadline(&s.rd, t); return nil }
func (s *stream) SetWriteDeadline(t time.Time) error { s.setDeadline(&s.wd, t); return nil }

func (s *stream) pastDeadline(d *deadline) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !d.at.IsZero() && !time.Now().Before(d.at)
}

func (s *stream) Read(p []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for {
		if len(s.chunk) > 0 {
			n := copy(p, s.chunk)
			s.chunk = s.chunk[n:]
			return n, nil
		}
		switch {
		case s.eof:
			return 0, io.EOF
		case s.rerr != nil:
			return 0, s.rerr
		case len(p) == 0:
			return 0, nil
		case s.pastDeadline(&s.rd):
			return 0, errDeadline
		}
		if !s.enter() {
			return 0, s.closedErr()
		}
		n, err, again := s.readChunk(p)
		s.leave()
		if !again {
			return n, err
		}
	}
}

// readChunk issues one native read (releasing the previous chunk) and copies what arrived.
func (s *stream) readChunk(p []byte) (n int, err error, again bool) {
	release := s.chunkH
	s.chunkH, s.chunk = 0, nil
	cp, t, o := issue(func(tok uint64, out *completion) int32 { return cRead(s.h, maxIO, release, tok, out) })
	timedOut := false
	if o != nil {
		s.arm(&s.rd, t)
		cp = <-o.ch
		timedOut = s.disarm(&s.rd)
	}
	msg := cMessage(cp.detail)
	switch {
	case cp.status == stOK && cp.flags&flagFIN != 0:
		s.eof = true
		return 0, io.EOF, false
	case cp.status == stOK:
		s.chunkH, s.chunk = cp.value, chunkBytes(cp)
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed { // Close ran while we waited: the chunk goes now, the data with it
			cRelease(s.chunkH)
			s.chunkH, s.chunk = 0, nil
			return 0, s.closedErr(), false
		}
		n := copy(p, s.chunk)
		s.chunk = s.chunk[n:]
		return n, nil, false
	case cp.status == stCanceled && timedOut:
		return 0, errDeadline, false
	case cp.status == stCanceled, cp.status == stReset && cp.flags&flagRemote == 0:
		s.rerr = s.localCancel()
		return 0, s.rerr, false
	case cp.status == stReset:
		s.rerr = streamCancel(cp.value, true)
		return 0, s.rerr, false
	case cp.status == stHandle:
		return 0, s.closedErr(), false
	default:
		s.rerr = s.connErr(cp, msg)
		return 0, s.rerr, false
	}
}

func (s *stream) localCancel() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return streamCancel(s.cancelC, false)
}

func (s *stream) connErr(cp completion, msg string) error {
	if e := s.c.err.Load(); e != nil {
		return *e
	}
	return connError(cp, msg)
}

func (s *stream) closedErr() error {
	if s.c.ctx.Err() != nil {
		return s.c.closeErr()
	}
	return conn.ErrStreamClosed
}

func (s *stream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.werr != nil {
		return 0, s.werr
	}
	if s.wclosed {
		return 0, conn.ErrStreamClosed
	}
	if !s.enter() {
		return 0, s.closedErr()
	}
	defer s.leave()
	written := 0
	for written < len(p) {
		if s.pastDeadline(&s.wd) {
			return written, s.writeTimeout()
		}
		part := p[written:min(len(p), written+maxIO)]
		cp, t, o := issue(func(tok uint64, out *completion) int32 { return cWrite(s.h, part, false, tok, out) })
		timedOut := false
		if o != nil {
			s.arm(&s.wd, t)
			cp = <-o.ch
			timedOut = s.disarm(&s.wd)
		}
		msg := cMessage(cp.detail)
		switch {
		case cp.status == stOK:
			written += len(part)
		case cp.status == stCanceled && timedOut:
			return written + int(cp.value), s.writeTimeout()
		case cp.status == stCanceled, cp.status == stReset:
			s.werr = s.localCancel()
			return written + int(cp.value), s.werr
		case cp.status == stStopped:
			s.werr = streamCancel(cp.value, true)
			return written, s.werr
		default:
			s.werr = s.connErr(cp, msg)
			return written, s.werr
		}
	}
	return written, nil
}

// writeTimeout resets our sending side (part of a frame may be out; never resumed), as the
// QUIC adapter does.
func (s *stream) writeTimeout() error {
	s.wclosed = true
	cReset(s.h, 0)
	return errDeadline
}

func (s *stream) CloseWrite() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wclosed {
		return nil
	}
	s.wclosed = true
	if !s.enter() {
		return s.closedErr()
	}
	defer s.leave()
	cFinish(s.h)
	return nil
}

// Cancel resets our sending side and stops receiving, with code.
func (s *stream) Cancel(code uint64) {
	if code > 1<<62-1 {
		code = conn.CodeInternal
	}
	s.mu.Lock()
	if !s.canceled {
		s.canceled, s.cancelC = true, code
	}
	s.mu.Unlock()
	if !s.enter() {
		return
	}
	defer s.leave()
	cReset(s.h, code)
}

// Close finishes our sending side and stops receiving (code 0) unless EOF was read; the
// handle goes once no call is in flight.
func (s *stream) Close() error {
	if !s.enter() {
		return nil
	}
	if s.wmu.TryLock() {
		if !s.wclosed {
			s.wclosed = true
			cFinish(s.h)
		}
		s.wmu.Unlock()
	} else {
		cFinish(s.h) // a write is pending: the crate finishes once it completes
	}
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	if !s.canceled {
		s.canceled = true
	}
	s.mu.Unlock()
	if first {
		cStop(s.h, 0) // a pending read returns a local cancel; after EOF this changes nothing
	}
	s.leave()
	return nil
}
