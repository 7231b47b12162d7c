package conn

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Timeouts are a connection's inactivity limits (docs/security.md), set by whoever accepted or
// dialed it; the zero value sets none.
type Timeouts struct {
	// Idle applies to single-stream connections, which have no transport idle timeout: the
	// protocol handler closes a connection with nothing in flight and no byte received for this
	// long (alknet/call does). 0: none.
	Idle time.Duration
	// Write bounds a write that makes no progress: each write (in pieces of at most 64 KiB)
	// must complete within it, else it fails with ErrTimeout and the stream (QUIC) or the
	// connection (single-stream) is reset, so a peer that stops reading cannot hold a writer
	// forever. 0: none.
	Write time.Duration
}

// WithTimeouts sets c's timeouts, where c is a connection of this package; it returns c.
// Call it before the connection is used.
func WithTimeouts(c Connection, t Timeouts) Connection {
	if s, ok := c.(interface{ setTimeouts(Timeouts) }); ok {
		s.setTimeouts(t)
	}
	return c
}

// TimeoutsOf returns c's timeouts: those of a connection of this package, or of any
// connection with a Timeouts() method (a wrapper forwards it); else the zero value.
func TimeoutsOf(c Connection) Timeouts {
	if t, ok := c.(interface{ Timeouts() Timeouts }); ok {
		return t.Timeouts()
	}
	return Timeouts{}
}

// writeChunk is the largest piece written under one write deadline.
const writeChunk = 64 << 10

// deadlineWriter writes with a write deadline re-armed per piece. The deadline is set afresh
// only when the one in force is less than 3/4 of the timeout away, so small writes cost a
// clock read, not a deadline update: a stalled write fails after 3/4 to 1 timeout.
type deadlineWriter struct {
	deadline atomic.Int64 // unix nanoseconds of the write deadline in force; 0: none
}

func (d *deadlineWriter) write(p []byte, timeout time.Duration, set func(time.Time) error, w io.Writer) (int, error) {
	if timeout <= 0 {
		return w.Write(p)
	}
	n := 0
	for n < len(p) {
		now := time.Now()
		if dl := d.deadline.Load(); dl == 0 || time.Duration(dl-now.UnixNano()) < timeout*3/4 {
			next := now.Add(timeout)
			if err := set(next); err != nil && !errors.Is(err, errNoDeadline) {
				return n, err
			}
			d.deadline.Store(next.UnixNano())
		}
		end := min(len(p), n+writeChunk)
		m, err := w.Write(p[n:end])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
